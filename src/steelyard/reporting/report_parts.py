"""Report parts (sections of tables, figures and text) of profiles, comparisons and estimates, and the
generic part of any other run; each is registered for its kind in :mod:`steelyard.reporting.views`."""

from __future__ import annotations

import json
from typing import Any

from steelyard.reporting.document import Figure, Part, Section, Table
from steelyard.reporting.formatting import (
    fmt,
    fmt_amount,
    fmt_count,
    fmt_hours,
    fmt_joules,
    fmt_number,
    fmt_unit,
    fmt_usd,
    human,
    pct,
)
from steelyard.reporting.names import model_label, run_title


def _id(run_id: int | None) -> str:
    return f"run {run_id}" if run_id is not None else "not saved"


# -- shared sections ---------------------------------------------------------------------------
def environment_section(env: Any) -> Section:
    get = env.get if isinstance(env, dict) else (lambda k, d=None: getattr(env, k, d))
    rows = []
    for key, label in (("cpu_model", "CPU"), ("physical_cores", "physical cores"), ("logical_cores", "logical cores"),
                       ("threads", "torch threads"), ("ram", "RAM"), ("device", "device"),
                       ("device_name", "device name"), ("platform", "platform"), ("python", "Python"),
                       ("torch", "torch"), ("transformers", "transformers"), ("steelyard", "steelyard"),
                       ("hostname", "host")):
        value = get(key)
        if value is None:
            continue
        if key == "ram":
            from steelyard.units import Bytes

            value = fmt(Bytes(float(value)))
        rows.append([label, str(value)])
    return Section("Environment", tables=[Table("", ["what", "value"], rows)], folded=True)


def reproduce_section(commands: list[str]) -> Section:
    return Section("Reproduce", paragraphs=["Run this to measure it again (same harness and settings):"],
                   commands=commands)


def assumptions_section(lines: list[str]) -> Section:
    return Section("Assumptions", paragraphs=list(lines))


def latency_figure(name: str, lat: Any) -> Figure:
    """The timed runs of one latency measurement as a box with every sample drawn (the recorded quantiles as
    bars when a stored run predates raw samples)."""
    from steelyard.reporting import figures

    title = f"Latency over {lat.runs} timed runs (batch {lat.batch_size}, {lat.threads} threads)"
    if lat.samples:
        return Figure("Latency distribution", figures.latency_distribution({name: lat.samples}, title))
    return Figure("Latency distribution", figures.latency_summary({name: lat}, title))


def _flops_table(report: Any) -> Table:
    return Table(
        f"Top modules at depth {report.compute.breakdown_depth} (rows sum to the total)",
        ["module", "FLOPs", "other FLOPs", "bytes moved", "share"],
        [[r.name, fmt(r.flops), fmt(r.other_flops), fmt(r.bytes_moved), pct(r.share)]
         for r in report.compute.top_modules],
    )


