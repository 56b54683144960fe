"""Runs of the same model side by side: one table per model (a column per run), one latency chart of every
run's raw timings, built from the stored runs of a report.

A report of ten runs of two models reads badly as ten stacked parts; grouped, the profile, the
evaluation and each compression of one model sit in adjacent columns, the same quantity on the same
row, and each column names the part below that holds its evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from steelyard.reporting.document import Figure, Part, Section, Table
from steelyard.reporting.formatting import fmt, fmt_count, fmt_number, fmt_seconds, human, pct
from steelyard.reporting.names import model_label, run_name, run_title

#: Run kinds about several models at once: never grouped under one model.
MULTI_MODEL_KINDS = frozenset({"comparison", "serving", "compare-optimizers"})


@dataclass
class ReportRun:
    """One stored run in a report: its record, its kind's typed object (or payload dict), and its part."""

    record: Any
    obj: Any
    part: Part

    @property
    def label(self) -> str:
        """``run 5 · int8`` — the run's id and short title, as column headers and chart labels show it."""
        title = run_name(self.record) or self.part.title.split(": ", 1)[0].lower()
        return f"run {self.record.id} · {title}"


def group_key(run: ReportRun) -> str | None:
    """The model a run is about (None for comparisons of several models)."""
    if run.record.kind in MULTI_MODEL_KINDS:
        return None
    return str(run.record.model)


def _metric_cell(mv: Any) -> str:
    from steelyard.reporting.evaluation_view import fmt_ci, fmt_metric

    return f"{fmt_metric(mv.value)} {fmt_ci(mv)}"


def _latency_cell(lat: Any) -> str:
    noisy = " (noisy)" if (lat.get("noisy") if isinstance(lat, dict) else getattr(lat, "noisy", False)) else ""
    get = lat.get if isinstance(lat, dict) else (lambda k: getattr(lat, k))
    return f"{fmt_seconds(float(get('median')))} at batch {get('batch_size')}, CV {pct(get('cv'))}{noisy}"


def _profile_facts(report: Any) -> dict[str, str]:
    out = {"parameters": fmt_count(report.parameters.total), "weights in memory": fmt(report.memory.weights),
           "FLOPs per forward": f"{fmt(report.compute.flops)} (batch {report.input.batch_size})"}
    if report.measured is not None:
        out["latency, median"] = _latency_cell(report.measured.latency)
        out["peak memory"] = fmt(report.measured.peak_memory)
    return out


def _compression_facts(d: dict[str, Any]) -> dict[str, str]:
    from steelyard.reporting.evaluation_view import fmt_metric

    b, a = d["before"], d["after"]
    out = {"recipe": str(d.get("recipe", "")), "runtime": str(d.get("backend", "")),
           "parameters": f"{fmt_count(a['params'])} (from {fmt_count(b['params'])})",
           "weights in memory": f"{human(a['bytes'], 'B', base=1024)} (from {human(b['bytes'], 'B', base=1024)})"}
    if a.get("latency"):
        out["latency, median"] = _latency_cell(a["latency"])
    if d.get("speedup") is not None:
        out["speed vs the original"] = f"{d['speedup']:.2f}× (interleaved)"
    if d.get("size_ratio") is not None:
        out["smaller than the original"] = f"{float(d['size_ratio']):.2f}×"
    name = a.get("metric")
    mb, ma = (b.get("metrics") or {}).get(name), (a.get("metrics") or {}).get(name)
    if name and ma:
        out[f"{name} (95% CI)"] = (f"{fmt_metric(ma['value'])} [{fmt_metric(ma['ci_low'])}, "
                                   f"{fmt_metric(ma['ci_high'])}]")
    if name and mb and d.get("metric_drop") is not None:
        out["change vs the original"] = f"{0.0 - float(d['metric_drop']):+.2f} pts (original {fmt_metric(mb['value'])})"
    return out


