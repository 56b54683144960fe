"""AWQ (activation-aware weight quantization) by torchao's own search, run by steelyard's low-bit kernels.

Round-to-nearest spends the same precision on every input channel, but a few channels carry most of
the activation magnitude, and their weights' rounding errors dominate ``‖XWᵀ − XŴᵀ‖``. AWQ scales
input channel j of W up by ``s_j = mean|X_j|^r`` before quantizing and divides the activation by
``s_j``: the product is unchanged in float, while the salient channels get finer codes. ``r`` is
searched on the calibration activations so that the layer's output error is smallest (r = 0 is
plain round-to-nearest, so the search never does worse than RTN on that data).

Who does what:

* the search is torchao's (``torchao.prototype.awq.core.AWQObserver.calculate_qparams``: grid over r,
  loss ``mean (XWᵀ − (X/s)·Q(W·s)ᵀ)²`` on the recorded inputs), with torchao's quantizer
  (``IntxWeightOnlyConfig``: int4 per group of 32/64/128/256, or int8 per row) choosing the codes;
* the codes, scales and zero points torchao chose for ``W·s`` are packed into :class:`WeightOnlyLinear`
  (``aten._weight_int4pack_mm_for_cpu`` / ``aten._weight_int8pack_mm``), which multiplies the activation
  by 1/s (float32, k multiplies per token) before the kernel. torchao's own AWQ convert step cannot be
  used here: it requires a weight tensor that supports an activation pre-scale, and the only such int4
  tensors in torchao 0.18 run on CUDA (mslk / tinygemm) or XPU/NPU; its CPU tensor
  (``IntxUnpackedToInt8Tensor``) fails with "weight must support activation scaling through
  implementing `SupportsActivationPreScaling`".

GPTQ lives in :mod:`steelyard.compression.quantization.gptq` (llm-compressor's; torchao's GPTQ is CUDA-only).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from steelyard.compression.base import BackendUnavailableError, TransformResult, set_module, weight_of
from steelyard.compression.quantization.calibration import calibration_batches, feed_calibration
from steelyard.compression.quantization.config import AWQConfig
from steelyard.compression.quantization.lowbit import WeightOnlyLinear
from steelyard.compression.quantization.weight_only import check_kernels, choose_layers, kernel_result
from steelyard.models.handle import ModelHandle

EXTRA = "pip install 'steelyard[awq]'"


@contextmanager
def _quiet_torchao():
    """Importing torchao on a CPU-only torch logs a "Failed to load …so" line per CUDA extension (torchao's
    logger) and a deprecation line per Enum it registers with pytree (torch's): not the user's concern."""
    loggers = [logging.getLogger(n) for n in ("torchao", "torch.utils._pytree")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _torchao(method: str) -> Any:
    """torchao's AWQ observer and the base config it quantizes with (int4 groups or int8 rows)."""
    try:
        with _quiet_torchao():
            import torchao.prototype.awq.core as awq_core
            from torchao.quantization import IntxWeightOnlyConfig
            from torchao.quantization.granularity import PerAxis, PerGroup
            from torchao.quantization.quant_primitives import MappingType
            from torchao.quantization.transform_module import _QUANTIZE_CONFIG_HANDLER
            from torchao.utils import DummyModule
    except ImportError as exc:
        raise BackendUnavailableError(f"{method} needs torchao (its AWQ search): {EXTRA}") from exc
    return awq_core, IntxWeightOnlyConfig, PerAxis, PerGroup, MappingType, _QUANTIZE_CONFIG_HANDLER, DummyModule


def apply(handle: ModelHandle, cfg: AWQConfig, data: Any = None) -> TransformResult:
    method = cfg.label
    batches = calibration_batches(data, cfg.batches, method, missing=(
        f"{method} needs calibration text to find the salient input channels: pass data=<batches of model inputs> "
        f"(CLI: --data); or use quantize:int{cfg.bits}-weight-only, which needs none"))  # fmt: skip
    check_kernels(method, cfg.bits)
    awq_core, Intx, PerAxis, PerGroup, Mapping, handlers, Dummy = _torchao(method)
    chosen, skipped = choose_layers(handle, cfg, method)
    if cfg.bits == 4:
        mapping = Mapping.SYMMETRIC if cfg.symmetric else Mapping.ASYMMETRIC
        base = Intx(weight_dtype=torch.int4, granularity=PerGroup(cfg.group_size), mapping_type=mapping)
    else:
        base = Intx(weight_dtype=torch.int8, granularity=PerAxis(0), mapping_type=Mapping.SYMMETRIC)
    quantize = handlers[type(base)]

    observers, hooks = {}, []
    for name, layer, _ in chosen:
        weight, bias = weight_of(layer)  # (out, in), also for GPT-2's Conv1D
        obs = awq_core.AWQObserver(weight.detach().float(), None if bias is None else bias.detach().float(),
                                   base, cfg.grid)  # fmt: skip
        observers[name] = obs

        def hook(_m: nn.Module, args: tuple[Any, ...], obs: Any = obs) -> None:
            x = args[0]
            obs(x.detach().reshape(-1, x.shape[-1]).float(), None)

        hooks.append(layer.register_forward_pre_hook(hook))
    feed_calibration(handle, batches, hooks, method)

    with torch.no_grad(), _quiet_torchao():
        for name, layer, _ in chosen:
            obs = observers.pop(name)
            s = obs.calculate_qparams().float()
            q = quantize(Dummy(obs.weight * s), base).weight  # torchao's codes for W·diag(s)
            bias = weight_of(layer)[1]
            zero = q.zero_point if cfg.bits == 4 else None
            new = WeightOnlyLinear.from_codes(q.qdata, q.scale, zero, bias, cfg.bits, cfg.group_size,
                                              getattr(torch, cfg.compute_dtype), input_scale=1 / s)  # fmt: skip
            set_module(handle.module, name, new.to(obs.weight.device))
    notes = [
        f"AWQ by torchao ({len(batches)} calibration batches, {cfg.grid} candidate scales s = mean|X|^r per layer): "
        f"W·diag(s) quantized by torchao's IntxWeightOnlyConfig",
    ]
    return kernel_result(handle, cfg, chosen, skipped, notes, holds=" and 1/s for the input",
                         calibration="awq (torchao)", batches=len(batches), grid=cfg.grid)
