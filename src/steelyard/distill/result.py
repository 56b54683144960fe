"""Typed result of a distillation run: teacher vs student, what the student kept, what it cost."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from steelyard.distill.config import DistillConfig
from steelyard.metrics import MetricValue
from steelyard.models.handle import ModelHandle
from steelyard.serialize import from_dict, to_dict
from steelyard.training.result import DistributedInfo, EvalPoint, TargetProgress, TrainingCost
from steelyard.units import Flops


@dataclass
class ModelCost:
    """Size and counted work of one model: parameters (tied counted once) and matrix-class FLOPs
    of one forward at batch 1 over ``seq_len`` tokens (None for images: the model's image size)."""

    parameters: int
    flops: Flops
    seq_len: int | None = None
    layers: int | None = None


@dataclass
class TeacherCost:
    """What the teacher cost the run: its forward per sample and the one-off logits cache.

    ``saved_flops`` is the teacher work the cache avoided: a forward on every one of the
    ``reused_samples`` seen after the first pass over the data (0 when the teacher ran on every
    step); ``saved_seconds`` is that work at the caching pass's rate.
    """

    online: bool
    flops_per_sample: Flops
    cache_flops: Flops
    cache_seconds: float
    saved_flops: Flops
    reused_samples: int = 0
    saved_seconds: float = 0.0


@dataclass
class DistillResult:
    """Everything a distillation run produced except the weights (those are in ``output``)."""

    teacher: str
    student: str
    dataset: str
    data_source: str
    task: str
    label_names: list[str]
    sizes: dict[str, int]
    metric: str
    teacher_test: dict[str, MetricValue]
    student_test: dict[str, MetricValue]
    teacher_cost: ModelCost
    student_cost: ModelCost
    #: Student / teacher on ``metric`` (test split); None without test data.
    retained: float | None
    flops_ratio: float
    params_ratio: float
    best_step: int
    best_validation: float
    stopped: str
    history: list[EvalPoint]
    target: TargetProgress | None
    training: TrainingCost
    teacher_run: TeacherCost
    distributed: DistributedInfo
    config: DistillConfig
    output: str | None
    seconds: float
    student_notes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: The trained student, ready for ``evaluate`` or ``profile`` (not serialised).
    trained: ModelHandle | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: to_dict(getattr(self, f.name)) for f in fields(self) if f.name != "trained"}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DistillResult:
        return from_dict(cls, data)
