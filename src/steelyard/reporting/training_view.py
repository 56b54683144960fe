"""Rich console rendering of fine-tuning results, optimizer comparisons and learning curves."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from steelyard.reporting.document import Figure, Part, Section, Table
from steelyard.reporting.evaluation_view import fmt_ci, fmt_metric, metrics_table, table
from steelyard.reporting.formatting import fmt, fmt_number, fmt_seconds
from steelyard.reporting.markup import escape
from steelyard.training.compare import OptimizerComparison
from steelyard.training.data_needs import DataNeeds
from steelyard.training.result import FinetuneResult, TargetProgress

STOPPED = {
    "epochs": "all epochs done",
    "max_steps": "max steps reached",
    "early_stopping": "early stopping (no better validation score)",
    "target_reached": "target reached",
}


def render_history(result: Any, console: Console, title: str) -> None:
    """The validation curve of a training run (fine-tune or distillation: ``history``, ``best_step``, ``metric``,
    ``stopped``, ``best_validation``) and why it stopped; * marks the kept step."""
    h = table(title, "step", "epoch", "samples", "train loss", "lr", f"val {result.metric}", "time",
              right=range(0, 7))
    for p in result.history:
        mark = " *" if p.step == result.best_step else ""
        h.add_row(f"{p.step:,}", f"{p.epoch:.2f}", f"{p.samples:,}",
                  "—" if p.train_loss is None else f"{p.train_loss:.4f}", f"{fmt_number(p.lr)}",
                  fmt_metric(p.value) + mark, fmt_seconds(p.seconds))
    console.print(h)
    console.print(f"stopped: {STOPPED.get(result.stopped, result.stopped)}; best validation {result.metric} "
                  f"{fmt_metric(result.best_validation)} at step {result.best_step:,} (* = kept)")


def _target_line(t: TargetProgress) -> str:
    if not t.reached:
        return f"target {t.metric} {fmt_number(t.target)}: [red]not reached[/red]"
    return (f"target {t.metric} {fmt_number(t.target)}: [green]reached[/green] at step {t.step:,} (epoch {t.epoch}), "
            f"{t.samples:,} samples, {fmt_seconds(t.seconds or 0)}, {fmt(t.flops)} counted training FLOPs")


def render_finetune(result: FinetuneResult, console: Console | None = None) -> None:
    console = console or Console()
    sizes = ", ".join(f"{k} {v:,}" for k, v in result.sizes.items())
    world = f" · DDP {result.distributed.world_size} processes ({result.distributed.backend})" \
        if result.distributed.world_size > 1 else ""
    console.print(f"[bold]{escape(result.model)}[/bold] fine-tuned on {escape(result.dataset)} ({sizes}) · "
                  f"mode {result.mode} · "
                  f"{result.optimizer} lr {fmt_number(result.lr)}{world}")
    render_history(result, console, "Validation during training")
    if result.target is not None:
        console.print(_target_line(result.target))
    if result.test:
        console.print(metrics_table("Test metrics of the kept model", result.test))
    c = result.cost
    console.print(
        f"training cost: {c.steps:,} steps, {c.samples_seen:,} samples, {fmt(c.total_flops)} counted FLOPs "
        f"({fmt(c.flops_per_sample)} per sample" + (f" + {fmt(c.feature_flops)} embedding the training set"
                                                    if float(c.feature_flops) else "") + "), "
        f"{fmt_seconds(result.seconds)} wall ({fmt_seconds(c.train_seconds)} in training steps, "
        f"{fmt_seconds(c.eval_seconds)} validating)"
    )
    console.print(f"[dim]FLOPs: {c.basis}[/dim]")
    for note in result.notes:
        console.print(f"[dim]note: {escape(note)}[/dim]")


def render_comparison(comp: OptimizerComparison, console: Console | None = None) -> None:
    console = console or Console()
    console.print(f"[bold]{escape(comp.model)}[/bold] on {escape(comp.dataset)} · mode {comp.mode} · "
                  f"target {comp.metric} "
                  f"{fmt_number(comp.target)} on validation")
    t = table("Cost to reach the target", "optimizer", "lr", "reached", "steps", "samples", "wall time",
              "training FLOPs", f"best val {comp.metric}", f"test {comp.metric} [95% CI]", right=range(1, 9))
    for r in comp.rows:
        test = "—" if r.test is None else f"{fmt_metric(r.test.value)} {fmt_ci(r.test)}"
        if r.reached:
            flops = fmt(r.flops_to_target)
            if r.step_flops_to_target is not None and float(r.step_flops_to_target) < float(r.flops_to_target or 0):
                flops += f" ({fmt(r.step_flops_to_target)} in steps)"
            cells = [f"{r.steps_to_target:,}", f"{r.samples_to_target:,}", fmt_seconds(r.seconds_to_target or 0),
                     flops]
        else:
            cells = ["not reached", f"({r.steps:,} run)", fmt_seconds(r.seconds), "—"]
        t.add_row(r.optimizer, f"{fmt_number(r.lr)}", "[green]yes[/green]" if r.reached else "[red]no[/red]", *cells,
                  fmt_metric(r.best_validation), test)
    console.print(t)
    best = comp.fastest()
    if best:
        tie = " (tied)" if len(best) > 1 else ""
        console.print(f"fewest FLOPs to the target: [bold]{', '.join(r.optimizer for r in best)}[/bold]{tie}")
    for note in comp.notes:
        console.print(f"[dim]note: {escape(note)}[/dim]")


def render_data_needs(needs: DataNeeds, console: Console | None = None) -> None:
    console = console or Console()
    console.print(f"[bold]{escape(needs.model)}[/bold] on {escape(needs.dataset)} · mode {needs.mode} · "
                  f"{needs.available:,} training examples available")
    t = table(f"Learning curve (test {needs.metric})", "train size", "repeat", needs.metric, "95% CI", "time",
              right=range(0, 5))
    for p in needs.points:
        t.add_row(f"{p.size:,}", str(p.repeat), fmt_metric(p.value),
                  f"[{fmt_metric(p.ci_low)}, {fmt_metric(p.ci_high)}]", fmt_seconds(p.seconds))
    console.print(t)
    if needs.fit is not None:
        f = needs.fit
        r2 = "—" if f.r2 is None else f"{f.r2:.3f}"
        console.print(f"fit: error(n) = {fmt_number(f.a, 4)}·n^(−{f.b:.3f}) + {f.c:.4f}   (RMSE {f.rmse:.4f}, R² {r2}; "
                      f"error = distance of {needs.metric} from its best value)")
    colour = "green" if needs.reachable else "red"
    console.print(f"[{colour}]{needs.message}[/{colour}]")
    for note in needs.notes:
        console.print(f"[dim]note: {escape(note)}[/dim]")


# -- the report part (HTML / Markdown) of a stored fine-tune run -----------------------------------
def load_finetune(payload: dict[str, Any]) -> FinetuneResult:
    """A stored finetune run's payload (``{"result": ..., "cost_card": ...}``) as its result."""
    return FinetuneResult.from_dict(payload.get("result", payload))


