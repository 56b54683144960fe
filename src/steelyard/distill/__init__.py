"""Knowledge distillation: a smaller student trained on a teacher's soft labels (and optionally its
hidden states), built from the teacher's layers, a narrower config, or any other model."""

from __future__ import annotations

from steelyard.distill.api import distill, retained_fraction
from steelyard.distill.config import DistillConfig
from steelyard.distill.result import DistillResult, ModelCost, TeacherCost
from steelyard.distill.student import StudentSpec, hidden_targets, make_student, parse_spec
from steelyard.distill.train import DistillOutcome, distill_module
from steelyard.families import spread  # the layer rule shared with prune:layers
from steelyard.training.losses import distillation_loss, hidden_state_loss, soft_loss

__all__ = [
    "DistillConfig",
    "DistillOutcome",
    "DistillResult",
    "ModelCost",
    "StudentSpec",
    "TeacherCost",
    "distill",
    "distill_module",
    "distillation_loss",
    "hidden_state_loss",
    "hidden_targets",
    "make_student",
    "parse_spec",
    "retained_fraction",
    "soft_loss",
    "spread",
]
