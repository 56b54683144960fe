"""Plotly figures (as plain JSON-ready dicts) for the HTML report. Plotly is imported here only."""

from __future__ import annotations

import json
from typing import Any

from steelyard.comparison.result import Comparison
from steelyard.profiling.generation_report import GenerationReport, HardwareGeneration
from steelyard.profiling.report import CostReport, LatencyStats
from steelyard.reporting.formatting import fmt_number
from steelyard.reporting.names import model_label

TEMPLATE = "plotly_white"
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf"]


def _dict(fig: Any) -> dict[str, Any]:
    return json.loads(fig.to_json())


def _layout(fig: Any, title: str, **kw: Any) -> None:
    settings = {"title": title, "template": TEMPLATE, "margin": {"l": 60, "r": 20, "t": 50, "b": 50}, "height": 420}
    fig.update_layout(**(settings | kw))


def flops_breakdown(report: CostReport) -> dict[str, Any]:
    """Horizontal stacked bars: matrix FLOPs and other FLOPs per module (rows sum to the total)."""
    import plotly.graph_objects as go

    rows = list(reversed(report.compute.top_modules))
    names = [r.name for r in rows]
    fig = go.Figure()
    fig.add_bar(y=names, x=[float(r.flops) for r in rows], name="FLOPs (matmul, conv, attention)",
                orientation="h", marker_color=PALETTE[0],
                customdata=[f"{100 * r.share:.1f}%" for r in rows],
                hovertemplate="%{y}<br>%{x:.3s}FLOP (%{customdata} of total)<extra></extra>")
    fig.add_bar(y=names, x=[float(r.other_flops) for r in rows], name="other FLOPs (elementwise, norm, softmax)",
                orientation="h", marker_color=PALETTE[1], hovertemplate="%{y}<br>%{x:.3s}FLOP<extra></extra>")
    _layout(fig, f"Per-layer FLOPs — {model_label(report.model)} (module depth {report.compute.breakdown_depth})",
            barmode="stack", xaxis={"title": "FLOPs per forward", "exponentformat": "SI"}, yaxis_title="module",
            height=max(320, 28 * len(rows) + 140))
    return _dict(fig)


def latency_summary(stats: dict[str, LatencyStats], title: str) -> dict[str, Any]:
    """The recorded distribution (min, median, p90, p99, max) as bars, the mean as a dashed line, in ms."""
    import plotly.graph_objects as go

    fig = go.Figure()
    points = ("minimum", "median", "p90", "p99", "maximum")
    for i, (name, s) in enumerate(stats.items()):
        color = PALETTE[i % len(PALETTE)]
        fig.add_bar(x=list(points), y=[1e3 * float(getattr(s, p)) for p in points], name=name, marker_color=color,
                    hovertemplate="%{x}: %{y:,.3~r} ms<extra>" + name + "</extra>")
        fig.add_scatter(x=list(points), y=[1e3 * float(s.mean)] * len(points), mode="lines",
                        name=f"{name} mean ± std: {fmt_number(1e3 * float(s.mean))} ± "
                             f"{fmt_number(1e3 * float(s.std), 2)} ms "
                             f"(CV {100 * s.cv:.1f}%)", line={"dash": "dash", "color": color})
    _layout(fig, title, yaxis_title="latency (ms)", xaxis_title="statistic over the timed runs", barmode="group",
            legend={"orientation": "h", "y": -0.25})
    return _dict(fig)


