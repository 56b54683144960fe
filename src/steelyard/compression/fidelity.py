"""How close a compressed model's outputs stay to the original's.

* SQNR (signal-to-quantization-noise ratio, dB) = 10·log10(‖y‖² / ‖y − ŷ‖²): +20 dB means the
  error is 10x smaller than the signal; torchao treats ≳ 20–30 dB as a healthy int8 model.
* prediction agreement: share of rows whose arg-max matches (classification / LM logits only).
* max absolute error and cosine similarity of the flattened outputs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

PREDICTION_TASKS = ("text-classification", "image-classification", "causal-lm")


@dataclass(frozen=True)
class Fidelity:
    sqnr_db: float
    max_abs_error: float
    cosine: float
    agreement: float | None  # None for tasks without a prediction (feature extraction)
    output: str  # which output was compared ("logits", "last_hidden_state", ...)


def primary_output(out: Any) -> tuple[str, torch.Tensor]:
    """The tensor that stands for a model's answer: logits, else last hidden state, else the first."""
    if isinstance(out, torch.Tensor):
        return "output", out
    for key in ("logits", "last_hidden_state", "pooler_output"):
        value = out.get(key) if isinstance(out, Mapping) else getattr(out, key, None)
        if isinstance(value, torch.Tensor):
            return key, value
    if isinstance(out, Mapping):
        for key, value in out.items():
            if isinstance(value, torch.Tensor):
                return str(key), value
    if isinstance(out, (tuple, list)):
        for value in out:
            if isinstance(value, torch.Tensor):
                return "output[0]", value
    raise TypeError(f"cannot find a tensor in the model output of type {type(out).__name__}")


def sqnr(reference: torch.Tensor, candidate: torch.Tensor) -> float:
    """10·log10(‖ref‖² / ‖ref − cand‖²) in dB; +inf when identical."""
    ref = reference.detach().double()
    noise = (ref - candidate.detach().double()).pow(2).sum().item()
    signal = ref.pow(2).sum().item()
    if noise == 0:
        return math.inf
    if signal == 0:
        return -math.inf
    return 10 * math.log10(signal / noise)


def agreement(reference: torch.Tensor, candidate: torch.Tensor) -> float:
    """Share of positions whose arg-max over the last dim matches."""
    same = reference.argmax(-1) == candidate.argmax(-1)
    return float(same.float().mean())


def compare_outputs(reference: Any, candidate: Any, task: str) -> Fidelity:
    name, ref = primary_output(reference)
    _, cand = primary_output(candidate)
    ref = ref.detach().float()
    cand = cand.detach().float()
    if ref.shape != cand.shape:
        raise ValueError(f"output shapes differ: {tuple(ref.shape)} vs {tuple(cand.shape)}")
    # In float64: over millions of logits float32 sums drifted to a cosine of 1.027 (seen on an int4 decoder).
    a, b = ref.reshape(-1).double(), cand.reshape(-1).double()
    cos = float(a @ b / (a.norm() * b.norm()).clamp(min=1e-300)) if a.numel() else 1.0
    return Fidelity(
        sqnr_db=sqnr(ref, cand),
        max_abs_error=float((ref - cand).abs().max()) if ref.numel() else 0.0,
        cosine=float(cos),
        agreement=agreement(ref, cand) if task in PREDICTION_TASKS else None,
        output=name,
    )


def non_finite(out: Any) -> tuple[int, int]:
    """(non-finite values, all values) over every floating tensor of an output."""
    tensors: list[torch.Tensor] = []
    if isinstance(out, torch.Tensor):
        tensors = [out]
    elif isinstance(out, Mapping):
        tensors = [v for v in out.values() if isinstance(v, torch.Tensor)]
    elif isinstance(out, (tuple, list)):
        tensors = [v for v in out if isinstance(v, torch.Tensor)]
    else:
        values = out.values() if hasattr(out, "values") else ()
        tensors = [v for v in values if isinstance(v, torch.Tensor)]
    if not tensors:
        tensors = [primary_output(out)[1]]
    bad = total = 0
    for t in tensors:
        if t.is_floating_point():
            bad += int((~torch.isfinite(t)).sum())
            total += t.numel()
    return bad, total
