"""``steelyard optimize``, ``steelyard search`` and ``steelyard study show|list``.

``optimize`` searches the built-in space of compression recipes for the cheapest model whose
accuracy drop vs the original is within ``--max-drop`` points; ``search`` searches a space given
in YAML for any objectives; both keep every trial in an Optuna study (SQLite next to the results
store by default, any SQLAlchemy URL with ``--storage``). Running the same command again resumes
the study; running it on several machines at once (same ``--storage`` and ``--study``) shares
the trials between them. Bad input fails before the study is touched: an empty or contradictory
space, an unknown objective or sampler, an unreachable storage, a study of another model.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Any

import typer

from steelyard.cli.common import console
from steelyard.cli.data_cmd import (
    CleanOpt,
    DataOpt,
    JsonOpt,
    LabelColumnOpt,
    MaxEvalOpt,
    MaxTrainOpt,
    SaveOpt,
    SeedOpt,
    TaskOpt,
    TextColumnOpt,
)
from steelyard.cli.evaluate_cmd import MaxLengthOpt, ModelArg, TokenizerOpt
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


def _check_isolation(isolation: str) -> None:
    if isolation not in ("process", "inline"):
        raise ConfigError(f"--isolation must be process or inline, got '{isolation}'")


def _storage(url: str | None) -> Any:
    from steelyard.search.storage import open_storage

    return open_storage(url, store_url=OPTIONS.store_url)


def _check_output(output: Path | None, model: str, overwrite: bool) -> None:
    """Refuse, before a search that may take an hour, an output that would fail at the end."""
    if output is None:
        return
    source, target = Path(model).expanduser(), output.expanduser().resolve()
    if source.exists():
        src = source.resolve()
        if target == src or src in target.parents or target in src.parents:
            raise ConfigError(f"--output {output} would overwrite or contain the original model {model}; choose "
                              "another folder")
    if target.exists() and not overwrite:
        raise ConfigError(f"--output {output} already exists; choose another folder or pass --overwrite")


def _recipe_options(eval_split: str, batch_size: int, max_length: int, rounds: int, threads: int | None,
                    tokenizer: str | None, seed: int, search: bool) -> Any:
    from steelyard.compression.recipe import RecipeOptions

    # Inside a search: fewer bootstrap resamples (the CI is shown, not used) and no nested bars.
    return RecipeOptions(eval_split=eval_split, batch_size=batch_size, max_length=max_length, rounds=rounds,
                         threads=threads, tokenizer=tokenizer, seed=seed, progress=False if search else None,
                         n_resamples=200 if search else 1000)


def _validate_template(space: Any) -> None:
    """Render the lowest and highest point of the space and parse them: a step name or parameter that
    no recipe accepts fails now, not in every trial."""
    from steelyard.compression.recipe import parse_recipe

    for pick in (0, -1):
        values = {p.name: p.ends()[pick] for p in space.params}
        text = space.recipe_text(values)
        if text:
            try:
                parse_recipe(text)
            except ConfigError as exc:
                raise ConfigError(f"the recipe template gives '{text}' for {values}: {exc}") from None


def _load(model: str, task: str | None, max_length: int, data: str, text_column: str, label_column: str,
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


def _resume_note(study: Any, n_trials: int) -> None:
    from steelyard.search.trials import slots_used

    used = slots_used(study.get_trials(deepcopy=False))
    if used:
        console.print(f"resuming study {study.study_name}: {used} of {n_trials} trials already there")
    else:
        console.print(f"new study {study.study_name}")


def _on_trial(trial: Any) -> None:
    from steelyard.search.render import format_metric
    from steelyard.search.trials import failure_reason

    metrics = {**(trial.user_attrs.get("metrics") or {})}
    shown = [k for k in ("accuracy", "drop", "speedup", "latency", "size", "flops", "loss") if k in metrics]
    numbers = ", ".join(f"{k} {format_metric(k, metrics[k])}" for k in shown)
    recipe = trial.user_attrs.get("recipe")
    what = (recipe or "(no step)") if recipe is not None else ", ".join(f"{k}={v}" for k, v in trial.params.items())
    state = trial.state.name.lower()
    console.print(f"[dim]trial {trial.number} {state}: {what}" + (f" → {numbers}" if numbers else "")
                  + (f" ({failure_reason(trial)})" if state != "complete" else "") + "[/dim]", highlight=False)


def _finish(summary: Any, outcome: Any, json_out: Path | None, extra: dict[str, Any] | None = None) -> None:
    from steelyard.cli.common import save_outputs

    data = {**summary.to_dict(), **(extra or {})}
    save_outputs(data, json_out, None)
    if outcome is not None and outcome.stopped == "interrupted":
        console.print("interrupted: the finished trials are kept; run the same command to resume")
        raise typer.Exit(130)


def _run(study: Any, objective: Any, space: Any, trials: int, timeout: str | None, trial_timeout: str | None,
         progress: bool | None, isolation: str, status: Any = None) -> Any:
    from steelyard.search.runner import run_search

    outcome = run_search(study, objective, space, trials, parse_time(timeout, "--timeout"),
                         parse_time(trial_timeout, "--trial-timeout"), progress, isolation=isolation,
                         on_trial=_on_trial, status=status, skip_repeats=True)
    ran = len(outcome.ran)
    words = {"budget": f"the study holds its {trials} trials", "timeout": "--timeout reached",
             "interrupted": "interrupted", "exhausted": "the sampler has no point left"}[outcome.stopped]
    console.print(f"this worker ran {ran} trial{'s' if ran != 1 else ''} in {outcome.seconds:.0f} s; {words}")
    return outcome


def search_command(
    model: ModelArg,
    data: DataOpt,
    space: Annotated[Path, typer.Option(help="search space YAML: params (type int|float|categorical|bool, low/high/"
                                        "step/log/choices) and a recipe template with {param} placeholders")],
    objectives: Annotated[str, typer.Option(help="name:max|min, comma-separated: accuracy, drop, latency (relative "
                                            "to the original), speedup, size, flops, params, energy, ...")],
    budget: Annotated[str | None, typer.Option(help="limits the answer must meet, e.g. \"flops<=2e10,latency<=0.5,"
                                               "drop<=1\" (latency relative to the original); the answer is the "
                                               "best first objective within them")] = None,
    trials: TrialsOpt = 20,
    timeout: TimeoutOpt = None,
    trial_timeout: TrialTimeoutOpt = None,
    study: StudyOpt = None,
    storage: StorageOpt = None,
    sampler: SamplerOpt = "tpe",
    sampler_seed: SamplerSeedOpt = None,
    batch_size: BatchOpt = 32,
    max_length: MaxLengthOpt = 128,
    rounds: RoundsOpt = 5,
    threads: ThreadsOpt = None,
    task: TaskOpt = None,
    text_column: TextColumnOpt = "text",
    label_column: LabelColumnOpt = "label",
    tokenizer: TokenizerOpt = None,
    clean: CleanOpt = False,
    max_train_examples: MaxTrainOpt = None,
    max_eval_examples: MaxEvalOpt = None,
    seed: SeedOpt = 0,
    isolation: IsolationOpt = "process",
    progress: ProgressOpt = None,
    json_out: JsonOpt = None,
    save: SaveOpt = True,
) -> None:
    """Search a space of compression recipes for the Pareto front of the given objectives (validation split);
    with --budget, the answer is the best point within the limits (architecture search under a budget)."""
    from steelyard.search.optimize import default_study_name
    from steelyard.search.recipe_objective import RECIPE_METRICS, RecipeObjective
    from steelyard.search.render import format_metric, render_summary
    from steelyard.search.space import SearchSpace
    from steelyard.search.storage import storage_url
    from steelyard.search.study import (
        StudySpec,
        make_pruner,
        make_sampler,
        model_fingerprint,
        open_study,
        parse_objectives,
    )
    from steelyard.search.summary import summarize

    parsed_space = SearchSpace.from_yaml(space)
    if parsed_space.recipe is None:
        raise ConfigError(f"the search space {space} has no 'recipe:' template; steelyard search turns each point "
                          "into a recipe, e.g. recipe: \"prune:layers,amount={depth}; quantize:{precision}\"")
    _validate_template(parsed_space)
    goals = parse_objectives(objectives, tuple(RECIPE_METRICS))
    selection = parse_budget(budget, goals[0].name, tuple(RECIPE_METRICS))
    _check_isolation(isolation)
    parse_time(timeout, "--timeout"), parse_time(trial_timeout, "--trial-timeout")
    if sampler == "grid" and parsed_space.size() is not None and trials > parsed_space.size():  # type: ignore[operator]
        console.print(f"note: the grid has {parsed_space.size()} points; --trials {trials} lowered to that")
        trials = int(parsed_space.size())  # type: ignore[arg-type]
    chosen_sampler = make_sampler(sampler, parsed_space, len(goals), trials, sampler_seed)
    store = _storage(storage)
    handle, _, data_spec = _load(model, task, max_length, data, text_column, label_column, seed, clean,
                                 max_train_examples, max_eval_examples)
    name = study or default_study_name("search", model, data, Path(space).stem)
    options = _recipe_options("validation", batch_size, max_length, rounds, threads, tokenizer, seed, True)
    settings = {"batch_size": batch_size, "max_length": max_length, "rounds": rounds, "threads": threads,
                "tokenizer": tokenizer, "seed": seed, "task": data_spec.task, "text_column": text_column,
                "label_column": label_column, "clean": clean, "max_train_examples": max_train_examples,
                "max_eval_examples": max_eval_examples}
    spec = StudySpec(name, model, model_fingerprint(model), goals, parsed_space.to_dict(), data, "search",
                     selection, settings)
    opened = open_study(store, spec, chosen_sampler, make_pruner(len(goals)))
    _resume_note(opened, trials)
    del handle  # the trial processes load their own copy
    objective = RecipeObjective(model, data_spec, options, data_spec.task)
    outcome = _run(opened, objective, parsed_space, trials, timeout, trial_timeout, progress, isolation)
    summary = summarize(opened, spec, storage_url(store), formatter=format_metric)
    render_summary(summary, console)
    best = summary.best
    if best is not None and best.recipe:
        build = ["steelyard", "compress", model, "--recipe", best.recipe, "--data", data, "--output", "DIR"]
        console.print("build it (measured on the test split): " + " ".join(shlex.quote(a) for a in build),
                      highlight=False)
    run_id = None
    if save:
        from steelyard.store.record import record_study

        run_id, url = record_study(summary, _command("search", model, data, name, storage), None, OPTIONS.store_url)
        console.print(f"saved as run {run_id} in {url}")
    _finish(summary, outcome, json_out)
    if selection and best is None and summary.rows:
        saved = f" (study recorded as run {run_id})" if run_id is not None else ""
        explanation = summary.selection.explanation if summary.selection else "no trial completed"
        raise ConfigError(f"no trial meets --budget {budget}: {explanation}{saved}")


def optimize_command(
    model: ModelArg,
    data: DataOpt,
    max_drop: Annotated[float, typer.Option(help="largest accepted accuracy drop vs the original, in points")] = 1.0,
    objective: Annotated[str, typer.Option(help="cost to minimize: latency | size | flops | energy")] = "latency",
    hardware: Annotated[str, typer.Option(help="where costs are measured: local (this machine)")] = "local",
    trials: TrialsOpt = 40,
    timeout: TimeoutOpt = None,
    trial_timeout: TrialTimeoutOpt = None,
    study: StudyOpt = None,
    storage: StorageOpt = None,
    output: Annotated[Path | None, typer.Option(help="save the winning model here, with its before / after "
                                                "report measured on the test split")] = None,
    recovery_steps: Annotated[int, typer.Option(help="optimizer steps of a trial's recovery fine-tune or "
                                                "distillation")] = 100,
    recovery_lr: Annotated[float, typer.Option(help="learning rate of the recovery step")] = 1e-4,
    prune_hopeless: Annotated[bool, typer.Option("--prune-hopeless/--no-prune-hopeless", help="skip the training "
                                                 "of a trial whose cost cannot beat the best within budget")] = True,
    final: Annotated[bool, typer.Option("--final/--no-final", help="re-run the winner on the test split (and save "
                                        "it); extra workers on a shared study can skip it")] = True,
    sampler: SamplerOpt = "tpe",
    sampler_seed: SamplerSeedOpt = None,
    batch_size: BatchOpt = 32,
    max_length: MaxLengthOpt = 128,
    rounds: RoundsOpt = 5,
    threads: ThreadsOpt = None,
    task: TaskOpt = None,
    text_column: TextColumnOpt = "text",
    label_column: LabelColumnOpt = "label",
    tokenizer: TokenizerOpt = None,
    clean: CleanOpt = False,
    max_train_examples: MaxTrainOpt = None,
    max_eval_examples: MaxEvalOpt = None,
    seed: SeedOpt = 0,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="replace an existing --output")] = False,
    isolation: IsolationOpt = "process",
    progress: ProgressOpt = None,
    json_out: JsonOpt = None,
    save: SaveOpt = True,
) -> None:
    """Find the cheapest compression recipe whose accuracy drop is within --max-drop (searched on validation,
    confirmed on test), plus the whole Pareto front of accuracy vs cost."""
    from steelyard.search.optimize import builtin_space, default_study_name, optimize_spec, starting_points
    from steelyard.search.recipe_objective import COSTS, RecipeObjective
    from steelyard.search.render import format_metric, render_summary, status_text
    from steelyard.search.storage import storage_url
    from steelyard.search.study import make_pruner, make_sampler, model_fingerprint, open_study
    from steelyard.search.summary import summarize

    if objective not in COSTS:
        raise ConfigError(f"unknown --objective '{objective}'; valid objectives: {', '.join(COSTS)}")
    if hardware != "local":
        raise ConfigError(f"optimize measures costs on this machine only (--hardware local), got '{hardware}'")
    if not max_drop >= 0:
        raise ConfigError(f"--max-drop must be zero or more points, got {max_drop}")
    if recovery_steps < 1 or not recovery_lr > 0:
        raise ConfigError("--recovery-steps must be at least 1 and --recovery-lr positive")
    _check_isolation(isolation)
    parse_time(timeout, "--timeout"), parse_time(trial_timeout, "--trial-timeout")
    _check_output(output, model, overwrite)
    store = _storage(storage)
    handle, dataset, data_spec = _load(model, task, max_length, data, text_column, label_column, seed, clean,
                                       max_train_examples, max_eval_examples)
    space = builtin_space(handle, recovery_steps, recovery_lr)
    chosen_sampler = make_sampler(sampler, space, 2, trials, sampler_seed)
    name = study or default_study_name("optimize", model, data, objective)
    settings = {"batch_size": batch_size, "max_length": max_length, "rounds": rounds, "threads": threads,
                "tokenizer": tokenizer, "seed": seed, "task": data_spec.task, "text_column": text_column,
                "label_column": label_column, "clean": clean, "max_train_examples": max_train_examples,
                "max_eval_examples": max_eval_examples, "hardware": hardware}
    spec = optimize_spec(name, model, model_fingerprint(model), space, data, objective, max_drop, settings)
    opened = open_study(store, spec, chosen_sampler, make_pruner(2))
    _resume_note(opened, trials)
    if not opened.get_trials(deepcopy=False):
        _enqueue(opened, starting_points(space))
    options = _recipe_options("validation", batch_size, max_length, rounds, threads, tokenizer, seed, True)
    trial_objective = RecipeObjective(model, data_spec, options, data_spec.task, objective if prune_hopeless else None,
                                      max_drop if prune_hopeless else None)

    def status(trials_: Any, study_: Any) -> str:
        from steelyard.search.runner import completed_metrics

        rows = completed_metrics(trials_, ["accuracy", objective])
        within = status_text(rows, objective, "min", lambda r: r.get("drop", float("inf")) <= max_drop,
                             f"within {max_drop:g} pt:")
        return within + f" · {len(rows)} completed"

    outcome = _run(opened, trial_objective, space, trials, timeout, trial_timeout, progress, isolation, status)
    summary = summarize(opened, spec, storage_url(store), formatter=format_metric)
    render_summary(summary, console)
    command = _command("optimize", model, data, name, storage, objective=objective, max_drop=max_drop)
    if summary.best is None:
        run_id = _record(summary, command, None, save)
        _finish(summary, outcome, json_out)
        raise ConfigError(_no_answer(summary, max_drop, objective, run_id))
    extra: dict[str, Any] = {}
    if outcome.stopped != "interrupted" and final:
        extra["final"] = _final_run(handle, dataset, data_spec, summary, options, output, overwrite, max_drop,
                                    model, save)
    _record(summary, command, extra, save)
    _finish(summary, outcome, json_out, extra)


def parse_budget(text: str | None, primary: str, valid: tuple[str, ...]) -> dict[str, Any]:
    """``"flops<=2e10,drop<=1"`` → the study's selection rule (best ``primary`` within the limits)."""
    import re

    from steelyard.cli.common import parse_number

    if not text:
        return {}
    constraints = []
    for item in (p.strip() for p in text.split(",") if p.strip()):
        match = re.fullmatch(r"([a-z_]+)\s*(<=|>=)\s*(\S+)", item)
        if match is None:
            raise ConfigError(f"--budget: expected name<=value or name>=value, got '{item}'")
        name, op, raw = match.groups()
        if name not in valid:
            raise ConfigError(f"--budget: unknown quantity '{name}'; valid: {', '.join(valid)}")
        constraints.append([name, "max" if op == "<=" else "min", parse_number(raw, f"--budget {name}")])
    return {"primary": primary, "constraints": constraints}