def latency_distribution(samples: dict[str, list[float]], title: str, *, x_title: str = "run",
                         y_title: str = "latency per batch (ms)") -> dict[str, Any]:
    """Box plots with every timed run drawn as a point (a strip beside its box), from the raw samples, in ms.

    Several runs side by side share one axis; when they differ by more than 10× the axis is logarithmic
    with 1-2-5 ticks, so a 2 ms and a 200 ms model are both readable.
    """
    import plotly.graph_objects as go

    fig = go.Figure()
    everything: list[float] = []
    for i, (name, values) in enumerate(samples.items()):
        ms = [1e3 * float(v) for v in values]
        everything += ms
        fig.add_box(y=ms, name=name, boxpoints="all", jitter=0.4, pointpos=0, marker_color=PALETTE[i % len(PALETTE)],
                    marker={"size": 4, "opacity": 0.6}, boxmean=True,
                    hovertemplate="%{y:,.3~r} ms<extra>" + name + "</extra>")
    positive = [v for v in everything if v > 0]
    spread = max(positive) / min(positive) if positive else 1.0
    yaxis = log_axis(y_title, positive) if spread > 10 else {"title": y_title, "rangemode": "tozero"}
    _layout(fig, title, xaxis_title=x_title, yaxis=yaxis, showlegend=False)
    return _dict(fig)


def log_axis(title: str, values: list[float]) -> dict[str, Any]:
    """A logarithmic axis people can read: ticks at 1, 2 and 5 of each decade spanned by ``values`` (plain
    numbers, not plotly's bare "2" and "5" minor labels or exponents), the title saying it is a log scale."""
    import math

    positive = [float(v) for v in values if v and float(v) > 0]
    axis: dict[str, Any] = {"title": f"{title} (log scale)", "type": "log"}
    if not positive:
        return axis
    lo, hi = math.floor(math.log10(min(positive))), math.ceil(math.log10(max(positive)))
    ticks = [m * 10.0**e for e in range(lo, hi + 1) for m in (1, 2, 5)]
    ticks = [t for t in ticks if min(positive) / 2.5 <= t <= max(positive) * 2.5]
    if hi - lo > 4:  # many decades: one tick per decade keeps the labels apart
        ticks = [t for t in ticks if math.isclose(t, 10.0 ** round(math.log10(t)))]
    if len(ticks) >= 2:
        axis |= {"tickvals": ticks, "tickformat": "~g"}
    return axis


def throughput_sweep(reports: dict[str, CostReport]) -> dict[str, Any] | None:
    import plotly.graph_objects as go

    fig = go.Figure()
    drawn = 0
    for i, (name, r) in enumerate(reports.items()):
        if r.measured is None or len(r.measured.throughput) < 2:
            continue
        pts = r.measured.throughput
        fig.add_scatter(x=[p.batch_size for p in pts], y=[p.samples_per_second for p in pts], mode="lines+markers",
                        name=name, marker_color=PALETTE[i % len(PALETTE)],
                        customdata=[1e3 * float(p.latency_per_batch) for p in pts],
                        hovertemplate="batch %{x}: %{y:,.3~r} samples/s (%{customdata:,.3~r} ms)<extra></extra>")
        drawn += 1
    if not drawn:
        return None
    batches = sorted({p.batch_size for r in reports.values() if r.measured is not None for p in r.measured.throughput})
    _layout(fig, "Throughput sweep (measured on this machine)", yaxis_title="samples / s",
            xaxis={"title": "batch size (log scale)", "type": "log", "tickvals": batches, "tickformat": "d"})
    return _dict(fig)


def hardware_latency(report: CostReport) -> dict[str, Any] | None:
    import plotly.graph_objects as go

    if not report.hardware:
        return None
    v = report.hardware
    fig = go.Figure()
    fig.add_bar(x=[h.hardware for h in v], y=[1e3 * float(h.latency_floor_per_batch) for h in v], name="roofline floor",
                marker_color=PALETTE[2])
    fig.add_bar(x=[h.hardware for h in v], y=[1e3 * float(h.projected_latency_per_batch) for h in v],
                name="projected (floor / efficiency)", marker_color=PALETTE[0],
                customdata=[f"{h.efficiency_assumed:.0%} {h.efficiency_source}" for h in v],
                hovertemplate="%{x}: %{y:,.3~r} ms (efficiency %{customdata})<extra></extra>")
    values = [1e3 * float(x) for h in v for x in (h.latency_floor_per_batch, h.projected_latency_per_batch)]
    _layout(fig, f"Latency per hardware — {model_label(report.model)} (batch {report.input.batch_size})",
            barmode="group",
            xaxis_title="hardware", yaxis=log_axis("ms per batch", values))
    return _dict(fig)


