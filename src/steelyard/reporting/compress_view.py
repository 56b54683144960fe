"""The before / after view of a compression run, built from its stored dict.

One function makes the rows; the console (``steelyard compress``) and the HTML report
(``steelyard report``) both draw them, so the two can never disagree.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

from steelyard.reporting.document import Figure, Part, Section, Table
from steelyard.reporting.formatting import fmt_count, fmt_seconds, human
from steelyard.reporting.markup import escape
from steelyard.reporting.statistics import (
    UNBOUNDED_METRICS,
    change_cell,
    discordant_text,
    fmt_p,
    noise_text,
    noisy_mark,
    paired_test_name,
    speedup_of,
)

if TYPE_CHECKING:
    from steelyard.compression.recipe.result import Verdict

COLUMNS = ["", "before", "after", "change"]


def _ratio(before: float | None, after: float | None, *, smaller_is: str = "smaller") -> str:
    if not before or not after:
        return ""
    r = before / after
    if 0.995 <= r <= 1.005:
        return "same"
    return f"{r:.2f}x {smaller_is}" if r > 1 else f"{1 / r:.2f}x {'larger' if smaller_is == 'smaller' else 'slower'}"


def _metric(card: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    name = card.get("metric")
    return name or "", (card.get("metrics") or {}).get(name) if name else None


def _over(name: str, m: dict[str, Any]) -> str:
    """What perplexity's interval resamples: the held-out documents, or the token blocks when there were too
    few documents (records from before the unit was stored resampled blocks)."""
    if name != "perplexity" or not m.get("n"):
        return ""
    unit = m.get("unit") or "blocks"
    return f" over {m['n']} {'token blocks' if unit == 'blocks' else unit}"


def _metric_text(m: dict[str, Any] | None) -> str:
    if m is None:
        return "—"
    return f"{m['value']:.4f} [{m['ci_low']:.4f}, {m['ci_high']:.4f}]"


def before_after_rows(d: dict[str, Any]) -> list[list[str]]:
    """Rows of the before / after table of a :class:`RecipeResult` dict."""
    b, a = d["before"], d["after"]
    rows = [
        ["parameters", fmt_count(b["params"]), fmt_count(a["params"]), _ratio(b["params"], a["params"])],
        ["weights in memory", human(b["bytes"], "B", base=1024), human(a["bytes"], "B", base=1024),
         _ratio(b["bytes"], a["bytes"])],
    ]
    if a.get("nonzero") is not None and b.get("nonzero") is not None and a["params"]:
        rows.append(["non-zero weights", fmt_count(b["nonzero"]), fmt_count(a["nonzero"]),
                     f"{1 - a['nonzero'] / a['params']:.0%} zeros"])
    if a.get("file_bytes"):
        rows.append(["on disk", "", human(a["file_bytes"], "B", base=1024), ""])
    rows.append(["FLOPs (matrix, timing batch)", human(b.get("flops"), "FLOP"), human(a.get("flops"), "FLOP"),
                 _ratio(b.get("flops"), a.get("flops"), smaller_is="fewer")])
    lb, la = b.get("latency"), a.get("latency")
    if lb and la:
        timing = d.get("timing", {})
        shape = "×".join(str(n) for n in timing.get("shape") or [])
        speed = d.get("speed")
        change = speedup_of(speed) if speed else _ratio(lb["median"], la["median"], smaller_is="faster")
        rows.append([f"latency, median (batch {shape})", fmt_seconds(lb["median"]) + noisy_mark(lb),
                     fmt_seconds(la["median"]) + noisy_mark(la), change])
        rows.append(["latency, p90", fmt_seconds(lb["p90"]), fmt_seconds(la["p90"]), ""])
        rows.append(["throughput", f"{b['throughput']:.1f}/s", f"{a['throughput']:.1f}/s", ""])
    if b.get("activation_peak") is not None and a.get("activation_peak") is not None:
        pb, pa = b["bytes"] + b["activation_peak"], a["bytes"] + a["activation_peak"]
        rows.append(["peak memory: weights + live activations (traced)", human(pb, "B", base=1024),
                     human(pa, "B", base=1024), _ratio(pb, pa)])
    rows.extend(generation_rows(b.get("generation"), a.get("generation")))
    name, mb = _metric(b)
    _, ma = _metric(a)
    if mb is not None and ma is not None:
        paired = (d.get("changes") or {}).get(name)
        drop = d.get("metric_drop")
        if paired is not None:
            change = change_cell(paired)
        else:  # a run stored before the paired test
            change = "" if drop is None else ("same" if abs(drop) < 0.005 else f"{-drop:+.2f} pts, untested")
        rows.append([f"{name} ({d.get('eval_split')}, 95% CI{_over(name, mb)})", _metric_text(mb), _metric_text(ma),
                     change])
        for other, ch in (d.get("changes") or {}).items():
            if other != name and other in (b.get("metrics") or {}) and other in (a.get("metrics") or {}):
                rows.append([f"{other} ({d.get('eval_split')}, 95% CI)", _metric_text(b["metrics"][other]),
                             _metric_text(a["metrics"][other]), change_cell(ch)])
        if a.get("agreement") is not None:
            rows.append(["predictions equal to the original's", "", f"{a['agreement']:.2%}", ""])
    fid = d.get("fidelity")
    if fid:
        sqnr = fid["sqnr_db"]
        sqnr_text = "∞" if sqnr in ("inf", float("inf")) else f"{float(sqnr):.1f} dB"
        rows.append([f"output fidelity ({fid['output']}, timing batch)", "",
                     f"SQNR {sqnr_text}, cosine {fid['cosine']:.4f}", ""])
    return rows


def generation_rows(gb: dict[str, Any] | None, ga: dict[str, Any] | None) -> list[list[str]]:
    """A causal LM's generative rows: per decode batch tokens/s (speedup with its CI), TTFT, TPOT; KV bytes per
    token, memory at the largest batch, and the agreement of greedy generations."""
    if not gb or not ga:
        return []
    rows = []
    workload = f"{gb['prompt_len']} + {gb['new_tokens']} tokens"
    for rb, ra in zip(gb.get("runs") or [], ga.get("runs") or [], strict=False):
        if rb.get("tokens_per_second") is None or ra.get("tokens_per_second") is None:
            continue
        batch = rb["batch"]
        rows.append([f"decode tokens/s (batch {batch}, {workload})",
                     f"{rb['tokens_per_second']:.1f}/s" + noisy_mark(rb.get("decode")),
                     f"{ra['tokens_per_second']:.1f}/s" + noisy_mark(ra.get("decode")), speedup_of(ra.get("speedup"))])
        rows.append([f"TTFT, median (batch {batch})", fmt_seconds(rb["ttft"]), fmt_seconds(ra["ttft"]),
                     _ratio(rb["ttft"], ra["ttft"], smaller_is="faster")])
        rows.append([f"TPOT, median (batch {batch})", fmt_seconds(rb["tpot"]), fmt_seconds(ra["tpot"]),
                     _ratio(rb["tpot"], ra["tpot"], smaller_is="faster")])
    rows.append(["KV cache per token (per sequence)", human(gb["kv_bytes_per_token"], "B", base=1024),
                 human(ga["kv_bytes_per_token"], "B", base=1024),
                 _ratio(gb["kv_bytes_per_token"], ga["kv_bytes_per_token"])])
    if gb.get("runs") and ga.get("runs"):
        rb, ra = max(gb["runs"], key=lambda r: r["batch"]), max(ga["runs"], key=lambda r: r["batch"])
        rows.append([f"memory at batch {rb['batch']}: weights + KV cache ({workload})",
                     human(rb["memory"], "B", base=1024), human(ra["memory"], "B", base=1024),
                     _ratio(rb["memory"], ra["memory"])])
    peaks = [(rb, ra) for rb, ra in zip(gb.get("runs") or [], ga.get("runs") or [], strict=False)
             if rb.get("peak_memory") is not None and ra.get("peak_memory") is not None]
    for rb, ra in peaks:
        rows.append([f"peak memory at batch {rb['batch']}: weights + generate()'s live tensors (traced)",
                     human(rb["peak_memory"], "B", base=1024), human(ra["peak_memory"], "B", base=1024),
                     _ratio(rb["peak_memory"], ra["peak_memory"])])
    if ga.get("agreement") is not None:
        identical = f"{ga['identical']}/{ga['prompts']} prompts identical" if ga.get("identical") is not None else ""
        rows.append([f"greedy tokens equal to the original's ({ga['prompts']} prompts from the "
                     f"{ga['prompt_source']} × {ga['new_tokens']})", "", f"{ga['agreement']:.2%}", identical])
    return rows


def step_rows(d: dict[str, Any]) -> list[list[str]]:
    rows = []
    for s in d["steps"]:
        extra = f"val {s['validation']:.4f} after {s['train_steps']} steps" if s.get("validation") is not None else ""
        notes = "; ".join(n for n in [*(s.get("notes") or []), extra] if n)
        rows.append([s["text"], fmt_seconds(s["seconds"]), fmt_count(s["params_after"]),
                     human(s["bytes_after"], "B", base=1024), notes])
    return rows


STEP_COLUMNS = ["step", "time", "parameters after", "weights after", "notes"]


def figure(d: dict[str, Any]) -> Figure:
    """Bars of after / before for latency, memory, FLOPs and the metric (1 = unchanged)."""
    b, a = d["before"], d["after"]
    labels, values = [], []
    for label, kb, ka in (("latency", b.get("latency"), a.get("latency")),):
        if kb and ka:
            labels.append(label)
            values.append(ka["median"] / kb["median"])
    for label, key in (("weights in memory", "bytes"), ("FLOPs", "flops"), ("parameters", "params")):
        if b.get(key) and a.get(key) is not None:
            labels.append(label)
            values.append(a[key] / b[key])
    _, mb = _metric(b)
    _, ma = _metric(a)
    if mb and ma and mb["value"]:
        labels.append(b["metric"])
        values.append(ma["value"] / mb["value"])
    spec = {
        "data": [{"type": "bar", "x": labels, "y": values, "text": [f"{v:.2f}" for v in values],
                  "textposition": "auto", "marker": {"color": "#4c78a8"}}],
        "layout": {"xaxis": {"title": "quantity"},
                   "yaxis": {"title": "after / before"}, "height": 320,
                   "shapes": [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": 1, "y1": 1,
                               "line": {"dash": "dot", "color": "#888"}}]},
    }
    return Figure("After / before (1 = unchanged; lower is lighter)", spec)


def verdict_text(v: Verdict) -> str:
    """A recipe's measured claim as a sentence; a speed or metric claim carries its interval or test."""
    if v.kind == "speed":
        return _speed_text(v)
    if v.kind == "decode":
        return f"decode at batch {v.batch}: " + _speed_text(v, "median decode time")
    if v.kind == "size":
        return f"{v.value:.2f}x smaller in memory" if v.outcome == "smaller" else \
            f"not smaller in memory ({v.value:.2f}x)"
    if v.kind == "sparsity":
        return (f"{int(v.value):,} more weights are zero ({v.share or 0:.0%} of the model): it is sparse, not "
                "smaller, and dense kernels still multiply the zeros")
    return _metric_verdict_text(v)


