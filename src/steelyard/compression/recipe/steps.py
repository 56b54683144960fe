"""Configs of the recipe steps that train: ``finetune`` (recovery) and ``distill``.

Compression steps are the registered methods (:mod:`steelyard.compression.registry`); these two
steps train the model produced so far, on the recipe's data, so that it recovers the accuracy
that pruning or factorization cost. They are frozen dataclasses like the method configs, so
``"finetune:epochs=2,l1=1e-5"`` parses with the same rules and the same error messages.

They are the recipe's spelling of the training configs, not a third one: each step turns into a
:class:`~steelyard.training.config.FinetuneConfig` (``distill`` into a
:class:`~steelyard.distill.config.DistillConfig` around one), which validates the values and is
what the trainer runs, with the same optimizers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from steelyard.compression.options import check_fraction, option
from steelyard.errors import ConfigError
from steelyard.training.config import OPTIMIZERS, FinetuneConfig

if TYPE_CHECKING:
    from steelyard.distill.config import DistillConfig


def _checked(step: str, make: Callable[[], object]) -> None:
    """Build the training config (its checks are the checks), naming the step in the error."""
    try:
        make()
    except ConfigError as exc:
        raise ConfigError(f"{step}: {exc}") from exc


@dataclass(frozen=True)
class TrainingStepConfig:
    """What every training step shares: the optimizer and the schedule."""

    epochs: int = option(1, "passes over the training split")
    lr: float = option(5e-5, "peak learning rate (linear warm-up, then linear decay)")
    batch_size: int = option(16, "training batch size")
    optimizer: str = option("adamw", f"optimizer: {', '.join(OPTIMIZERS)}")
    max_steps: int | None = option(None, "stop after this many optimizer steps (none: all epochs)")
    warmup_ratio: float = option(0.1, "share of the steps with a linear warm-up")
    seed: int = option(0, "seed for the data order and dropout")
    lora_rank: int = option(0, "train LoRA adapters of this rank on the frozen model and merge them back "
                            "(0: train every weight); LoRA usually wants a larger lr, e.g. 5e-4")
    lora_alpha: float | None = option(None, "LoRA adapters are scaled by alpha / rank (none: 2 x rank)")
    lora_targets: str | None = option(None, "layer names LoRA adapts, joined by + (e.g. q_proj+v_proj; none: the "
                                      "family's attention and FFN projections)")

    def finetune_config(self, eval_batch_size: int = 64, progress: bool | None = None) -> FinetuneConfig:
        """The trainer's config for this step (bootstrap resamples unused: a step only validates)."""
        return FinetuneConfig(
            epochs=self.epochs, lr=self.lr, batch_size=self.batch_size, optimizer=self.optimizer,
            max_steps=self.max_steps, warmup_ratio=self.warmup_ratio, seed=self.seed,
            eval_batch_size=eval_batch_size, progress=progress, n_resamples=1,
            lora_rank=self.lora_rank, lora_alpha=self.lora_alpha, lora_targets=self.lora_targets,
        )


@dataclass(frozen=True)
class FinetuneStepConfig(TrainingStepConfig):
    """Recovery fine-tuning of the whole model on the recipe's training split.

    ``l1`` / ``l2`` add λ·Σ|w| / λ·Σw² over the prunable weights (Linear layers outside the head)
    to the loss, which drives weights towards zero before an unstructured pruning step.
    ``prune_to`` raises unstructured sparsity to that level along a cubic schedule while the
    step trains (gradual magnitude pruning, Zhu & Gupta 2017). ``qat`` trains with fake-quantized
    int8 weights and activations, so that a later ``quantize:int8-dynamic`` loses less.
    Zeros made by an earlier pruning step stay zero: their masks are re-applied after every step
    (with LoRA, to the merged weights). ``lora_rank`` trains LoRA adapters only (not with
    ``prune_to`` or ``qat``, which change the full weights while training).
    """

    l1: float = option(0.0, "L1 penalty on prunable weights (drives them to zero)")
    l2: float = option(0.0, "L2 penalty on prunable weights")
    prune_to: float | None = option(None, "gradual unstructured pruning to this sparsity while training")
    qat: bool = option(False, "quantization-aware: train with fake-quantized int8 weights and activations")

    def __post_init__(self) -> None:
        _checked("finetune", self.finetune_config)
        if self.l1 < 0 or self.l2 < 0:
            raise ConfigError(f"finetune: l1 and l2 penalties must be >= 0, got {self.l1} / {self.l2}")
        if self.prune_to is not None:
            check_fraction("finetune", "prune_to", self.prune_to)
        if self.lora_rank and (self.prune_to is not None or self.qat):
            raise ConfigError("finetune: lora_rank trains adapters on frozen weights; prune_to and qat change the "
                              "full weights while training; use one or the other")


@dataclass(frozen=True)
class DistillStepConfig(TrainingStepConfig):
    """Recovery by knowledge distillation from the model the recipe started from (the teacher).

    loss = α·CE(labels) + (1 − α)·T²·KL(teacher/T ‖ student/T); ``hidden_states`` adds an MSE
    between the student's layers and the teacher layers they were taken from. On a causal LM the
    CE is the next-token NLL and the KL is between the two models' next-token distributions at
    every predicted position (the teacher runs on each batch; its logits are not cached).
    ``lora_rank`` trains LoRA adapters only and merges them back.
    """

    alpha: float = option(0.5, "weight of the hard-label loss (1 − alpha goes to the teacher)")
    temperature: float = option(4.0, "softmax temperature of the soft targets")
    hidden_states: bool = option(False, "also match hidden states layer by layer")

    def __post_init__(self) -> None:
        _checked("distill", self.distill_config)

    def distill_config(self, eval_batch_size: int = 64, progress: bool | None = None) -> DistillConfig:
        """The distillation config for this step, training as :meth:`finetune_config` says."""
        from steelyard.distill.config import DistillConfig

        return DistillConfig(alpha=self.alpha, temperature=self.temperature, hidden_states=self.hidden_states,
                             train=self.finetune_config(eval_batch_size, progress))


#: Training steps by name; everything else in a recipe is a registered compression method.
TRAINING_STEPS: dict[str, type] = {"finetune": FinetuneStepConfig, "distill": DistillStepConfig}
