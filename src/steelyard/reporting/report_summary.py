"""The summary at the top of a report: what to do (which recipe, runtime, model, hardware), why, at what cost,
each conclusion linked to the part of the report that holds its evidence.

Every conclusion is derived from the runs in the report, never assumed:

- **compression**: of the recipes whose accuracy stayed within the allowed drop (the run's own
  ``max_drop`` when it states one, else :data:`DEFAULT_MAX_DROP` points, the default of
  ``optimize --max-drop``) and that made the model faster or smaller by at least 5% without making
  it slower, the fastest (then the smallest); the others are listed with the reason they do not qualify;
- **runtime**: when compression runs used more than one runtime, the fastest runtime measured;
- **model**: of evaluations (or fine-tunes) of different models on the same data, the best score, and
  whether its 95% interval clears the runner-up's;
- **hardware**: a comparison's recommendation, a serving recommendation, and per profile the cheapest
  catalog device the model fits on;
- **optimize / search**: the study's answer.

When nothing qualifies the summary says "No recommendation: …" with the reasons.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from steelyard.reporting.document import Finding, Part, Section
from steelyard.reporting.formatting import fmt_number, fmt_seconds, human
from steelyard.reporting.model_groups import ReportRun
from steelyard.reporting.names import model_label

#: The accuracy a compression may lose (points) when its run states no budget of its own.
DEFAULT_MAX_DROP = 1.0
#: A speed or size ratio below this is no gain (the same 5% the recipe's own verdicts use).
MIN_GAIN = 1.05


def _evidence(run: ReportRun) -> tuple[str, str]:
    return run.part.anchor, f"evidence: {run.part.title} (run {run.record.id})"


def _max_drop(run: ReportRun) -> tuple[float, str]:
    """The run's accuracy budget (points) and where it came from."""
    config = run.record.config if isinstance(run.record.config, dict) else {}
    stated = config.get("max_drop")
    for value in config.values():
        if stated is None and isinstance(value, dict) and value.get("max_drop") is not None:
            stated = value["max_drop"]
    if stated is not None:
        return float(stated), "the run's --max-drop"
    return DEFAULT_MAX_DROP, "the default budget"