def _speed_text(v: Verdict, what: str = "median latency") -> str:
    interval = "" if v.ci_low is None or v.ci_high is None else f"95% CI {v.ci_low:.2f}–{v.ci_high:.2f}, "
    rounds = f" over {v.rounds} rounds" if v.rounds else ""
    if v.outcome == "faster":
        return f"{v.value:.2f}x faster ({interval}{what}, interleaved with the original{rounds} in this run)"
    if v.outcome == "same":  # runs stored before the interval decided
        return f"not faster: {v.value:.2f}x the original's speed (within timing noise)"
    if v.outcome == "slower":
        return f"slower: {v.value:.2f}x the original's speed ({interval}interleaved with the original{rounds})"
    if v.ci_low is None:
        return f"not significantly faster: {v.value:.2f}x the original's speed (no interval: too few rounds)"
    return (f"not significantly faster: {v.value:.2f}x the original's speed ({interval}the interval includes 1.0"
            f"{'; ' + str(v.rounds) + ' interleaved rounds' if v.rounds else ''})")


def _metric_verdict_text(v: Verdict) -> str:
    test = f"{paired_test_name(v.test)} {fmt_p(v.p_value)}"
    pairs = discordant_text(v.only_before, v.only_after, v.n)
    detail = test + (f", {pairs}" if pairs else "")
    if v.metric in UNBOUNDED_METRICS and v.before and v.p_value is not None:
        return _relative_verdict_text(v, detail)
    if v.ci_low is not None and v.ci_high is not None and v.outcome in ("dropped", "rose", "not significant"):
        detail += f"; 95% CI of the change {v.ci_low:+.2f} to {v.ci_high:+.2f} points"
    if v.outcome == "unchanged":
        return f"{v.metric} unchanged" + (" (identical predictions)" if v.test else "")
    if v.outcome == "not significant":
        return f"{v.metric}: no significant change ({detail})"
    if v.outcome == "untested":
        return f"{v.metric} changed by {v.value:.2f} points (not tested: no paired predictions)"
    if v.p_value is None:  # a run stored before the paired test
        return f"{v.metric} {v.outcome} {v.value:.2f} points (stored without a paired test)"
    return f"{v.metric} {v.outcome} {v.value:.2f} points ({detail})"


