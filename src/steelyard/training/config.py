"""``FinetuneConfig``: every knob of a fine-tuning run in one frozen, validated dataclass.

The CLI builds one from its flags and hands it over; the config is stored with the result so a
run can be repeated exactly (with the same seed, data and thread count the weights are equal).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from steelyard.data.augment import ImageAugment, TextAugment
from steelyard.errors import ConfigError

OPTIMIZERS: tuple[str, ...] = ("adamw", "adam", "rmsprop", "sgd")

#: Learning rates used when ``lr`` is None. A linear head on frozen features learns at rates
#: that would wreck a pretrained encoder, and SGD needs larger steps than the adaptive methods.
#: A full fine-tune of a small encoder (at most :data:`SMALL_MODEL_PARAMETERS` trainable
#: parameters, e.g. MiniLM's 22.7M) takes ``full-small``: the BERT-base rate of 5e-5 moves it too
#: little on small data. Measured (2026-12-01, this CPU, one thread): MiniLM on 160 cleaned BBC News
#: articles (16 tokens each; 60 validation, 60 test) reached 0.55 test accuracy [0.43, 0.68] at 5e-5
#: for 3 epochs (30 steps), and 0.93 [0.87, 1.00] with these defaults (1e-4, early stopping after
#: 90 steps, best validation at step 60).
DEFAULT_LR: dict[str, dict[str, float]] = {
    "full": {"adamw": 5e-5, "adam": 5e-5, "rmsprop": 1e-5, "sgd": 1e-2},
    "full-small": {"adamw": 1e-4, "adam": 1e-4, "rmsprop": 2e-5, "sgd": 2e-2},
    "head-only": {"adamw": 1e-2, "adam": 1e-2, "rmsprop": 1e-3, "sgd": 1e-1},
    # LoRA adapters start at zero and are few: they take the larger rates the LoRA and QLoRA papers
    # used (1e-4 to 2e-4 with AdamW), whatever the size of the frozen model.
    "lora": {"adamw": 2e-4, "adam": 2e-4, "rmsprop": 4e-5, "sgd": 4e-2},
}

#: Trainable parameters up to which a full fine-tune counts as a small model's (``full-small`` rates).
SMALL_MODEL_PARAMETERS = 50_000_000

#: Epochs used when ``epochs`` is None. A linear head sees each cached vector cheaply and needs
#: more passes. A full fine-tune takes enough epochs for about :data:`DEFAULT_TARGET_STEPS`
#: optimizer steps, between the floor and the cap below: on small data 3 epochs are a few dozen
#: steps, too few to move a pretrained model; early stopping (:data:`DEFAULT_PATIENCE`) ends a
#: run that stops improving and the best validation state is restored.
DEFAULT_EPOCHS: dict[str, int] = {"full": 3, "head-only": 20}
MAX_DEFAULT_EPOCHS: dict[str, int] = {"full": 10, "head-only": 20}
DEFAULT_TARGET_STEPS = 300

#: Validations without improvement before stopping, when ``patience`` is None and the epochs are
#: the default (explicit ``epochs`` train that many, keeping the best state; ``patience=0``: never stop).
DEFAULT_PATIENCE: dict[str, int] = {"full": 3, "head-only": 5}

#: Fewer optimizer steps than this and a run is flagged: the model has barely moved from its start.
FEW_STEPS = 50

#: Image augmentation used by ``augment=True``: small rotations (up to 10°) only. Flips change
#: the class of digits, letters and many asymmetric objects, and a one-pixel shift of an 8x8
#: digit is a 12% translation (it cost a small classifier half its accuracy on digits), so both
#: are opt-in through ``image_augment`` for data where they keep the label.
DEFAULT_IMAGE_AUGMENT = ImageAugment(flip=0.0, crop_padding=0, max_rotation=10.0)


def _help(text: str) -> dict[str, Any]:
    """Field metadata: the help of the field's command-line option (see steelyard.cli.options)."""
    return {"help": text}