def memory_bars(report: CostReport) -> dict[str, Any]:
    import plotly.graph_objects as go

    m = report.memory
    biggest = max(float(m.inference_total), float(m.training.total) if m.training else 0.0)
    gib, unit = (2**30, "GiB") if biggest >= 2**30 else (2**20, "MiB")
    fig = go.Figure()
    fig.add_bar(x=["inference"], y=[float(m.weights) / gib], name="weights", marker_color=PALETTE[0])
    fig.add_bar(x=["inference"], y=[float(m.peak_activations) / gib], name="activations", marker_color=PALETTE[1])
    if m.kv_cache_per_sequence is not None:
        kv = float(m.inference_total) - float(m.weights) - float(m.peak_activations)
        fig.add_bar(x=["inference"], y=[kv / gib], name="KV cache", marker_color=PALETTE[4])
    if m.training is not None:
        t = m.training
        for i, (label, value) in enumerate((("weights", t.weights), ("gradients", t.gradients),
                                            ("optimizer states", t.optimizer_states),
                                            ("activations", t.activations))):
            fig.add_bar(x=[f"training ({t.optimizer})"], y=[float(value) / gib], name=f"training {label}",
                        marker_color=PALETTE[(i + 5) % len(PALETTE)])
    _layout(fig, "Memory (estimated)", barmode="stack", xaxis_title="use", yaxis_title=unit)
    return _dict(fig)


def axes(comp: Comparison) -> tuple[str, str]:
    names = [o.name for o in comp.objectives]
    if "accuracy" in names:
        others = [n for n in names if n != "accuracy"]
        return (others[0] if others else "latency"), "accuracy"
    if len(names) >= 2:
        return names[0], names[1]
    return names[0], ("memory" if names[0] != "memory" else "latency")


AXIS_TITLES = {
    "latency": "latency (ms per batch)",
    "cost_per_1k": "$ per 1,000 inferences",
    "memory": "inference memory (GiB)",
    "throughput": "samples / s",
    "energy": "J per inference",
    "lifetime_cost": "lifetime cost ($)",
    "storage": "storage (GiB)",
    "parameters": "parameters",
    "accuracy": "accuracy",
}
_SCALE = {"latency": 1e3, "memory": 1 / 2**30, "storage": 1 / 2**30}


