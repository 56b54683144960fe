"""The generation card as report sections (HTML): counted phases, projections with charts, measurements;
and the serving recommendation of ``compare --workload`` as a report part."""

from __future__ import annotations

from typing import Any

from steelyard.comparison.workload import Recommendation
from steelyard.profiling.generation_report import GenerationReport, KVCacheComparison
from steelyard.reporting.document import Figure, Part, Section, Table
from steelyard.reporting.formatting import fmt, fmt_amount, fmt_number, fmt_seconds, human
from steelyard.reporting.statistics import speedup_text


def _counted(gen: GenerationReport) -> Table:
    c = gen.count
    phases = [("prefill (encoder + start token)" if c.encoder is not None else f"prefill ({c.prompt_len} tokens)",
               c.prefill)]
    if c.encoder is not None:
        phases.insert(0, (f"encoder ({c.encoder_tokens} positions)", c.encoder))
    phases += [(f"decode at context {p.context}", p.cost) for p in c.decode]
    cross = f" + cross-attention {fmt(c.cross_kv_bytes)} per sequence" if c.encoder is not None else ""
    return Table("Counted per sequence (batch 1)",
                 ["phase", "FLOPs", "other FLOPs", "bytes moved", "weights read", "KV read", "KV written"],
                 [[name, fmt(p.flops), fmt(p.other_flops), fmt(p.bytes_moved), fmt(p.weight_bytes), fmt(p.kv_read),
                   fmt(p.kv_written)] for name, p in phases],
                 note=f"KV cache {fmt(c.kv_bytes_per_token)} per token per sequence{cross}")


def _projected(gen: GenerationReport) -> list[Table]:
    tables = []
    for row in gen.hardware:
        rows = list(row.batches)
        if row.max_batch_projection is not None and row.max_batch not in {b.batch for b in rows}:
            rows.append(row.max_batch_projection)
        where = f"{row.devices}× {row.hardware}" if row.devices > 1 else row.hardware
        turn = row.decode_compute_bound_batch
        tables.append(Table(
            f"{where}, {row.dtype}: {row.compute_efficiency:.0%} of peak FLOP/s, {row.memory_efficiency:.0%} of "
            "bandwidth",
            ["batch", "TTFT", "TPOT", "e2e", "tok/s per seq", "tok/s total", "decode", "memory", "fits",
             "$ / 1M out", "J / token"],
            [[f"{b.batch}" + (" (largest that fits)" if b is row.max_batch_projection else ""), fmt(b.ttft),
              fmt(b.tpot), fmt(b.e2e), human(b.tokens_per_second_per_sequence, "tok/s"),
              human(b.tokens_per_second, "tok/s"), b.decode_bound, fmt(b.memory), "yes" if b.fits else "no",
              fmt_amount(b.cost_per_1m_output, "$"), f"{fmt_number(float(b.energy_per_token))}"] for b in rows],
            note=f"largest batch that fits: {row.max_batch}; " + (
                f"decode turns compute-bound at batch {turn}" if turn else "decode stays memory-bound")
            + "".join(f"; {n}" for n in row.notes)))
    return tables


def _measured(gen: GenerationReport) -> Table:
    return Table(
        "Measured with generate() on this machine (projected `local` beside it)",
        ["batch", "TTFT", "TPOT median", "p90", "p99", "TPOT early / late", "e2e", "tok/s", "peak memory",
         "TTFT ÷ projected", "TPOT ÷ projected"],
        [[str(m.batch), fmt(m.ttft_median), fmt(m.tpot_median), fmt(m.tpot_p90), fmt(m.tpot_p99),
          f"{fmt(m.tpot_early)} / {fmt(m.tpot_late)}", fmt(m.e2e_median), human(m.tokens_per_second, "tok/s"),
          fmt(m.peak_memory), "—" if m.ttft_ratio is None else f"{m.ttft_ratio:.1f}×",
          "—" if m.tpot_ratio is None else f"{m.tpot_ratio:.1f}×"] for m in gen.measured])


def kv_cache_table(kv: KVCacheComparison) -> Table:
    """Float vs quantized KV cache: bytes each holds, its decode step, and how often greedy output agrees."""
    f, q = kv.float_cache, kv.quantized
    tpot = speedup_text(kv.tpot_speedup, kv.tpot_ci_low, kv.tpot_ci_high, kv.rounds)
    residual = (f"; the newest {kv.residual_length} tokens stay float, scales per {kv.group_size} values"
                if q.cache != "fp8" else "; one float8 scale per layer tensor")
    return Table(
        f"KV cache, measured generate() at batch {kv.batch} ({kv.positions} cached positions)",
        ["cache", "held by", "per sequence", "per token", "TPOT (mean step, median of runs)", "e2e",
         "greedy tokens = float"],
        [[f.cache, f.backend, fmt(f.bytes_per_sequence), fmt(f.bytes_per_token), fmt_seconds(float(f.tpot_median)),
          fmt_seconds(float(f.e2e_median)), "—"],
         [q.cache, q.backend, f"{fmt(q.bytes_per_sequence)} ({kv.smaller:.1f}× smaller)", fmt(q.bytes_per_token),
          f"{fmt_seconds(float(q.tpot_median))} ({tpot})", fmt_seconds(float(q.e2e_median)),
          f"{kv.token_agreement:.0%} (until first difference {kv.prefix_agreement:.0%})"]],
        note=f"{kv.rounds} interleaved rounds after warm-up, {kv.threads} thread(s), same random prompts{residual}")