def _enqueue(study: Any, points: list[dict[str, Any]]) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for point in points:
            study.enqueue_trial(point, skip_if_exists=True)


def _no_answer(summary: Any, max_drop: float, cost: str, run_id: int | None) -> str:
    from steelyard.search.render import format_metric, nearest_rows

    rows = sorted((r for r in summary.rows if r.state == "complete"), key=lambda r: r.metrics.get("drop", 1e9))[:3]
    rows = rows or nearest_rows(summary)
    if not rows:
        reasons = sorted({r.reason for r in summary.rows if r.reason})
        why = f" ({'; '.join(reasons[:2])})" if reasons else ""
        return f"no trial of study {summary.name} completed{why}; nothing to choose"
    closest = "; ".join(f"trial {r.number} drops {format_metric('drop', r.metrics.get('drop'))} at {cost} "
                        f"{format_metric(cost, r.values.get(cost))}" for r in rows)
    saved = f" (study recorded as run {run_id})" if run_id is not None else ""
    return (f"no trial is within --max-drop {max_drop:g} points of the original's accuracy; closest: {closest}"
            f"{saved}. Allow a larger --max-drop, run more --trials, or more --recovery-steps")


def _final_run(handle: Any, dataset: Any, data_spec: Any, summary: Any, search_options: Any, output: Path | None,
               overwrite: bool, max_drop: float, model: str, save: bool) -> dict[str, Any]:
    """Re-run the winning recipe and measure it on the test split; save and record it."""
    import dataclasses

    from steelyard.cli.compress_cmd import render
    from steelyard.compression.recipe import parse_recipe, run_recipe

    best = summary.best
    recipe = parse_recipe(best.recipe)
    options = dataclasses.replace(search_options, eval_split="test", progress=None, n_resamples=1000, rounds=10)
    console.print(f"re-running trial {best.number} ({best.recipe}) and measuring it on the test split")
    result = run_recipe(handle, recipe, dataset, options)
    if output is not None:
        result.save(output, overwrite=overwrite, preprocessing_from=handle.path)
    d = result.to_dict()
    render(d)
    drop = result.metric_drop
    if drop is not None and drop > max_drop:
        console.print(f"[yellow]note: on the test split the drop is {drop:.2f} points, above --max-drop {max_drop:g} "
                      "(the choice was made on the validation split)[/yellow]")
    if output is not None:
        console.print(f"winning model saved to {result.output}")
    out: dict[str, Any] = {"trial": best.number, "recipe": best.recipe, "result": d}
    if save:
        from steelyard.store.record import record_compression

        command = " ".join(shlex.quote(a) for a in ["steelyard", "compress", model, "--recipe", best.recipe,
                                                     "--data", data_spec.source])
        run_id, url = record_compression(result, [options, recipe.text, data_spec], command, OPTIONS.store_url)
        out["run_id"] = run_id
        console.print(f"winner saved as run {run_id} in {url}")
    return out