def _relative_verdict_text(v: Verdict, detail: str) -> str:
    """A metric that is not a share and is better lower (perplexity, a loss): its change in percent of the value
    before, and the direction of the value itself ("perplexity rose 0.06%", never "dropped 17.57 points")."""
    before = float(v.before)  # type: ignore[arg-type]
    if v.ci_low is not None and v.ci_high is not None:  # the interval is of after − before, ×100
        detail += f"; 95% CI of the change {v.ci_low / before:+.2f}% to {v.ci_high / before:+.2f}%"
    if v.outcome == "unchanged":
        return f"{v.metric} unchanged (identical outputs)"
    if v.outcome == "not significant":
        return f"{v.metric}: no significant change ({detail})"
    moved = {"dropped": "rose", "rose": "fell"}.get(v.outcome, v.outcome)  # quality dropped: the value rose
    return f"{v.metric} {moved} {v.value / before:.2f}% ({detail})"


def render_compression(d: dict[str, Any], console: Any) -> None:
    """A compression run (its ``to_dict``) on a rich console: before / after, the steps, verdicts, notes."""
    from rich.table import Table

    table = Table(title=f"{escape(d['model'])} · {escape(d['recipe'])}", title_justify="left")
    for i, col in enumerate(COLUMNS):
        table.add_column(col, justify="left" if i == 0 else "right")
    for row in before_after_rows(d):
        table.add_row(*row)
    console.print(table)
    steps = Table(title="steps", title_justify="left")
    for col in STEP_COLUMNS:
        steps.add_column(col)
    for row in step_rows(d):
        steps.add_row(*row)
    console.print(steps)
    for line in verdict_lines(d):
        console.print(f"• {escape(line)}")
    for label, line in noise_lines(d):
        console.print(f"[yellow]{label} latency {escape(line)}: rerun with more --rounds or on a quieter "
                      "machine[/yellow]")
    for note in d.get("notes", []):
        console.print(f"[dim]note: {escape(note)}[/dim]")


