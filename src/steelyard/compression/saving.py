"""Save a compressed model atomically, and load it back: the public entry points.

The work is split by job in :mod:`steelyard.compression.serialization` (manifest, structure
records, int8 dynamic tensors, the atomic writer, the rebuild, the loader); this module keeps the
names importable from where they have always been.

A saved folder is a ``save_pretrained`` folder plus ``steelyard_compression.json`` (which methods
ran, and the structure the config alone cannot describe). :func:`load_compressed` rebuilds the
architecture, replays that structure and loads the weights strictly. int8 weights are stored as
plain tensors (codes, scales, zero points), never pickled. The original model's files are never
written. ``steelyard.load_model`` opens saved folders and ``.onnx`` files too: the model loader
registry names the loaders in :mod:`steelyard.compression.serialization.sources` lazily. A folder
whose model its config cannot describe is guarded (:func:`plain_mismatch`, :func:`is_guarded`): plain
transformers raises an error naming ``steelyard.load_model`` instead of loading random weights.
"""

from __future__ import annotations

from steelyard.compression.serialization.int8_dynamic import KIND as DYNAMIC_KIND
from steelyard.compression.serialization.loader import load_compressed
from steelyard.compression.serialization.manifest import FORMAT_VERSION, MANIFEST, ONNX_FILE
from steelyard.compression.serialization.plain_hf import STEELYARD_CONFIG, WEIGHTS_FILE, is_guarded, plain_mismatch
from steelyard.compression.serialization.rebuild import rebuild
from steelyard.compression.serialization.records import (
    MODULE_KINDS,
    STRUCT_ATTRS,
    module_records,
    plain_state_dict,
    structural_attrs,
)
from steelyard.compression.serialization.writer import save_compressed

__all__ = [
    "DYNAMIC_KIND",
    "FORMAT_VERSION",
    "MANIFEST",
    "MODULE_KINDS",
    "ONNX_FILE",
    "STEELYARD_CONFIG",
    "STRUCT_ATTRS",
    "WEIGHTS_FILE",
    "is_guarded",
    "load_compressed",
    "module_records",
    "plain_mismatch",
    "plain_state_dict",
    "rebuild",
    "save_compressed",
    "structural_attrs",
]
