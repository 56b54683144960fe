"""int8 dynamic / static: pick the backend named in the config (torch or onnxruntime)."""

from __future__ import annotations

from typing import Any

from steelyard.compression.base import TransformResult
from steelyard.compression.quantization.config import DynamicQuantConfig, StaticQuantConfig
from steelyard.models.handle import ModelHandle


def apply_dynamic(handle: ModelHandle, cfg: DynamicQuantConfig, data: Any = None) -> TransformResult:
    if cfg.backend == "onnxruntime":
        from steelyard.compression.quantization import onnx_backend

        return onnx_backend.apply_dynamic(handle, cfg, data)
    from steelyard.compression.quantization import dynamic

    return dynamic.apply(handle, cfg, data)


def apply_static(handle: ModelHandle, cfg: StaticQuantConfig, data: Any = None) -> TransformResult:
    if cfg.backend == "onnxruntime":
        from steelyard.compression.quantization import onnx_backend

        return onnx_backend.apply_static(handle, cfg, data)
    from steelyard.compression.quantization import static

    return static.apply(handle, cfg, data)
