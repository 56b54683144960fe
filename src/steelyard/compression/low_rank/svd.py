"""Low-rank factorization by truncated SVD: one layer → two thinner layers.

Linear: W (out x in) = U S Vᵀ ≈ (U_r √S_r)(√S_r V_rᵀ), so ``y = W x + b`` becomes
``y = B (A x) + b`` with A = √S_r V_rᵀ (r x in, no bias) and B = U_r √S_r (out x r). MACs per
token drop from in·out to r·(in + out): only worth it when r < in·out / (in + out), and a layer is
left alone otherwise.

Conv2d (groups = 1): reshape W to out x (in·kh·kw) and factorize the same way; A becomes a
kh x kw convolution with r output channels (same stride / padding / dilation), B a 1x1
convolution with the bias.

The replaced layers are :class:`FactorizedLinear` / :class:`FactorizedConv2d`; the saved folder
records them so :func:`steelyard.compression.load_compressed` rebuilds them before loading weights.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from steelyard.compression.base import NotApplicableError, TransformResult, is_head, set_module
from steelyard.compression.low_rank.config import LowRankConfig
from steelyard.models.handle import ModelHandle


class FactorizedLinear(nn.Module):
    """y = second(first(x)): in → rank (no bias) → out (bias)."""

    def __init__(self, in_features: int, out_features: int, rank: int, bias: bool = True):
        super().__init__()
        self.in_features, self.out_features, self.rank = in_features, out_features, rank
        self.first = nn.Linear(in_features, rank, bias=False)
        self.second = nn.Linear(rank, out_features, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(self.first(x))

    def steelyard_record(self) -> dict[str, Any]:
        return {
            "kind": "low-rank-linear",
            "in_features": self.in_features,
            "out_features": self.out_features,
            "rank": self.rank,
            "bias": self.second.bias is not None,
        }

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> FactorizedLinear:
        return cls(rec["in_features"], rec["out_features"], rec["rank"], rec["bias"])


class FactorizedConv2d(nn.Module):
    """kh x kw conv to ``rank`` channels, then a 1x1 conv to ``out_channels`` (with the bias)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        rank: int,
        kernel_size: tuple[int, int],
        stride: tuple[int, int] = (1, 1),
        padding: Any = (0, 0),
        dilation: tuple[int, int] = (1, 1),
        bias: bool = True,
        padding_mode: str = "zeros",
    ):
        super().__init__()
        self.in_channels, self.out_channels, self.rank = in_channels, out_channels, rank
        self.first = nn.Conv2d(
            in_channels,
            rank,
            tuple(kernel_size),
            stride=tuple(stride),
            padding=padding if isinstance(padding, str) else tuple(padding),
            dilation=tuple(dilation),
            bias=False,
            padding_mode=padding_mode,
        )
        self.second = nn.Conv2d(rank, out_channels, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(self.first(x))

    def steelyard_record(self) -> dict[str, Any]:
        f = self.first
        return {
            "kind": "low-rank-conv2d",
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "rank": self.rank,
            "kernel_size": list(f.kernel_size),
            "stride": list(f.stride),
            "padding": f.padding if isinstance(f.padding, str) else list(f.padding),
            "dilation": list(f.dilation),
            "bias": self.second.bias is not None,
            "padding_mode": f.padding_mode,
        }

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> FactorizedConv2d:
        return cls(
            rec["in_channels"],
            rec["out_channels"],
            rec["rank"],
            tuple(rec["kernel_size"]),
            tuple(rec["stride"]),
            rec["padding"],
            tuple(rec["dilation"]),
            rec["bias"],
            rec.get("padding_mode", "zeros"),
        )


def choose_rank(singular: torch.Tensor, cfg: LowRankConfig) -> int:
    """Rank from the ratio, or the smallest rank keeping ``energy`` of Σs², rounded up to ``round_to``."""
    full = singular.numel()
    if cfg.energy is not None:
        energy = singular.double().pow(2)
        share = torch.cumsum(energy, 0) / energy.sum().clamp_min(1e-30)
        rank = int(torch.searchsorted(share, torch.tensor(cfg.energy, dtype=share.dtype)).item()) + 1
    else:
        rank = max(1, round(cfg.ratio * full))
    if cfg.round_to > 1:
        rank = math.ceil(rank / cfg.round_to) * cfg.round_to
    return min(rank, full)


def worth_it(rank: int, rows: int, cols: int) -> bool:
    """Factorizing an out x in matrix pays only if r·(in + out) < in·out."""
    return rank * (rows + cols) < rows * cols


def _factors(weight: torch.Tensor, cfg: LowRankConfig) -> tuple[torch.Tensor, torch.Tensor, int, float] | None:
    w = weight.detach().float()
    u, s, vh = torch.linalg.svd(w, full_matrices=False)
    rank = choose_rank(s, cfg)
    if not worth_it(rank, w.shape[0], w.shape[1]):
        return None
    root = s[:rank].sqrt()
    kept = float(s[:rank].pow(2).sum() / s.pow(2).sum().clamp_min(1e-30))
    return u[:, :rank] * root, root[:, None] * vh[:rank], rank, kept


def _factorize_linear(layer: nn.Linear, cfg: LowRankConfig) -> tuple[FactorizedLinear, float] | None:
    found = _factors(layer.weight, cfg)
    if found is None:
        return None
    b, a, rank, kept = found
    new = FactorizedLinear(layer.in_features, layer.out_features, rank, layer.bias is not None)
    new.to(device=layer.weight.device, dtype=layer.weight.dtype)
    with torch.no_grad():
        new.first.weight.copy_(a)
        new.second.weight.copy_(b)
        if layer.bias is not None:
            new.second.bias.copy_(layer.bias)
    return new, kept


def _factorize_conv(layer: nn.Conv2d, cfg: LowRankConfig) -> tuple[FactorizedConv2d, float] | None:
    if layer.groups != 1:
        return None
    out_c, in_c, kh, kw = layer.weight.shape
    found = _factors(layer.weight.reshape(out_c, in_c * kh * kw), cfg)
    if found is None:
        return None
    b, a, rank, kept = found
    new = FactorizedConv2d(
        in_c,
        out_c,
        rank,
        layer.kernel_size,
        layer.stride,
        layer.padding,
        layer.dilation,
        layer.bias is not None,
        layer.padding_mode,
    )
    new.to(device=layer.weight.device, dtype=layer.weight.dtype)
    with torch.no_grad():
        new.first.weight.copy_(a.reshape(rank, in_c, kh, kw))
        new.second.weight.copy_(b.reshape(out_c, rank, 1, 1))
        if layer.bias is not None:
            new.second.bias.copy_(layer.bias)
    return new, kept


def apply(handle: ModelHandle, cfg: LowRankConfig, data: Any = None) -> TransformResult:
    model = handle.module
    candidates = [
        (name, m)
        for name, m in model.named_modules()
        if (type(m) is nn.Linear or (cfg.convs and type(m) is nn.Conv2d))
        and (cfg.include_head or not is_head(name, m, model))
    ]
    if not candidates:
        raise NotApplicableError("low-rank:svd factorizes nn.Linear / nn.Conv2d layers; this model has none")
    done: dict[str, dict[str, Any]] = {}
    for name, layer in candidates:
        made = _factorize_linear(layer, cfg) if isinstance(layer, nn.Linear) else _factorize_conv(layer, cfg)
        if made is None:
            continue
        new, kept = made
        set_module(model, name, new)
        done[name] = {"rank": new.rank, "energy_kept": kept}
    if not done:
        how = f"energy={cfg.energy}" if cfg.energy is not None else f"ratio={cfg.ratio}"
        raise NotApplicableError(
            f"low-rank:svd: at {how} no layer gets cheaper (a layer pays only when rank·(in+out) < in·out); "
            "lower the ratio or the energy"
        )
    energies = [d["energy_kept"] for d in done.values()]
    notes = [
        f"{len(done)} of {len(candidates)} layers factorized into two thinner layers "
        f"(ranks {min(d['rank'] for d in done.values())}–{max(d['rank'] for d in done.values())}, "
        f"energy kept {min(energies):.1%}–{max(energies):.1%})",
        "accuracy usually needs recovery fine-tuning after factorization",
    ]
    skipped = len(candidates) - len(done)
    if skipped:
        notes.append(f"{skipped} layers left whole: factorizing them would not reduce their MACs")
    return TransformResult(module=model, notes=notes, details={"layers": done})
