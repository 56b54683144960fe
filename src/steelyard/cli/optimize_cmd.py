"""``steelyard optimize``: the cheapest compression recipe within an accuracy budget.

The command parses its options into an :class:`~steelyard.search.config.OptimizeConfig`, runs
:func:`steelyard.optimize` (search on validation, the cheapest trial within ``--max-drop``, the
winner re-run on test and saved), prints the study and the winner and records both runs. A budget
no trial meets is a one-line error naming the closest trials; the study stays for a resume.
"""

from __future__ import annotations

import shlex
from typing import Any

from steelyard.cli.common import QuietOpt, console
from steelyard.cli.data_cmd import JsonOpt, SaveOpt
from steelyard.cli.evaluate_cmd import ModelArg
from steelyard.cli.option_groups import DATA, OPTIMIZE
from steelyard.cli.options import with_options
from steelyard.cli.state import OPTIONS
from steelyard.cli.study_common import command_line, finish, print_event, record, show_summary
from steelyard.errors import ConfigError
from steelyard.reporting.formatting import fmt_number
from steelyard.reporting.markup import escape

#: Recipe trials measure accuracy on text or images read with the default image column.
STUDY_DATA = DATA.without("image_column")


@with_options(OPTIMIZE, STUDY_DATA)
def optimize_command(model: ModelArg, json_out: JsonOpt = None, quiet: QuietOpt = False, save: SaveOpt = True,
                     *, opts: dict[str, Any]) -> None:
    """Find the cheapest compression recipe whose accuracy drop is within --max-drop (searched on validation,
    confirmed on test), plus the whole Pareto front of accuracy vs cost."""
    from steelyard.reporting.search_view import optimize_status
    from steelyard.search.optimize_run import optimize

    cfg = OPTIMIZE.build(opts, store_url=OPTIONS.store_url)
    data = STUDY_DATA.build(opts)
    result = optimize(model, data, cfg, on_event=print_event, status=optimize_status(cfg.objective, cfg.max_drop))
    summary = result.summary
    show_summary(summary)
    command = command_line("optimize", model, data.source, summary.name, cfg.storage, objective=cfg.objective,
                           max_drop=cfg.max_drop)
    extra: dict[str, Any] = {"starting_runtime": result.starting.to_dict()} if result.starting else {}
    if summary.best is None:
        run_id = record(summary, command, extra or None, save, data)
        finish(result, json_out, extra)
        raise ConfigError(_no_answer(summary, cfg.max_drop, cfg.objective, run_id))
    if result.final is not None:
        extra["final"] = _show_final(result, model, save)
    record(summary, command, extra, save, data)
    finish(result, json_out, extra)


def _no_answer(summary: Any, max_drop: float, cost: str, run_id: int | None) -> str:
    from steelyard.reporting.search_view import format_metric, nearest_rows

    rows = sorted((r for r in summary.rows if r.state == "complete"), key=lambda r: r.metrics.get("drop", 1e9))[:3]
    rows = rows or nearest_rows(summary)
    if not rows:
        reasons = sorted({r.reason for r in summary.rows if r.reason})
        why = f" ({'; '.join(reasons[:2])})" if reasons else ""
        return f"no trial of study {summary.name} completed{why}; nothing to choose"
    closest = "; ".join(f"trial {r.number} drops {format_metric('drop', r.metrics.get('drop'))} at {cost} "
                        f"{format_metric(cost, r.values.get(cost))}" for r in rows)
    saved = f" (study recorded as run {run_id})" if run_id is not None else ""
    return (f"no trial is within --max-drop {fmt_number(max_drop)} points of the original's accuracy; "
            f"closest: {closest}"
            f"{saved}. Allow a larger --max-drop, run more --trials, or more --recovery-steps")


def _show_versus(d: dict[str, Any]) -> None:
    """The winner against each runtime used alone on the uncompressed model (one interleaved run)."""
    from rich.table import Table

    from steelyard.reporting.runtimes_view import VERSUS_COLUMNS, versus_rows, versus_verdict

    table = Table(title="The winner vs each runtime alone on the uncompressed model", title_justify="left")
    for i, col in enumerate(VERSUS_COLUMNS):
        table.add_column(col, justify="left" if i == 0 else "right")
    for row in versus_rows(d):
        table.add_row(*(escape(c) for c in row))
    console.print(table)
    console.print(escape(versus_verdict(d)))


def _show_final(result: Any, model: str, save: bool) -> dict[str, Any]:
    """Print the winner's test-split run and record it as a compression run."""
    from steelyard.reporting.compress_view import render_compression

    final, cfg = result.final, result.config
    out = result.final_dict()
    render_compression(out["result"], console)
    if out.get("versus_runtimes"):
        _show_versus(out["versus_runtimes"])
    drop = final.metric_drop
    if drop is not None and drop > cfg.max_drop:
        console.print(f"[yellow]note: on the test split the drop is {drop:.2f} points, above --max-drop "
                      f"{fmt_number(cfg.max_drop)} (the choice was made on the validation split)[/yellow]")
    if cfg.output is not None:
        console.print(f"winning model saved to {escape(final.output)}")
    if save:
        from steelyard.store.record import record_compression

        args = ["steelyard", "compress", model, "--recipe", out["recipe"], "--data", result.data.source]
        served, serve = result.best.params.get("backend"), result.final_options.serve
        if served not in (None, "torch") and serve != "onnxruntime":  # float ONNX serving has no compress flag
            args += ["--backend", served]
        command = " ".join(shlex.quote(a) for a in args)
        run_id, url = record_compression(final, [result.final_options, result.final_recipe.text, result.data],
                                         command, OPTIONS.store_url, labels=OPTIONS.labels, data=result.data)
        out["run_id"] = run_id
        console.print(f"winner saved as run {run_id} in {escape(url)}")
    return out