def _record(summary: Any, command: str, extra: dict[str, Any] | None, save: bool) -> int | None:
    if not save:
        return None
    from steelyard.store.record import record_study

    run_id, url = record_study(summary, command, extra, OPTIONS.store_url)
    console.print(f"study saved as run {run_id} in {url}")
    return run_id


def _command(kind: str, model: str, data: str, study: str, storage: str | None, **options: Any) -> str:
    args = ["steelyard", kind, model, "--data", data]
    for key, value in options.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    args += ["--study", study] + (["--storage", storage] if storage else [])
    return " ".join(shlex.quote(a) for a in args)


study_app = typer.Typer(help="Inspect the studies of search and optimize.", no_args_is_help=True)


@study_app.command("show")
def study_show_command(
    name: Annotated[str, typer.Argument(help="study name (see `steelyard study list`)")],
    storage: StorageOpt = None,
    front: Annotated[bool, typer.Option("--front", help="only the Pareto front and the answer")] = False,
    json_out: JsonOpt = None,
) -> None:
    """Trials (state, recipe, objectives, duration, why a trial failed), the Pareto front and the best recipe."""
    from steelyard.cli.common import save_outputs
    from steelyard.search.render import format_metric, render_summary
    from steelyard.search.storage import storage_url
    from steelyard.search.study import load_study
    from steelyard.search.summary import summarize

    store = _storage(storage)
    study, spec = load_study(store, name)
    summary = summarize(study, spec, storage_url(store), formatter=format_metric)
    render_summary(summary, console, all_trials=not front)
    save_outputs(summary.to_dict(), json_out, None)


@study_app.command("list")
def study_list_command(storage: StorageOpt = None) -> None:
    """The studies in a storage, with their trial counts."""
    import optuna
    from rich.table import Table

    from steelyard.search.storage import storage_url

    store = _storage(storage)
    summaries = optuna.get_all_study_summaries(store, include_best_trial=False)
    if not summaries:
        console.print(f"no studies in {storage_url(store)}")
        return
    table = Table(title=f"studies in {storage_url(store)}", title_justify="left")
    for col in ("study", "kind", "model", "trials", "started"):
        table.add_column(col)
    for s in summaries:
        started = f"{s.datetime_start:%Y-%m-%d %H:%M}" if s.datetime_start else "—"
        table.add_row(s.study_name, str(s.user_attrs.get("kind", "—")), str(s.user_attrs.get("model", "—")),
                      str(s.n_trials), started)
    console.print(table)
