"""A study on the console: trials, the Pareto front and the answer, each number in its own unit.

Compute lives in :mod:`steelyard.search.summary`; this module only formats.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from steelyard.reporting.explain import explanation_text
from steelyard.reporting.formatting import fmt_count, fmt_number, fmt_seconds, human
from steelyard.reporting.markup import escape
from steelyard.search.pareto import Candidate, pareto_front
from steelyard.search.pareto import Objective as ParetoObjective
from steelyard.search.summary import StudySummary, TrialRow, constraints_of

#: Extra trial metrics shown next to the objectives when a study has them.
EXTRA_COLUMNS = ("drop", "speedup")
_RELATIVE = ("latency", "energy")


def format_metric(name: str, value: float | None) -> str:
    """``accuracy`` 0.9731 → ``97.31%``; relative ``latency`` 0.41 → ``0.410×``; ``size`` in MiB ..."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if name in ("accuracy", "baseline", "agreement", "ci_low", "ci_high"):
        return f"{100 * value:.2f}%"
    if name == "drop":
        return f"{value:+.2f} pt"
    if name in _RELATIVE:
        return f"{value:.3f}×"
    if name in ("speedup", "size_ratio"):
        return f"{value:.2f}x"
    if name == "size":
        return human(value, "B", base=1024)
    if name == "flops":
        return human(value, "FLOP")
    if name == "params":
        return fmt_count(value)
    if name.endswith("_s"):
        return fmt_seconds(value)
    return fmt_number(value, 4)


def _columns(summary: StudySummary) -> list[str]:
    names = [o.name for o in summary.objectives]
    extra = [c for c in EXTRA_COLUMNS if c not in names and any(c in r.metrics for r in summary.rows)]
    return names + extra


def _value(row: TrialRow, name: str) -> float | None:
    if row.values.get(name) is not None:
        return row.values[name]
    return row.metrics.get(name)


def _what(row: TrialRow) -> str:
    if row.recipe is not None:
        return row.recipe or "(no step: the original)"
    return ", ".join(f"{k}={v}" for k, v in row.params.items())


def _duration(seconds: float | None) -> str:
    return "—" if seconds is None else fmt_seconds(float(seconds))


