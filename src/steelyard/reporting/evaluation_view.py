"""Rich console rendering of evaluation results and data reports (the only place they are formatted)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.table import Table

from steelyard.data.quality import DataReport
from steelyard.evaluation.predict import MIN_DOCUMENTS
from steelyard.evaluation.result import EvaluationResult, LMSummary, PredictionSummary
from steelyard.metrics import MetricValue
from steelyard.reporting.document import Figure, Part, Section
from steelyard.reporting.document import Table as ReportTable
from steelyard.reporting.formatting import fmt_seconds
from steelyard.reporting.markup import escape


def table(title: str, *columns: str, right: Iterable[int] = ()) -> Table:
    t = Table(title=title, title_justify="left", title_style="bold", header_style="bold cyan")
    right = set(right)
    for i, col in enumerate(columns):
        t.add_column(col, justify="right" if i in right else "left")
    return t


def fmt_metric(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.2f}" if abs(value) >= 100 else f"{value:.4f}"


def fmt_ci(mv: MetricValue) -> str:
    return f"[{fmt_metric(mv.ci_low)}, {fmt_metric(mv.ci_high)}]"


def metrics_table(title: str, metrics: dict[str, MetricValue]) -> Table:
    t = table(title, "metric", "value", "95% CI (bootstrap)", "n", right=[1, 2, 3])
    for name, mv in metrics.items():
        t.add_row(name, fmt_metric(mv.value), fmt_ci(mv), f"{mv.n:,}")
    return t


def lm_scope(lm: LMSummary) -> str:
    """What a perplexity was measured on, and what its interval resamples."""
    text = f"{lm.tokens:,} tokens predicted in {lm.blocks:,} blocks of ≤ {lm.block_size} tokens"
    if lm.unit == "documents":
        return f"{text} from {lm.units:,} documents; the interval resamples documents"
    return f"{text}; the interval resamples blocks (fewer than {MIN_DOCUMENTS} documents)" if lm.units else text


def render_evaluation(result: EvaluationResult, console: Console | None = None) -> None:
    console = console or Console()
    length = f" · max length {result.max_length}" if result.max_length else ""
    console.print(
        f"[bold]{result.model}[/bold] on {result.dataset} ({result.data_source}) · split {result.split} · "
        f"{result.n:,} examples · {result.task}{length}"
    )
    console.print(metrics_table("Metrics", result.metrics))
    if result.predictions is not None:
        p = result.predictions
        t = table("Predictions per class", "class", "true", "predicted", "recall", right=[1, 2, 3])
        for name in p.label_names:
            recall = p.recall.get(name)
            t.add_row(escape(name), str(p.true_counts[name]), str(p.predicted_counts[name]),
                      "—" if recall is None else f"{recall:.3f}")
        console.print(t)
        console.print(f"mean confidence of the top class: {p.mean_confidence:.3f}")
    if result.lm is not None:
        console.print(lm_scope(result.lm))
    console.print(f"{fmt_seconds(result.seconds)} ({result.examples_per_second:.1f} examples/s, "
                  f"batch {result.batch_size})")
    for note in result.notes:
        console.print(f"[dim]note: {escape(note)}[/dim]")


def render_data_report(report: DataReport, console: Console | None = None,
                       drops: dict[str, int] | None = None, cleaned: dict[str, int] | None = None) -> None:
    """The data report: sizes, problems found per split, class balance, lengths; and what --clean drops."""
    console = console or Console()
    splits = list(report.counts)
    console.print(f"[bold]{escape(report.name)}[/bold] · {report.task}")
    t = table("Problems per split", "check", *splits, right=range(1, len(splits) + 1))
    t.add_row("examples", *[f"{report.counts[s]:,}" for s in splits])
    t.add_row("empty", *[str(len(report.empty.get(s, []))) for s in splits])
    t.add_row("duplicates (same split)", *[str(len(report.duplicates.get(s, []))) for s in splits])
    t.add_row("also in a later split (leakage)", *[str(len(report.leakage.get(s, []))) for s in splits])
    console.print(t)
    pairs = ", ".join(f"{k}: {v}" for k, v in report.leakage_pairs.items())
    console.print(f"shared inputs between splits: {pairs}")
    if report.conflicts:
        c = table(f"Same input, different labels ({len(report.conflicts)} groups, "
                  f"{report.n_conflicting} examples)", "input", "labels", "where")
        for conflict in report.conflicts[:10]:
            where = ", ".join(f"{s}#{i}" for s, i in conflict.locations[:4])
            c.add_row(escape(conflict.preview), escape(", ".join(conflict.labels)), where)
        console.print(c)
    else:
        console.print("no input appears with conflicting labels")
    if report.class_balance:
        names = list(next(iter(report.class_balance.values())))
        b = table("Class balance", "class", *splits, right=range(1, len(splits) + 1))
        for name in names:
            b.add_row(escape(name), *[str(report.class_balance.get(s, {}).get(name, 0)) for s in splits])
        console.print(b)
        ratio = report.imbalance("train")
        if ratio is not None:
            console.print(f"train imbalance (largest / smallest class): {ratio:.2f}")
    if report.tokens:
        lt = table("Length (whitespace tokens)", "split", "min", "median", "p90", "max", right=[1, 2, 3, 4])
        for s, stats in report.tokens.items():
            if stats is not None:
                lt.add_row(s, f"{stats.min:.0f}", f"{stats.median:.0f}", f"{stats.p90:.0f}", f"{stats.max:.0f}")
        console.print(lt)
    if drops is not None:
        total = sum(drops.values())
        detail = ", ".join(f"{n} {reason}" for reason, n in drops.items())
        console.print(f"--clean drops {total} example(s): {detail}")
        if cleaned is not None:
            console.print("after cleaning: " + ", ".join(f"{s} {n:,}" for s, n in cleaned.items()))


# -- the report part (HTML / Markdown) of a stored evaluation ------------------------------------
def metric_rows(metrics: dict[str, MetricValue]) -> list[list[str]]:
    """Rows ``metric, value, 95% CI, n`` of a metrics dict (the report's table of scores)."""
    return [[name, fmt_metric(mv.value), fmt_ci(mv), f"{mv.n:,}"] for name, mv in metrics.items()]


METRIC_COLUMNS = ["metric", "value", "95% CI (bootstrap)", "n"]


def prediction_section(p: PredictionSummary, where: str) -> Section:
    """Per-class recall (bars and a table) and the confusion matrix of a classifier's predictions."""
    from steelyard.reporting import figures

    rows = [[name, str(p.true_counts.get(name, 0)), str(p.predicted_counts.get(name, 0)),
             "—" if p.recall.get(name) is None else f"{p.recall[name]:.3f}"] for name in p.label_names]
    weakest = min((n for n in p.label_names if p.recall.get(n) is not None), key=lambda n: p.recall[n] or 0.0,
                  default=None)
    words = [f"Mean confidence of the top class: {p.mean_confidence:.3f}."]
    if weakest is not None:
        words.append(f"Weakest class: {weakest} (recall {p.recall[weakest]:.3f} of "
                     f"{p.true_counts.get(weakest, 0)} examples).")
    return Section(
        "Per-class recall and confusion matrix", paragraphs=[" ".join(words)],
        tables=[ReportTable(f"Predictions per class ({where})", ["class", "true", "predicted", "recall"], rows)],
        figures=[Figure("Per-class recall", figures.recall_bars(p.label_names, p.recall, p.true_counts,
                                                                 f"Per-class recall ({where})")),
                 Figure("Confusion matrix", figures.confusion_heatmap(p.label_names, p.confusion,
                                                                      f"Confusion matrix ({where}): rows true, "
                                                                      "columns predicted"))])


def load_evaluation(payload: dict[str, Any]) -> EvaluationResult:
    """A stored evaluate run's payload (``{"result": ..., "cost_card": ...}``) as its result."""
    return EvaluationResult.from_dict(payload.get("result", payload))


def evaluation_part(result: EvaluationResult, run_id: int | None, record: Any = None) -> Part:
    """Scores with intervals, per-class recall, the confusion matrix, notes, environment and the command."""
    from steelyard.reporting.names import run_title
    from steelyard.reporting.report_parts import environment_section, reproduce_section

    length = f", max length {result.max_length}" if result.max_length else ""
    sections = [Section("Scores", paragraphs=[
        f"{result.dataset} ({result.data_source}), split {result.split}: {result.n:,} examples, {result.task}{length}; "
        f"{fmt_seconds(result.seconds)} ({result.examples_per_second:.1f} examples/s, batch {result.batch_size}).",
        *[f"Note: {n}" for n in result.notes]],
        tables=[ReportTable("", METRIC_COLUMNS, metric_rows(result.metrics))])]
    if result.predictions is not None:
        sections.append(prediction_section(result.predictions, f"{result.dataset} {result.split}"))
    if result.lm is not None:
        sections[0].paragraphs.append(lm_scope(result.lm) + ".")
    if record is not None and record.environment:
        sections.append(environment_section(record.environment))
    command = (record.config or {}).get("command") if record is not None else None
    if command:
        sections.append(reproduce_section([command]))
    when = f" · {record.created_at:%Y-%m-%d %H:%M:%S}" if record is not None else ""
    return Part(f"Evaluation: {run_title(record, result.model)}",
                f"{'run ' + str(run_id) if run_id is not None else 'not saved'} · {result.model} · "
                f"{result.dataset} {result.split}{when}", sections, anchor=f"evaluate-{run_id or 'new'}")
