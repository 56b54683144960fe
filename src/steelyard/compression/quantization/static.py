"""int8 static quantization of Linear layers on PyTorch kernels, with calibrated activation ranges.

Calibration runs the float model on sample batches and records each Linear's input and output
range (min-max or percentile observers); each Linear then quantizes its input with that fixed
scale, runs ``quantized::linear`` (int8 x int8) and dequantizes. The ops between Linear layers
(LayerNorm, GELU, attention, convolutions) stay float: eager PyTorch has no int8 path for them in
Hugging Face models. For a whole-graph int8 model use backend=onnxruntime.
"""

from __future__ import annotations

from typing import Any

import torch

from steelyard.compression.base import NotApplicableError, TransformResult, linear_layers, no_linear_message, set_module
from steelyard.compression.quantization.calibration import calibration_batches, observe_layers
from steelyard.compression.quantization.config import StaticQuantConfig
from steelyard.compression.quantization.engine import quantized_engine
from steelyard.compression.quantization.modules import StaticQuantLinear, quiet_quantization
from steelyard.models.handle import ModelHandle

METHOD = "quantize:int8-static"


def apply(handle: ModelHandle, cfg: StaticQuantConfig, data: Any = None) -> TransformResult:
    batches = calibration_batches(data, cfg.batches, METHOD)
    layers = linear_layers(handle.module, cfg.include_head)
    if not layers:
        raise NotApplicableError(no_linear_message(METHOD, cfg.include_head) + "; try backend=onnxruntime")
    seen = observe_layers(handle, layers, batches, cfg.observer, cfg.percentile, METHOD)
    with quiet_quantization(), quantized_engine(cfg.engine), torch.no_grad():
        for name, layer in layers:
            x_obs, y_obs = seen[name]
            # 7-bit activations (reduce_range) avoid 16-bit saturation on AVX2 without VNNI.
            in_params = x_obs.params(bits=7)
            out_params = y_obs.params(bits=8)
            set_module(
                handle.module, name, StaticQuantLinear.from_linear(layer, in_params, out_params, cfg.per_channel)
            )
    notes = [
        f"{len(layers)} Linear layers → int8 weights and int8 inputs with calibrated scales "
        f"({cfg.observer} observer, {len(batches)} batches, {cfg.engine} engine)",
        "ops between Linear layers stay float (quantize / dequantize around every Linear)",
    ]
    return TransformResult(
        module=handle.module,
        notes=notes,
        details={"layers": len(layers), "observer": cfg.observer, "batches": len(batches)},
    )