def compression_console(d: dict[str, Any], record: Any, console: Any) -> None:
    """The console view of a stored compression run (`runs show`)."""
    render_compression(d, console)


def verdict_lines(d: dict[str, Any]) -> list[str]:
    """The verdicts of a stored compression run (structured, or sentences in runs saved before they were data)."""
    from steelyard.compression.recipe.result import Verdict
    from steelyard.serialize import from_dict

    return [v if isinstance(v, str) else verdict_text(from_dict(Verdict, v)) for v in d.get("verdicts", [])]


def compress_part(d: dict[str, Any], run_id: int | None, record: Any = None) -> Part:
    from steelyard.reporting.report_parts import environment_section, reproduce_section

    sections = [
        Section("Before / after", paragraphs=verdict_lines(d),
                tables=[Table("", COLUMNS, before_after_rows(d), note=_timing_note(d))], figures=[figure(d)]),
        Section("Steps", tables=[Table("", STEP_COLUMNS, step_rows(d))], paragraphs=list(d.get("notes", []))),
    ]
    if record is not None and record.environment:
        sections.append(environment_section(record.environment))
    command = (record.config or {}).get("command") if record is not None else None
    if command:
        sections.append(reproduce_section([command]))
    subtitle = f"run {run_id}" if run_id else "this run"
    return Part(f"Compression: {d['model']}", f"{subtitle} · {d['recipe']}", sections,
                anchor=f"compression-{run_id or 'new'}")