def _verdict(d: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((v for v in d.get("verdicts") or [] if isinstance(v, dict) and v.get("kind") == kind), {})


def _interval(v: dict[str, Any], fallback: Any = None) -> str:
    """A stored verdict's 95% interval (or the run's ``speedup_ci``), when the run recorded one."""
    low, high = v.get("ci_low"), v.get("ci_high")
    if low is None or high is None:
        ci = v.get("ci") or v.get("interval") or fallback
        if isinstance(ci, (list, tuple)) and len(ci) == 2:
            low, high = ci
    return "" if low is None or high is None else f" (95% CI {float(low):.2f}–{float(high):.2f}×)"


def _p_value(v: dict[str, Any]) -> str:
    p = v.get("p_value")
    return "" if p is None else f", p = {fmt_number(float(p))} ({v.get('test') or 'paired test'})"


def _compression(runs: list[ReportRun]) -> list[Finding]:
    """The best compression that kept its accuracy, or why none qualifies."""
    from steelyard.reporting.evaluation_view import fmt_metric

    qualified: list[tuple[float, float, ReportRun, str]] = []
    rejected: list[str] = []
    for run in runs:
        d = run.obj
        where = f"{d.get('recipe')} on {model_label(d['model'])} (run {run.record.id})"
        budget, source = _max_drop(run)
        drop, speed, size = d.get("metric_drop"), d.get("speedup"), float(d.get("size_ratio") or 1.0)
        metric_v = _verdict(d, "metric")
        if drop is None:
            rejected.append(f"{where}: accuracy not measured (give compress --data to measure it)")
            continue
        within = float(drop) <= budget or metric_v.get("significant") is False
        if not within:
            rejected.append(f"{where}: lost {float(drop):.2f} points, more than the {fmt_number(budget)} allowed")
            continue
        if (speed or 1.0) < MIN_GAIN and size < MIN_GAIN:
            rejected.append(f"{where}: neither faster nor smaller (speed {speed or 1.0:.2f}×, size {size:.2f}×)")
            continue
        if speed is not None and speed < 1 / MIN_GAIN:
            rejected.append(f"{where}: {size:.2f}× smaller but slower ({float(speed):.2f}× the original's speed); "
                            "worth it only where memory, not latency, is the limit")
            continue
        b, a = d["before"], d["after"]
        name = a.get("metric") or "accuracy"
        mb, ma = (b.get("metrics") or {}).get(name) or {}, (a.get("metrics") or {}).get(name) or {}
        bits = []
        if speed is not None:
            ci = _interval(_verdict(d, "speed"), d.get("speedup_ci"))
            bits.append(f"{float(speed):.2f}× faster{ci} by median latency, timed interleaved with the original"
                        if speed >= MIN_GAIN
                        else f"not faster ({float(speed):.2f}× the original's speed)")
        bits.append(f"{size:.2f}× smaller in memory ({human(b['bytes'], 'B', base=1024)} → "
                    f"{human(a['bytes'], 'B', base=1024)})" if size >= MIN_GAIN else "not smaller in memory")
        change = ("no significant change" if metric_v.get("significant") is False
                  else f"{0.0 - float(drop):+.2f} points")
        if ma and mb:
            bits.append(f"{name} {fmt_metric(mb.get('value'))} → {fmt_metric(ma.get('value'))} ({change}"
                        f"{_p_value(metric_v)}; {source} allows {fmt_number(budget)})")
        cost = f"; the recipe took {fmt_seconds(float(d.get('seconds') or 0))} to run" if d.get("seconds") else ""
        text = (f"Compress {model_label(d['model'])} with “{d.get('recipe')}” on the {d.get('backend')} runtime: "
                + "; ".join(bits) + cost + ".")
        qualified.append((float(speed or 1.0), size, run, text))
    if not runs:
        return []
    findings = []
    if qualified:
        qualified.sort(key=lambda q: (q[0], q[1]), reverse=True)
        _, _, best, text = qualified[0]
        anchor, label = _evidence(best)
        findings.append(Finding(text, anchor, label, "good"))
        if len(qualified) > 1:
            others = ", ".join(f"{q[2].obj.get('recipe')} ({q[0]:.2f}×, run {q[2].record.id})" for q in qualified[1:])
            findings.append(Finding(f"Also within budget, but slower: {others}."))
    else:
        findings.append(Finding("No recommendation for compression: no recipe kept accuracy within its budget "
                                "without making the model slower or leaving it as fast and as large (reasons "
                                "below).", *_evidence(runs[0]), "bad"))
    if rejected:
        findings.append(Finding("Not recommended: " + "; ".join(rejected) + "."))
    return findings


def _runtimes(runs: list[ReportRun]) -> list[Finding]:
    """The fastest runtime when compression runs of one model were timed on more than one."""
    best: dict[str, tuple[float, ReportRun]] = {}
    for run in runs:
        speed, backend = run.obj.get("speedup"), run.obj.get("backend")
        if speed is not None and backend and (backend not in best or speed > best[backend][0]):
            best[backend] = (float(speed), run)
    if len(best) < 2:
        return []
    ranked = sorted(best.items(), key=lambda kv: kv[1][0], reverse=True)
    (name, (speed, run)), rest = ranked[0], ranked[1:]
    others = ", ".join(f"{n} {s:.2f}×" for n, (s, _) in rest)
    return [Finding(f"Fastest runtime measured: {name}, {speed:.2f}× the original ({run.obj.get('recipe')}); "
                    f"then {others}.", *_evidence(run), "good")]


def _score_runs(runs: list[ReportRun]) -> list[Finding]:
    """The best-scoring model per dataset among evaluations and fine-tunes of different models."""
    from steelyard.reporting.evaluation_view import fmt_ci, fmt_metric

    by_data: dict[str, list[tuple[Any, ReportRun]]] = {}
    for run in runs:
        r = run.obj
        metrics = r.metrics if run.record.kind == "evaluate" else r.test
        split = r.split if run.record.kind == "evaluate" else "test"
        if not metrics:
            continue
        name = "accuracy" if "accuracy" in metrics else next(iter(metrics))
        by_data.setdefault(f"{r.dataset} {split}|{name}", []).append((metrics[name], run))
    findings = []
    for key, scored in by_data.items():
        data, name = key.split("|")
        if len({run.record.model for _, run in scored} | {_mode(run) for _, run in scored}) < 2 or len(scored) < 2:
            continue
        higher = name not in ("perplexity", "loss", "mae", "rmse", "mse")
        scored.sort(key=lambda s: s[0].value, reverse=higher)
        (best, run), (second, other) = scored[0], scored[1]
        clear = best.ci_low > second.ci_high if higher else best.ci_high < second.ci_low
        verdict = ("its 95% interval clears the runner-up's" if clear else
                   "the intervals overlap, so the lead is not established on this many examples")
        cost = _cost_words(run)
        findings.append(Finding(
            f"Best {name} on {data}: {_who(run)} {fmt_metric(best.value)} {fmt_ci(best)} vs {_who(other)} "
            f"{fmt_metric(second.value)} {fmt_ci(second)}; {verdict}{cost}.", *_evidence(run),
            "good" if clear else ""))
    return findings


def _mode(run: ReportRun) -> str:
    return getattr(run.obj, "mode", "") if run.record.kind == "finetune" else ""


def _who(run: ReportRun) -> str:
    mode = _mode(run)
    return f"{run.label} ({model_label(run.record.model)}{', ' + mode if mode else ''})"


def _cost_words(run: ReportRun) -> str:
    if run.record.kind == "finetune":
        return f"; it trained in {fmt_seconds(float(run.obj.seconds))} ({run.obj.cost.steps:,} steps)"
    return ""


def _comparisons(runs: list[ReportRun]) -> list[Finding]:
    from steelyard.reporting.compare_console import value_text
    from steelyard.reporting.explain import explanation_text
    from steelyard.reporting.formatting import fmt_usd as usd

    findings = []
    for run in runs:
        comp = run.obj
        rec = comp.recommendation
        if rec.chosen:
            option = next((o for o in comp.options if o.name == rec.chosen), None)
            cost = (f" It costs {usd(option.cost_per_1k)} per 1,000 inferences at {fmt_seconds(float(option.latency))}"
                    f" per batch." if option is not None and option.cost_per_1k is not None else "")
            findings.append(Finding(f"Comparison: {explanation_text(rec, value_text)}{cost}",
                                    *_evidence(run), "good"))
        else:
            findings.append(Finding(f"No recommendation from the comparison: {explanation_text(rec, value_text)}",
                                    *_evidence(run), "bad"))
    return findings


def _serving(runs: list[ReportRun]) -> list[Finding]:
    from steelyard.reporting.generation_parts import serving_verdict

    out = []
    for run in runs:
        text, tone = serving_verdict(run.obj)
        out.append(Finding(f"Serving: {text}" if tone == "good" else f"No serving recommendation: {text}",
                           *_evidence(run), tone))
    return out


def _hardware(runs: list[ReportRun]) -> list[Finding]:
    """Per profiled model: the cheapest catalog device it fits on (projected), or that none fits."""
    from steelyard.reporting.formatting import fmt_usd as usd

    out = []
    for run in runs:
        report = run.obj
        if not report.hardware:
            continue
        fits = [v for v in report.hardware if v.fits_inference and v.cost_per_1k_samples is not None]
        name = model_label(report.model)
        if fits:
            v = min(fits, key=lambda v: float(v.cost_per_1k_samples))
            out.append(Finding(
                f"Cheapest hardware that fits {name} ({report.dtype}, batch {report.input.batch_size}): {v.hardware}"
                f" — {usd(v.cost_per_1k_samples)} per 1,000 samples, "
                f"{fmt_seconds(float(v.projected_latency_per_batch))}"
                f" per batch projected ({v.efficiency_assumed:.0%} efficiency, {v.efficiency_source}); "
                f"{len([h for h in report.hardware if h.fits_inference])} of {len(report.hardware)} devices fit.",
                *_evidence(run), "good"))
        elif not any(v.fits_inference for v in report.hardware):
            out.append(Finding(f"No listed hardware fits {name} for inference on one device "
                               f"({', '.join(v.hardware for v in report.hardware)}).", *_evidence(run), "bad"))
    return out


def _studies(runs: list[ReportRun]) -> list[Finding]:
    from steelyard.reporting.study_view import stored_answer

    out = []
    for run in runs:
        d = run.obj
        has_answer = bool((d.get("recommendation") or {}).get("chosen")) or bool(d.get("best"))
        out.append(Finding(f"{run.record.kind.capitalize()} study on {model_label(d.get('model', ''))}: "
                           f"{stored_answer(d)}", *_evidence(run), "good" if has_answer else "bad"))
    return out


def findings(runs: Sequence[ReportRun]) -> list[Finding]:
    """Every conclusion the runs support, recommendations first."""
    of = {kind: [r for r in runs if r.record.kind == kind] for kind in {r.record.kind for r in runs}}
    out = [*_comparisons(of.get("comparison", [])), *_serving(of.get("serving", [])),
           *_compression(of.get("compression", [])), *_runtimes(of.get("compression", [])),
           *_studies(of.get("optimize", []) + of.get("search", [])),
           *_score_runs(of.get("evaluate", []) + of.get("finetune", [])), *_hardware(of.get("profile", []))]
    return sorted(out, key=lambda f: {"good": 0, "bad": 1}.get(f.tone, 2))


def summary_part(runs: Sequence[ReportRun]) -> Part:
    """The report's first part: what to do, or "No recommendation: …" with what the runs lack."""
    found = findings(runs)
    if not any(f.tone in ("good", "bad") for f in found):  # a "bad" finding already says why there is none
        kinds = sorted({r.record.kind for r in runs})
        found.insert(0, Finding(
            f"No recommendation: these runs ({', '.join(kinds)}) hold nothing that settles a choice; a compression "
            "with --data, evaluations of several models on the same data, a comparison or a profile with "
            "--hardware would.", tone="bad"))
    return Part("Summary", f"what to do, from the {len(runs)} run{'s' if len(runs) != 1 else ''} in this report",
                [Section("What to do", findings=found, anchor="summary-findings")], anchor="summary")


__all__ = ["DEFAULT_MAX_DROP", "findings", "summary_part"]