def _evaluation_facts(result: Any) -> dict[str, str]:
    out = {"data": f"{result.dataset} {result.split} ({result.n:,} examples)"}
    out.update({f"{name} (95% CI)": _metric_cell(mv) for name, mv in result.metrics.items()})
    return out


def _finetune_facts(result: Any) -> dict[str, str]:
    from steelyard.reporting.evaluation_view import fmt_metric

    out = {"data": f"{result.dataset}", "mode": f"{result.mode}, {result.optimizer} lr {fmt_number(result.lr)}"}
    out.update({f"{name} (95% CI)": _metric_cell(mv) for name, mv in result.test.items()})
    out["best validation"] = f"{result.metric} {fmt_metric(result.best_validation)} at step {result.best_step:,}"
    out["training"] = (f"{result.cost.steps:,} steps, {fmt(result.cost.total_flops)}, "
                       f"{fmt_seconds(result.seconds)}")
    return out


def _generic_facts(record: Any) -> dict[str, str]:
    return {name: human(value, unit or "") for name, (value, unit) in list(sorted(record.metrics.items()))[:8]}


def facts(run: ReportRun) -> dict[str, str]:
    """What one run says about its model, by row name (the same quantity under the same name in every kind)."""
    kind, obj = run.record.kind, run.obj
    out = {"kind": kind, "when": f"{run.record.created_at:%Y-%m-%d %H:%M}"}
    if kind == "profile":
        out |= _profile_facts(obj)
    elif kind == "compression":
        out |= _compression_facts(obj)
    elif kind == "evaluate":
        out |= _evaluation_facts(obj)
    elif kind == "finetune":
        out |= _finetune_facts(obj)
    else:
        out |= _generic_facts(run.record)
    return out


def latency_samples(run: ReportRun) -> dict[str, list[float]]:
    """The raw timings a run holds, by label (a compression run holds the original's and the compressed one's)."""
    kind, obj = run.record.kind, run.obj
    if kind == "profile" and obj.measured is not None and obj.measured.latency.samples:
        return {run.label: list(obj.measured.latency.samples)}
    if kind == "compression":
        out = {}
        for side, label in (("before", "original"), ("after", str(obj.get("recipe", "compressed")))):
            samples = ((obj.get(side) or {}).get("latency") or {}).get("samples")
            if samples:
                out[f"run {run.record.id} · {label}"] = list(samples)
        return out
    card = (run.record.payload or {}).get("cost_card") if isinstance(run.record.payload, dict) else None
    samples = (((card or {}).get("measured") or {}).get("latency") or {}).get("samples")
    return {run.label: list(samples)} if samples else {}


def group_part(model: str, runs: list[ReportRun], anchor: str) -> Part:
    """The side-by-side table (and latency chart) of the runs of one model."""
    from steelyard.reporting import figures

    columns = [facts(r) for r in runs]
    rows_order = list(dict.fromkeys(k for c in columns for k in c))
    rows = [[key, *[c.get(key, "—") for c in columns]] for key in rows_order]
    sections = [Section("Side by side", tables=[Table(
        f"{len(runs)} runs of {model_label(model)}", ["", *[r.label for r in runs]], rows,
        note="Each column is one stored run; its own part below holds the tables, charts and the command to "
             "rerun it.")], anchor=f"{anchor}-table")]
    samples: dict[str, list[float]] = {}
    for r in runs:
        samples |= latency_samples(r)
    if samples:
        sections[0].figures.append(Figure("Latency of every run", figures.latency_distribution(
            samples, f"Latency per batch, every timed run — {model_label(model)}", x_title="run")))
    titles = {run_title(r.record) for r in runs}
    subtitle = f"{model}" + (f" · {', '.join(sorted(titles))}" if titles != {model_label(model)} else "")
    return Part(f"Model: {model_label(model)}", subtitle, sections, anchor=anchor)


__all__ = ["MULTI_MODEL_KINDS", "ReportRun", "facts", "group_key", "group_part", "latency_samples"]
