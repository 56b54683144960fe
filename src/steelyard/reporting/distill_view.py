"""Rich console rendering of a distillation result: teacher vs student before / after."""

from __future__ import annotations

from rich.console import Console

from steelyard.distill.result import DistillResult
from steelyard.reporting.evaluation_view import fmt_ci, fmt_metric, table
from steelyard.reporting.formatting import fmt, fmt_count, fmt_number, fmt_seconds, pct
from steelyard.reporting.markup import escape
from steelyard.reporting.training_view import render_history


def _ratio(a: float | None, b: float | None) -> str:
    return "—" if a is None or b is None or not b else f"{a / b:.3f}"


def render_distillation(result: DistillResult, console: Console | None = None) -> None:
    console = console or Console()
    cfg = result.config
    sizes = ", ".join(f"{k} {v:,}" for k, v in result.sizes.items())
    world = f" · DDP {result.distributed.world_size} processes ({result.distributed.backend})" \
        if result.distributed.world_size > 1 else ""
    hidden = f" · hidden states (weight {fmt_number(cfg.hidden_weight)})" if cfg.hidden_states else ""
    console.print(f"[bold]{escape(result.teacher)}[/bold] → student [bold]{escape(result.student)}[/bold] on "
                  f"{escape(result.dataset)} "
                  f"({sizes}) · α {fmt_number(cfg.alpha)} · T {fmt_number(cfg.temperature)}{hidden} · "
                  f"{cfg.train.optimizer} "
                  f"lr {fmt_number(cfg.train.learning_rate(result.student_cost.parameters))}{world}")
    for note in result.student_notes:
        console.print(f"[dim]student: {escape(note)}[/dim]")

    t, s = result.teacher_cost, result.student_cost
    seq = f"batch 1, {t.seq_len} tokens" if t.seq_len else "batch 1"
    v = table("Teacher vs student", "", "teacher", "student", "student / teacher", right=[1, 2, 3])
    v.add_row("layers", str(t.layers or "—"), str(s.layers or "—"), _ratio(s.layers, t.layers))
    v.add_row("parameters", fmt_count(t.parameters), fmt_count(s.parameters), f"{result.params_ratio:.3f}")
    v.add_row(f"FLOPs ({seq})", fmt(t.flops), fmt(s.flops), f"{result.flops_ratio:.3f}")
    for name, tv in result.teacher_test.items():
        sv = result.student_test.get(name)
        v.add_row(f"test {name} [95% CI]", f"{fmt_metric(tv.value)} {fmt_ci(tv)}",
                  "—" if sv is None else f"{fmt_metric(sv.value)} {fmt_ci(sv)}",
                  _ratio(sv.value if sv else None, tv.value))
    console.print(v)
    if result.retained is not None:
        console.print(f"the student keeps [bold]{pct(result.retained)}[/bold] of the teacher's test {result.metric} "
                      f"at {pct(result.flops_ratio)} of its FLOPs and {pct(result.params_ratio)} of its parameters")

    if result.history:
        render_history(result, console, "Validation during distillation")
    c, tr = result.training, result.teacher_run
    teacher = "teacher on every step" if tr.online else \
        f"{fmt(tr.cache_flops)} caching the teacher's logits in {fmt_seconds(tr.cache_seconds)}"
    console.print(f"training cost: {c.steps:,} steps, {c.samples_seen:,} samples, {fmt(c.total_flops)} counted FLOPs "
                  f"({fmt(c.flops_per_sample)} per sample + {teacher}), {fmt_seconds(result.seconds)} wall "
                  f"({fmt_seconds(c.train_seconds)} in training steps, {fmt_seconds(c.eval_seconds)} validating)")
    for note in result.notes:
        console.print(f"[dim]note: {note}[/dim]")