def generation_section(gen: GenerationReport) -> Section:
    """Counted phases, a TTFT/TPOT-vs-batch chart per device, the per-position decode chart, measurements."""
    from steelyard.reporting import figures

    w = gen.workload
    source = (f"an encoder over {gen.count.encoder_tokens} positions" if gen.count.encoder is not None
              else f"a prompt of {w.prompt_len} tokens")
    rows = [*gen.hardware, *([gen.local_projection] if gen.local_projection is not None else [])]
    figs = [Figure(f"TTFT and TPOT vs batch on {row.hardware}", figures.generation_batches(gen, row)) for row in rows]
    positions = figures.generation_positions(gen)
    if positions:
        figs.append(Figure("Decode cost per position", positions))
    tables = [_counted(gen), *_projected(gen)]
    if gen.measured:
        tables.append(_measured(gen))
    if gen.kv_cache is not None:
        tables.append(kv_cache_table(gen.kv_cache))
    return Section(
        f"Generation: {source} → {w.new_tokens} new tokens (batch {', '.join(map(str, w.batch_sizes))})",
        paragraphs=list(gen.assumptions), tables=tables, figures=figs)


def _option_row(o: Any) -> list[str]:
    return [o.model, o.dtype, o.hardware, str(o.batch), str(o.devices), fmt(o.ttft), fmt(o.tpot),
            fmt_amount(o.cost_per_1m, "$"), fmt_amount(o.usd_per_day, "$")]


_OPTION_COLUMNS = ["model", "dtype", "hardware", "batch", "devices", "TTFT", "TPOT", "$ / 1M out", "$ / day"]


def serving_verdict(rec: Recommendation) -> tuple[str, str]:
    """The serving recommendation as one sentence and its tone ("good": an option meets every limit)."""
    if rec.best is not None:
        b = rec.best
        verdict = (f"Recommended: {b.model} in {b.dtype} on {b.devices}× {b.hardware} ({b.replicas} replica(s) × "
                   f"{b.devices_per_replica}) at batch {b.batch}: TTFT {fmt(b.ttft)}, TPOT {fmt(b.tpot)}, "
                   f"{fmt_amount(b.usd_per_day, '$')} per day.")
        tone = "good"
    else:
        verdict = "Nothing fits: " + ("; ".join(
            f"{s.check} limit {fmt_number(s.limit)}, the best is {fmt_number(s.best)} "
            f"({s.option.model} {s.option.dtype} on "
            f"{s.option.hardware}, batch {s.option.batch})" for s in rec.shortfalls)
            or "each limit is met by some option, but none meets all") + "."
        tone = "bad"
    return verdict, tone


def serving_part(rec: Recommendation, run_id: int | None, record: Any = None) -> Part:
    """`compare --workload`: the option chosen (or what would have to give) and every option meeting the limits."""
    w = rec.workload
    limits = ", ".join(f"{check} ≤ {fmt_number(value)}" for check, value in rec.limits.checks()) or "no limits"
    verdict, tone = serving_verdict(rec)
    tables = [Table("Options meeting every limit (cheapest first)", _OPTION_COLUMNS,
                    [_option_row(o) for o in rec.feasible[:20]])] if rec.feasible else []
    if rec.closest is not None:
        tables.append(Table("Closest to meeting all limits", _OPTION_COLUMNS, [_option_row(rec.closest)]))
    sections = [Section("Recommendation", paragraphs=[
        verdict, f"Workload: prompt {w.prompt} → output {w.output} tokens at {fmt_number(w.rps)} requests/s; limits "
        f"(seconds, $): {limits}; {rec.considered} options considered."], tables=tables, tone=tone)]
    return Part("Serving recommendation", f"run {run_id}" if run_id is not None else "not saved", sections,
                anchor=f"serving-{run_id or 'new'}")


def load_recommendation(payload: dict[str, Any]) -> Recommendation:
    from steelyard.serialize import from_dict

    return from_dict(Recommendation, payload)


def serving_console(rec: Recommendation, record: Any, console: Any) -> None:
    from steelyard.reporting.generation_view import render_recommendation

    render_recommendation(rec, console)


__all__ = ["generation_section", "load_recommendation", "serving_console", "serving_part", "serving_verdict"]
