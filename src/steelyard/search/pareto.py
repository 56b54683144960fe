"""Pareto fronts and constrained recommendations over candidates with any number of objectives.

Pure functions of plain numbers (no torch, no steelyard imports), so search, compare and compress
share them and tests can feed hand-made sets.

- A candidate *dominates* another when it is at least as good on every objective and strictly
  better on one. Candidates with identical values tie: neither dominates, both stay on the front,
  and :attr:`ParetoResult.ties` groups them.
- A missing value (None or NaN) counts as the worst possible on that objective: nothing is known
  to be good there, so it cannot win on it.
- :func:`recommend` keeps the candidates that meet every constraint, takes the best on the
  primary objective (ties broken by the next objectives in order, then by input order) and
  records why as data (:class:`Explanation`): which constraints bind (they rule out a candidate
  that would otherwise have won), by how much, what it beat, and, when nothing is feasible, how
  far the nearest candidates miss and how much each constraint would have to give. Wording it is
  :mod:`steelyard.reporting.explain`'s job.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

Direction = Literal["min", "max"]


@dataclass(frozen=True)
class Objective:
    name: str
    direction: Direction = "min"
    label: str = ""

    def __post_init__(self) -> None:
        if self.direction not in ("min", "max"):
            raise ValueError(f"objective {self.name!r}: direction must be 'min' or 'max', got {self.direction!r}")

    @property
    def title(self) -> str:
        return self.label or self.name


@dataclass(frozen=True)
class Constraint:
    """``metric <= bound`` (kind "max") or ``metric >= bound`` (kind "min")."""

    metric: str
    kind: Literal["max", "min"]
    bound: float
    label: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("max", "min"):
            raise ValueError(f"constraint on {self.metric!r}: kind must be 'max' or 'min', got {self.kind!r}")

    @property
    def title(self) -> str:
        return self.label or f"{self.kind} {self.metric}"

    def satisfied(self, value: float | None) -> bool:
        if _missing(value):
            return False
        return value <= self.bound if self.kind == "max" else value >= self.bound  # type: ignore[operator]

    def miss(self, value: float | None) -> float | None:
        """How far ``value`` is on the wrong side of the bound (0 when satisfied, None when unknown)."""
        if _missing(value):
            return None
        gap = value - self.bound if self.kind == "max" else self.bound - value  # type: ignore[operator]
        return max(0.0, gap)

    def relative_miss(self, value: float | None) -> float:
        """The miss as a fraction of the bound (infinite when the value is unknown)."""
        gap = self.miss(value)
        if gap is None:
            return math.inf
        return gap / abs(self.bound) if self.bound else (math.inf if gap else 0.0)


@dataclass(frozen=True)
class Requirement:
    """A failed hard requirement that is not a constraint on an objective (fitting in memory): need vs have."""

    #: What fails, e.g. "does not fit in t4 memory".
    what: str
    #: The metric ``needed`` and ``available`` are amounts of (for formatting), e.g. "memory".
    metric: str
    needed: float
    available: float


@dataclass(frozen=True)
class Candidate:
    name: str
    values: dict[str, float | None]
    #: Optional (low, high) confidence intervals per metric, carried into the explanation.
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: Hard requirements that are not thresholds: name ("fits in memory") → why it fails (a reason or a
    #: :class:`Requirement` with numbers), or None when met.
    blockers: dict[str, str | Requirement | None] = field(default_factory=dict)


@dataclass
class ParetoResult:
    objectives: list[Objective]
    front: list[str]
    #: name → names of the candidates that dominate it (empty for the front).
    dominated_by: dict[str, list[str]]
    #: name → names it dominates.
    dominates: dict[str, list[str]]
    #: groups (two or more) of candidates with identical values on every objective.
    ties: list[list[str]]
    #: name → front rank (0 = the front, 1 = the front once rank 0 is removed, ...).
    rank: dict[str, int]

    def on_front(self, name: str) -> bool:
        return not self.dominated_by.get(name)


@dataclass
class Miss:
    constraint: str
    metric: str
    kind: str
    bound: float
    value: float | None
    #: absolute gap on the wrong side (None: value unknown).
    gap: float | None
    #: gap as a fraction of the bound (None: unknown, or a requirement rather than a threshold).
    relative: float | None
    #: for a failed requirement: why it fails (with a :class:`Requirement`, ``value`` is the amount needed and
    #: ``bound`` the amount available).
    detail: str = ""


@dataclass
class Relaxation:
    """Loosening one constraint alone to ``needed`` would admit ``admits``."""

    constraint: str
    metric: str
    kind: str
    bound: float
    needed: float
    admits: str


@dataclass
class Reading:
    """One candidate's value on one metric (None: unknown), with its confidence interval when known."""

    candidate: str
    metric: str
    value: float | None
    interval: tuple[float, float] | None = None


