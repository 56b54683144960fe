"""Rich console rendering of cost cards, training estimates and the hardware catalog."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from steelyard.profiling.report import CostReport, TrainingEstimate
from steelyard.reporting.formatting import fmt, fmt_amount, fmt_count, fmt_number, fmt_seconds, human, pct
from steelyard.reporting.markup import SafeConsole, escape
from steelyard.reporting.statistics import noise_text, noisy_mark
from steelyard.units import Bytes, BytesPerSecond, Flops, FlopsPerSecond


def _table(title: str, *columns: str, right: Iterable[int] = ()) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold", header_style="bold cyan")
    right = set(right)
    for i, col in enumerate(columns):
        table.add_column(col, justify="right" if i in right else "left")
    return table


def _yes(flag: bool) -> str:
    return "[green]yes[/green]" if flag else "[red]no[/red]"


def render_cost_report(report: CostReport, console: Console | None = None) -> None:
    console = console or SafeConsole()
    shapes = ", ".join(f"{k} {tuple(v)}" for k, v in report.input.shapes.items())
    where = "meta device (config only, nothing timed)" if report.on_meta else report.environment.device
    console.print(f"[bold]{escape(report.model)}[/bold]  task {escape(report.task)} · {report.dtype} · "
                  f"{escape(shapes)} · {escape(where)}")

    p, s = report.parameters, report.storage
    table = _table("Parameters and storage", "what", "value", right=[1])
    table.add_row("parameters (tied counted once)", f"{fmt_count(p.total)}  ({p.total:,})")
    if p.active is not None:
        table.add_row("active per token (top-k experts)", f"{fmt_count(p.active)}  ({p.active:,})")
    table.add_row("trainable", fmt_count(p.trainable))
    if p.tied:
        table.add_row("tied (shared) parameters", fmt_count(p.tied))
    table.add_row("sparsity (zeros)", pct(p.sparsity) if p.sparsity is not None else "— (no values on meta)")
    for dtype, size in s.bytes_by_dtype.items():
        table.add_row(f"storage {dtype}", fmt(size))
    if s.on_disk is not None:
        table.add_row(f"on disk ({len(s.files)} file{'s' if len(s.files) != 1 else ''})", fmt(s.on_disk))
    console.print(table)

    c = report.compute
    table = _table(f"Compute per forward ({c.convention})", "what", "value", right=[1])
    table.add_row("FLOPs (matrix work)", f"{fmt(c.flops)}  = {fmt(c.macs)}")
    for cat, macs in c.macs_by_category.items():
        table.add_row(f"  {cat}", f"{fmt(Flops(2 * macs))}  ({pct(2 * macs / c.flops if c.flops else 0)})")
    table.add_row("other FLOPs (elementwise, norm, softmax)", fmt(c.other_flops))
    for cat, flops in c.other_flops_by_category.items():
        table.add_row(f"  {cat}", fmt(flops))
    table.add_row("bytes moved (unfused upper bound)", fmt(c.bytes_moved))
    table.add_row("arithmetic intensity", f"{c.arithmetic_intensity:.1f} FLOP/B")
    table.add_row("causal attention counted", c.causal_attention)
    uncounted = ", ".join(f"{k}×{v}" for k, v in sorted(c.uncounted_ops.items())) or "none"
    table.add_row("ops not counted", uncounted)
    console.print(table)

    table = _table(
        f"Where the FLOPs go (module depth {c.breakdown_depth}; rows sum to the total)",
        "module",
        "FLOPs",
        "other FLOPs",
        "bytes moved",
        "share",
        right=[1, 2, 3, 4],
    )
    for row in c.top_modules:
        table.add_row(escape(row.name), fmt(row.flops), fmt(row.other_flops), fmt(row.bytes_moved), pct(row.share))
    console.print(table)

    m = report.memory
    table = _table("Memory (estimated)", "what", "value", right=[1])
    table.add_row("weights", fmt(m.weights))
    table.add_row(f"peak activations (batch {report.input.batch_size})", fmt(m.peak_activations))
    if m.kv_cache_per_token is not None:
        table.add_row("KV cache per token", fmt(m.kv_cache_per_token))
        table.add_row("KV cache per sequence", fmt(m.kv_cache_per_sequence))
    if m.recurrent_state_per_sequence is not None:
        table.add_row("recurrent state per sequence (no KV cache)", fmt(m.recurrent_state_per_sequence))
    table.add_row("inference total", fmt(m.inference_total))
    if m.training is not None:
        t = m.training
        table.add_row(f"training ({t.optimizer}, {t.precision}, batch {t.batch_size})", fmt(t.total))
        table.add_row("  weights / gradients", f"{fmt(t.weights)} / {fmt(t.gradients)}")
        table.add_row("  optimizer states / activations", f"{fmt(t.optimizer_states)} / {fmt(t.activations)}")
    console.print(table)

    if report.measured is not None:
        _render_measured(report, console)
    if report.hardware:
        _render_verdicts(report, console)
    if report.data_needs is not None and report.data_needs.training is not None:
        dn = report.data_needs
        console.print(
            f"[bold]Data needs[/bold]: compute-optimal pretraining ≈ {fmt_number(dn.tokens_per_parameter)} "
            f"tokens/parameter "
            f"(Chinchilla) = {human(dn.compute_optimal_tokens, 'tokens')}"
        )
        render_training_rows(dn.training, console, title="Pretraining it from scratch on that data")
    console.print("[bold]Assumptions[/bold]")
    for line in report.assumptions:
        console.print(f"  • {escape(line)}")
    e = report.environment
    console.print(
        f"[dim]{e.cpu_model} · {e.physical_cores} cores · {e.threads} threads · torch {e.torch} · "
        f"transformers {e.transformers} · {report.created_at}[/dim]"
    )


def _render_measured(report: CostReport, console: Console) -> None:
    ms = report.measured
    assert ms is not None
    lat = ms.latency
    table = _table(
        f"Measured on this machine ({ms.device}, {lat.threads} threads, {lat.timer})", "what", "value", right=[1]
    )
    table.add_row(
        f"latency per batch, median (batch {lat.batch_size}, {lat.runs} runs after {lat.warmup} warm-up)",
        fmt(lat.median) + noisy_mark(lat),
    )
    table.add_row("latency per batch, p90 / p99", f"{fmt(lat.p90)} / {fmt(lat.p99)}")
    table.add_row("latency per batch, mean ± std (CV)", f"{fmt(lat.mean)} ± {fmt(lat.std)} ({pct(lat.cv)})")
    if noise_text(lat):
        table.add_row("[yellow]noisy[/yellow]", f"[yellow]{noise_text(lat)}[/yellow]")
    peak_label = "peak process memory (RSS: weights, runtime and activations)" if ms.peak_memory_kind == "rss" else (
        "peak CUDA memory allocated"
    )
    table.add_row(peak_label, fmt(ms.peak_memory))
    table.add_row("achieved", fmt(ms.achieved_flops_per_second))
    table.add_row("machine peak (measured matmul)", fmt(ms.machine_peak_flops_per_second))
    table.add_row("efficiency", pct(ms.efficiency))
    e = report.energy
    if e is not None:
        table.add_row(f"energy per batch ({e.method}, at the wall)", human(float(e.joules_per_batch), "J"))
        table.add_row(f"energy per sample ({e.method}, at the wall)", human(float(e.joules_per_sample), "J"))
    console.print(table)
    if e is not None:
        console.print(f"  [dim]energy ({escape(e.estimator)}): device {human(float(e.device_joules_per_batch), 'J')} "
                      f"per batch × PUE {fmt_number(e.pue)}; {escape(e.note)}[/dim]")
    table = _table("Throughput sweep", "batch", "latency per batch (median)", "runs", "samples/s", right=[0, 1, 2, 3])
    for point in ms.throughput:
        runs = f"{point.runs} (the headline)" if point.source == "headline" else str(point.runs)
        table.add_row(str(point.batch_size), fmt(point.latency_per_batch), runs, f"{point.samples_per_second:.1f}")
    console.print(table)


def _render_verdicts(report: CostReport, console: Console) -> None:
    table = _table(
        f"Can it run? ({report.dtype}, batch {report.input.batch_size})",
        "hardware",
        "memory",
        "inference",
        "fine-tune",
        "bound",
        "latency floor / batch",
        "projected / batch",
        "energy / batch",
        "energy / sample",
        "$ / 1k samples",
        right=[1, 5, 6, 7, 8, 9],
    )
    for v in report.hardware:
        infer = _yes(v.fits_inference) + ("" if v.fits_inference else f" ({v.devices_for_inference} dev)")
        tune = _yes(v.fits_finetune)
        if v.finetune_unknown:
            tune = f"unknown: {v.finetune_unknown}"
        elif not v.fits_finetune:
            tune += f" ({v.devices_for_finetune} dev)" if v.devices_for_finetune else " (batch too big)"
        cost = fmt_amount(None if v.cost_per_1k_samples is None else float(v.cost_per_1k_samples), prefix="$")
        table.add_row(
            v.hardware,
            f"{fmt(v.inference_memory)} / {fmt(v.usable_memory)}",
            infer,
            tune,
            v.bound,
            fmt(v.latency_floor_per_batch),
            fmt(v.projected_latency_per_batch),
            human(float(v.energy_per_batch), "J"),
            human(float(v.energy_per_sample), "J"),
            cost,
        )
    console.print(table)
    how = "; ".join(f"{v.hardware} {v.efficiency_assumed:.0%} {v.efficiency_source}" for v in report.hardware)
    pues = sorted({v.pue for v in report.hardware if v.pue is not None})
    pue = f" × PUE {', '.join(fmt_number(p) for p in pues)}" if pues else ""
    console.print(
        f"  [dim]projected = roofline floor / efficiency ({how}); on the measured machine, the measured median. "
        f"energy at the wall = power × projected latency{pue} (steelyard estimate; the measured machine: its "
        "energy above); $ per 1,000 samples at the hourly price; devices needed are estimates with the weights "
        "(and for fine-tuning, ZeRO-3 states) sharded[/dim]"
    )
    for v in report.hardware:
        for s in v.suggestions:
            console.print(f"  {v.hardware}: {s}")


def render_training_rows(est: TrainingEstimate, console: Console, title: str) -> None:
    table = _table(
        title, "hardware", "peak", "utilisation", "device-hours", "cost", "energy", "CO2", right=[1, 2, 3, 4, 5, 6]
    )
    for r in est.rows:
        cost = fmt_amount(None if r.cost is None else float(r.cost), prefix="$")
        table.add_row(
            r.hardware,
            fmt(r.peak_flops_per_second),
            pct(r.utilization),
            fmt_amount(r.device_hours),
            cost,
            fmt_amount(float(r.energy), suffix=" kWh"),
            fmt_amount(float(r.co2), suffix=" kg"),
        )
    console.print(table)


def render_training_estimate(model: str, est: TrainingEstimate, console: Console | None = None) -> None:
    console = console or SafeConsole()
    console.print(
        f"[bold]{escape(model)}[/bold]: training on {human(est.tokens, 'tokens')} ({human(est.samples, 'samples')}) = "
        f"{fmt(est.total_flops)} ({est.method}); 6·N·D = {fmt(est.six_nd_flops)}"
    )
    render_training_rows(est, console, title="Training cost per device type")
    console.print("[bold]Assumptions[/bold]")
    for line in est.assumptions:
        console.print(f"  • {escape(line)}")


def render_hardware_catalog(specs: list, console: Console | None = None, show_sources: bool = True) -> None:
    console = console or SafeConsole()
    table = _table(
        "Hardware catalog (dense peaks)",
        "name",
        "device",
        "memory",
        "bandwidth",
        "fp32",
        "bf16/fp16",
        "int8",
        "power",
        "$/h",
        right=[2, 3, 4, 5, 6, 7, 8],
    )
    for hw in specs:
        half = hw.peak_flops.get("bfloat16") or hw.peak_flops.get("float16")
        table.add_row(
            hw.name,
            hw.display_name,
            fmt(Bytes(hw.memory)),
            fmt(BytesPerSecond(hw.memory_bandwidth)),
            fmt(FlopsPerSecond(hw.peak_flops.get("float32", 0))),
            fmt(FlopsPerSecond(half)) if half else "—",
            human(float(hw.peak_flops["int8"]), "OP/s") if hw.peak_flops.get("int8") else "—",
            f"{float(hw.power):.0f} W",
            "—" if hw.price_per_hour is None else f"${float(hw.price_per_hour):.2f}",
        )
    console.print(table)
    if show_sources:
        console.print("[bold]Sources[/bold]")
        for hw in specs:
            for field, source in hw.sources.items():
                console.print(f"  [cyan]{hw.name}[/cyan].{field}: {source}")



def render_catalog_defaults(defaults: Any, user_catalog: Path | None, console: Console | None = None,
                            show_sources: bool = True) -> None:
    """The catalog-wide assumptions (grid intensity, PUE, usable memory) and which user catalog is merged in."""
    console = console or SafeConsole()
    console.print(
        f"defaults: grid {fmt_number(defaults.grid_kg_co2_per_kwh * 1000)} gCO2e/kWh, "
        f"PUE {fmt_number(defaults.pue)}, usable memory "
        f"{defaults.usable_memory_fraction:.0%}; energy and CO2: steelyard estimate (codecarbon is not used)"
    )
    console.print("user catalog: " + (escape(str(user_catalog)) + " (merged over the built-in one; its entries win)"
                                      if user_catalog is not None else "none (--catalog or $STEELYARD_CATALOG)"))
    if show_sources:
        for key, text in defaults.sources.items():
            console.print(f"  [cyan]defaults[/cyan].{key}: {escape(text)}")


def render_projection(pairs: list[dict[str, Any]], console: Console | None = None) -> None:
    """``compress --hardware``: the original and the compressed model projected onto each catalog device."""
    console = console or SafeConsole()
    if not pairs:
        return
    table = _table(
        f"Projected onto catalog hardware (batch {pairs[0]['batch_size']}; roofline, not measured)",
        "hardware", "before / batch", "after / batch", "projected speedup", "energy / sample (after)",
        "$ / 1k samples (after)", "fits (after)", right=[1, 2, 3, 4, 5],
    )
    for pair in pairs:
        before, after = pair["before"], pair["after"]
        speedup = pair.get("projected_speedup")
        cost = after.get("cost_per_1k_samples")
        table.add_row(
            escape(pair["hardware"]),
            fmt_seconds(before["projected_latency_per_batch"]),
            fmt_seconds(after["projected_latency_per_batch"]),
            "—" if speedup is None else f"{speedup:.2f}x",
            human(float(after["energy_per_sample"]), "J"),
            fmt_amount(None if cost is None else float(cost), prefix="$"),
            _yes(bool(after["fits_inference"])),
        )
    console.print(table)
    how = "; ".join(f"{p['hardware']} {p['after']['efficiency_assumed']:.0%}" for p in pairs)
    console.print(f"  [dim]projected = counted work and bytes on each device's roofline / assumed efficiency ({how}); "
                  "a quantized model keeps its float model's FLOP count, so only its smaller weights (bytes) "
                  "move its projection[/dim]")
