"""steelyard's own artifacts as model sources: the loaders the model registry names lazily.

:data:`steelyard.models.registry.BUILTIN` lists these as ``"module:attr"`` strings, so ``models/``
never imports ``compression/``. Detection is by file name only (the manifest, the ``.onnx``
suffix); the rebuild itself (:func:`~steelyard.compression.serialization.loader.load_compressed`)
is imported when a source is loaded. With ``config_only`` neither applies: a compressed folder is
then weighed from its ``config.json`` like any other folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from steelyard.compression.serialization.manifest import MANIFEST

if TYPE_CHECKING:
    from steelyard.models.handle import ModelHandle
    from steelyard.models.loading import LoadConfig


def _load(source: str, cfg: LoadConfig) -> ModelHandle:
    from steelyard.compression.serialization.loader import load_compressed

    return load_compressed(Path(source).expanduser(), cfg)


class CompressedFolderLoader:
    """A folder written by ``steelyard compress``: pruned widths and int8 layers that
    ``from_pretrained`` cannot rebuild, replayed from ``steelyard_compression.json``."""

    def detect(self, source: str, cfg: LoadConfig) -> bool:
        path = Path(source).expanduser()
        return not cfg.config_only and path.is_dir() and (path / MANIFEST).is_file()

    def load(self, source: str, cfg: LoadConfig) -> ModelHandle:
        return _load(source, cfg)


class OnnxFileLoader:
    """A bare ``.onnx`` file, run through ONNX Runtime; example inputs from the session's inputs."""

    def detect(self, source: str, cfg: LoadConfig) -> bool:
        path = Path(source).expanduser()
        return not cfg.config_only and path.is_file() and path.suffix == ".onnx"

    def load(self, source: str, cfg: LoadConfig) -> ModelHandle:
        return _load(source, cfg)


COMPRESSED_LOADER = CompressedFolderLoader()
ONNX_FILE_LOADER = OnnxFileLoader()