@dataclass(frozen=True)
class FinetuneConfig:
    """How to fine-tune.

    - ``batch_size`` is the global batch: with ``nproc`` processes each takes
      ``ceil(batch_size / nproc)`` rows, so a distributed run takes the same number of steps
      with the same schedule as a single process.
    - ``epochs`` None picks the default for the mode: 20 head-only; full, enough epochs for about
      300 optimizer steps, between 3 and 10 (:meth:`num_epochs`).
    - ``lr`` None picks :data:`DEFAULT_LR` for the optimizer and the mode (full, full on a small
      model, head-only).
    - ``warmup_ratio``: share of the total steps with a linear warm-up, then linear decay to 0.
    - ``max_grad_norm``: clip the global gradient norm (None: no clipping).
    - ``patience``: stop after this many evaluations without a better validation ``metric``;
      None: :data:`DEFAULT_PATIENCE` when ``epochs`` is the default, else never; 0: never.
    - ``target``: ``"accuracy=0.95"``; the steps, samples, wall time and counted FLOPs to reach
      it on the validation split are recorded, and training stops there when ``stop_at_target``.
    - ``eval_every``: validate every N optimizer steps (None: at the end of each epoch).
    - ``freeze_encoder``: train only a classification head. For embedding models on text this is
      a linear head on cached mean-pooled embeddings (fast); otherwise everything but the head
      is frozen.
    - ``augment``: perturb training examples afresh each epoch (``text_augment`` /
      ``image_augment``).
    - ``lora_rank`` > 0: train only LoRA adapters of that rank on the frozen model (peft, the
      ``llm`` extra) and merge them back at the end (:mod:`steelyard.training.lora`), so the result
      is a plain model of the original shape; ``lora_alpha`` scales them (alpha / rank),
      ``lora_targets`` names the layers (default: the family's attention and FFN projections).
    """

    epochs: int | None = field(default=None, metadata=_help("passes over the training data (default: 20 head-only; "
        "full, enough for ~300 steps, 3 to 10, with early stopping)"))
    lr: float | None = field(default=None, metadata=_help("peak learning rate (default per optimizer and mode; "
        "adamw: 1e-4 full on models up to 50M parameters, 5e-5 larger, 1e-2 head-only, 2e-4 LoRA)"))
    batch_size: int = field(default=16, metadata=_help("global batch size (split across --nproc processes)"))
    optimizer: str = field(default="adamw", metadata=_help("adamw | adam | rmsprop | sgd (momentum 0.9)"))
    weight_decay: float = field(default=0.01, metadata=_help("weight decay (not on biases and norm scales)"))
    warmup_ratio: float = field(default=0.1, metadata=_help("share of steps with linear warm-up, then linear decay"))
    max_grad_norm: float | None = field(default=1.0, metadata=_help("clip the gradient norm to this (0: no clipping)"))
    patience: int | None = field(default=None, metadata=_help("stop after this many validations without improvement "
        "(default: 3 full, 5 head-only when --epochs is not given; 0: never)"))
    metric: str | None = field(default=None, metadata=_help("validation metric that decides early stopping (default: "
        "the task's headline)"))
    target: str | None = field(default=None, metadata=_help("e.g. accuracy=0.95: record the cost to reach it on "
        "validation, and stop there"))
    stop_at_target: bool = field(default=True, metadata=_help("stop when the target is reached, or train on and only "
        "record when it was"))
    seed: int = field(default=0, metadata=_help("seed for splits, subsets, initialisation and data order"))
    max_steps: int | None = field(default=None, metadata=_help("stop after this many optimizer steps"))
    freeze_encoder: bool = field(default=False, metadata=_help("train only a head (embedding models: a linear head on "
        "frozen mean-pooled embeddings)"))
    max_length: int = field(default=128, metadata=_help("tokens per text (truncation; the block size for perplexity)"))
    eval_every: int | None = field(default=None, metadata=_help("validate every N steps (default: each epoch)"))
    eval_batch_size: int = field(default=64, metadata=_help("examples per forward pass when validating and testing"))
    augment: bool = field(default=False, metadata=_help("text: token dropout/swap; images: small rotations"))
    text_augment: TextAugment = field(default_factory=TextAugment, metadata=_help("how augment perturbs texts"))
    image_augment: ImageAugment = field(default=DEFAULT_IMAGE_AUGMENT, metadata=_help("how augment perturbs images"))
    nproc: int = field(default=1, metadata=_help("data-parallel processes on this machine (DDP; gloo on CPU, nccl on "
        "GPU); for several machines run under torchrun"))
    backend: str = field(default="auto", metadata=_help("process-group backend: auto (nccl on GPU, gloo on CPU), gloo "
        "or nccl"))
    device: str = field(default="cpu", metadata=_help("cpu or cuda[:N]"))
    tokenizer: str | None = field(default=None, metadata=_help("tokenizer folder or hub id, for models that have none"))
    n_resamples: int = field(default=1000, metadata=_help("bootstrap resamples for the confidence intervals of the "
        "test metrics"))
    progress: bool | None = field(default=None, metadata=_help(
        "progress (default on): bars in a terminal, else a log line every 5 s"))
    lora_rank: int = field(default=0, metadata=_help("train LoRA adapters of this rank (peft) on the frozen model, "
        "merged back at the end (0: full fine-tuning)"))
    lora_alpha: float | None = field(default=None, metadata=_help("LoRA scale numerator: adapters scaled by "
        "alpha / rank (default: 2 x rank)"))
    lora_targets: str | None = field(default=None, metadata=_help("layer names LoRA adapts, e.g. q_proj+v_proj "
        "(default: the family's attention and FFN projections)"))

    def __post_init__(self) -> None:
        if self.epochs is not None and self.epochs < 1:
            raise ConfigError(f"epochs must be at least 1, got {self.epochs}")
        if self.lr is not None and not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"learning rate must be a positive number, got {self.lr}")
        if self.batch_size < 1 or self.eval_batch_size < 1:
            raise ConfigError(f"batch sizes must be at least 1, got {self.batch_size} / {self.eval_batch_size}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; choose one of: {', '.join(OPTIMIZERS)}")
        if self.weight_decay < 0:
            raise ConfigError(f"weight decay must be >= 0, got {self.weight_decay}")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"warm-up ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.max_grad_norm is not None and self.max_grad_norm <= 0:
            raise ConfigError(f"max gradient norm must be positive (or None), got {self.max_grad_norm}")
        if self.patience is not None and self.patience < 0:
            raise ConfigError(f"patience must be at least 1 evaluation (0: never stop early), got {self.patience}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"max steps must be at least 1, got {self.max_steps}")
        if self.eval_every is not None and self.eval_every < 1:
            raise ConfigError(f"eval every must be at least 1 step, got {self.eval_every}")
        if self.max_length < 2:
            raise ConfigError(f"max length must be at least 2 tokens, got {self.max_length}")
        if self.nproc < 1:
            raise ConfigError(f"--nproc must be at least 1, got {self.nproc}")
        if self.backend not in ("auto", "gloo", "nccl"):
            raise ConfigError(f"unknown backend {self.backend!r}; choose auto, gloo or nccl")
        if self.n_resamples < 1:
            raise ConfigError(f"bootstrap resamples must be at least 1, got {self.n_resamples}")
        if isinstance(self.lora_rank, bool) or not isinstance(self.lora_rank, int) or self.lora_rank < 0:
            raise ConfigError(f"LoRA rank must be a whole number >= 0 (0: full fine-tuning), got {self.lora_rank!r}")
        if self.lora_alpha is not None and not (math.isfinite(self.lora_alpha) and self.lora_alpha > 0):
            raise ConfigError(f"LoRA alpha must be a positive number, got {self.lora_alpha}")
        if self.lora_rank and self.freeze_encoder:
            raise ConfigError("LoRA and freeze_encoder are two ways of training part of a model; choose one")

    @property
    def mode(self) -> str:
        """``"head-only"`` or ``"full"``: which learning-rate table applies."""
        return "head-only" if self.freeze_encoder else "full"

    def num_epochs(self, steps_per_epoch: int | None = None) -> int:
        """``epochs``, or the default for this mode: a full fine-tune of ``steps_per_epoch`` steps an
        epoch takes enough epochs for :data:`DEFAULT_TARGET_STEPS` steps, within the floor and cap."""
        if self.epochs is not None:
            return self.epochs
        floor, cap = DEFAULT_EPOCHS[self.mode], MAX_DEFAULT_EPOCHS[self.mode]
        if steps_per_epoch is None or steps_per_epoch < 1:
            return floor
        return max(floor, min(cap, math.ceil(DEFAULT_TARGET_STEPS / steps_per_epoch)))

    def early_stop_patience(self) -> int | None:
        """Validations without improvement before stopping (None: never)."""
        if self.patience is not None:
            return self.patience or None
        return DEFAULT_PATIENCE[self.mode] if self.epochs is None else None

    def learning_rate(self, trainable_parameters: int | None = None) -> float:
        """``lr``, or the default for this optimizer and mode; a full fine-tune of a model with at most
        :data:`SMALL_MODEL_PARAMETERS` trainable parameters takes the small-model rate."""
        if self.lr is not None:
            return self.lr
        if self.lora_rank:
            return DEFAULT_LR["lora"][self.optimizer]
        mode = self.mode
        if mode == "full" and trainable_parameters is not None and trainable_parameters <= SMALL_MODEL_PARAMETERS:
            mode = "full-small"
        return DEFAULT_LR[mode][self.optimizer]
