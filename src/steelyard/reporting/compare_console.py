"""Rich console rendering of a comparison: the table, the front, the recommendation, lifetime cost, access."""

from __future__ import annotations

from rich.console import Console
from rich.panel import Panel

from steelyard.comparison.result import CandidateResult, Comparison, Option
from steelyard.reporting.commands import compare_command
from steelyard.reporting.console import _table
from steelyard.reporting.explain import explanation_text
from steelyard.reporting.formatting import (
    fmt,
    fmt_amount,
    fmt_count,
    fmt_hours,
    fmt_joules,
    fmt_number,
    fmt_seconds,
    fmt_usd,
    human,
)
from steelyard.reporting.markup import SafeConsole, escape
from steelyard.reporting.statistics import change_cell, noise_text, noisy_mark, speedup_text
from steelyard.units import Bytes

ARROW = {"max": "↑", "min": "↓"}


def value_text(metric: str, value: float) -> str:
    """A comparison metric as the recommendation words it: latency in s/ms, memory in bytes, $ ..."""
    if metric == "latency":
        return fmt_seconds(value)
    if metric in ("memory", "storage"):
        return fmt(Bytes(value))
    if metric in ("cost_per_1k", "lifetime_cost"):
        return fmt_amount(value, prefix="$")
    if metric == "accuracy":
        return f"{value:.3f}"
    if metric == "energy":
        return human(value, "J")
    if metric == "throughput":
        return f"{fmt_number(value)}/s"
    if metric == "parameters":
        return fmt_count(value)
    return fmt_number(value, 4)


def comparison_assumptions(comp: Comparison) -> list[str]:
    """What every number of a comparison assumes, from its config (the first line is the harness)."""
    cfg = comp.config
    spec = cfg.inputs
    out = [
        f"one harness: batch {spec.batch_size}, sequence length {spec.seq_len}"
        + (f", image {spec.image_size}px" if spec.image_size else "")
        + f", {cfg.dtype}, {comp.environment.threads} thread(s), device {cfg.device}",
    ]
    if cfg.config_only:
        out.append("config only: nothing was timed; every latency is a roofline projection at an assumed efficiency")
    elif cfg.interleave:
        out.append(f"local latency: median of {cfg.runs} interleaved rounds (A B A B …) after {cfg.warmup} warm-up "
                   "calls each; other hardware: roofline projections (catalog figures)")
    out.append("throughput = batch / latency at the harness batch; energy and $ per single inference "
               "(batch cost divided by the batch)")
    out.append("options that do not fit a device's usable memory are never recommended")
    if cfg.data:
        names = ", ".join(s.name for s in comp.candidates[0].scores) or ", ".join(cfg.metrics)
        out.append(f"quality: {names} on the '{cfg.split}' split of {cfg.data} (text cut to {spec.seq_len} tokens), "
                   "95% bootstrap interval; the first is the headline column")
    tokens = f"{cfg.finetune_tokens:,.0f} tokens (samples for vision)" if cfg.finetune_tokens else "no fine-tuning"
    out.append(f"lifetime cost = fine-tuning on {tokens} at {cfg.utilization:.0%} utilisation of the "
               f"{cfg.finetune_dtype} peak + serving {cfg.requests_per_day:,.0f} requests/day "
               f"for {fmt_number(cfg.days)} days "
               "at the on-demand price; hardware without a price has no $ figure")
    return out


def score_text(c: CandidateResult) -> str:
    s = c.score
    if s is None:
        return "—"
    return f"{s.value:.3f} [{s.ci_low:.3f}, {s.ci_high:.3f}]"


def latency_text(o: Option, c: CandidateResult | None = None) -> str:
    """The option's latency; `` *`` when projected, ``± noisy`` when measured here and noisy (needs ``c``)."""
    if o.latency_source != "measured":
        return fmt_seconds(float(o.latency)) + " *"
    return fmt_seconds(float(o.latency)) + (noisy_mark(c.interleaved) if c is not None else "")


def speed_bits(comp: Comparison) -> list[str]:
    """``tiny-b 1.84x faster [1.70, 1.95]`` per timed candidate after the first: its interleaved speedup over the
    first with the bootstrap interval over the paired rounds; an interval that includes 1.0 is worded so."""
    timed = [c for c in comp.candidates if c.interleaved is not None]
    out = []
    for c in timed[1:]:
        if not c.speedup_vs_first:
            continue
        low, high = c.speedup_ci if c.speedup_ci is not None else (None, None)
        out.append(f"{c.label} {speedup_text(c.speedup_vs_first, low, high, c.interleaved.runs)}")  # type: ignore[union-attr]
    return out


def quality_bits(comp: Comparison) -> list[str]:
    """``tiny-b accuracy -0.23 pts, n.s. (McNemar p=1.00)`` per candidate after the first: each metric against
    the first on the same examples, with its paired test."""
    out = []
    for c in comp.candidates[1:]:
        cells = [f"{name} {change_cell(ch)}" for name, ch in c.changes.items()]
        if cells:
            out.append(f"{c.label}: " + "; ".join(cells))
    return out


def noise_bits(comp: Comparison) -> list[str]:
    """``tiny-b: noisy: CV 14% (> 10%)`` for each candidate whose interleaved latency is noisy."""
    return [f"{c.label}: {noise_text(c.interleaved)}" for c in comp.candidates if noise_text(c.interleaved)]


def fits_text(o: Option, rich: bool = True) -> str:
    if o.fits_inference:
        return "[green]fits[/green]" if rich else "fits"
    text = f"does not fit ({o.devices_for_inference} dev)"
    return f"[red]{text}[/red]" if rich else text