# -- profile -----------------------------------------------------------------------------------
def profile_part(report: Any, run_id: int | None, record: Any = None) -> Part:
    from steelyard.reporting import figures
    from steelyard.reporting.commands import profile_command

    c, m, p = report.compute, report.memory, report.parameters
    rows = [
        ["parameters (tied counted once)", f"{fmt_count(p.total)} ({p.total:,})"],
        ["storage", fmt(report.storage.on_disk if report.storage.on_disk is not None else report.storage.parameters)],
        ["FLOPs per forward (matrix work)", f"{fmt(c.flops)} = {fmt(c.macs)}"],
        ["other FLOPs (elementwise, norm, softmax)", fmt(c.other_flops)],
        ["bytes moved (unfused upper bound)", fmt(c.bytes_moved)],
        ["arithmetic intensity", f"{c.arithmetic_intensity:.1f} FLOP/B"],
        ["inference memory (weights + activations + KV)", fmt(m.inference_total)],
    ]
    if m.training is not None:
        rows.append([f"training memory ({m.training.optimizer}, {m.training.precision})", fmt(m.training.total)])
    if report.measured is not None:
        lat = report.measured.latency
        rows += [[f"latency per batch, median (batch {lat.batch_size}, {lat.threads} threads)", fmt(lat.median)],
                 ["p90 / p99", f"{fmt(lat.p90)} / {fmt(lat.p99)}"],
                 ["coefficient of variation", pct(lat.cv) + (" — noisy: rerun on a quieter machine"
                                                             if getattr(lat, "noisy", False) else "")],
                 [f"peak memory ({report.measured.peak_memory_kind})", fmt(report.measured.peak_memory)]]
    if report.energy is not None:
        rows.append([f"energy per batch ({report.energy.method}, {report.energy.estimator})",
                     fmt_joules(float(report.energy.joules_per_batch))])
    uncounted = ", ".join(f"{k}×{v}" for k, v in sorted(c.uncounted_ops.items())) or "none"
    sections = [
        Section("Summary", tables=[Table("", ["what", "value"], rows)],
                paragraphs=[f"{c.convention}. Ops not counted: {uncounted}."]),
        Section("Where the FLOPs go", figures=[Figure("Per-layer FLOPs", figures.flops_breakdown(report))],
                tables=[_flops_table(report)]),
        Section("Memory", figures=[Figure("Memory", figures.memory_bars(report))]),
    ]
    if report.measured is not None:
        ms = report.measured
        figs = [latency_figure(model_label(report.model), ms.latency)]
        sweep = figures.throughput_sweep({report.model: report})
        if sweep:
            figs.append(Figure("Throughput sweep", sweep))
        sections.append(Section(
            f"Measured on this machine ({ms.device}, {ms.latency.threads} threads)", figures=figs,
            tables=[Table("Throughput sweep", ["batch", "latency per batch (median)", "samples/s"],
                          [[str(pt.batch_size), fmt(pt.latency_per_batch), f"{pt.samples_per_second:.1f}"]
                           for pt in ms.throughput])],
            paragraphs=[f"Achieved {fmt(ms.achieved_flops_per_second)} of a measured "
                        f"{fmt(ms.machine_peak_flops_per_second)} peak ({pct(ms.efficiency)})."]))
    if report.hardware:
        verdict_rows = []
        notes = []
        for v in report.hardware:
            verdict_rows.append([
                v.hardware, f"{fmt(v.inference_memory)} / {fmt(v.usable_memory)}",
                "yes" if v.fits_inference else f"no ({v.devices_for_inference} dev)",
                f"unknown: {v.finetune_unknown}" if v.finetune_unknown else "yes" if v.fits_finetune else "no",
                v.bound, fmt(v.latency_floor_per_batch), fmt(v.projected_latency_per_batch),
                f"{v.efficiency_assumed:.0%} {v.efficiency_source}", fmt_joules(float(v.energy_per_batch)),
                fmt_usd(v.cost_per_1k_samples)])
            notes += [f"{v.hardware}: {s}" for s in v.suggestions]
        hw_fig = figures.hardware_latency(report)
        sections.append(Section(
            "Can it run?", paragraphs=notes,
            tables=[Table(f"{report.dtype}, batch {report.input.batch_size}",
                          ["hardware", "memory", "inference", "fine-tune", "bound", "floor / batch",
                           "projected / batch", "efficiency", "energy / batch", "$ / 1k samples"], verdict_rows)],
            figures=[Figure("Latency per hardware", hw_fig)] if hw_fig else []))
    if getattr(report, "generation", None) is not None:
        from steelyard.reporting.generation_parts import generation_section

        sections.append(generation_section(report.generation))
    sections.append(assumptions_section(report.assumptions))
    sections.append(environment_section(report.environment))
    command = profile_command(report.model, record.config) if record is not None else None
    if command:
        sections.append(reproduce_section([command]))
    where = "config only (meta device)" if report.on_meta else report.environment.device
    return Part(f"Profile: {run_title(record, report.model)}",
                f"{_id(run_id)} · {report.task} · {report.dtype} · {where} · {report.created_at}",
                sections, anchor=f"profile-{run_id or 'new'}")