@dataclass
class Met:
    """A constraint the chosen candidate meets, and its value there."""

    constraint: str
    metric: str
    kind: str
    bound: float
    reading: Reading


@dataclass
class RunnerUp:
    """The best feasible candidate after the choice, and how the choice beat it."""

    name: str
    #: "all": identical on every objective (input order decided); "primary": tied on the primary objective and
    #: beaten on ``basis``; "none": beaten on the primary objective.
    tie: Literal["all", "primary", "none"]
    #: Title of the objective that separated them.
    basis: str
    #: The runner-up on the primary objective.
    reading: Reading
    #: Both have intervals on the primary objective and they overlap: the data does not clearly separate them.
    intervals_overlap: bool = False


@dataclass
class Excluded:
    """A candidate ranked above the choice that fails constraints: its primary value and every miss."""

    name: str
    reading: Reading
    misses: list[Miss]


@dataclass
class Headroom:
    """The constraint the choice is closest to: slack left before the bound, as a fraction of the bound."""

    constraint: str
    fraction: float


@dataclass
class Explanation:
    """Why the recommendation is what it is, as data (worded by :mod:`steelyard.reporting.explain`).

    With nothing feasible only the objective fields are set; the nearest candidates, their misses
    and the relaxations are on the :class:`Recommendation` itself.
    """

    chosen: str | None
    primary: str
    primary_title: str
    direction: Direction
    #: Every constraint and the chosen candidate's value on it (empty: no constraints were given).
    met: list[Met] = field(default_factory=list)
    n_feasible: int = 0
    #: The choice on the primary objective.
    reading: Reading | None = None
    runner_up: RunnerUp | None = None
    #: Better-ranked candidates that fail constraints, best first.
    excluded: list[Excluded] = field(default_factory=list)
    #: Some binding constraint excludes a better candidate on its own (else they bind only jointly).
    sole: bool = False
    #: With constraints and none binding: the tightest one.
    tightest: Headroom | None = None
    #: Candidates the choice dominates.
    dominates: list[str] = field(default_factory=list)
    #: When the choice is not on the Pareto front: the (infeasible) candidates dominating it.
    dominated_by: list[str] = field(default_factory=list)
    #: Candidates that failed the constraints.
    n_failed: int = 0


@dataclass
class Recommendation:
    chosen: str | None
    feasible: list[str]
    infeasible: dict[str, list[Miss]]
    #: Constraints whose removal alone would let a better candidate win; when every better candidate
    #: fails several constraints, all of those (they bind jointly).
    binding: list[str]
    #: each candidate ranked above the choice but infeasible → the constraints it fails.
    excluded_better: dict[str, list[str]]
    #: Nearest infeasible candidates (closest first) when nothing is feasible.
    nearest: list[str]
    relaxations: list[Relaxation]
    pareto: ParetoResult
    primary: str
    #: Structured reasons; a plain string only in runs stored before explanations were data.
    explanation: Explanation | str


# -- helpers -----------------------------------------------------------------------------------
def _missing(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _score(value: float | None, direction: Direction) -> float:
    """Larger is better; a missing value is the worst possible."""
    if _missing(value):
        return -math.inf
    return float(value) if direction == "max" else -float(value)  # type: ignore[arg-type]


def _vector(c: Candidate, objectives: Sequence[Objective]) -> tuple[float, ...]:
    return tuple(_score(c.values.get(o.name), o.direction) for o in objectives)


def dominates(a: Candidate, b: Candidate, objectives: Sequence[Objective]) -> bool:
    va, vb = _vector(a, objectives), _vector(b, objectives)
    return all(x >= y for x, y in zip(va, vb, strict=True)) and any(x > y for x, y in zip(va, vb, strict=True))


def _check(candidates: Sequence[Candidate], objectives: Sequence[Objective]) -> None:
    if not objectives:
        raise ValueError("at least one objective is needed")
    names = [c.name for c in candidates]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"candidate names must be unique: {', '.join(dupes)}")


