"""Weight-only int8 / int4: Linear and GPT-2 ``Conv1D`` weights run by torch's low-bit CPU kernels.

Every matmul reads the int8 / int4 codes directly (``aten._weight_int8pack_mm``,
``aten._weight_int4pack_mm_for_cpu``), so a memory-bound decode reads 4x / ~7x fewer weight bytes.
Layers whose output rows do not fit the int4 pack (a multiple of 16) stay float and are named.
Embedding tables become int8 rows (``embeddings=true``, the default): without them a small
decoder's int4 weights would be only ~3x smaller, since its token table stays float.
This is round-to-nearest; the calibrated variants that choose other codes for the same kernels are
``awq.py`` (torchao's AWQ search) and ``gptq.py`` (llm-compressor's GPTQ).
"""

from __future__ import annotations

from typing import Any

import torch

from steelyard.compression.base import (
    BackendUnavailableError,
    NotApplicableError,
    TransformResult,
    matmul_layers,
    set_module,
    weight_of,
)
from steelyard.compression.quantization.config import WeightOnlyConfig
from steelyard.compression.quantization.dynamic import quantize_embeddings
from steelyard.compression.quantization.lowbit import KERNELS, WeightOnlyLinear, int4_unfit, kernels_available
from steelyard.models.handle import ModelHandle


def check_kernels(method: str, bits: int) -> None:
    if not kernels_available():
        raise BackendUnavailableError(f"{method}: this torch has no low-bit CPU kernels ({KERNELS[bits]}); "
                                      f"install torch 2.6 or later")  # fmt: skip


def choose_layers(handle: ModelHandle, cfg: WeightOnlyConfig, method: str
                  ) -> tuple[list[tuple[str, Any, None]], list[tuple[str, Any, str]]]:  # fmt: skip
    """(layers the kernel takes, layers that stay float with why); a group size that divides no layer is an error."""
    if not matmul_layers(handle.module, False):  # a CNN's classifier alone is no reason for a decoder method
        raise NotApplicableError(f"{method} works on the nn.Linear layers of transformer blocks and this model has "
                                 f"none outside its output head (a CNN: try quantize:int8-static)")
    layers = matmul_layers(handle.module, cfg.include_head)
    chosen, skipped = [], []
    for name, layer in layers:
        out_features, in_features = weight_of(layer)[0].shape
        why = int4_unfit(in_features, out_features, cfg.group_size) if cfg.bits == 4 else None
        if why and in_features % cfg.group_size:
            raise NotApplicableError(f"{method}: {name}: {why}; pick a group_size that divides it")
        (skipped if why else chosen).append((name, layer, why))
    if not chosen:
        raise NotApplicableError(f"{method}: no Linear layer fits the int4 kernel ({skipped[0][0]}: {skipped[0][2]})")
    return chosen, skipped


def scales_wording(cfg: WeightOnlyConfig) -> str:
    if cfg.bits == 8:
        return "symmetric, one scale per output row"
    return f"{'symmetric' if cfg.symmetric else 'asymmetric'}, one scale per {cfg.group_size} weights"


def apply(handle: ModelHandle, cfg: WeightOnlyConfig, data: Any = None) -> TransformResult:
    method = cfg.label
    check_kernels(method, cfg.bits)
    chosen, skipped = choose_layers(handle, cfg, method)
    with torch.no_grad():
        for name, layer, _ in chosen:
            weight, bias = weight_of(layer)
            q = WeightOnlyLinear.from_weight(weight, bias, cfg.bits, cfg.group_size, cfg.symmetric,
                                             getattr(torch, cfg.compute_dtype))  # fmt: skip
            set_module(handle.module, name, q.to(weight.device))
    return kernel_result(handle, cfg, chosen, skipped, [])


def kernel_result(handle: ModelHandle, cfg: Any, chosen: list, skipped: list, notes: list[str], *,
                  holds: str = "", **details: Any) -> TransformResult:  # fmt: skip
    """The end every low-bit-kernel method shares (round-to-nearest, AWQ, GPTQ): embedding tables to int8 rows
    (``embeddings=true``), the method's own notes, then what the layers hold (``holds``: anything beside the codes)
    and the layers left float, and the kernel, bits and groups in ``details`` beside the method's own."""
    notes = [*notes, f"{len(chosen)} Linear layers hold int{cfg.bits} codes ({scales_wording(cfg)}){holds}, "
                     f"multiplied by {KERNELS[cfg.bits]} in {cfg.compute_dtype} (the codes are read directly; "
                     f"no float weight is rebuilt)"]  # fmt: skip
    tables, tied = _quantize_embeddings(handle.module) if cfg.embeddings else (0, False)
    if tables:
        notes.append(f"{tables} embedding tables → int8 rows with per-row scales (lookups dequantize the rows read)")
    if tied:
        notes.append("the token embedding stays float: it is tied to the float output head (include_head=false)")
    if skipped:
        notes.append(f"{len(skipped)} layers stay float: " + "; ".join(f"{n}: {w}" for n, _, w in skipped[:3]))
    return TransformResult(
        module=handle.module,
        notes=notes,
        details={"layers": len(chosen), "bits": cfg.bits, "group_size": cfg.group_size,
                 "symmetric": cfg.symmetric, "kernel": KERNELS[cfg.bits], "float_layers": len(skipped),
                 "compute_dtype": cfg.compute_dtype, "embeddings": tables, **details},
    )


def _quantize_embeddings(model: torch.nn.Module) -> tuple[int, bool]:
    """int8 rows for the embedding tables, unless one shares its weight with a Linear left float (a tied
    output head): replacing it would keep the float copy and add an int8 one. Returns (tables, tied)."""
    float_weights = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Linear)}
    tied = any(id(m.weight) in float_weights for m in model.modules() if type(m) is torch.nn.Embedding)
    return (0, True) if tied else (quantize_embeddings(model), False)