# -- comparison ----------------------------------------------------------------------------------
def comparison_part(comp: Any, run_id: int | None, record: Any = None) -> Part:
    from steelyard.comparison.compare import option_values
    from steelyard.reporting import figures
    from steelyard.reporting.commands import compare_command
    from steelyard.reporting.compare_console import (
        access_cell,
        comparison_assumptions,
        latency_text,
        quality_bits,
        score_text,
        speed_bits,
        value_text,
    )
    from steelyard.reporting.explain import explanation_text

    rec = comp.recommendation
    front = set(rec.pareto.front)
    by_label = {c.label: c for c in comp.candidates}
    values = {o.name: option_values(o, by_label[o.candidate]) for o in comp.options}
    metric = comp.candidates[0].score.name if comp.candidates[0].score else "accuracy"
    rows = []
    for o in comp.options:
        c = by_label[o.candidate]
        storage = c.report.storage.on_disk if c.report.storage.on_disk is not None else c.report.storage.parameters
        rows.append([o.candidate, o.hardware, score_text(c), latency_text(o, c), fmt_amount(o.throughput, suffix="/s"),
                     fmt(o.memory), fmt(storage), fmt_usd(o.cost_per_1k), fmt_joules(float(o.energy_per_inference)),
                     "fits" if o.fits_inference else f"does not fit ({o.devices_for_inference} dev)",
                     ("✔ " if o.name == rec.chosen else "") + ("★" if o.name in front else "")])
    speed = speed_bits(comp)
    table_notes = ["Latency marked * is projected from the roofline; ★ on the Pareto front; ✔ recommended."]
    if speed:
        table_notes.append(f"Speed relative to {comp.candidates[0].label} on this machine (interleaved rounds, ratio "
                           f"of medians, > 1 is faster): {', '.join(speed)}.")
    if quality_bits(comp):
        table_notes.append(f"Quality relative to {comp.candidates[0].label} on the same examples (paired test; n.s. = "
                           f"not significant at 5%): {' | '.join(quality_bits(comp))}.")
    objectives = ", ".join(f"{o.title} {'↑' if o.direction == 'max' else '↓'}" for o in comp.objectives)
    pareto_text = [f"Objectives: {objectives}. Front: {', '.join(rec.pareto.front)}."]
    dominated = [f"{n} (by {', '.join(by[:2])}{f' and {len(by) - 2} more' if len(by) > 2 else ''})"
                 for n, by in rec.pareto.dominated_by.items() if by]
    if dominated:
        pareto_text.append("Dominated: " + "; ".join(dominated) + ".")
    for group in rec.pareto.ties:
        pareto_text.append("Tied on every objective: " + " = ".join(group) + ".")
    sections = [
        Section(f"Recommendation: {rec.chosen or 'none feasible'}", paragraphs=[explanation_text(rec, value_text)],
                tone="good" if rec.chosen else "bad"),
        Section("Comparison", paragraphs=table_notes, tables=[Table(
            "Candidates × hardware", ["model", "hardware", f"{metric} (95% CI)", "latency", "throughput", "memory",
                                      "storage", "$ / 1k", "energy / inf", "fits", ""], rows)]),
        Section("Pareto front", paragraphs=pareto_text,
                figures=[Figure("Pareto front", figures.pareto_chart(comp, values), _unplotted(comp, values))]),
    ]
    figs = []
    samples = {c.label: c.samples for c in comp.candidates if c.samples}
    if samples:
        figs.append(Figure("Latency distribution", figures.latency_distribution(
            samples, f"Latency per batch, {comp.config.runs} interleaved rounds on this machine")))
    sweep = figures.throughput_sweep({c.label: c.report for c in comp.candidates})
    if sweep:
        figs.append(Figure("Throughput sweep", sweep))
    if figs:
        sections.append(Section("Latency and throughput", figures=figs))
    life_rows = [[o.hardware, o.candidate, fmt_hours(o.finetune_hours), fmt_usd(o.finetune_cost),
                  fmt_usd(o.serving_cost), fmt_usd(o.lifetime_cost)]
                 for hw in comp.hardware for o in comp.options if o.hardware == hw]
    life_fig = figures.lifetime_bars(comp)
    sections.append(Section(
        "Lifetime cost", tables=[Table(
            f"fine-tune on {human(comp.config.finetune_tokens, 'tokens')} + serve "
            f"{comp.config.requests_per_day:,.0f} requests/day × {fmt_number(comp.config.days)} days",
            ["hardware", "model", "fine-tune time", "fine-tune $", "serving $", "total $"], life_rows)],
        figures=[Figure("Lifetime cost", life_fig)] if life_fig else []))
    sections.append(Section("Accessibility", tables=[Table(
        "models × hardware: fits for inference / fine-tuning, latency, cost",
        ["model", *comp.hardware],
        [[f"{c.label} ({fmt_count(c.report.parameters.total)})",
          *[access_cell(comp.option(c.label, hw)) for hw in comp.hardware]] for c in comp.candidates])]))
    sections.append(Section("Per-layer FLOPs", figures=[
        Figure(f"Per-layer FLOPs — {c.label}", figures.flops_breakdown(c.report)) for c in comp.candidates]))
    sections.append(assumptions_section(comparison_assumptions(comp)))
    sections.append(environment_section(comp.environment))
    sections.append(reproduce_section([compare_command(comp)]))
    return Part(f"Comparison: {' vs '.join(c.label for c in comp.candidates)}",
                f"{_id(run_id)} · {comp.created_at}", sections, anchor=f"comparison-{run_id or 'new'}")


