"""Console rendering of the generation card: counted phases, projections per device, measurements."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from steelyard.comparison.workload import Recommendation
from steelyard.profiling.generation_report import GenerationReport, HardwareGeneration, KVCacheComparison
from steelyard.reporting.formatting import fmt, fmt_amount, fmt_number, fmt_seconds, human


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold", header_style="bold cyan")
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i == 0 else "right")
    return table


def _rate(tokens_per_second: float) -> str:
    return f"{human(tokens_per_second, 'tok/s')}"


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}×"


def _device_table(row: HardwareGeneration) -> Table:
    where = f"{row.devices}× {row.hardware} (tensor parallel)" if row.devices > 1 else row.hardware
    table = _table(
        f"{where}, {row.dtype}: {row.compute_efficiency:.0%} of peak FLOP/s, {row.memory_efficiency:.0%} of bandwidth",
        "batch", "TTFT", "TPOT", "e2e", "tok/s per seq", "tok/s total", "prefill", "decode", "memory", "fits",
        "$ / 1M out", "$ / 1M prompt", "J / token")
    rows = list(row.batches)
    if row.max_batch_projection is not None and row.max_batch not in {b.batch for b in rows}:
        rows.append(row.max_batch_projection)
    for b in rows:
        label = f"{b.batch} (largest that fits)" if b is row.max_batch_projection else str(b.batch)
        table.add_row(
            label, fmt_seconds(float(b.ttft)), fmt_seconds(float(b.tpot)), fmt_seconds(float(b.e2e)),
            _rate(b.tokens_per_second_per_sequence), _rate(b.tokens_per_second), b.prefill_bound, b.decode_bound,
            fmt(b.memory), "[green]yes[/green]" if b.fits else "[red]no[/red]",
            fmt_amount(b.cost_per_1m_output, "$"), fmt_amount(b.cost_per_1m_prompt, "$"),
            f"{fmt_number(float(b.energy_per_token))}")
    turn = row.decode_compute_bound_batch
    table.caption = (f"largest batch that fits: {row.max_batch}; "
                     + (f"decode turns compute-bound at batch {turn}" if turn else
                        "decode stays memory-bound at every batch (its KV cache read grows with the batch too)")
                     + "".join(f"; {n}" for n in row.notes))
    return table


def render_generation(report: GenerationReport, console: Console | None = None) -> None:
    """The generation section: what each phase costs, what it takes on each device, what was measured."""
    console = console or Console()
    w, c = report.workload, report.count
    source = (f"encoder over {c.encoder_tokens} positions" if c.encoder is not None else
              f"prompt {w.prompt_len} tokens")
    console.print(f"[bold]Generation[/bold]  {source} → {w.new_tokens} new tokens "
                  f"(batch {', '.join(map(str, w.batch_sizes))}) · {report.dtype}")
    table = _table("Counted per sequence (batch 1)", "phase", "FLOPs", "other FLOPs", "bytes moved",
                   "weights read", "KV read", "KV written")
    p = c.prefill
    if c.encoder is not None:
        e = c.encoder
        table.add_row(f"  of which encoder ({c.encoder_tokens} positions)", fmt(e.flops), fmt(e.other_flops),
                      fmt(e.bytes_moved), fmt(e.weight_bytes), fmt(e.kv_read), fmt(e.kv_written))
    prefill = "prefill (encoder + start token)" if c.encoder is not None else f"prefill ({w.prompt_len} tokens)"
    table.add_row(prefill, fmt(p.flops), fmt(p.other_flops), fmt(p.bytes_moved),
                  fmt(p.weight_bytes), fmt(p.kv_read), fmt(p.kv_written))
    for point in c.decode:
        d = point.cost
        table.add_row(f"decode at context {point.context}", fmt(d.flops), fmt(d.other_flops), fmt(d.bytes_moved),
                      fmt(d.weight_bytes), fmt(d.kv_read), fmt(d.kv_written))
    cross = f" + cross-attention {fmt(c.cross_kv_bytes)} per sequence" if c.encoder is not None else ""
    table.caption = (f"KV cache {fmt(c.kv_bytes_per_token)} per token per sequence{cross}; weights resident "
                     f"{fmt(report.total_weight_bytes)}")
    console.print(table)
    for row in report.hardware:
        console.print(_device_table(row))
    if report.measured:
        table = _table("Measured generate() on this machine, beside the `local` projection", "batch", "TTFT",
                       "TPOT median", "p90", "p99", "TPOT early → late", "e2e", "tok/s total",
                       "peak memory (half → full)", "TTFT measured/projected", "TPOT measured/projected")
        for m in report.measured:
            table.add_row(
                str(m.batch), fmt_seconds(float(m.ttft_median)), fmt_seconds(float(m.tpot_median)),
                fmt_seconds(float(m.tpot_p90)), fmt_seconds(float(m.tpot_p99)),
                f"{fmt_seconds(float(m.tpot_early))} → {fmt_seconds(float(m.tpot_late))}",
                fmt_seconds(float(m.e2e_median)), _rate(m.tokens_per_second),
                f"{fmt(m.peak_memory_half)} → {fmt(m.peak_memory)} ({m.peak_memory_kind})",
                _ratio(m.ttft_ratio), _ratio(m.tpot_ratio))
        first = report.measured[0]
        table.caption = f"{first.runs} timed runs per batch after warm-up; timer {first.timer}"
        console.print(table)
    if report.kv_cache is not None:
        console.print(kv_cache_table(report.kv_cache))
    for line in report.assumptions:
        console.print(f"  · {line}")


def kv_cache_table(kv: KVCacheComparison) -> Table:
    """The float vs quantized KV cache table of the report (:func:`generation_parts.kv_cache_table`), for rich."""
    from steelyard.reporting.generation_parts import kv_cache_table as document_table

    part = document_table(kv)
    table = _table(part.title, *part.columns)
    for row in part.rows:
        table.add_row(*row)
    table.caption = part.note
    return table


_CHECK_LABELS = {"ttft": "TTFT", "tpot": "TPOT", "cost_per_1m": "$ / 1M output tokens"}


def _value(check: str, value: float) -> str:
    return fmt_amount(value, "$") if check == "cost_per_1m" else fmt_seconds(value)


def render_recommendation(rec: Recommendation, console: Console | None = None) -> None:
    """The serving recommendation: the option chosen (or what would have to give) and the feasible ones."""
    console = console or Console()
    w = rec.workload
    limits = ", ".join(f"{_CHECK_LABELS[c]} ≤ {_value(c, v)}" for c, v in rec.limits.checks()) or "no limits"
    console.print(f"[bold]Serving[/bold] prompt {w.prompt} → output {w.output} tokens at "
                  f"{fmt_number(w.rps)} requests/s; "
                  f"{limits}; {rec.considered} options considered")
    if rec.best is not None:
        b = rec.best
        console.print(f"[green]recommended[/green]: {b.model} in {b.dtype} on {b.devices}× {b.hardware} "
                      f"({b.replicas} replica{'s' if b.replicas != 1 else ''} × {b.devices_per_replica}) at batch "
                      f"{b.batch}: TTFT {fmt_seconds(float(b.ttft))}, TPOT {fmt_seconds(float(b.tpot))}, "
                      f"{fmt_amount(b.usd_per_day, '$')} per day")
    else:
        console.print("[red]nothing fits[/red]")
        for s in rec.shortfalls:
            o = s.option
            console.print(f"  {_CHECK_LABELS[s.check]} limit {_value(s.check, s.limit)}: the best is "
                          f"{_value(s.check, s.best)} ({o.model} {o.dtype} on {o.hardware}, batch {o.batch}); "
                          "relax it or add a faster device or a smaller model")
        if rec.closest is not None:
            o = rec.closest
            console.print(f"  each limit is met by some option but none meets all; closest: {o.model} {o.dtype} on "
                          f"{o.hardware} at batch {o.batch} (TTFT {fmt_seconds(float(o.ttft))}, TPOT "
                          f"{fmt_seconds(float(o.tpot))})")
    if rec.feasible:
        table = _table("Options meeting every limit (cheapest first)", "model", "dtype", "hardware", "batch",
                       "devices", "TTFT", "TPOT", "$ / 1M out", "$ / day")
        for o in rec.feasible[:10]:
            table.add_row(o.model, o.dtype, o.hardware, str(o.batch), str(o.devices), fmt_seconds(float(o.ttft)),
                          fmt_seconds(float(o.tpot)), fmt_amount(o.cost_per_1m, "$"), fmt_amount(o.usd_per_day, "$"))
        console.print(table)
