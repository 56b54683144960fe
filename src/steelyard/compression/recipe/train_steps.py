"""The training steps of a recipe: recovery fine-tuning (with L1/L2 penalties, gradual pruning or
quantization-aware training) and distillation from the recipe's original model.

Both run the one trainer (:func:`steelyard.training.trainer.fit`, which distillation reaches
through :func:`steelyard.distill.train.distill_module`) on the model produced so far, with the
step's :class:`~steelyard.training.config.FinetuneConfig`; they validate on the recipe's
validation split and keep the best state (gradual pruning keeps the last state: an earlier
"best" would be less sparse than asked).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from steelyard.compression.base import linear_layers
from steelyard.compression.recipe.data import RecipeData
from steelyard.compression.recipe.steps import DistillStepConfig, FinetuneStepConfig
from steelyard.errors import ConfigError
from steelyard.evaluation.adapters import Batch
from steelyard.training.loop import LoopInput, LoopOutcome, schedule
from steelyard.training.lora import adapter_note
from steelyard.training.objectives import Forward, Objective, task_objective
from steelyard.training.trainer import Fitted, fit, seed_everything


@dataclass
class TrainingRecord:
    steps: int
    seconds: float
    best_validation: float | None
    notes: list[str] = field(default_factory=list)


def zero_masks(module: nn.Module) -> dict[nn.Parameter, torch.Tensor]:
    """Masks of the exact zeros in the prunable weights, so training cannot regrow them."""
    masks = {}
    for _, layer in linear_layers(module, include_head=False):
        zeros = layer.weight.detach() == 0
        if bool(zeros.any()):
            masks[layer.weight] = ~zeros
    return masks


def penalty(module: nn.Module, l1: float, l2: float) -> torch.Tensor:
    weights = [layer.weight for _, layer in linear_layers(module, include_head=False)]
    total = torch.zeros(())
    if l1:
        total = total + l1 * sum(w.abs().sum() for w in weights)
    if l2:
        total = total + l2 * sum(w.pow(2).sum() for w in weights)
    return total


@dataclass
class Penalized:
    """An objective plus λ₁·Σ|w| + λ₂·Σw² over ``module``'s prunable weights."""

    inner: Objective
    module: nn.Module
    l1: float
    l2: float

    def loss(self, model: Forward, batch: Batch) -> torch.Tensor:
        return self.inner.loss(model, batch) + penalty(self.module, self.l1, self.l2)

    def modules(self) -> list[nn.Module]:
        return self.inner.modules()


def _require_trainable(module: nn.Module, name: str) -> None:
    if not any(p.requires_grad and p.is_floating_point() for p in module.parameters()):
        raise ConfigError(f"{name}: the model has no trainable float weights at this point of the recipe")


def finetune_step(
    module: nn.Module, step: FinetuneStepConfig, data: RecipeData, *, eval_batch_size: int, progress: bool
) -> TrainingRecord:
    """Fine-tune ``module`` in place; see :class:`FinetuneStepConfig`."""
    _require_trainable(module, "finetune")
    seed_everything(step.seed)
    start = time.perf_counter()
    cfg = step.finetune_config(eval_batch_size, progress)
    notes: list[str] = []
    masks = zero_masks(module)
    if masks:
        kept = sum(int(m.sum()) for m in masks.values())
        notes.append(f"kept the zeros of earlier pruning fixed ({sum(m.numel() for m in masks.values()) - kept:,} "
                     "weights masked after every step)")
    pruner = None
    if step.prune_to is not None:
        from steelyard.compression.pruning.config import UnstructuredPruneConfig
        from steelyard.compression.pruning.unstructured import GradualPruner

        total = schedule(cfg, len(data.train))[2]
        ramp = max(1, int(0.75 * total))
        pruner = GradualPruner(module, UnstructuredPruneConfig(amount=step.prune_to), ramp, every=max(1, ramp // 20))
        notes.append(f"gradual pruning to {step.prune_to:.0%} sparsity over {ramp} of {total} steps (cubic schedule)")

    objective = task_objective(data.adapter.kind)
    if step.l1 or step.l2:
        objective = Penalized(objective, module, step.l1, step.l2)

    def after_step(n: int) -> None:
        with torch.no_grad():
            for weight, mask in masks.items():
                weight.mul_(mask)
        if pruner is not None:
            pruner.step(n)

    quant_context: contextlib.AbstractContextManager = contextlib.nullcontext()
    if step.qat:
        from steelyard.compression.quantization.qat import fake_quant

        quant_context = fake_quant(module, include_head=True)  # int8-dynamic quantizes the head too
        notes.append("quantization-aware: trained with fake-quantized int8 weights and activations")
    with quant_context:
        outcome = fit(
            LoopInput(module, data.adapter, data.train, data.validation, data.metric, objective=objective,
                      after_step=after_step),
            cfg, lr=step.lr, progress=progress, start=start, count_flops=False, restore_best=pruner is None,
        )
    if pruner is not None:
        pruner.finalize()
    if masks and outcome.adapters is not None:
        after_step(0)  # the merged adapters are dense: the pruned zeros are zero again
        notes.append("the merged LoRA update was masked with the earlier pruning's zeros")
    module.eval()
    return _record(outcome, start, notes)


def distill_step(
    module: nn.Module, teacher: nn.Module, step: DistillStepConfig, data: RecipeData, *,
    eval_batch_size: int, progress: bool,
) -> TrainingRecord:
    """Distil ``teacher`` (the recipe's original model) into ``module`` in place."""
    from steelyard.distill.train import distill_module

    _require_trainable(module, "distill")
    start = time.perf_counter()
    cfg = step.distill_config(eval_batch_size, progress)
    outcome = distill_module(
        module, teacher, data.adapter, data.train, data.validation, cfg, metric=data.metric, progress=progress
    )
    module.eval()
    notes = [f"distilled from the original model (alpha {step.alpha}, temperature {step.temperature})",
             *outcome.notes]
    return _record(outcome, start, notes)


def _record(outcome: LoopOutcome, start: float, notes: list[str]) -> TrainingRecord:
    best = outcome.best_value if outcome.best_value == outcome.best_value else None  # NaN: no validation
    if isinstance(outcome, Fitted) and outcome.adapters is not None:
        notes = [*notes, adapter_note(outcome.adapters)]
    return TrainingRecord(outcome.steps, time.perf_counter() - start, best, notes)
