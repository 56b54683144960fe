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

from steelyard.lazy import lazy_package

__all__ = lazy_package(__name__, {
    "steelyard.compression.api": ("compress", "CompressedModel"),
    "steelyard.compression.saving": ("load_compressed",),
    "steelyard.compression.registry": ("list_methods", "parse_method", "make_config", "method_name", "METHODS"),
    "steelyard.compression.fidelity": ("Fidelity",),
    "steelyard.compression.base": ("NotApplicableError", "BackendUnavailableError", "CalibrationError"),
    "steelyard.compression.pruning.config": ("UnstructuredPruneConfig", "StructuredPruneConfig", "LayerPruneConfig",
                                             "WandaConfig", "AngularLayerConfig"),
    "steelyard.compression.quantization.config": ("DynamicQuantConfig", "StaticQuantConfig", "CastConfig",
                                                  "WeightOnlyConfig", "SmoothQuantConfig", "AWQConfig",
                                                  "GPTQConfig"),
    "steelyard.compression.low_rank.config": ("LowRankConfig",),
    "steelyard.compression.pruning.unstructured": ("GradualPruner", "cubic_sparsity"),
})