def pareto_front(candidates: Sequence[Candidate], objectives: Sequence[Objective]) -> ParetoResult:
    """Non-dominated candidates (input order kept), who dominates whom, ties and front ranks."""
    _check(candidates, objectives)
    vectors = {c.name: _vector(c, objectives) for c in candidates}
    dominated_by: dict[str, list[str]] = {c.name: [] for c in candidates}
    beats: dict[str, list[str]] = {c.name: [] for c in candidates}
    for a in candidates:
        for b in candidates:
            if a is not b and dominates(a, b, objectives):
                dominated_by[b.name].append(a.name)
                beats[a.name].append(b.name)
    groups: dict[tuple[float, ...], list[str]] = {}
    for c in candidates:
        groups.setdefault(vectors[c.name], []).append(c.name)
    ties = [names for names in groups.values() if len(names) > 1]
    rank: dict[str, int] = {}
    remaining = [c for c in candidates]
    level = 0
    while remaining:
        layer = [c for c in remaining if not any(dominates(o, c, objectives) for o in remaining if o is not c)]
        for c in layer:
            rank[c.name] = level
        remaining = [c for c in remaining if c.name not in rank]
        level += 1
    return ParetoResult(
        objectives=list(objectives),
        front=[c.name for c in candidates if not dominated_by[c.name]],
        dominated_by=dominated_by,
        dominates=beats,
        ties=ties,
        rank=rank,
    )


def _misses(c: Candidate, constraints: Sequence[Constraint]) -> list[Miss]:
    out = []
    for k in constraints:
        value = c.values.get(k.metric)
        if not k.satisfied(value):
            rel = k.relative_miss(value)
            out.append(Miss(k.title, k.metric, k.kind, k.bound, None if _missing(value) else float(value),  # type: ignore[arg-type]
                            k.miss(value), rel if math.isfinite(rel) else None))
    for name, reason in c.blockers.items():
        if isinstance(reason, Requirement):
            out.append(Miss(name, reason.metric, "requirement", reason.available, reason.needed,
                            max(0.0, reason.needed - reason.available), None, reason.what))
        elif reason:
            out.append(Miss(name, name, "requirement", 0.0, None, None, None, reason))
    return out


def _order_key(c: Candidate, objectives: Sequence[Objective], index: int) -> tuple:
    return (*(-s for s in _vector(c, objectives)), index)


def recommend(
    candidates: Sequence[Candidate],
    objectives: Sequence[Objective],
    constraints: Sequence[Constraint] = (),
    *,
    primary: str | None = None,
    nearest: int = 3,
) -> Recommendation:
    """Pick the best feasible candidate on ``primary`` (default: the first objective) and record why."""
    _check(candidates, objectives)
    if not candidates:
        raise ValueError("no candidates to recommend from")
    by_name = {o.name: o for o in objectives}
    primary = primary or objectives[0].name
    if primary not in by_name:
        raise ValueError(f"primary objective {primary!r} is not one of {', '.join(by_name)}")
    # The primary objective decides first, then the others in their order.
    ordered_obj = [by_name[primary], *[o for o in objectives if o.name != primary]]
    index = {c.name: i for i, c in enumerate(candidates)}
    pareto = pareto_front(candidates, objectives)
    misses = {c.name: _misses(c, constraints) for c in candidates}
    feasible = [c for c in candidates if not misses[c.name]]
    infeasible = {n: m for n, m in misses.items() if m}

    def ranked(pool: Sequence[Candidate]) -> list[Candidate]:
        return sorted(pool, key=lambda c: _order_key(c, ordered_obj, index[c.name]))

    if feasible:
        best = ranked(feasible)[0]
        # Candidates that rank above the choice but fail a constraint: those constraints bind.
        excluded = {
            c.name: [m.constraint for m in misses[c.name]]
            for c in ranked(candidates)
            if misses[c.name] and _order_key(c, ordered_obj, index[c.name]) < _order_key(best, ordered_obj,
                                                                                          index[best.name])
        }
        binding = binding_constraints(excluded)
        why = _explain_choice(best, feasible, candidates, ranked, ordered_obj, constraints, excluded, misses,
                              pareto)
        return Recommendation(best.name, [c.name for c in feasible], infeasible, binding, excluded, [], [],
                              pareto, primary, why)

    near = sorted(candidates, key=lambda c: (sum(1e9 if m.relative is None else m.relative for m in misses[c.name]),
                                             len(misses[c.name]), index[c.name]))[:nearest]
    relax = _relaxations(candidates, constraints, misses, ranked)
    p = ordered_obj[0]
    why = Explanation(None, p.name, p.title, p.direction, n_failed=len(candidates))
    return Recommendation(None, [], infeasible, [], {}, [c.name for c in near], relax, pareto, primary, why)


