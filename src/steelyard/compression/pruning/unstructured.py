"""Unstructured magnitude pruning with ``torch.nn.utils.prune``, one-shot or gradual.

One-shot (:func:`apply`) masks the smallest weights and makes the masks permanent
(``prune.remove``), so the saved model is an ordinary dense model with zeros in it.
Gradual (:class:`GradualPruner`) raises the sparsity along the cubic schedule of Zhu & Gupta
(2017) between fine-tuning steps, keeping masks live so pruned weights stay zero, and makes them
permanent at :meth:`GradualPruner.finalize`.

Honest note: dense CPU/GPU kernels multiply the zeros too. The model is sparse, not smaller or
faster, unless it is stored in a sparse format or run on a sparse kernel.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune

from steelyard.compression.base import NotApplicableError, TransformResult, is_head
from steelyard.compression.pruning.config import UnstructuredPruneConfig
from steelyard.models.handle import ModelHandle

SPARSE_NOTE = "sparse, not smaller or faster: dense kernels still multiply the zeros"


def cubic_sparsity(step: int, final: float, total_steps: int, initial: float = 0.0, begin: int = 0) -> float:
    """Zhu & Gupta's schedule: s_t = s_f + (s_i − s_f)·(1 − (t − t0)/n)³, clamped to [t0, t0 + n].

    Prunes fast at first, when many weights are redundant, and slowly near the end.
    """
    if total_steps <= 0:
        raise ValueError("total_steps must be positive")
    progress = min(max((step - begin) / total_steps, 0.0), 1.0)
    return final + (initial - final) * (1.0 - progress) ** 3


def prunable(model: nn.Module, include_head: bool) -> list[tuple[str, nn.Module]]:
    """Linear and Conv layers whose weights may be pruned."""
    kinds = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
    return [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, kinds) and (include_head or not is_head(name, m, model))
    ]


def _masks(layers: list[tuple[str, nn.Module]], cfg: UnstructuredPruneConfig, amount: float) -> None:
    """Attach masks (``weight_orig`` + ``weight_mask``) for ``amount`` sparsity."""
    if cfg.granularity == "row":
        for _, m in layers:
            prune.ln_structured(m, "weight", amount=amount, n=cfg.norm, dim=0)
        return
    if cfg.scope == "layer":
        for _, m in layers:
            prune.l1_unstructured(m, "weight", amount=amount)
        return
    # |w| and w² rank single weights identically, so L1 serves both norms for elements.
    prune.global_unstructured([(m, "weight") for _, m in layers], pruning_method=prune.L1Unstructured, amount=amount)


def _make_permanent(layers: list[tuple[str, nn.Module]]) -> None:
    for _, m in layers:
        if prune.is_pruned(m):
            prune.remove(m, "weight")


def sparsity(layers: list[tuple[str, nn.Module]]) -> float:
    total = sum(m.weight.numel() for _, m in layers)
    zeros = sum(int((m.weight == 0).sum()) for _, m in layers)
    return zeros / total if total else 0.0


def apply(handle: ModelHandle, cfg: UnstructuredPruneConfig, data: Any = None) -> TransformResult:
    layers = prunable(handle.module, cfg.include_head)
    if not layers:
        raise NotApplicableError("prune:unstructured: the model has no Linear or Conv layers to prune")
    with torch.no_grad():
        _masks(layers, cfg, cfg.amount)
        _make_permanent(layers)
    achieved = sparsity(layers)
    notes = [
        f"{achieved:.1%} of the weights of {len(layers)} Linear/Conv layers are now zero",
        SPARSE_NOTE,
    ]
    if cfg.norm == 2 and cfg.granularity == "element":
        notes.append("for single weights the L2 and L1 criteria rank identically (|w| vs w²)")
    return TransformResult(
        module=handle.module,
        notes=notes,
        details={"sparsity": achieved, "layers": len(layers), "scope": cfg.scope, "granularity": cfg.granularity},
    )


class GradualPruner:
    """Raise sparsity along :func:`cubic_sparsity` while fine-tuning; call :meth:`step` every step.

    >>> pruner = GradualPruner(model, UnstructuredPruneConfig(amount=0.8), total_steps=1000, every=100)
    >>> for step in range(1000): train_step(); pruner.step(step)
    >>> pruner.finalize()   # masks become permanent zeros
    """

    def __init__(
        self,
        model: nn.Module,
        cfg: UnstructuredPruneConfig,
        total_steps: int,
        *,
        begin: int = 0,
        every: int = 1,
        initial: float = 0.0,
    ) -> None:
        self.model = model
        self.cfg = cfg
        self.total_steps = total_steps
        self.begin = begin
        self.every = max(1, every)
        self.initial = initial
        self.layers = prunable(model, cfg.include_head)
        if not self.layers:
            raise NotApplicableError("prune:unstructured: the model has no Linear or Conv layers to prune")
        self.current = 0.0

    def target(self, step: int) -> float:
        return cubic_sparsity(step, self.cfg.amount, self.total_steps, self.initial, self.begin)

    def step(self, step: int) -> float:
        """Prune up to this step's target sparsity (on schedule steps); returns the sparsity."""
        if step < self.begin or (step - self.begin) % self.every:
            return self.current
        goal = self.target(step)
        if goal <= self.current:
            return self.current
        # torch's pruning containers apply a new amount to the weights still alive.
        relative = (goal - self.current) / (1.0 - self.current)
        with torch.no_grad():
            _masks(self.layers, self.cfg, min(relative, 1.0))
        self.current = goal
        return goal

    def finalize(self) -> float:
        """Make the masks permanent and return the achieved sparsity."""
        with torch.no_grad():
            _make_permanent(self.layers)
        return sparsity(self.layers)
