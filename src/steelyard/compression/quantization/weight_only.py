"""Weight-only int8 / int4: Linear weights stored as codes + scales, dequantized on every call.

Saves weight memory (int8 ≈ 4x, int4 ≈ 8x minus the scales) — useful when memory, not compute,
is the limit. There is no int8 x float kernel here, so every call rebuilds the float weight:
expect it to be slower than float32 on CPU (measured by benchmarks/compression_speed.py).
"""

from __future__ import annotations

from typing import Any

import torch

from steelyard.compression.base import NotApplicableError, TransformResult, linear_layers, no_linear_message, set_module
from steelyard.compression.quantization.config import WeightOnlyConfig
from steelyard.compression.quantization.modules import WeightOnlyLinear
from steelyard.models.handle import ModelHandle


def apply(handle: ModelHandle, cfg: WeightOnlyConfig, data: Any = None) -> TransformResult:
    method = f"quantize:int{cfg.bits}-weight-only"
    layers = linear_layers(handle.module, cfg.include_head)
    if not layers:
        raise NotApplicableError(no_linear_message(method, cfg.include_head))
    with torch.no_grad():
        for name, layer in layers:
            set_module(handle.module, name, WeightOnlyLinear.from_linear(layer, cfg.bits, cfg.group_size))
    scales = "one scale per output row" if not cfg.group_size else f"one scale per {cfg.group_size} weights"
    notes = [
        f"{len(layers)} Linear layers store int{cfg.bits} weight codes ({scales}), dequantized on every call",
        "saves memory; not faster: there is no low-bit kernel, the float weight is rebuilt per call",
    ]
    return TransformResult(
        module=handle.module,
        notes=notes,
        details={"layers": len(layers), "bits": cfg.bits, "group_size": cfg.group_size},
    )
