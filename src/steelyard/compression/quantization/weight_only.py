"""Weight-only int8 / int4: Linear and GPT-2 ``Conv1D`` weights run by torch's low-bit CPU kernels.

Every matmul reads the int8 / int4 codes directly (``aten._weight_int8pack_mm``,
``aten._weight_int4pack_mm_for_cpu``), so a memory-bound decode reads 4x / ~7x fewer weight bytes.
Layers whose output rows do not fit the int4 pack (a multiple of 16) stay float and are named.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from steelyard.compression.base import (
    BackendUnavailableError,
    NotApplicableError,
    TransformResult,
    is_head,
    no_linear_message,
    set_module,
)
from steelyard.compression.quantization.config import WeightOnlyConfig
from steelyard.compression.quantization.lowbit import KERNELS, WeightOnlyLinear, int4_unfit, kernels_available
from steelyard.models.handle import ModelHandle


def conv1d_type() -> type | None:
    """transformers' GPT-2 ``Conv1D`` (weight stored (in, out)), if transformers is installed."""
    try:
        from transformers.pytorch_utils import Conv1D
    except ImportError:  # pragma: no cover - transformers is a dependency
        return None
    return Conv1D


def weight_of(layer: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A Linear-like layer's weight as (out, in) and its bias (a Conv1D's weight transposed)."""
    conv1d = conv1d_type()
    if conv1d is not None and isinstance(layer, conv1d):
        return layer.weight.t(), layer.bias
    return layer.weight, layer.bias


def matmul_layers(model: nn.Module, include_head: bool) -> list[tuple[str, nn.Module]]:
    """nn.Linear and Conv1D layers (outside the head unless asked): the decoders' weight matmuls."""
    conv1d = conv1d_type()
    kinds: tuple[type, ...] = (nn.Linear,) if conv1d is None else (nn.Linear, conv1d)
    return [
        (name, m)
        for name, m in model.named_modules()
        if type(m) in kinds and (include_head or not is_head(name, m, model))
    ]


def apply(handle: ModelHandle, cfg: WeightOnlyConfig, data: Any = None) -> TransformResult:
    method = f"quantize:int{cfg.bits}-weight-only"
    if not kernels_available():
        raise BackendUnavailableError(f"{method}: this torch has no low-bit CPU kernels ({KERNELS[cfg.bits]}); "
                                      f"install torch 2.6 or later")  # fmt: skip
    layers = matmul_layers(handle.module, cfg.include_head)
    if not layers:
        raise NotApplicableError(no_linear_message(method, cfg.include_head))
    chosen, skipped = [], []
    for name, layer in layers:
        out_features, in_features = weight_of(layer)[0].shape
        why = int4_unfit(in_features, out_features, cfg.group_size) if cfg.bits == 4 else None
        if why and in_features % cfg.group_size:
            raise NotApplicableError(f"{method}: {name}: {why}; pick a group_size that divides it")
        (skipped if why else chosen).append((name, layer, why))
    if not chosen:
        raise NotApplicableError(f"{method}: no Linear layer fits the int4 kernel ({skipped[0][0]}: {skipped[0][2]})")
    with torch.no_grad():
        for name, layer, _ in chosen:
            weight, bias = weight_of(layer)
            q = WeightOnlyLinear.from_weight(weight, bias, cfg.bits, cfg.group_size, cfg.symmetric,
                                             getattr(torch, cfg.compute_dtype))  # fmt: skip
            set_module(handle.module, name, q.to(weight.device))
    if cfg.bits == 8:
        scales = "symmetric, one scale per output row"
    else:
        scales = f"{'symmetric' if cfg.symmetric else 'asymmetric'}, one scale per {cfg.group_size} weights"
    notes = [f"{len(chosen)} Linear layers hold int{cfg.bits} codes ({scales}), multiplied by {KERNELS[cfg.bits]} "
             f"in {cfg.compute_dtype} (the codes are read directly; no float weight is rebuilt)"]  # fmt: skip
    if skipped:
        notes.append(f"{len(skipped)} layers stay float: " + "; ".join(f"{n}: {w}" for n, _, w in skipped[:3]))
    return TransformResult(
        module=handle.module,
        notes=notes,
        details={"layers": len(chosen), "bits": cfg.bits, "group_size": cfg.group_size,
                 "symmetric": cfg.symmetric, "kernel": KERNELS[cfg.bits], "float_layers": len(skipped),
                 "compute_dtype": cfg.compute_dtype},
    )
