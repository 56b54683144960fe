"""Typed results of fine-tuning: history, cost to reach a target, test metrics, where it went.

A distributed run and a single process produce the same structure (the file format is one),
with ``distributed`` saying how many processes took part.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from steelyard.data.quality import Leakage
from steelyard.evaluation.result import PredictionSummary
from steelyard.metrics import MetricValue
from steelyard.models.handle import ModelHandle
from steelyard.serialize import from_dict, to_dict
from steelyard.training.config import FinetuneConfig
from steelyard.units import Flops


@dataclass
class EvalPoint:
    """One validation during training."""

    step: int
    epoch: float
    samples: int
    seconds: float
    train_loss: float | None
    lr: float
    value: float
    improved: bool
    grad_norm_max: float | None = None


@dataclass
class TargetProgress:
    """What reaching ``metric`` ≥ ``target`` (≤ for perplexity) on validation cost.

    Steps, samples (global, all processes), wall seconds since the run started (data encoding
    and, for heads on frozen features, the embedding pass included) and counted training FLOPs;
    all None when the target was not reached.
    """

    metric: str
    target: float
    reached: bool
    step: int | None = None
    samples: int | None = None
    seconds: float | None = None
    flops: Flops | None = None
    epoch: float | None = None


@dataclass
class TrainingCost:
    """Counted training FLOPs: ``flops_per_sample`` × samples seen, plus a one-off feature pass.

    ``flops_per_sample`` is matrix-class work of one forward + backward counted at the dispatch
    level on a real training batch (``basis`` says which); ``feature_flops`` is the frozen
    encoder's forward over the training set when a head is trained on cached features.
    """

    flops_per_sample: Flops
    basis: str
    feature_flops: Flops
    samples_seen: int
    steps: int
    total_flops: Flops
    train_seconds: float
    eval_seconds: float


@dataclass
class DistributedInfo:
    """How many processes trained, over which backend, and a digest of each one's final weights."""

    world_size: int = 1
    backend: str | None = None
    per_process_batch: int = 0
    weight_digests: list[str] = field(default_factory=list)


@dataclass
class FinetuneResult:
    """Everything a fine-tuning run produced except the weights (those are in ``output``)."""

    model: str
    dataset: str
    data_source: str
    task: str
    mode: str
    optimizer: str
    lr: float
    label_names: list[str]
    sizes: dict[str, int]
    metric: str
    best_step: int
    best_validation: float
    stopped: str
    history: list[EvalPoint]
    target: TargetProgress | None
    cost: TrainingCost
    test: dict[str, MetricValue]
    predictions: PredictionSummary | None
    distributed: DistributedInfo
    config: FinetuneConfig
    output: str | None
    seconds: float
    notes: list[str] = field(default_factory=list)
    #: Test examples whose input is also in train or validation: the test metrics are optimistic.
    leakage: list[Leakage] = field(default_factory=list)
    #: The trained model, ready for :func:`steelyard.evaluation.evaluate` or ``profile`` (in-process
    #: runs only; not serialised, and None after a distributed run: load ``output`` instead).
    trained: ModelHandle | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: to_dict(getattr(self, f.name)) for f in fields(self) if f.name != "trained"}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FinetuneResult:
        return from_dict(cls, data)
