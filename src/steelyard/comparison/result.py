"""Typed results of a comparison; rendering lives in steelyard.reporting."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from steelyard.comparison.config import CompareConfig
from steelyard.profiling.report import CostReport, Environment, LatencyStats, TrainingEstimate
from steelyard.search.pareto import Objective, Recommendation
from steelyard.serialize import from_dict, to_dict
from steelyard.units import Bytes, Joules, KilowattHours, Seconds, Usd


@dataclass
class Score:
    """A task metric with its bootstrap interval (mirrors steelyard.metrics.MetricValue)."""

    name: str
    value: float
    ci_low: float
    ci_high: float
    n: int
    confidence: float = 0.95
    higher_is_better: bool = True


@dataclass
class CandidateResult:
    label: str
    model: str
    report: CostReport
    scores: list[Score] = field(default_factory=list)
    #: Latency from the interleaved rounds (A B A B ...) on this machine; None when config only.
    interleaved: LatencyStats | None = None
    #: Ratio of interleaved medians, first candidate / this one (> 1: faster than the first).
    speedup_vs_first: float | None = None
    training: TrainingEstimate | None = None
    #: The interleaved timings themselves, seconds per batch (for distribution plots).
    samples: list[float] = field(default_factory=list)

    @property
    def score(self) -> Score | None:
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
