"""int8 dynamic quantization of Linear layers on PyTorch's x86 / fbgemm kernels.

Weights become int8 (symmetric, per output channel by default); each call measures the
activations' own range, quantizes them to uint8, runs the int8 GEMM and returns float.
Linear layers run int8 kernels; embedding tables are stored as int8 rows (``embeddings=true``);
convolutions, LayerNorm and attention stay float.

Why ``torch.ao.quantization.quantize_dynamic`` although torch marks it deprecated in favour of
torchao: on this CPU class (AVX2, no AVX-512) it is the measured fast path (≈1.5x on BERT
encoders), while torchao's int8 dynamic config in eager mode ran many times slower. The choice is
explicit and re-measured by ``benchmarks/compression_speed.py``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from steelyard.compression.base import NotApplicableError, TransformResult, linear_layers, no_linear_message, set_module
from steelyard.compression.quantization.config import DynamicQuantConfig
from steelyard.compression.quantization.engine import quantized_engine
from steelyard.compression.quantization.modules import QuantizedEmbedding, quiet_quantization
from steelyard.models.handle import ModelHandle


def quantize_linears(model: nn.Module, names: list[str], per_channel: bool, engine: str) -> nn.Module:
    """Replace the named ``nn.Linear`` layers by int8 dynamic ones (in place)."""
    from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig, quantize_dynamic

    qconfig = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig
    with quiet_quantization(), quantized_engine(engine):
        return quantize_dynamic(model, {name: qconfig for name in names}, dtype=torch.qint8, inplace=True)


def quantize_embeddings(model: nn.Module) -> int:
    """Replace plain ``nn.Embedding`` tables by int8-row ones (in place); returns how many."""
    tables = [(n, m) for n, m in model.named_modules()
              if type(m) is nn.Embedding and m.max_norm is None and not m.sparse]  # fmt: skip
    with torch.no_grad():
        for name, emb in tables:
            set_module(model, name, QuantizedEmbedding.from_embedding(emb))
    return len(tables)


def apply(handle: ModelHandle, cfg: DynamicQuantConfig, data: Any = None) -> TransformResult:
    layers = linear_layers(handle.module, cfg.include_head)
    if not layers:
        raise NotApplicableError(
            no_linear_message("quantize:int8-dynamic", cfg.include_head) + "; try backend=onnxruntime"
        )
    if handle.dtype != torch.float32 or any(p.dtype != torch.float32 for _, m in layers for p in m.parameters()):
        raise NotApplicableError("quantize:int8-dynamic needs float32 Linear weights (quantize before casting)")
    module = quantize_linears(handle.module, [n for n, _ in layers], cfg.per_channel, cfg.engine)
    tables = quantize_embeddings(module) if cfg.embeddings else 0
    others = sum(1 for m in module.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)))
    notes = [
        f"{len(layers)} Linear layers → int8 weights ({'per channel' if cfg.per_channel else 'per tensor'}), "
        f"activations quantized at run time ({cfg.engine} engine)"
    ]
    if tables:
        notes.append(f"{tables} embedding tables → int8 rows with per-row scales (lookups dequantize the rows read)")
    if others:
        notes.append(f"{others} convolution layers stay float32: dynamic quantization covers Linear layers only")
    return TransformResult(
        module=module,
        notes=notes,
        details={"layers": len(layers), "embeddings": tables, "engine": cfg.engine, "per_channel": cfg.per_channel},
    )
