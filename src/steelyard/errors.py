"""Errors a user can cause, each with a message fit to print on one line.

The CLI catches :class:`SteelyardError` and prints ``error: <message>`` with a non-zero exit
code; anything else is a bug and keeps its traceback (shown with ``--debug``).
"""

from __future__ import annotations


class SteelyardError(Exception):
    """Base class of every error caused by the user's input or machine, not by a bug."""

    exit_code: int = 2


class ModelSourceError(SteelyardError):
    """The model id, path, factory or config could not be resolved or loaded."""


class UnsupportedConfigError(SteelyardError):
    """A config whose model type steelyard cannot build."""


class InputShapeError(SteelyardError):
    """The model rejected the example input (shape or dtype)."""


class DtypeUnsupportedError(SteelyardError):
    """The requested dtype cannot run on the requested device."""


class TooLargeError(SteelyardError):
    """Loading the weights would not fit in this machine's memory."""


class CorruptWeightsError(SteelyardError):
    """A weights file could not be read."""


class HardwareError(SteelyardError):
    """An unknown hardware name or a bad catalog entry."""


class ConfigError(SteelyardError):
    """A configuration value out of range or of the wrong kind."""


class StoreError(SteelyardError):
    """The results store could not be opened or written."""


class DataError(SteelyardError):
    """A data source that is missing, malformed or unusable for the requested task."""


class CompressionError(SteelyardError):
    """A compression method that does not apply to the model, lacks its backend or data, or broke it."""


class BackendUnavailableError(CompressionError):
    """The backend or kernel library (onnxruntime, a torch quantized engine, optimum-quanto) is missing here.

    Defined here, below every layer, so that ``profiling/`` (a quantized KV cache) raises the same
    error as ``compression/``; ``steelyard.compression.base`` re-exports it.
    """


class Interrupted(SteelyardError):
    """Ctrl-C, with a note of what was saved and what was not; exits 130 like any interrupted command."""

    exit_code = 130