def _unplotted(comp: Any, values: dict[str, dict[str, float | None]]) -> str:
    from steelyard.reporting.figures import axes

    x_name, y_name = axes(comp)
    missing = [name for name, v in values.items() if v.get(x_name) is None or v.get(y_name) is None]
    if not missing:
        return ""
    return f"Not drawn (no {x_name} or {y_name} figure, e.g. no price for the local machine): {', '.join(missing)}."


# -- estimate and generic ------------------------------------------------------------------------
def estimate_part(est: dict[str, Any], run_id: int | None, record: Any = None) -> Part:
    rows = [[r["hardware"], fmt_amount(r["device_hours"]), fmt_amount(r.get("cost"), prefix="$"),
             fmt_amount(r["energy"], suffix=" kWh"), fmt_amount(r["co2"], suffix=" kg")] for r in est["rows"]]
    model = record.model if record is not None else "model"
    sections = [
        Section("Training cost", paragraphs=[
            f"{human(est['tokens'], 'tokens')} · {human(est['total_flops'], 'FLOP')} ({est['method']}); "
            f"6·N·D = {human(est['six_nd_flops'], 'FLOP')}"],
            tables=[Table("per device type", ["hardware", "device-hours", "cost", "energy", "CO2"], rows)]),
        assumptions_section(est.get("assumptions", [])),
    ]
    if record is not None:
        sections.append(environment_section(record.environment))
    return Part(f"Estimate: {run_title(record, model)}", _id(run_id), sections, anchor=f"estimate-{run_id or 'new'}")


def generic_part(record: Any, run_id: int | None) -> Part:
    """Any run kind without its own builder: headline metrics, config and environment."""
    if record is None:
        return Part("Run", _id(run_id), [])
    rows = [[name, fmt_unit(value, unit)] for name, (value, unit) in sorted(record.metrics.items())]
    sections = [Section("Headline numbers", tables=[Table("", ["metric", "value"], rows)])]
    sections.append(Section("Config", code=json.dumps(record.config, indent=2, default=str)))
    if record.environment:
        sections.append(environment_section(record.environment))
    command = record.config.get("command") if isinstance(record.config, dict) else None
    if command:
        sections.append(reproduce_section([command]))
    return Part(f"{record.kind.capitalize()}: {run_title(record)}",
                f"{_id(run_id)} · {record.status} · {record.created_at:%Y-%m-%d %H:%M:%S}", sections,
                anchor=f"{record.kind}-{run_id}")