def pareto_chart(comp: Comparison, values: dict[str, dict[str, float | None]]) -> dict[str, Any]:
    """Options on the two leading objectives; the front highlighted and joined; the choice ringed."""
    import plotly.graph_objects as go

    x_name, y_name = axes(comp)
    rec = comp.recommendation
    front = set(rec.pareto.front)
    fig = go.Figure()
    for i, hw in enumerate(comp.hardware):
        opts = [o for o in comp.options if o.hardware == hw]
        pts = [(o, values[o.name].get(x_name), values[o.name].get(y_name)) for o in opts]
        pts = [(o, x, y) for o, x, y in pts if x is not None and y is not None]
        if not pts:
            continue
        fig.add_scatter(
            x=[x * _SCALE.get(x_name, 1) for _, x, _ in pts],
            y=[y * _SCALE.get(y_name, 1) for _, _, y in pts],
            mode="markers+text",
            text=[o.candidate for o, _, _ in pts],
            textposition="top center",
            name=hw,
            marker={"size": [16 if o.name in front else 10 for o, _, _ in pts],
                    "symbol": [("circle" if o.name in front else "circle-open") if o.fits_inference else "x-open"
                               for o, _, _ in pts],
                    "color": PALETTE[i % len(PALETTE)], "line": {"width": 2}},
            customdata=[("on the front" if o.name in front else "dominated by " + ", ".join(
                rec.pareto.dominated_by.get(o.name, [])[:2])) + ("" if o.fits_inference else " — does not fit")
                for o, _, _ in pts],
            hovertemplate="%{text}<br>%{x:,.4~r}, %{y:,.4~r}<br>%{customdata}<extra>" + hw + "</extra>",
        )
    staircase = _front_2d(comp, values, x_name, y_name)
    if len(staircase) > 1:
        fig.add_scatter(x=[p[0] for p in staircase], y=[p[1] for p in staircase], mode="lines",
                        name="front on these two axes", line={"dash": "dot", "color": "#555", "shape": "hv"},
                        hoverinfo="skip")
    if rec.chosen and values[rec.chosen].get(x_name) is not None and values[rec.chosen].get(y_name) is not None:
        fig.add_scatter(x=[values[rec.chosen][x_name] * _SCALE.get(x_name, 1)],  # type: ignore[operator]
                        y=[values[rec.chosen][y_name] * _SCALE.get(y_name, 1)],  # type: ignore[operator]
                        mode="markers", name=f"recommended: {rec.chosen}",
                        marker={"size": 28, "symbol": "star-open", "color": "#2ca02c", "line": {"width": 3}},
                        hoverinfo="skip")
    log_x = x_name in ("latency", "cost_per_1k", "energy", "lifetime_cost")
    money = {"tickprefix": "$", "tickformat": ".2~g"}
    x_values = [v[x_name] * _SCALE.get(x_name, 1) for v in values.values() if v.get(x_name) is not None]  # type: ignore[operator]
    x_title = AXIS_TITLES.get(x_name, x_name)
    x_axis = log_axis(x_title, x_values) if log_x else {"title": x_title}
    _layout(fig, "Pareto front (filled: on the front over all objectives; open: dominated; ×: does not fit)",
            xaxis={**x_axis, **(money if x_name in ("cost_per_1k", "lifetime_cost") else {})},
            yaxis={"title": AXIS_TITLES.get(y_name, y_name), **_range(values, y_name),
                   **(money if y_name in ("cost_per_1k", "lifetime_cost") else {})},
            height=480)
    return _dict(fig)


def _front_2d(comp: Comparison, values: dict[str, dict[str, float | None]], x_name: str,
              y_name: str) -> list[tuple[float, float]]:
    """The options on the front of the two plotted objectives only, sorted along x (drawn as a staircase)."""
    from steelyard.comparison.config import OBJECTIVES
    from steelyard.search.pareto import Candidate, Objective, pareto_front

    directions = {o.name: o.direction for o in comp.objectives}
    objectives = [Objective(n, directions.get(n, OBJECTIVES.get(n, "min"))) for n in (x_name, y_name)]  # type: ignore[arg-type]
    points = [Candidate(name, {x_name: v[x_name], y_name: v[y_name]}) for name, v in values.items()
              if v.get(x_name) is not None and v.get(y_name) is not None]
    if not points:
        return []
    front = pareto_front(points, objectives).front
    pts = sorted((values[n][x_name] * _SCALE.get(x_name, 1), values[n][y_name] * _SCALE.get(y_name, 1))  # type: ignore[operator]
                 for n in front)
    return list(dict.fromkeys(pts))


def _range(values: dict[str, dict[str, float | None]], metric: str) -> dict[str, Any]:
    """A sensible range when every option has the same value (plotly would spread it over ±1)."""
    seen = [v[metric] * _SCALE.get(metric, 1) for v in values.values() if v.get(metric) is not None]  # type: ignore[operator]
    if not seen or max(seen) - min(seen) > 1e-12 * max(1.0, abs(max(seen))):
        return {}
    pad = 0.1 * abs(seen[0]) or 0.1
    return {"range": [seen[0] - pad, seen[0] + pad]}


def lifetime_bars(comp: Comparison) -> dict[str, Any] | None:
    import plotly.graph_objects as go

    opts = [o for o in comp.options if o.lifetime_cost is not None]
    if not opts:
        return None
    x = [[o.hardware for o in opts], [o.candidate for o in opts]]
    fig = go.Figure()
    fig.add_bar(x=x, y=[float(o.finetune_cost or 0) for o in opts], name="fine-tuning", marker_color=PALETTE[1])
    fig.add_bar(x=x, y=[float(o.serving_cost or 0) for o in opts], name="serving", marker_color=PALETTE[0])
    cfg = comp.config
    _layout(fig, f"Lifetime cost: fine-tune + serve {cfg.requests_per_day:,.0f} requests/day × "
                 f"{fmt_number(cfg.days)} days",
            barmode="stack", xaxis_title="hardware / model", yaxis_title="$")
    return _dict(fig)


