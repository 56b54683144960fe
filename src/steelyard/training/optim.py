"""Optimizers, the linear warm-up + decay schedule, and gradient clipping.

Kept as small pure functions so the schedule's values and the clipping can be checked against
closed forms in tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch

from steelyard.errors import ConfigError
from steelyard.training.config import OPTIMIZERS


def param_groups(named: Iterable[tuple[str, torch.nn.Parameter]], weight_decay: float) -> list[dict]:
    """Trainable parameters in two groups: matrices decay, biases and norm scales do not.

    Decaying a LayerNorm scale or a bias pulls it toward 0, which is not regularisation but
    damage; this is the usual BERT recipe.
    """
    decay, no_decay = [], []
    for _, p in named:
        if not p.requires_grad:
            continue
        (decay if p.ndim >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def make_optimizer(
    name: str, named_params: Iterable[tuple[str, torch.nn.Parameter]], lr: float, weight_decay: float
) -> torch.optim.Optimizer:
    """AdamW, Adam, RMSprop or SGD with momentum 0.9, over the trainable parameters."""
    groups = param_groups(named_params, weight_decay)
    if not groups:
        raise ConfigError("the model has no trainable parameters")
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr)
    if name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9)
    raise ConfigError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}")


def warmup_steps(total_steps: int, ratio: float) -> int:
    """Number of warm-up steps: ``ceil(ratio × total)``, 0 when ratio is 0."""
    return math.ceil(ratio * total_steps) if ratio > 0 else 0


def linear_warmup_decay(warmup: int, total: int) -> Callable[[int], float]:
    """The learning-rate multiplier of update ``s`` (0-based).

    Warm-up: ``(s + 1) / warmup`` for ``s < warmup``, so the first update already moves and
    update ``warmup - 1`` runs at the full rate. Decay: ``(total - s) / (total - warmup)``
    afterwards, reaching ``1 / (total - warmup)`` on the last update (never a wasted step at 0).
    """
    if total < 1:
        raise ConfigError(f"total steps must be at least 1, got {total}")
    warmup = min(max(0, warmup), total - 1) if total > 1 else 0

    def multiplier(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / (total - warmup))

    return multiplier


def make_scheduler(optimizer: torch.optim.Optimizer, warmup: int, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, linear_warmup_decay(warmup, total))


def clip_gradients(parameters: Iterable[torch.nn.Parameter], max_norm: float | None) -> float:
    """Clip the global L2 norm of the gradients to ``max_norm``; returns the norm before clipping."""
    params = [p for p in parameters if p.grad is not None]
    if not params:
        return 0.0
    if max_norm is None:
        norms = torch.stack([p.grad.detach().float().norm(2) for p in params])  # type: ignore[union-attr]
        return float(norms.norm(2))
    return float(torch.nn.utils.clip_grad_norm_(params, max_norm))
