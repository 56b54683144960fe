"""float16 / bfloat16: cast every floating parameter, buffer and example input.

Halves storage. Speed depends on the hardware: GPUs with tensor cores and CPUs with AMX or
AVX-512-FP16/BF16 run these types natively; other CPUs convert on the fly and often get slower.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from steelyard.compression.base import NotApplicableError, TransformResult
from steelyard.compression.quantization.config import CastConfig
from steelyard.models.handle import ModelHandle


def cast_inputs(inputs: Any, dtype: torch.dtype) -> Any:
    def cast(t: Any) -> Any:
        return t.to(dtype) if isinstance(t, torch.Tensor) and t.is_floating_point() else t

    if isinstance(inputs, dict):
        return {k: cast(v) for k, v in inputs.items()}
    return tuple(cast(v) for v in inputs)


def apply(handle: ModelHandle, cfg: CastConfig, data: Any = None) -> TransformResult:
    dtype = getattr(torch, cfg.dtype)
    floats = [p for p in handle.module.parameters() if p.is_floating_point()]
    if not floats:
        raise NotApplicableError(
            f"quantize:{'fp16' if cfg.dtype == 'float16' else 'bf16'}: "
            "the model has no floating-point parameters to cast"
        )
    module = handle.module.to(dtype)
    config = getattr(module, "config", None) or handle.config
    if config is not None and hasattr(config, "dtype"):
        with contextlib.suppress(AttributeError, TypeError):
            config.dtype = dtype
    notes = [f"weights cast to {cfg.dtype} (half the storage of float32)"]
    if handle.device.type == "cpu":
        notes.append(
            f"on CPU, {cfg.dtype} is fast only with native support (AMX / AVX-512-FP16/BF16); "
            "otherwise expect it to be slower than float32 — see the measured latency"
        )
    return TransformResult(
        module=module,
        config=config,
        notes=notes,
        inputs=cast_inputs(handle.inputs, dtype),
        dtype=dtype,
        details={"dtype": cfg.dtype},
    )
