"""A study as typed data: every trial, the Pareto front and the answer under the study's selection rule.

The selection rule is stored with the study (``selection`` user attribute), so ``study show``
gives the answer the command that started it would give:

- ``{"primary": "latency", "constraints": [["drop", "max", 1.0]]}`` — ``optimize``: the lowest
  cost among the completed trials whose accuracy drop vs the original is at most ``max_drop``
  points; when none is, the nearest trials and what would have to give
  (:func:`steelyard.search.pareto.recommend`);
- ``{}`` — ``search``: the best trial on the first objective, ties broken by the next ones.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from steelyard.search.pareto import Candidate, Constraint, Objective, Recommendation, pareto_front, recommend
from steelyard.search.study import StudySpec
from steelyard.search.trials import failure_reason, retried_as, superseded


@dataclass
class TrialRow:
    number: int
    state: str
    params: dict[str, Any]
    recipe: str | None
    values: dict[str, float | None]
    metrics: dict[str, float]
    duration_s: float | None
    reason: str = ""
    worker: str | None = None
    on_front: bool = False


@dataclass
class Selection:
    chosen: int | None
    #: The answer and why (worded by :func:`steelyard.reporting.explain.explanation_text`).
    recommendation: Recommendation
    feasible: list[int] = field(default_factory=list)
    nearest: list[int] = field(default_factory=list)


@dataclass
class StudySummary:
    name: str
    spec: StudySpec
    storage: str
    counts: dict[str, int]
    rows: list[TrialRow]
    front: list[int]
    selection: Selection | None
    #: The original model's numbers on the search split (from the trials), e.g. {"accuracy": 0.97}.
    baseline: dict[str, Any] = field(default_factory=dict)

    @property
    def objectives(self) -> tuple[Objective, ...]:
        return self.spec.objectives

    def row(self, number: int) -> TrialRow:
        return next(r for r in self.rows if r.number == number)

    @property
    def best(self) -> TrialRow | None:
        if self.selection is None or self.selection.chosen is None:
            return None
        return self.row(self.selection.chosen)

    def to_dict(self) -> dict[str, Any]:
        from steelyard.serialize import to_dict

        spec = self.spec
        return {
            "study": self.name, "kind": spec.kind, "model": spec.model, "model_fingerprint": spec.fingerprint,
            "data": spec.data, "storage": self.storage,
            "objectives": [{"name": o.name, "direction": o.direction} for o in spec.objectives],
            "space": spec.space, "selection_rule": spec.selection, "baseline": self.baseline, "counts": self.counts,
            "front": self.front, "best": self.selection.chosen if self.selection else None,
            "recommendation": to_dict(self.selection.recommendation) if self.selection else None,
            "nearest": self.selection.nearest if self.selection else [],
            "trials": [to_dict(r) for r in self.rows],
        }


def candidate_name(number: int) -> str:
    return f"#{number}"


def _number(name: str) -> int:
    return int(name.lstrip("#"))


def constraints_of(selection: dict[str, Any]) -> list[Constraint]:
    return [Constraint(str(m), str(k), float(b)) for m, k, b in selection.get("constraints") or ()]  # type: ignore[arg-type]


def select(rows: list[TrialRow], objectives: tuple[Objective, ...],
           selection: dict[str, Any]) -> tuple[Selection | None, list[int]]:
    """The answer under ``selection`` and the Pareto front, from the completed rows."""
    done = [r for r in rows if r.state == "complete"]
    if not done:
        return None, []
    candidates = [Candidate(candidate_name(r.number), {**r.metrics, **r.values}) for r in done]
    front = [_number(n) for n in pareto_front(candidates, list(objectives)).front]
    constraints = constraints_of(selection)
    primary = selection.get("primary") or objectives[0].name
    if primary not in {o.name for o in objectives}:
        objectives = (*objectives, Objective(primary, "min"))
    rec: Recommendation = recommend(candidates, list(objectives), constraints, primary=primary)
    chosen = _number(rec.chosen) if rec.chosen else None
    return Selection(chosen, rec, [_number(n) for n in rec.feasible],
                     [_number(n) for n in rec.nearest]), front


def summarize(study: Any, spec: StudySpec, storage: str = "") -> StudySummary:
    """Read every trial of ``study`` (any worker's) into rows, the front and the answer."""
    trials = study.get_trials(deepcopy=False)
    replaced = superseded(trials)
    retries = retried_as(trials)
    names = [o.name for o in spec.objectives]
    rows = []
    for t in trials:
        values = dict(zip(names, t.values, strict=False)) if t.values else dict.fromkeys(names)
        duration = t.user_attrs.get("duration_s")
        if duration is None and t.datetime_start and t.datetime_complete:
            duration = (t.datetime_complete - t.datetime_start).total_seconds()
        rows.append(TrialRow(
            number=t.number, state=t.state.name.lower(), params=dict(t.params), recipe=t.user_attrs.get("recipe"),
            values=values, metrics=dict(t.user_attrs.get("metrics") or {}), duration_s=duration,
            reason=failure_reason(t, replaced, retries), worker=t.user_attrs.get("worker"),
        ))
    selection, front = select(rows, spec.objectives, spec.selection)
    for r in rows:
        r.on_front = r.number in front
    counts = dict(Counter(r.state for r in rows))
    # The original model's numbers, as the trials measured them next to their candidate (same split).
    baseline = next(({"accuracy": r.metrics["baseline"]} for r in rows if "baseline" in r.metrics), {})
    return StudySummary(spec.name, spec, storage, counts, rows, front, selection, baseline)
