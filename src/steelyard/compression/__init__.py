"""Make a model lighter: prune, quantize, factorize — one verb, one config per method.

>>> from steelyard.compression import compress, parse_method
>>> result = compress(handle, parse_method("prune:structured,amount=0.5,heads=0.33"))
>>> result.params_before, result.params_after, result.fidelity.sqnr_db
>>> result.save("out/pruned")            # save_pretrained folder + steelyard_compression.json
>>> handle2 = load_compressed("out/pruned")

Methods are registered in :mod:`steelyard.compression.registry`; ``list_methods()`` shows each
with its parameters. Imports are lazy: nothing heavy loads until a method runs.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "compress": "steelyard.compression.api",
    "CompressedModel": "steelyard.compression.api",
    "load_compressed": "steelyard.compression.saving",
    "list_methods": "steelyard.compression.registry",
    "parse_method": "steelyard.compression.registry",
    "make_config": "steelyard.compression.registry",
    "method_name": "steelyard.compression.registry",
    "METHODS": "steelyard.compression.registry",
    "Fidelity": "steelyard.compression.fidelity",
    "NotApplicableError": "steelyard.compression.base",
    "BackendUnavailableError": "steelyard.compression.base",
    "CalibrationError": "steelyard.compression.base",
    "UnstructuredPruneConfig": "steelyard.compression.pruning.config",
    "StructuredPruneConfig": "steelyard.compression.pruning.config",
    "LayerPruneConfig": "steelyard.compression.pruning.config",
    "DynamicQuantConfig": "steelyard.compression.quantization.config",
    "StaticQuantConfig": "steelyard.compression.quantization.config",
    "CastConfig": "steelyard.compression.quantization.config",
    "WeightOnlyConfig": "steelyard.compression.quantization.config",
    "LowRankConfig": "steelyard.compression.low_rank.config",
    "GradualPruner": "steelyard.compression.pruning.unstructured",
    "cubic_sparsity": "steelyard.compression.pruning.unstructured",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'steelyard.compression' has no attribute {name!r}")