def trials_table(summary: StudySummary, rows: Sequence[TrialRow] | None = None, title: str = "trials") -> Any:
    from rich.table import Table

    cols = _columns(summary)
    table = Table(title=title, title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("state")
    table.add_column("recipe" if any(r.recipe is not None for r in summary.rows) else "parameters")
    for c in cols:
        table.add_column(c, justify="right")
    table.add_column("time", justify="right")
    table.add_column("note")
    best = summary.selection.chosen if summary.selection else None
    for r in rows if rows is not None else summary.rows:
        mark = "★ " if r.number == best else ("· " if r.on_front else "")
        table.add_row(f"{mark}{r.number}", r.state, escape(_what(r)), *(format_metric(c, _value(r, c)) for c in cols),
                      _duration(r.duration_s), r.reason)
    return table


def render_summary(summary: StudySummary, console: Any, *, all_trials: bool = True) -> None:
    """Header, trials (★ the answer, · on the front), the front, and the answer with its reason."""
    spec = summary.spec
    counts = ", ".join(f"{n} {state}" for state, n in sorted(summary.counts.items())) or "no trials"
    console.print(f"study {escape(summary.name)} ({spec.kind}) · model {escape(spec.model)} · "
                  f"data {escape(spec.data or '—')} · "
                  f"objectives {', '.join(f'{o.name}:{o.direction}' for o in summary.objectives)} · {counts}",
                  highlight=False)
    if summary.baseline:
        numbers = ", ".join(f"{k} {format_metric(k, v)}" for k, v in summary.baseline.items())
        console.print(f"original model: {numbers} (validation split, measured in each trial)", highlight=False)
    if summary.storage:
        console.print(f"[dim]storage {escape(summary.storage)}[/dim]", highlight=False)
    if all_trials and summary.rows:
        console.print(trials_table(summary))
    front = [summary.row(n) for n in summary.front]
    if front:
        first = summary.objectives[0]
        front.sort(key=lambda r: (r.values.get(first.name) or 0.0) * (-1 if first.direction == "max" else 1))
        console.print(trials_table(summary, front, f"Pareto front ({len(front)} of "
                                                   f"{summary.counts.get('complete', 0)} completed)"))
    render_answer(summary, console)


def render_answer(summary: StudySummary, console: Any) -> None:
    sel = summary.selection
    if sel is None:
        console.print("no trial has completed yet")
        return
    if sel.chosen is None:
        console.print(f"[bold]no completed trial meets the rule[/bold] ({rule_text(summary)}). {answer_text(summary)}",
                      highlight=False)
        return
    best = summary.row(sel.chosen)
    console.print(f"[bold]best[/bold] ({rule_text(summary)}): trial {best.number} · {escape(_what(best))}",
                  highlight=False)
    numbers = " · ".join(f"{c} {format_metric(c, _value(best, c))}" for c in _columns(summary))
    console.print(f"  {numbers}", highlight=False)
    tested = tests_text(best.metrics)
    if tested:
        console.print(f"  {tested}", highlight=False)


def tests_text(metrics: dict[str, float]) -> str:
    """What the trial's drop and speedup are worth: ``drop: no significant change (p=0.62) · speedup 1.84x faster
    [1.70, 1.95]``, from the paired test and the interval a recipe trial records (empty for other studies)."""
    from steelyard.reporting.statistics import fmt_p, speedup_text

    bits = []
    if "drop_p" in metrics and "drop" in metrics:
        significant = metrics["drop_p"] < 0.05
        word = (f"{'dropped' if metrics['drop'] > 0 else 'rose'} {abs(metrics['drop']):.2f} points"
                if significant else "no significant change")
        bits.append(f"headline metric {word} ({fmt_p(metrics['drop_p'])}, paired test on the same examples)")
    if "speedup_low" in metrics and "speedup" in metrics:
        bits.append("speedup " + speedup_text(metrics["speedup"], metrics["speedup_low"], metrics["speedup_high"],
                                              int(metrics.get("speedup_rounds", 0))))
    return " · ".join(bits)


def rule_text(summary: StudySummary) -> str:
    """The study's selection rule: ``lowest latency with drop ≤ 1``; ``highest accuracy``."""
    selection = summary.spec.selection
    primary = selection.get("primary") or summary.objectives[0].name
    direction = next((o.direction for o in summary.objectives if o.name == primary), "min")
    text = f"{'highest' if direction == 'max' else 'lowest'} {primary}"
    constraints = constraints_of(selection)
    if constraints:
        text += " with " + " and ".join(f"{k.metric} {'≤' if k.kind == 'max' else '≥'} {fmt_number(k.bound)}"
                                        for k in constraints)
    return text


def answer_text(summary: StudySummary) -> str:
    """Why the study's answer is what it is (or why there is none), each number in its metric's unit."""
    if summary.selection is None:
        return "no trial completed"
    return explanation_text(summary.selection.recommendation, format_metric)


def nearest_rows(summary: StudySummary) -> list[TrialRow]:
    sel = summary.selection
    return [summary.row(n) for n in sel.nearest] if sel is not None else []


def status_text(rows_metrics: list[dict[str, float]], primary: str, direction: str,
                feasible: Callable[[dict[str, float]], bool] | None = None, label: str = "best") -> str:
    """Progress-bar words: the best value so far (among feasible rows when a rule is given)."""
    pool = [r for r in rows_metrics if primary in r and (feasible is None or feasible(r))]
    if not pool:
        return "no trial within the budget yet" if feasible is not None else "no trial completed yet"
    pick = (max if direction == "max" else min)(r[primary] for r in pool)
    return f"{label} {primary} {format_metric(primary, pick)}"


def optimize_status(objective: str, max_drop: float) -> Callable[[Sequence[Any], Any], str]:
    """Progress-bar words of ``optimize``: the best cost within the drop budget so far, and the trials completed."""
    def status(trials: Sequence[Any], study: Any) -> str:
        from steelyard.search.runner import completed_metrics

        rows = completed_metrics(trials, ["accuracy", objective])
        within = status_text(rows, objective, "min", lambda r: r.get("drop", float("inf")) <= max_drop,
                             f"within {fmt_number(max_drop)} pt:")
        return within + f" · {len(rows)} completed"

    return status


def default_status(trials: Sequence[Any], study: Any) -> str:
    """Progress-bar words of a search: ``best accuracy 91.20% · front 3`` from the completed trials."""
    from steelyard.search.runner import completed_metrics, objective_names

    names = objective_names(study)
    directions = ["max" if d.name == "MAXIMIZE" else "min" for d in study.directions]
    rows = completed_metrics(trials, names)
    if not rows:
        return "no trial completed yet"
    first, direction = names[0], directions[0]
    best = (max if direction == "max" else min)(r[first] for r in rows)
    text = f"best {first} {format_metric(first, best)}"
    if len(names) > 1:
        objectives = [ParetoObjective(n, d) for n, d in zip(names, directions, strict=True)]  # type: ignore[arg-type]
        front = pareto_front([Candidate(str(i), r) for i, r in enumerate(rows)], objectives).front
        text += f" · front {len(front)}"
    return text
