"""Typed results of a comparison; rendering lives in steelyard.reporting."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from steelyard.comparison.config import CompareConfig
from steelyard.metrics import MetricValue
from steelyard.profiling.report import CostReport, Environment, LatencyStats, TrainingEstimate
from steelyard.search.pareto import Objective, Recommendation
from steelyard.serialize import from_dict, to_dict
from steelyard.significance import PairedChange
from steelyard.units import Bytes, Joules, KilowattHours, Seconds, Usd


@dataclass
class CandidateResult:
    label: str
    model: str
    report: CostReport
    #: Task metrics with bootstrap intervals, the headline first.
    scores: list[MetricValue] = field(default_factory=list)
    #: Latency from the interleaved rounds (A B A B ...) on this machine; None when config only.
    interleaved: LatencyStats | None = None
    #: Ratio of interleaved medians, first candidate / this one (> 1: faster than the first).
    speedup_vs_first: float | None = None
    #: Bootstrap interval (95%, over the paired interleaved rounds) of ``speedup_vs_first``.
    speedup_ci: tuple[float, float] | None = None
    training: TrainingEstimate | None = None
    #: Each metric against the first candidate on the same examples, with its paired test (McNemar for
    #: accuracy, a paired bootstrap otherwise); empty for the first and without data.
    changes: dict[str, PairedChange] = field(default_factory=dict)

    @property
    def samples(self) -> list[float]:
        """The interleaved timings themselves, seconds per batch (for distribution plots)."""
        return self.interleaved.samples if self.interleaved is not None else []

    @property
    def score(self) -> MetricValue | None:
        return self.scores[0] if self.scores else None


@dataclass
class Option:
    """One candidate deployed on one hardware target: every number the table and the front use."""

    candidate: str
    hardware: str
    display_name: str
    latency: Seconds
    #: "measured" (interleaved here) | "projected-measured-efficiency" | "projected-assumed-efficiency"
    latency_source: str
    throughput: float
    memory: Bytes
    device_memory: Bytes
    fits_inference: bool
    fits_finetune: bool
    devices_for_inference: int
    cost_per_1k: Usd | None
    energy_per_inference: Joules
    finetune_hours: float | None
    finetune_cost: Usd | None
    finetune_energy: KilowattHours | None
    serving_cost: Usd | None
    lifetime_cost: Usd | None
    suggestions: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.candidate} @ {self.hardware}"


@dataclass
class Comparison:
    config: CompareConfig
    candidates: list[CandidateResult]
    hardware: list[str]
    options: list[Option]
    objectives: list[Objective]
    recommendation: Recommendation
    environment: Environment
    created_at: str
    #: Model / data arguments that were local paths → absolute paths (for the reproduce command; see
    #: :func:`steelyard.reporting.commands.compare_command`). Runs stored before this field have none.
    paths: dict[str, str] = field(default_factory=dict)

    def candidate(self, label: str) -> CandidateResult:
        return next(c for c in self.candidates if c.label == label)

    def option(self, candidate: str, hardware: str) -> Option:
        return next(o for o in self.options if o.candidate == candidate and o.hardware == hardware)

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Comparison:
        return from_dict(cls, data)
