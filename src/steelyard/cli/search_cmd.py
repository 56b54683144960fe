"""``steelyard search`` and ``steelyard study show|list`` (``optimize`` is in :mod:`optimize_cmd`).

``search`` searches a space given in YAML for any objectives; with ``--budget`` the answer is the
best point within limits (architecture search under a budget). Like ``optimize`` it keeps every
trial in an Optuna study (SQLite next to the results store by default, any SQLAlchemy URL with
``--storage``). Running the same command again resumes the study; running it on several machines
at once (same ``--storage`` and ``--study``) shares the trials between them. Bad input fails
before the study is touched: an empty or contradictory space, an unknown objective or sampler, an
unreachable storage, a study of another model.
"""

from __future__ import annotations

import shlex
from typing import Annotated, Any

import typer

from steelyard.cli.common import QuietOpt, console
from steelyard.cli.data_cmd import JsonOpt, SaveOpt
from steelyard.cli.evaluate_cmd import ModelArg
from steelyard.cli.optimize_cmd import STUDY_DATA
from steelyard.cli.option_groups import SEARCH
from steelyard.cli.options import with_options
from steelyard.cli.state import OPTIONS
from steelyard.cli.study_common import (
    StorageOpt,
    command_line,
    finish,
    print_event,
    record,
    show_summary,
    study_storage,
)
from steelyard.errors import ConfigError
from steelyard.reporting.markup import escape


@with_options(SEARCH, STUDY_DATA)
def search_command(model: ModelArg, json_out: JsonOpt = None, quiet: QuietOpt = False, save: SaveOpt = True, *,
                   opts: dict[str, Any]) -> None:
    """Search a space of compression recipes for the Pareto front of the given objectives (validation split);
    with --budget, the answer is the best point within the limits (architecture search under a budget)."""
    from steelyard.search.search_run import search

    cfg = SEARCH.build(opts, store_url=OPTIONS.store_url)
    data = STUDY_DATA.build(opts)
    result = search(model, data, cfg, on_event=print_event)
    summary, best = result.summary, result.best
    show_summary(summary)
    if best is not None and best.recipe:
        build = ["steelyard", "compress", model, "--recipe", best.recipe, "--data", data.source, "--output", "DIR"]
        console.print("build it (measured on the test split): " + " ".join(shlex.quote(a) for a in build),
                      highlight=False)
    run_id = record(summary, command_line("search", model, data.source, summary.name, cfg.storage), None, save,
                    data)
    finish(result, json_out)
    if cfg.budget and best is None and summary.rows:
        saved = f" (study recorded as run {run_id})" if run_id is not None else ""
        from steelyard.reporting.search_view import answer_text

        explanation = answer_text(summary)
        raise ConfigError(f"no trial meets --budget {cfg.budget}: {explanation}{saved}")


study_app = typer.Typer(help="Inspect the studies of search and optimize.", no_args_is_help=True)


@study_app.command("show")
def study_show_command(
    name: Annotated[str, typer.Argument(help="study name (see `steelyard study list`)")],
    storage: StorageOpt = None,
    front: Annotated[bool, typer.Option("--front", help="only the Pareto front and the answer")] = False,
    json_out: JsonOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Trials (state, recipe, objectives, duration, why a trial failed), the Pareto front and the best recipe."""
    from steelyard.cli.common import save_outputs
    from steelyard.reporting.search_view import render_summary
    from steelyard.search.storage import storage_url
    from steelyard.search.study import load_study
    from steelyard.search.summary import summarize

    store = study_storage(storage, read_only=True)
    study, spec = load_study(store, name)
    summary = summarize(study, spec, storage_url(store))
    render_summary(summary, console, all_trials=not front)
    save_outputs(summary.to_dict(), json_out, None)


@study_app.command("list")
def study_list_command(storage: StorageOpt = None) -> None:
    """The studies in a storage, with their trial counts."""
    import optuna
    from rich.table import Table

    from steelyard.search.storage import storage_url
    from steelyard.serialize import utc

    store = study_storage(storage, read_only=True)
    summaries = optuna.get_all_study_summaries(store, include_best_trial=False)
    if not summaries:
        console.print(f"no studies in {escape(storage_url(store))}")
        return
    table = Table(title=f"studies in {escape(storage_url(store))}", title_justify="left")
    for col in ("study", "kind", "model", "trials", "started"):
        table.add_column(col)
    for s in summaries:
        started = f"{utc(s.datetime_start, naive='local'):%Y-%m-%d %H:%M} UTC" if s.datetime_start else "—"
        table.add_row(escape(s.study_name), escape(s.user_attrs.get("kind", "—")),
                      escape(s.user_attrs.get("model", "—")), str(s.n_trials), started)
    console.print(table)
