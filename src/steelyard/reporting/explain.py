"""A recommendation's reasons in English: the structured :class:`~steelyard.search.pareto.Explanation` worded.

:func:`steelyard.search.pareto.recommend` records which constraints bind, by how much and against
which candidates as numbers; this module is the only place those numbers become words. Each
caller passes a formatter for its metrics (seconds, bytes, percentages ...); without one, numbers
are shown to four significant digits.
"""

from __future__ import annotations

from collections.abc import Callable

from steelyard.reporting.formatting import fmt_number
from steelyard.search.pareto import Explanation, Miss, Reading, Recommendation

#: ``formatter(metric, value)`` → the value as shown, e.g. ("latency", 0.05) → "50 ms".
Formatter = Callable[[str, float], str]


def plain_number(metric: str, value: float) -> str:
    """The default formatter: four significant digits, whatever the metric."""
    return fmt_number(value, 4)


def _sign(kind: str) -> str:
    return "≤" if kind == "max" else "≥"


def _reading(r: Reading, fmt: Formatter) -> str:
    if r.value is None:
        return "unknown"
    text = fmt(r.metric, r.value)
    if r.interval is not None:
        lo, hi = r.interval
        text += f" [{fmt(r.metric, lo)}, {fmt(r.metric, hi)}]"
    return text


def miss_text(m: Miss, fmt: Formatter = plain_number) -> str:
    """``latency 80 vs ≤ 50, 60% over``; a failed requirement by its reason (and need vs have)."""
    if m.kind == "requirement":
        if m.value is not None:
            return f"{m.detail} ({fmt(m.metric, m.value)} needed, {fmt(m.metric, m.bound)} usable)"
        return m.detail or m.constraint
    if m.value is None:
        return f"{m.metric} unknown (needs {_sign(m.kind)} {fmt(m.metric, m.bound)})"
    over = f", {m.relative:.0%} {'over' if m.kind == 'max' else 'under'}" if m.relative is not None else ""
    return f"{m.metric} {fmt(m.metric, m.value)} vs {_sign(m.kind)} {fmt(m.metric, m.bound)}{over}"


def explanation_text(rec: Recommendation, fmt: Formatter = plain_number) -> str:
    """The recommendation's reasons as one paragraph (a string stored by an older run is returned as it is)."""
    why = rec.explanation
    if isinstance(why, str):
        return why
    return _choice(rec, why, fmt) if why.chosen is not None else _none(rec, fmt)


def _choice(rec: Recommendation, why: Explanation, fmt: Formatter) -> str:
    title = why.primary_title
    parts = []
    if why.met:
        met = "; ".join(f"{k.constraint} {_sign(k.kind)} {fmt(k.metric, k.bound)}: {_reading(k.reading, fmt)}"
                        for k in why.met)
        parts.append(f"{why.chosen} is recommended: it meets every constraint ({met}).")
    else:
        parts.append(f"{why.chosen} is recommended (no constraints were given).")
    best = _reading(why.reading, fmt) if why.reading is not None else "unknown"
    r = why.runner_up
    if r is None:
        parts.append(f"It is the only candidate that meets them; it has {title} {best}.")
    elif r.tie == "all":
        parts.append(f"It ties with {r.name} on every objective and was listed first.")
    else:
        word = "highest" if why.direction == "max" else "lowest"
        versus = (f", tied with {r.name} and ahead of it on {r.basis}" if r.tie == "primary" else
                  f"; the runner-up {r.name} has {_reading(r.reading, fmt)}")
        parts.append(f"Of the {why.n_feasible} feasible candidates it has the {word} {title} ({best}){versus}.")
        if r.intervals_overlap:
            parts.append(f"The confidence intervals of the two overlap, so on this data {title} does not "
                         f"clearly separate them.")
    if why.excluded:
        bits = [f"{e.name} ({title} {_reading(e.reading, fmt)}) fails "
                + " and ".join(miss_text(m, fmt) for m in e.misses) for e in why.excluded[:2]]
        if len(why.excluded) > 2:
            bits.append(f"and {len(why.excluded) - 2} more")
        binding = rec.binding
        if why.sole:
            head = (f"Binding constraint{'s' if len(binding) > 1 else ''}: {', '.join(binding)} — relaxing "
                    f"{'any one of them' if len(binding) > 1 else 'it'} alone would let a better candidate win")
        else:
            head = (f"Binding constraints, jointly: {', '.join(binding)} — every better candidate fails more than "
                    "one")
        parts.append(head + ": " + "; ".join(bits) + ".")
    elif why.met:
        tight = (f" The tightest is {why.tightest.constraint} ({why.tightest.fraction:.0%} headroom)."
                 if why.tightest is not None else "")
        parts.append(f"No constraint binds: it would be chosen without them.{tight}")
    if why.dominates:
        beaten = why.dominates
        shown = ", ".join(beaten[:3]) + (f" and {len(beaten) - 3} more" if len(beaten) > 3 else "")
        parts.append(f"It dominates {shown} (at least as good on every objective, better on one).")
    if why.dominated_by:
        parts.append(f"It is not on the Pareto front (dominated by {', '.join(why.dominated_by)}, "
                     "which fail the constraints).")
    if why.n_failed and not why.excluded:
        parts.append(f"{why.n_failed} candidate{'s' if why.n_failed > 1 else ''} failed the constraints.")
    return " ".join(parts)


def _none(rec: Recommendation, fmt: Formatter) -> str:
    misses = rec.infeasible
    parts = ["No candidate meets every constraint."]
    rows = [f"{name} misses {' and '.join(miss_text(m, fmt) for m in misses[name])}" for name in rec.nearest]
    parts.append("Nearest: " + " | ".join(rows) + ".")
    if rec.relaxations:
        bits = [f"{r.constraint} to {_sign(r.kind)} {fmt(r.metric, r.needed)} (admits {r.admits})"
                for r in rec.relaxations]
        parts.append("What would have to give (one constraint alone): relax " + ", or ".join(bits) + ".")
        return " ".join(parts)
    hard = any(m.kind == "requirement" for ms in misses.values() for m in ms)
    parts.append("No single constraint, relaxed alone, admits a candidate: at least two would have to give"
                 + (", or a hard requirement (such as fitting in memory) fails." if hard else "."))
    if rec.nearest:
        first = rec.nearest[0]
        needs = [f"{m.constraint} {_sign(m.kind)} {fmt(m.metric, m.value)}"
                 for m in misses[first] if m.kind != "requirement" and m.value is not None]
        if needs and len(needs) == len(misses[first]):
            parts.append(f"Admitting the nearest, {first}, needs {' and '.join(needs)}.")
    return " ".join(parts)
