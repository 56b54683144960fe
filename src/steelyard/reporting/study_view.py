"""The report part of a search or optimize study: the answer, the trade-off chart and every trial.

Built from the stored :meth:`StudySummary.to_dict` payload, so ``steelyard report <run id>``
draws a study recorded by any worker, long after the search ended.
"""

from __future__ import annotations

from typing import Any

from steelyard.reporting.document import Figure, Part, Section, Table
from steelyard.reporting.formatting import fmt_number, fmt_seconds


def _value(row: dict[str, Any], name: str) -> float | None:
    value = (row.get("values") or {}).get(name)
    return value if value is not None else (row.get("metrics") or {}).get(name)


def _fmt(value: float | None) -> str:
    return fmt_number(value, 4)


def trial_rows(d: dict[str, Any]) -> list[list[str]]:
    names = [o["name"] for o in d["objectives"]]
    rows = []
    for t in d["trials"]:
        mark = "★ " if t["number"] == d.get("best") else ("◆ " if t.get("on_front") else "")
        rows.append([f"{mark}#{t['number']}", t["state"], t.get("recipe") or "(original)",
                     *(_fmt(_value(t, n)) for n in names), _fmt((t.get("metrics") or {}).get("drop")),
                     fmt_seconds(t["duration_s"]) if t.get("duration_s") else "—", t.get("reason") or ""])
    return rows


def front_figure(d: dict[str, Any]) -> Figure | None:
    """Every completed trial on the first two objectives, the front joined by a line."""
    if len(d["objectives"]) < 2:
        return None
    (y_obj, x_obj) = d["objectives"][0], d["objectives"][1]
    done = [t for t in d["trials"] if t["state"] == "complete"
            and _value(t, x_obj["name"]) is not None and _value(t, y_obj["name"]) is not None]
    if not done:
        return None
    front = sorted((t for t in done if t.get("on_front")), key=lambda t: _value(t, x_obj["name"]))

    def trace(rows: list[dict[str, Any]], name: str, mode: str, color: str) -> dict[str, Any]:
        return {"type": "scatter", "mode": mode, "name": name, "marker": {"color": color, "size": 9},
                "x": [_value(t, x_obj["name"]) for t in rows], "y": [_value(t, y_obj["name"]) for t in rows],
                "text": [f"#{t['number']}: {t.get('recipe') or '(original)'}" for t in rows]}

    data = [trace(done, "trials", "markers", "#9ecae1"), trace(front, "Pareto front", "lines+markers", "#08519c")]
    best = [t for t in done if t["number"] == d.get("best")]
    if best:
        data.append(trace(best, "answer", "markers", "#e6550d"))
    layout = {"xaxis": {"title": f"{x_obj['name']} ({x_obj['direction']})"},
              "yaxis": {"title": f"{y_obj['name']} ({y_obj['direction']})"}, "height": 380}
    return Figure(f"{y_obj['name']} against {x_obj['name']}, every completed trial", {"data": data, "layout": layout})


def stored_answer(d: dict[str, Any]) -> str:
    """The answer's reasons from a stored study: structured (``recommendation``) or, in older runs, text."""
    from steelyard.reporting.explain import explanation_text
    from steelyard.reporting.search_view import format_metric
    from steelyard.search.pareto import Recommendation
    from steelyard.serialize import from_dict

    if d.get("recommendation"):
        return explanation_text(from_dict(Recommendation, d["recommendation"]), format_metric)
    return d.get("explanation") or "no answer"


def study_part(d: dict[str, Any], run_id: int | None, record: Any = None) -> Part:
    from steelyard.reporting.report_parts import environment_section, reproduce_section

    counts = ", ".join(f"{n} {state}" for state, n in sorted(d.get("counts", {}).items()))
    answer = [stored_answer(d)]
    if d.get("baseline"):
        answer.append("original model on the search split: " + ", ".join(f"{k} {fmt_number(v, 4)}"
                                                                         for k, v in d["baseline"].items()))
    figure = front_figure(d)
    names = [o["name"] for o in d["objectives"]]
    sections = [
        Section("Answer", paragraphs=answer, figures=[figure] if figure else []),
        Section("Trials", paragraphs=[f"{counts}. ★ the answer, ◆ on the Pareto front."],
                tables=[Table("", ["trial", "state", "recipe", *names, "drop (pts)", "time", "note"],
                              trial_rows(d))]),
    ]
    if record is not None and record.environment:
        sections.append(environment_section(record.environment))
    command = (record.config or {}).get("command") if record is not None else None
    if command:
        sections.append(reproduce_section([command]))
    title = "Optimize" if d.get("kind") == "optimize" else "Search"
    return Part(f"{title}: {d['model']}", f"run {run_id} · study {d['study']}" if run_id else d["study"], sections,
                anchor=f"study-{run_id or d['study']}")