def render_comparison(comp: Comparison, console: Console | None = None) -> None:
    console = console or SafeConsole()
    rec = comp.recommendation
    front = set(rec.pareto.front)
    assumptions = comparison_assumptions(comp)
    console.print(f"[bold]Comparing {len(comp.candidates)} models[/bold] on " + assumptions[0])
    metric = comp.candidates[0].score.name if comp.candidates[0].score else "accuracy"
    table = _table(
        "Candidates × hardware (* projected; ★ on the Pareto front; ✔ recommended)",
        "model",
        "hardware",
        f"{metric} (95% CI)",
        "latency",
        "throughput",
        "memory",
        "storage",
        "$ / 1k",
        "energy / inf",
        "fits",
        "",
        right=[2, 3, 4, 5, 6, 7, 8],
    )
    for c in comp.candidates:
        first = True
        storage = c.report.storage.on_disk
        if storage is None:
            storage = c.report.storage.parameters
        for o in (o for o in comp.options if o.candidate == c.label):
            mark = ("✔ " if o.name == rec.chosen else "") + ("★" if o.name in front else "")
            table.add_row(
                escape(c.label) if first else "",
                o.hardware,
                score_text(c) if first else "",
                latency_text(o, c),
                fmt_amount(o.throughput, suffix="/s"),
                fmt(o.memory),
                fmt(storage) if first else "",
                fmt_usd(o.cost_per_1k),
                fmt_joules(float(o.energy_per_inference)),
                fits_text(o),
                mark,
            )
            first = False
        table.add_section()
    console.print(table)
    timed = [c for c in comp.candidates if c.interleaved is not None]
    if timed:
        base = timed[0]
        console.print(
            f"  speed relative to {base.label} on this machine (interleaved, ratio of medians [95% CI over the "
            "paired rounds]; > 1 is faster): " + escape(", ".join(speed_bits(comp)))
        )
    for line in noise_bits(comp):
        console.print(f"  [yellow]{escape(line)}[/yellow]")
    quality = quality_bits(comp)
    if quality:
        console.print(f"  quality relative to {escape(comp.candidates[0].label)} on the same examples (paired test; "
                      "n.s. = not significant at 5%): " + escape(" | ".join(quality)))
    objectives = ", ".join(f"{o.title} {ARROW[o.direction]}" for o in comp.objectives)
    console.print(f"[bold]Pareto front[/bold] over {objectives}: " + escape(", ".join(rec.pareto.front)))
    dominated = [f"{n} (by {', '.join(by[:2])}{'…' if len(by) > 2 else ''})"
                 for n, by in rec.pareto.dominated_by.items() if by]
    if dominated:
        more = f"; … and {len(dominated) - 4} more" if len(dominated) > 4 else ""
        console.print("  dominated: " + escape("; ".join(dominated[:4])) + more)
    for group in rec.pareto.ties:
        console.print("  tied on every objective: " + escape(" = ".join(group)))
    title = f"Recommendation: {escape(rec.chosen)}" if rec.chosen else "Recommendation: none feasible"
    console.print(Panel(escape(explanation_text(rec, value_text)), title=title, title_align="left",
                        border_style="green" if rec.chosen else "red"))
    render_lifetime(comp, console)
    render_access_matrix(comp, console)
    console.print("[bold]Assumptions[/bold]")
    for line in assumptions:
        console.print(f"  • {escape(line)}")
    console.print(f"[dim]reproduce: {escape(compare_command(comp))}[/dim]")


def render_lifetime(comp: Comparison, console: Console) -> None:
    cfg = comp.config
    table = _table(
        f"Lifetime cost: fine-tune on {human(cfg.finetune_tokens, 'tokens')} + serve "
        f"{fmt_amount(cfg.requests_per_day)} requests/day × {fmt_number(cfg.days)} days",
        "hardware",
        "model",
        "fine-tune time",
        "fine-tune $",
        "serving $",
        "total $",
        "",
        right=[2, 3, 4, 5],
    )
    for hw in comp.hardware:
        options = [o for o in comp.options if o.hardware == hw]
        priced = [o for o in options if o.lifetime_cost is not None]
        cheapest = min(priced, key=lambda o: float(o.lifetime_cost)).candidate if priced else None  # type: ignore[arg-type]
        for i, o in enumerate(options):
            table.add_row(
                hw if i == 0 else "",
                escape(o.candidate),
                fmt_hours(o.finetune_hours),
                fmt_usd(o.finetune_cost),
                fmt_usd(o.serving_cost),
                fmt_usd(o.lifetime_cost),
                "cheapest" if o.candidate == cheapest and len(priced) > 1 else "",
            )
        table.add_section()
    console.print(table)


def access_cell(o: Option) -> str:
    infer = "infer ✓" if o.fits_inference else f"infer ✗ ({o.devices_for_inference} dev)"
    tune = "tune ✓" if o.fits_finetune else "tune ✗"
    cost = f", {fmt_usd(o.cost_per_1k)}/1k" if o.cost_per_1k is not None else ""
    return f"{infer}, {tune}, {fmt_seconds(float(o.latency))}{cost}"


def render_access_matrix(comp: Comparison, console: Console) -> None:
    table = _table("Accessibility: models × hardware (fits for inference / fine-tuning, latency, cost)",
                   "model", *comp.hardware)
    for c in comp.candidates:
        cells = []
        for hw in comp.hardware:
            o = comp.option(c.label, hw)
            text = access_cell(o)
            cells.append(text if o.fits_inference else f"[red]{text}[/red]")
        table.add_row(f"{escape(c.label)} ({fmt_count(c.report.parameters.total)})", *cells)
    console.print(table)