def generation_batches(gen: GenerationReport, row: HardwareGeneration) -> dict[str, Any]:
    """Projected TTFT and TPOT against the batch on one device (the largest batch that fits included), in ms."""
    import plotly.graph_objects as go

    points = sorted({b.batch: b for b in [*row.batches, *([row.max_batch_projection]
                                                             if row.max_batch_projection else [])]}.items())
    batches = [b for b, _ in points]
    fig = go.Figure()
    fig.add_scatter(x=batches, y=[1e3 * float(p.ttft) for _, p in points], mode="lines+markers", name="TTFT (prefill)",
                    marker_color=PALETTE[0], hovertemplate="batch %{x}: TTFT %{y:,.3~r} ms<extra></extra>")
    fig.add_scatter(x=batches, y=[1e3 * float(p.tpot) for _, p in points], mode="lines+markers",
                    name="TPOT (mean decode step)", marker_color=PALETTE[1],
                    hovertemplate="batch %{x}: TPOT %{y:,.3~r} ms<extra></extra>")
    measured = [m for m in gen.measured if row.hardware == "local"]
    if measured:
        fig.add_scatter(x=[m.batch for m in measured], y=[1e3 * float(m.ttft_median) for m in measured],
                        mode="markers", name="TTFT measured", marker={"color": PALETTE[0], "symbol": "x", "size": 10})
        fig.add_scatter(x=[m.batch for m in measured], y=[1e3 * float(m.tpot_median) for m in measured],
                        mode="markers", name="TPOT measured", marker={"color": PALETTE[1], "symbol": "x", "size": 10})
    where = f"{row.devices}× {row.hardware}" if row.devices > 1 else row.hardware
    _layout(fig, f"TTFT and TPOT vs batch — {model_label(gen.model)} on {where} ({row.dtype}, projected)",
            xaxis={"title": "batch size (sequences)", "type": "log", "tickvals": batches},
            yaxis={"title": "ms (log scale)", "type": "log", "dtick": 1},
            legend={"orientation": "h", "y": -0.25})
    return _dict(fig)


def generation_positions(gen: GenerationReport) -> dict[str, Any] | None:
    """One decode step at each context length (batch 1): bytes moved (weights vs KV cache) above, FLOPs below."""
    from plotly.subplots import make_subplots

    if not gen.positions:
        return None
    contexts = [p.context for p in gen.positions]
    weights = float(gen.count.weight_bytes) / 2**20
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    fig.add_bar(x=contexts, y=[weights] * len(contexts), name="weights read (MiB)", marker_color=PALETTE[0],
                hovertemplate="context %{x}: weights %{y:,.4~r} MiB<extra></extra>", row=1, col=1)
    fig.add_bar(x=contexts, y=[float(p.bytes_moved) / 2**20 - weights for p in gen.positions],
                name="KV cache read + written (MiB)", marker_color=PALETTE[4],
                hovertemplate="context %{x}: KV %{y:,.4~r} MiB<extra></extra>", row=1, col=1)
    fig.add_scatter(x=contexts, y=[float(p.flops) / 1e9 for p in gen.positions], mode="lines+markers",
                    name="FLOPs (GFLOP)", marker_color=PALETTE[2],
                    hovertemplate="context %{x}: %{y:,.4~r} GFLOP<extra></extra>", row=2, col=1)
    _layout(fig, f"Decode cost per position — {model_label(gen.model)} (one step, batch 1)", barmode="stack",
            height=560,
            legend={"orientation": "h", "y": -0.15})
    fig.update_yaxes(title_text="bytes moved per step (MiB)", row=1, col=1)
    fig.update_yaxes(title_text="GFLOP per step", rangemode="tozero", row=2, col=1)
    fig.update_xaxes(title_text="context length (tokens already in the cache)", row=2, col=1)
    return _dict(fig)


