"""Typed results of an evaluation: metrics with confidence intervals and what was predicted."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from steelyard.data.quality import Leakage
from steelyard.metrics import MetricValue
from steelyard.serialize import from_dict, to_dict


@dataclass
class PredictionSummary:
    """Where a classifier's predictions went: counts, per-class recall, confusion matrix.

    ``confusion[i][j]`` counts examples of true class ``i`` predicted as ``j`` (label order of
    ``label_names``); ``mean_confidence`` is the average top probability, which next to accuracy
    says whether the model is over- or under-confident.
    """

    label_names: list[str]
    true_counts: dict[str, int]
    predicted_counts: dict[str, int]
    recall: dict[str, float | None]
    confusion: list[list[int]]
    mean_confidence: float


@dataclass
class LMSummary:
    """What a perplexity was measured on: tokens predicted, blocks and block length, and the units its
    interval resamples (``unit``: "documents", or "blocks" when there were too few documents; ``units``)."""

    tokens: int
    blocks: int
    block_size: int
    unit: str = "blocks"
    units: int = 0


@dataclass
class EvaluationResult:
    """A model's quality on one split of a dataset, with bootstrap 95% intervals."""

    model: str
    dataset: str
    data_source: str
    split: str
    task: str
    n: int
    metrics: dict[str, MetricValue]
    seconds: float
    examples_per_second: float
    batch_size: int
    max_length: int | None = None
    predictions: PredictionSummary | None = None
    lm: LMSummary | None = None
    notes: list[str] = field(default_factory=list)
    #: Per-example outputs (:class:`steelyard.evaluation.predict.Outputs`: labels in dataset ids, probabilities
    #: in dataset class order; NLL per block), kept in memory so two models on the same examples can be tested
    #: paired (:mod:`steelyard.significance`); not written to JSON.
    outputs: Any = field(default=None, repr=False, compare=False)
    #: Scored examples whose input is also in an earlier split (test in train): the score is optimistic.
    leakage: list[Leakage] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = to_dict(self)
        data.pop("outputs", None)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvaluationResult:
        return from_dict(cls, data)

    def metric(self, name: str) -> MetricValue:
        from steelyard.metrics import resolve_metric

        return self.metrics[resolve_metric(name)]
