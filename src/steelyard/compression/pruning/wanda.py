"""Wanda pruning (Sun et al. 2023): zero the weights with the smallest |W_ij| · ‖X_j‖₂ per output row.

Magnitude alone ignores that a small weight on a large-activation channel matters; Wanda scales
each weight by the L2 norm of its input channel over calibration tokens and compares weights
within one output row (unstructured), or keeps the 2 best of every 4 consecutive inputs (2:4).
The weights stay dense float tensors with zeros in them: the model is *sparse, not faster* on
this CPU (no sparse kernel in eager torch beats the dense matmul at 50%), and not smaller on disk.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from steelyard.compression.base import (
    NotApplicableError,
    TransformResult,
    conv1d_type,
    matmul_layers,
    weight_of,
)
from steelyard.compression.pruning.config import WandaConfig
from steelyard.compression.quantization.calibration import calibration_batches, feed_calibration
from steelyard.models.handle import ModelHandle

METHOD = "prune:wanda"


def input_norms(handle: ModelHandle, layers: list[tuple[str, nn.Module]], batches: list[Any]
                ) -> dict[str, torch.Tensor]:  # fmt: skip
    """‖X_j‖₂ per input channel of each layer over every calibration token."""
    sums: dict[str, torch.Tensor] = {}
    hooks = []
    for name, m in layers:

        def hook(_m: nn.Module, args: tuple[Any, ...], name: str = name) -> None:
            x = args[0].detach().float().reshape(-1, args[0].shape[-1])
            sq = (x * x).sum(dim=0)
            sums[name] = sums[name] + sq if name in sums else sq

        hooks.append(m.register_forward_pre_hook(hook))
    feed_calibration(handle, batches, hooks, METHOD)
    return {name: s.sqrt() for name, s in sums.items()}


def wanda_mask(weight: torch.Tensor, norms: torch.Tensor, amount: float, pattern: str) -> torch.Tensor:
    """Boolean keep-mask of an (out, in) weight: per row by |W|·‖X‖, or 2 of every 4 inputs."""
    score = weight.detach().abs().float() * norms[None, :]
    out_features, in_features = score.shape
    keep = torch.ones_like(score, dtype=torch.bool)
    if pattern == "2:4":
        if in_features % 4:
            raise NotApplicableError(f"{METHOD}: 2:4 needs input features divisible by 4, got {in_features}")
        groups = score.reshape(out_features, -1, 4)
        drop = groups.topk(2, dim=-1, largest=False).indices
        keep = keep.reshape(out_features, -1, 4).scatter(-1, drop, False).reshape(out_features, in_features)
        return keep
    k = int(in_features * amount)
    if k:
        drop = score.topk(k, dim=1, largest=False).indices
        keep.scatter_(1, drop, False)
    return keep


def apply(handle: ModelHandle, cfg: WandaConfig, data: Any = None) -> TransformResult:
    batches = calibration_batches(data, cfg.batches, METHOD, missing=(
        f"{METHOD} needs calibration data to weigh the input channels: pass data=<batches of model inputs> "
        "(CLI: --data); or use prune:unstructured (magnitude only), which needs none"))  # fmt: skip
    layers = matmul_layers(handle.module, cfg.include_head)
    if not layers:
        raise NotApplicableError(f"{METHOD} works on Linear / Conv1D layers and this model has none outside its head")
    norms = input_norms(handle, layers, batches)
    conv1d = conv1d_type()
    zeros = total = 0
    with torch.no_grad():
        for name, layer in layers:
            weight, _ = weight_of(layer)
            keep = wanda_mask(weight, norms[name], cfg.amount, cfg.pattern)
            if conv1d is not None and isinstance(layer, conv1d):
                layer.weight.mul_(keep.t().to(layer.weight.dtype))
            else:
                layer.weight.mul_(keep.to(layer.weight.dtype))
            zeros += int((~keep).sum())
            total += keep.numel()
    what = "2 of every 4 inputs kept" if cfg.pattern == "2:4" else f"{cfg.amount:.0%} of each row zeroed"
    notes = [
        f"{len(layers)} Linear layers pruned by |W|·‖X‖ ({what}, {len(batches)} calibration batches): "
        f"{zeros / total:.1%} of their weights are zero",
        "sparse, not faster: the weights stay dense tensors and the dense kernels multiply the zeros",
    ]
    return TransformResult(module=handle.module, notes=notes,
                           details={"layers": len(layers), "sparsity": zeros / total, "pattern": cfg.pattern})
