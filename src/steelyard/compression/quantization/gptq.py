"""GPTQ by llm-compressor's own implementation, its codes run by steelyard's low-bit kernels.

Round-to-nearest rounds every weight on its own; GPTQ quantizes the columns of W one at a time and
moves each column's rounding error onto the columns not yet quantized, weighted by the inverse
Hessian ``H = XᵀX`` of the layer's calibration inputs, so that ``‖XWᵀ − XŴᵀ‖`` (not ``‖W − Ŵ‖``) is
what gets small. The scales and zero points of each group are fixed first (min/max of the float
group), so the result fits the same int4 / int8 kernels as plain weight-only quantization.

Who does what:

* the Hessians are accumulated and the codes chosen by llm-compressor
  (``llmcompressor.modifiers.gptq.helpers.accumulate_hessian`` and
  ``llmcompressor.modifiers.gptq.gptq_quantize.quantize_weight``, its eager CPU path; its fused Triton
  update only runs on CUDA), the scales / zero points by compressed-tensors' ``calculate_qparams``;
* the codes are read back from llm-compressor's fake-quantized weight (``round(Ŵ/s + z)``, exact) and
  packed into :class:`WeightOnlyLinear` (``aten._weight_int4pack_mm_for_cpu`` / ``aten._weight_int8pack_mm``).

Which implementation, and why: torchao 0.18's ``torchao.prototype.gptq`` does not run on CPU (int4:
"mslk is not installed. Please install mslk to use int4 quantization."; int8: "AssertionError: GPTQ only
supports CUDA currently"), and gptqmodel 7.7.0 requires ``torch>=2.14.1`` while steelyard pins
``torch==2.13.0``. llm-compressor 0.14.0 runs on CPU with torch 2.13 but pins
``transformers>=5.15,<=5.17`` and ``compressed-tensors==0.19.0``, so it has its own extra
(``steelyard[gptq]``) and cannot be installed next to a newer transformers.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from steelyard.compression.base import BackendUnavailableError, TransformResult, set_module, weight_of
from steelyard.compression.quantization.calibration import calibration_batches, feed_calibration
from steelyard.compression.quantization.config import GPTQConfig
from steelyard.compression.quantization.lowbit import WeightOnlyLinear
from steelyard.compression.quantization.weight_only import check_kernels, choose_layers, kernel_result
from steelyard.models.handle import ModelHandle

EXTRA = "pip install 'steelyard[gptq]' (llm-compressor; it pins transformers<=5.17)"


def _llmcompressor(method: str) -> tuple[Any, Any, Any, Any]:
    try:
        # llm-compressor logs "No accelerator available! ..." when imported on a CPU; its own switch turns it off
        os.environ.setdefault("LLM_COMPRESSOR_LOG_DISABLED", "true")
        from compressed_tensors.quantization import QuantizationArgs
        from compressed_tensors.quantization.utils import calculate_qparams
        from llmcompressor.modifiers.gptq.gptq_quantize import quantize_weight
        from llmcompressor.modifiers.gptq.helpers import accumulate_hessian
    except ImportError as exc:
        raise BackendUnavailableError(f"{method} needs llm-compressor (its GPTQ): {EXTRA}") from exc
    return QuantizationArgs, calculate_qparams, quantize_weight, accumulate_hessian


def _expand(t: torch.Tensor, group: int, columns: int) -> torch.Tensor:
    """(out, groups) per-group values as (out, in)."""
    return t.repeat_interleave(group, dim=1) if group else t.expand(-1, columns)


def apply(handle: ModelHandle, cfg: GPTQConfig, data: Any = None) -> TransformResult:
    method = cfg.label
    batches = calibration_batches(data, cfg.batches, method, missing=(
        f"{method} needs calibration text for the layers' input Hessians: pass data=<batches of model inputs> "
        f"(CLI: --data); or use quantize:int{cfg.bits}-weight-only, which needs none"))  # fmt: skip
    check_kernels(method, cfg.bits)
    QArgs, qparams, quantize_weight, accumulate = _llmcompressor(method)
    chosen, skipped = choose_layers(handle, cfg, method)
    if cfg.bits == 4:
        args = QArgs(num_bits=4, type="int", symmetric=cfg.symmetric, strategy="group", group_size=cfg.group_size)
    else:
        args = QArgs(num_bits=8, type="int", symmetric=True, strategy="channel")

    hessians: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    hooks = []
    for name, layer, _ in chosen:
        in_features = weight_of(layer)[0].shape[1]
        hessians[name] = (torch.zeros(in_features, in_features), torch.zeros(()))

        def hook(m: nn.Module, a: tuple[Any, ...], name: str = name) -> None:
            hessians[name] = accumulate(a[0].detach().float(), m, *hessians[name])

        hooks.append(layer.register_forward_pre_hook(hook))
    feed_calibration(handle, batches, hooks, method)

    losses = []
    with torch.no_grad():
        for name, layer, _ in chosen:
            weight, bias = weight_of(layer)
            w = weight.detach().float().cpu()
            out_features, in_features = w.shape
            group = cfg.group_size if cfg.bits == 4 else in_features
            g = w.reshape(out_features, in_features // group, group)
            scale, zero = qparams(g.amin(dim=-1), g.amax(dim=-1), args)
            h, n = hessians.pop(name)
            quantized, loss, _fallback = quantize_weight(w[None].clone(), (h / n.clamp(min=1))[None], scale[None],
                                                         zero[None], None, args, cfg.block, cfg.damp)  # fmt: skip
            losses.append(float(loss.sum()))
            z = zero.float()
            codes = (quantized[0] / _expand(scale, cfg.group_size, in_features)
                     + _expand(z, cfg.group_size, in_features)).round()  # fmt: skip
            new = WeightOnlyLinear.from_codes(codes, scale, z if cfg.bits == 4 else None, bias, cfg.bits,
                                              cfg.group_size, getattr(torch, cfg.compute_dtype))  # fmt: skip
            set_module(handle.module, name, new.to(weight.device))
    notes = [
        f"GPTQ by llm-compressor ({len(batches)} calibration batches, damp {cfg.damp}, block {cfg.block}): "
        f"codes chosen against each layer's input Hessian",
    ]
    return kernel_result(handle, cfg, chosen, skipped, notes, calibration="gptq (llm-compressor)", batches=len(batches),
                         gptq_loss=sum(losses))
