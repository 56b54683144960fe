"""The training steps of a recipe: recovery fine-tuning (with L1/L2 penalties, gradual pruning or
quantization-aware training) and distillation from the recipe's original model.

Both run :func:`steelyard.training.loop.train` on the model produced so far, validate on the
recipe's validation split and keep the best state (gradual pruning keeps the last state: an
earlier "best" would be less sparse than asked).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from steelyard.compression.base import linear_layers
from steelyard.compression.recipe.data import RecipeData
from steelyard.compression.recipe.steps import DistillStepConfig, FinetuneStepConfig, TrainingStepConfig
from steelyard.errors import ConfigError
from steelyard.training.config import FinetuneConfig
from steelyard.training.finetune import seed_everything
from steelyard.training.loop import Accounting, LoopInput, LoopOutcome, train


@dataclass
class TrainingRecord:
    steps: int
    seconds: float
    best_validation: float | None
    notes: list[str] = field(default_factory=list)


def loop_config(step: TrainingStepConfig, data: RecipeData, eval_batch_size: int, progress: bool) -> FinetuneConfig:
    return FinetuneConfig(
        epochs=step.epochs, lr=step.lr, batch_size=step.batch_size, optimizer=step.optimizer,
        max_steps=step.max_steps, warmup_ratio=step.warmup_ratio, seed=step.seed,
        eval_batch_size=eval_batch_size, progress=progress, n_resamples=1,
    )


def total_steps(step: TrainingStepConfig, n_train: int) -> int:
    per_epoch = -(-n_train // step.batch_size)
    total = per_epoch * step.epochs
    return min(total, step.max_steps) if step.max_steps is not None else total


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
    cfg = loop_config(step, data, eval_batch_size, progress)
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

        total = total_steps(step, len(data.train))
        ramp = max(1, int(0.75 * total))
        pruner = GradualPruner(module, UnstructuredPruneConfig(amount=step.prune_to), ramp, every=max(1, ramp // 20))
        notes.append(f"gradual pruning to {step.prune_to:.0%} sparsity over {ramp} of {total} steps (cubic schedule)")

    def loss(output: object, batch: dict[str, torch.Tensor], default: torch.Tensor) -> torch.Tensor:
        return default + penalty(module, step.l1, step.l2)

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
        outcome = train(
            LoopInput(module, data.adapter, data.train, data.validation, data.metric,
                      loss=loss if (step.l1 or step.l2) else None, after_step=after_step),
            cfg, step.lr, Accounting(start), progress=progress,
        )
        if outcome.best_state is not None and pruner is None:
            module.load_state_dict(outcome.best_state)
    if pruner is not None:
        pruner.finalize()
    module.eval()
    return _record(outcome, start, notes)


def distill_step(
    module: nn.Module, teacher: nn.Module, step: DistillStepConfig, data: RecipeData, *,
    eval_batch_size: int, progress: bool,
) -> TrainingRecord:
    """Distil ``teacher`` (the recipe's original model) into ``module`` in place."""
    from steelyard.distill.config import DistillConfig
    from steelyard.distill.train import distill_module

    _require_trainable(module, "distill")
    seed_everything(step.seed)
    start = time.perf_counter()
    cfg = DistillConfig(
        alpha=step.alpha, temperature=step.temperature, hidden_states=step.hidden_states,
        train=loop_config(step, data, eval_batch_size, progress),
    )
    outcome = distill_module(
        module, teacher, data.adapter, data.train, data.validation, cfg, metric=data.metric, progress=progress
    )
    module.eval()
    notes = [f"distilled from the original model (alpha {step.alpha}, temperature {step.temperature})"]
    return _record(outcome, start, notes)


def _record(outcome: LoopOutcome, start: float, notes: list[str]) -> TrainingRecord:
    best = outcome.best_value if outcome.best_value == outcome.best_value else None  # NaN: no validation
    return TrainingRecord(outcome.steps, time.perf_counter() - start, best, notes)
