"""``DistillConfig``: how to distil, in one frozen, validated dataclass.

The optimisation knobs (epochs, learning rate, batch, optimizer, seed, processes, device, ...)
are a :class:`~steelyard.training.config.FinetuneConfig` held in ``train``, so a distillation run
trains exactly as a fine-tune with the same settings would; only the loss differs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from steelyard.errors import ConfigError
from steelyard.training.config import FinetuneConfig, _help


@dataclass(frozen=True)
class DistillConfig:
    """What the student learns from.

    - ``alpha``: weight of the hard-label cross-entropy; ``1 − alpha`` goes to the teacher's soft
      labels (α = 1 is plain fine-tuning, α = 0 learns from the teacher alone).
    - ``temperature``: softens both distributions before the KL (T > 1 shows the student how the
      teacher ranks the wrong classes); the soft term is scaled by T².
    - ``hidden_states``: also match hidden states layer to layer (MSE, through a learned linear
      projection when the widths differ); the teacher then runs on every step.
    - ``hidden_weight``: weight of the hidden-state term added to the loss above.
    - ``cache_teacher``: compute the teacher's logits once per training example instead of once
      per step (identical targets: the teacher runs in eval mode, without dropout).
    - ``train``: epochs, learning rate, batch size, optimizer, seed, ``nproc`` and the rest.
    """

    alpha: float = field(default=0.5, metadata=_help("weight of the hard-label loss; 1 − alpha goes to the teacher's "
        "soft labels"))
    temperature: float = field(default=4.0, metadata=_help("softmax temperature of the soft labels (loss scaled by "
        "T²)"))
    hidden_states: bool = field(default=False, metadata=_help("also match hidden states layer to layer (MSE; the "
        "teacher then runs on every step)"))
    hidden_weight: float = field(default=1.0, metadata=_help("weight of the hidden-state loss"))
    cache_teacher: bool = field(default=True, metadata=_help("cache the teacher's logits once per example instead of "
        "running it on every step (same result, faster)"))
    train: FinetuneConfig = field(default_factory=FinetuneConfig)

    def __post_init__(self) -> None:
        if not (isinstance(self.alpha, (int, float)) and 0.0 <= self.alpha <= 1.0):
            raise ConfigError(f"alpha must be in [0, 1] (the weight of the hard-label loss), got {self.alpha}")
        if not (isinstance(self.temperature, (int, float)) and math.isfinite(self.temperature)
                and self.temperature > 0):
            raise ConfigError(f"temperature must be a positive number, got {self.temperature}")
        if not (isinstance(self.hidden_weight, (int, float)) and math.isfinite(self.hidden_weight)
                and self.hidden_weight >= 0):
            raise ConfigError(f"hidden-state weight must be a number >= 0, got {self.hidden_weight}")
        if self.hidden_states and self.hidden_weight == 0:
            raise ConfigError("hidden-state weight 0 turns hidden-state matching off; leave out hidden_states instead")
        if not isinstance(self.train, FinetuneConfig):
            raise ConfigError(f"train must be a FinetuneConfig, got {type(self.train).__name__}")
        if self.train.freeze_encoder:
            raise ConfigError("freeze_encoder does not apply to distillation: the whole student is trained")
        if self.train.augment:
            raise ConfigError("augment does not apply to distillation: the teacher's targets are cached per example")