def confusion_heatmap(labels: list[str], confusion: list[list[int]], title: str) -> dict[str, Any]:
    """The confusion matrix as a heatmap: rows the true class, columns the prediction; each cell shows its count,
    coloured by the share of its row (so a small class's errors show as clearly as a large one's)."""
    import plotly.graph_objects as go

    shares = [[c / sum(row) if sum(row) else 0.0 for c in row] for row in confusion]
    fig = go.Figure(go.Heatmap(
        z=shares, x=labels, y=labels, text=[[str(c) for c in row] for row in confusion], texttemplate="%{text}",
        colorscale="Blues", zmin=0, zmax=1, colorbar={"title": {"text": "share of the true class"}},
        hovertemplate="true %{y}, predicted %{x}: %{text} (%{z:.1%} of the class)<extra></extra>"))
    _layout(fig, title, xaxis={"title": "predicted class", "side": "bottom", "type": "category"},
            yaxis={"title": "true class", "autorange": "reversed", "type": "category"},
            height=max(360, 36 * len(labels) + 160))
    return _dict(fig)


def recall_bars(labels: list[str], recall: dict[str, float | None], counts: dict[str, int],
                title: str) -> dict[str, Any]:
    """Per-class recall (share of each true class predicted right), with the class size in the hover."""
    import plotly.graph_objects as go

    shown = [name for name in labels if recall.get(name) is not None]
    fig = go.Figure()
    fig.add_bar(x=shown, y=[recall[n] for n in shown], marker_color=PALETTE[0],
                customdata=[counts.get(n, 0) for n in shown],
                text=[f"{100 * float(recall[n] or 0):.0f}%" for n in shown], textposition="outside", cliponaxis=False,
                hovertemplate="%{x}: recall %{y:.1%} of %{customdata} examples<extra></extra>")
    _layout(fig, title, xaxis={"title": "true class", "type": "category"},
            yaxis={"title": "recall", "range": [0, 1.12], "tickformat": ".0%"}, height=360)
    return _dict(fig)


def learning_curve(points: list[Any], metric: str, best_step: int | None, title: str) -> dict[str, Any]:
    """Validation metric (left axis) and training loss (right axis) against the optimizer step; the kept step
    ringed. ``points`` are :class:`steelyard.training.result.EvalPoint`-likes (``step``, ``value``, ``train_loss``)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    steps = [p.step for p in points]
    fig.add_scatter(x=steps, y=[p.value for p in points], mode="lines+markers", name=f"validation {metric}",
                    marker_color=PALETTE[0], customdata=[p.epoch for p in points],
                    hovertemplate="step %{x} (epoch %{customdata:.2f}): %{y:.4f}<extra></extra>")
    losses = [(p.step, p.train_loss) for p in points if p.train_loss is not None]
    if losses:
        fig.add_scatter(x=[s for s, _ in losses], y=[v for _, v in losses], mode="lines+markers", name="training loss",
                        yaxis="y2", marker_color=PALETTE[1], line={"dash": "dot"},
                        hovertemplate="step %{x}: loss %{y:.4f}<extra></extra>")
    best = [p for p in points if p.step == best_step]
    if best:
        fig.add_scatter(x=[best[0].step], y=[best[0].value], mode="markers", name="kept (best validation)",
                        marker={"size": 16, "symbol": "circle-open", "color": PALETTE[2], "line": {"width": 3}},
                        hoverinfo="skip")
    layout: dict[str, Any] = {"xaxis_title": "optimizer step", "yaxis": {"title": f"validation {metric}"},
                              "legend": {"orientation": "h", "y": -0.25}}
    if losses:
        layout["yaxis2"] = {"title": "training loss", "overlaying": "y", "side": "right", "showgrid": False,
                            "tickformat": ".4~r"}
        layout["margin"] = {"l": 60, "r": 60, "t": 50, "b": 50}
    _layout(fig, title, **layout)
    return _dict(fig)