def _timing_note(d: dict[str, Any]) -> str:
    t = d.get("timing") or {}
    if not t:
        return ""
    text = (f"Both models timed in {t.get('rounds')} alternating rounds after {t.get('warmup')} warm-up calls, "
            f"{t.get('threads')} threads, same process, same batch of real examples; the speedup's 95% interval is "
            "a bootstrap over the paired rounds.")
    if d.get("changes"):
        text += (" Metric changes are tested on the same examples: McNemar (exact) for accuracy, a paired "
                 "bootstrap for the others; n.s. = not significant at 5%.")
    text += generation_note((d.get("after") or {}).get("generation"))
    return text + "".join(f" {label} latency {line}." for label, line in noise_lines(d))


def generation_note(g: dict[str, Any] | None) -> str:
    """How the generative rows were measured (empty when the run has none)."""
    if not g:
        return ""
    text = (f" Generation: both models produce exactly {g['new_tokens']} greedy tokens after prompts of "
            f"{g['prompt_len']} tokens from the {g['prompt_source']}")
    if any(r.get("tokens_per_second") is not None for r in g.get("runs") or []):
        text += (", timed in alternating rounds; decode tokens/s = batch × (new tokens − 1) / median decode time "
                 "(the first token belongs to TTFT), its speedup the ratio of median decode times with the bootstrap "
                 "interval over the paired rounds")
    return text + ("; KV bytes are those of the cache generate() returned, memory the weights plus that cache at "
                   "the last position, peak memory the weights plus the peak of every tensor alive during generate() "
                   "at the largest batch (traced by the cost counter).")


def noise_lines(d: dict[str, Any]) -> list[tuple[str, str]]:
    """(``"original"`` | ``"compressed"``, why its latency is noisy) for each noisy latency of a run."""
    out = []
    for label, key in (("original", "before"), ("compressed", "after")):
        card = d.get(key) or {}
        text = noise_text(card.get("latency"))
        if text:
            out.append((label, text))
        for run in (card.get("generation") or {}).get("runs") or []:
            text = noise_text(run.get("decode"))
            if text:
                out.append((f"{label} decode (batch {run['batch']})", text))
    return out


def command_line(argv: list[str]) -> str:
    return "steelyard " + " ".join(shlex.quote(a) for a in argv)
