"""What ``steelyard search`` and ``steelyard optimize`` share on the command line: the printing of
the workflow's events (study opened, each trial, this worker's stop), the JSON and the record of
the study, and the command line stored with it. The workflows themselves are library verbs
(:func:`steelyard.optimize`, :func:`steelyard.search`).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from steelyard.cli.common import console
from steelyard.cli.option_groups import SEARCH
from steelyard.cli.state import OPTIONS
from steelyard.reporting.formatting import fmt_seconds
from steelyard.reporting.markup import escape

StorageOpt = SEARCH.annotated("storage")


def study_storage(url: str | None, *, read_only: bool = False) -> Any:
    """The study storage (``--storage``, else next to the results store).

    ``read_only`` (``study list``, ``study show``): a local SQLite storage that does not exist is a
    one-line StoreError instead of a new, empty database (and its folder) left behind.
    """
    from steelyard.search.storage import default_storage_url, normalize_url, open_storage

    if read_only:
        from steelyard.errors import StoreError
        from steelyard.store.runs import sqlite_path

        path = sqlite_path(normalize_url(url or default_storage_url(OPTIONS.store_url)))
        if path is not None and not path.is_file():
            raise StoreError(f"no study storage at {path}")
    return open_storage(url, store_url=OPTIONS.store_url)


def print_event(event: Any) -> None:
    """A workflow event (:mod:`steelyard.search.workflow`) as one console line."""
    from steelyard.search import workflow

    if isinstance(event, workflow.StudyOpened):
        console.print(f"resuming study {escape(event.name)}: {event.used} of {event.trials} trials already there"
                      if event.used else f"new study {escape(event.name)}")
    elif isinstance(event, workflow.TrialsCapped):
        console.print(f"note: the grid has {event.points} points; --trials {event.asked} lowered to that")
    elif isinstance(event, workflow.TrialFinished):
        print_trial(event.trial)
    elif isinstance(event, workflow.TrialsDone):
        outcome = event.outcome
        ran = len(outcome.ran)
        words = {"budget": f"the study holds its {outcome.n_trials} trials", "timeout": "--timeout reached",
                 "interrupted": "interrupted", "exhausted": "the sampler has no point left"}[outcome.stopped]
        console.print(f"this worker ran {ran} trial{'s' if ran != 1 else ''} in {fmt_seconds(outcome.seconds)}; "
                      f"{words}")
    elif isinstance(event, workflow.FinalRunStarted):
        console.print(f"re-running trial {event.number} ({escape(event.recipe)}) and measuring it on the test split")
    elif isinstance(event, workflow.StartingRuntimeChosen):
        from steelyard.reporting.runtimes_view import starting_runtime_text

        console.print(escape(starting_runtime_text(event.starting)))
    elif isinstance(event, workflow.RuntimesTimingStarted):
        console.print(f"timing the winner against {', '.join(event.backends)} alone on the uncompressed model")


def print_trial(trial: Any) -> None:
    from steelyard.reporting.search_view import format_metric
    from steelyard.search.trials import failure_reason

    metrics = {**(trial.user_attrs.get("metrics") or {})}
    shown = [k for k in ("accuracy", "drop", "speedup", "latency", "size", "flops", "loss") if k in metrics]
    numbers = ", ".join(f"{k} {format_metric(k, metrics[k])}" for k in shown)
    recipe = trial.user_attrs.get("recipe")
    what = (recipe or "(no step)") if recipe is not None else ", ".join(f"{k}={v}" for k, v in trial.params.items())
    state = trial.state.name.lower()
    console.print(f"[dim]trial {trial.number} {state}: {escape(what)}" + (f" → {numbers}" if numbers else "")
                  + (f" ({escape(failure_reason(trial))})" if state != "complete" else "") + "[/dim]", highlight=False)


def show_summary(summary: Any) -> None:
    from steelyard.reporting.search_view import render_summary

    render_summary(summary, console)


def finish(result: Any, json_out: Path | None, extra: dict[str, Any] | None = None) -> None:
    """Write the JSON; an interrupted worker then exits 130 (its finished trials are kept)."""
    from steelyard.cli.common import save_outputs

    save_outputs({**result.summary.to_dict(), **(extra or {})}, json_out, None)
    if result.interrupted:
        from steelyard.errors import Interrupted

        raise Interrupted(f"interrupted: the {result.summary.counts.get('complete', 0)} completed trial(s) of study "
                          f"{result.summary.name} are kept and the interrupted one is queued again; run the same "
                          "command to resume")


def record(summary: Any, command: str, extra: dict[str, Any] | None, save: bool, data: Any = None) -> int | None:
    """Record the study (``data``: its DataOptions, fingerprinted for the provenance) unless ``--no-save``."""
    if not save:
        return None
    from steelyard.store.record import record_study

    run_id, url = record_study(summary, command, extra, OPTIONS.store_url, labels=OPTIONS.labels,
                               data=data)
    console.print(f"study saved as run {run_id} in {escape(url)}")
    return run_id


def command_line(kind: str, model: str, data: str, study: str, storage: str | None, **options: Any) -> str:
    args = ["steelyard", kind, model, "--data", data]
    for key, value in options.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    args += ["--study", study] + (["--storage", storage] if storage else [])
    return " ".join(shlex.quote(a) for a in args)