def binding_constraints(excluded: dict[str, list[str]]) -> list[str]:
    """Constraints that alone exclude a better candidate; if none does, all that exclude one (jointly)."""
    sole = [ks[0] for ks in excluded.values() if len(ks) == 1]
    if sole:
        return list(dict.fromkeys(sole))
    return list(dict.fromkeys(k for ks in excluded.values() for k in ks))


def _relaxations(candidates: Sequence[Candidate], constraints: Sequence[Constraint], misses: dict[str, list[Miss]],
                 ranked: Callable[[Sequence[Candidate]], list[Candidate]]) -> list[Relaxation]:
    """For each constraint: the loosest bound it would need, alone, to admit some candidate."""
    out = []
    for k in constraints:
        pool = [c for c in candidates
                if misses[c.name] and all(m.constraint == k.title for m in misses[c.name])
                and not _missing(c.values.get(k.metric))]
        if not pool:
            continue
        pick = (min if k.kind == "max" else max)(pool, key=lambda c: float(c.values[k.metric]))  # type: ignore[arg-type]
        out.append(Relaxation(k.title, k.metric, k.kind, k.bound, float(pick.values[k.metric]), pick.name))  # type: ignore[arg-type]
    return out


def _headroom(k: Constraint, value: float | None) -> float:
    """Slack left before the bound, as a fraction of the bound."""
    if _missing(value) or not k.bound:
        return math.inf
    gap = k.bound - value if k.kind == "max" else value - k.bound  # type: ignore[operator]
    return gap / abs(k.bound)


def _reading(c: Candidate, metric: str) -> Reading:
    value = c.values.get(metric)
    return Reading(c.name, metric, None if _missing(value) else float(value),  # type: ignore[arg-type]
                   c.intervals.get(metric))


def _explain_choice(best: Candidate, feasible: list[Candidate], candidates: Sequence[Candidate],
                    ranked: Callable[[Sequence[Candidate]], list[Candidate]], ordered_obj: list[Objective],
                    constraints: Sequence[Constraint], excluded: dict[str, list[str]],
                    misses: dict[str, list[Miss]], pareto: ParetoResult) -> Explanation:
    p = ordered_obj[0]
    why = Explanation(best.name, p.name, p.title, p.direction, n_feasible=len(feasible),
                      reading=_reading(best, p.name), n_failed=len(candidates) - len(feasible))
    why.met = [Met(k.title, k.metric, k.kind, k.bound, _reading(best, k.metric)) for k in constraints]
    others = [c for c in ranked(feasible) if c is not best]
    if others:
        runner = others[0]
        if _vector(runner, ordered_obj) == _vector(best, ordered_obj):
            why.runner_up = RunnerUp(runner.name, "all", p.title, _reading(runner, p.name))
        elif _vector(runner, [p]) == _vector(best, [p]):
            basis = next((o.title for o in ordered_obj[1:] if _vector(runner, [o]) != _vector(best, [o])), p.title)
            why.runner_up = RunnerUp(runner.name, "primary", basis, _reading(runner, p.name))
        else:
            overlap = False
            if p.name in best.intervals and p.name in runner.intervals:
                lo_b, hi_b = best.intervals[p.name]
                lo_r, hi_r = runner.intervals[p.name]
                overlap = lo_b <= hi_r and lo_r <= hi_b
            why.runner_up = RunnerUp(runner.name, "none", p.title, _reading(runner, p.name), overlap)
    by_name = {c.name: c for c in candidates}
    why.excluded = [Excluded(name, _reading(by_name[name], p.name), misses[name]) for name in excluded]
    why.sole = any(len(ks) == 1 for ks in excluded.values())
    if constraints and not excluded:
        slack = sorted(((_headroom(k, best.values.get(k.metric)), k) for k in constraints
                        if not _missing(best.values.get(k.metric))), key=lambda t: t[0])
        slack = [(room, k) for room, k in slack if math.isfinite(room)]
        why.tightest = Headroom(slack[0][1].title, slack[0][0]) if slack else None
    why.dominates = list(pareto.dominates.get(best.name, []))
    if not pareto.on_front(best.name):
        why.dominated_by = list(pareto.dominated_by[best.name])
    return why