def history_rows(result: Any) -> list[list[str]]:
    """The validation points of a training run as report rows (* marks the kept step)."""
    return [[f"{p.step:,}", f"{p.epoch:.2f}", f"{p.samples:,}", "—" if p.train_loss is None else f"{p.train_loss:.4f}",
             fmt_number(p.lr), fmt_metric(p.value) + (" *" if p.step == result.best_step else ""),
             fmt_seconds(p.seconds)]
            for p in result.history]


def finetune_part(result: FinetuneResult, run_id: int | None, record: Any = None) -> Part:
    """The learning curve, why training stopped, test scores, per-class recall and confusion matrix, the cost."""
    from steelyard.reporting import figures
    from steelyard.reporting.evaluation_view import METRIC_COLUMNS, metric_rows, prediction_section
    from steelyard.reporting.names import run_title
    from steelyard.reporting.report_parts import environment_section, reproduce_section

    sizes = ", ".join(f"{k} {v:,}" for k, v in result.sizes.items())
    stopped = (f"Stopped: {STOPPED.get(result.stopped, result.stopped)}; best validation {result.metric} "
               f"{fmt_metric(result.best_validation)} at step {result.best_step:,} (* = kept).")
    curve = [Figure("Learning curve", figures.learning_curve(
        result.history, result.metric, result.best_step,
        f"Learning curve: validation {result.metric} and training loss per step"))] if result.history else []
    sections = [Section("Learning curve", paragraphs=[
        f"{result.dataset} ({sizes}) · mode {result.mode} · {result.optimizer} lr {fmt_number(result.lr)}.", stopped],
        figures=curve,
        tables=[Table("Validation during training", ["step", "epoch", "samples", "train loss", "lr",
                                                     f"val {result.metric}", "time"], history_rows(result))])]
    if result.test:
        sections.append(Section("Test scores of the kept model",
                                tables=[Table("", METRIC_COLUMNS, metric_rows(result.test))]))
    if result.predictions is not None:
        sections.append(prediction_section(result.predictions, f"{result.dataset} test"))
    c = result.cost
    sections.append(Section("Training cost", paragraphs=[
        f"{c.steps:,} steps, {c.samples_seen:,} samples, {fmt(c.total_flops)} counted FLOPs "
        f"({fmt(c.flops_per_sample)} per sample); {fmt_seconds(result.seconds)} wall "
        f"({fmt_seconds(c.train_seconds)} in training steps, {fmt_seconds(c.eval_seconds)} validating).",
        f"FLOPs: {c.basis}", *[f"Note: {n}" for n in result.notes]]))
    if record is not None and record.environment:
        sections.append(environment_section(record.environment))
    command = (record.config or {}).get("command") if record is not None else None
    if command:
        sections.append(reproduce_section([command]))
    return Part(f"Fine-tune: {run_title(record, result.model)}",
                f"{'run ' + str(run_id) if run_id is not None else 'not saved'} · {result.model} · {result.dataset}",
                sections, anchor=f"finetune-{run_id or 'new'}")
