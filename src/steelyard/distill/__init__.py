"""Knowledge distillation: a smaller student trained on a teacher's soft labels (and optionally its
hidden states), built from the teacher's layers, a narrower config, or any other model."""

from __future__ import annotations

from steelyard.lazy import lazy_package

__all__ = lazy_package(__name__, {
    "steelyard.distill.api": ("distill", "retained_fraction"),
    "steelyard.distill.config": ("DistillConfig",),
    "steelyard.distill.result": ("DistillResult", "ModelCost", "TeacherCost"),
    "steelyard.distill.student": ("StudentSpec", "hidden_targets", "make_student", "parse_spec"),
    "steelyard.distill.train": ("DistillOutcome", "distill_module"),
    "steelyard.families": ("spread",),  # the layer rule shared with prune:layers
    "steelyard.training.losses": ("distillation_loss", "hidden_state_loss", "soft_loss"),
})
