"""What ``steelyard search`` and ``steelyard optimize`` share: their options, opening the study
storage, loading the model and data once, running the trials with a progress line per trial, and
writing the outcome (JSON, results store).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Any

import typer

from steelyard.cli.common import console
from steelyard.cli.state import OPTIONS
from steelyard.errors import ConfigError

TrialsOpt = Annotated[int, typer.Option(help="finished trials the study should hold, all workers together")]
TimeoutOpt = Annotated[str | None, typer.Option(help="stop this worker after this long (e.g. 30m, 2h); a running "
                                                "trial goes back to the queue")]
TrialTimeoutOpt = Annotated[str | None, typer.Option(help="fail a trial that runs longer than this (e.g. 10m)")]
StudyOpt = Annotated[str | None, typer.Option(help="study name (default: from the command, so running it again "
                                              "resumes)")]
StorageOpt = Annotated[str | None, typer.Option(help="study storage: sqlite:///file.db, postgresql://..., or a file "
                                                "path (default: studies.db next to the results store)")]
SamplerOpt = Annotated[str, typer.Option(help="tpe (multi-objective TPE) | nsga2 | random | grid")]
SamplerSeedOpt = Annotated[int | None, typer.Option(help="seed of the sampler (only for a single worker: two "
                                                    "workers with one seed propose the same points)")]
BatchOpt = Annotated[int, typer.Option(help="timing batch (real validation examples)")]
RoundsOpt = Annotated[int, typer.Option(help="alternating timing rounds of original and compressed per trial")]
ThreadsOpt = Annotated[int | None, typer.Option(help="torch threads while timing (default: torch's)")]
IsolationOpt = Annotated[str, typer.Option(help="process: each trial in a child process that is killed at "
                                          "--trial-timeout; inline: in this process (no hard time limit)")]
ProgressOpt = Annotated[bool | None, typer.Option("--progress/--no-progress", help="progress bar (default: on a "
                                                  "terminal)")]


def parse_time(text: str | None, option: str) -> float | None:
    """``30m``, ``2h``, ``90s``, ``1.5min`` → seconds (``m`` is minutes here)."""
    from steelyard.units_parse import parse_duration

    if text is None:
        return None
    cleaned = text.strip()
    if cleaned.endswith("m") and not cleaned.endswith(("ms", "um", "µm")):
        cleaned = cleaned[:-1] + "min"
    seconds = float(parse_duration(cleaned, option))
    if seconds <= 0:
        raise ConfigError(f"{option} must be longer than zero, got '{text}'")
    return seconds


def check_isolation(isolation: str) -> None:
    if isolation not in ("process", "inline"):
        raise ConfigError(f"--isolation must be process or inline, got '{isolation}'")


def study_storage(url: str | None) -> Any:
    from steelyard.search.storage import open_storage

    return open_storage(url, store_url=OPTIONS.store_url)


def recipe_options(eval_split: str, batch_size: int, max_length: int, rounds: int, threads: int | None,
                    tokenizer: str | None, seed: int, search: bool) -> Any:
    from steelyard.compression.recipe import RecipeOptions

    # Inside a search: fewer bootstrap resamples (the CI is shown, not used) and no nested bars.
    return RecipeOptions(eval_split=eval_split, batch_size=batch_size, max_length=max_length, rounds=rounds,
                         threads=threads, tokenizer=tokenizer, seed=seed, progress=False if search else None,
                         n_resamples=200 if search else 1000)


def load_model_and_data(model: str, task: str | None, max_length: int, data: str, text_column: str, label_column: str,
          seed: int, clean: bool, max_train: int | None, max_eval: int | None) -> tuple[Any, Any, Any]:
    """Model, dataset and the DataOptions the trial processes load the same data with."""
    from steelyard.cli.data_cmd import DataOptions, load_task_data
    from steelyard.cli.evaluate_cmd import data_task_for, load_handle

    handle = load_handle(model, task, max_length)
    spec = DataOptions(data, data_task_for(handle, task), text_column, label_column, "image", seed, clean, max_train,
                       max_eval)
    dataset = load_task_data(spec)
    if dataset.task not in ("text-classification", "image-classification"):
        raise ConfigError(f"recipe searches measure accuracy on classification data; {data} is {dataset.task}")
    return handle, dataset, spec


def resume_note(study: Any, n_trials: int) -> None:
    from steelyard.search.trials import slots_used

    used = slots_used(study.get_trials(deepcopy=False))
    if used:
        console.print(f"resuming study {study.study_name}: {used} of {n_trials} trials already there")
    else:
        console.print(f"new study {study.study_name}")


def print_trial(trial: Any) -> None:
    from steelyard.reporting.search_view import format_metric
    from steelyard.search.trials import failure_reason

    metrics = {**(trial.user_attrs.get("metrics") or {})}
    shown = [k for k in ("accuracy", "drop", "speedup", "latency", "size", "flops", "loss") if k in metrics]
    numbers = ", ".join(f"{k} {format_metric(k, metrics[k])}" for k in shown)
    recipe = trial.user_attrs.get("recipe")
    what = (recipe or "(no step)") if recipe is not None else ", ".join(f"{k}={v}" for k, v in trial.params.items())
    state = trial.state.name.lower()
    console.print(f"[dim]trial {trial.number} {state}: {what}" + (f" → {numbers}" if numbers else "")
                  + (f" ({failure_reason(trial)})" if state != "complete" else "") + "[/dim]", highlight=False)


def finish(summary: Any, outcome: Any, json_out: Path | None, extra: dict[str, Any] | None = None) -> None:
    from steelyard.cli.common import save_outputs

    data = {**summary.to_dict(), **(extra or {})}
    save_outputs(data, json_out, None)
    if outcome is not None and outcome.stopped == "interrupted":
        console.print("interrupted: the finished trials are kept; run the same command to resume")
        raise typer.Exit(130)


def run_trials(study: Any, objective: Any, space: Any, trials: int, timeout: str | None, trial_timeout: str | None,
         progress: bool | None, isolation: str, status: Any = None) -> Any:
    from steelyard.reporting.search_view import default_status
    from steelyard.search.runner import run_search

    outcome = run_search(study, objective, space, trials, parse_time(timeout, "--timeout"),
                         parse_time(trial_timeout, "--trial-timeout"), progress, isolation=isolation,
                         on_trial=print_trial, status=status or default_status, skip_repeats=True)
    ran = len(outcome.ran)
    words = {"budget": f"the study holds its {trials} trials", "timeout": "--timeout reached",
             "interrupted": "interrupted", "exhausted": "the sampler has no point left"}[outcome.stopped]
    console.print(f"this worker ran {ran} trial{'s' if ran != 1 else ''} in {outcome.seconds:.0f} s; {words}")
    return outcome


def record(summary: Any, command: str, extra: dict[str, Any] | None, save: bool) -> int | None:
    if not save:
        return None
    from steelyard.store.record import record_study

    run_id, url = record_study(summary, command, extra, OPTIONS.store_url)
    console.print(f"study saved as run {run_id} in {url}")
    return run_id


def command_line(kind: str, model: str, data: str, study: str, storage: str | None, **options: Any) -> str:
    args = ["steelyard", kind, model, "--data", data]
    for key, value in options.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    args += ["--study", study] + (["--storage", storage] if storage else [])
    return " ".join(shlex.quote(a) for a in args)


