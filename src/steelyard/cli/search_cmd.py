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
from steelyard.cli.study_common import (
    BatchOpt,
    IsolationOpt,
    ProgressOpt,
    RoundsOpt,
    SamplerOpt,
    SamplerSeedOpt,
    StorageOpt,
    StudyOpt,
    ThreadsOpt,
    TimeoutOpt,
    TrialsOpt,
    TrialTimeoutOpt,
    check_isolation,
    command_line,
    finish,
    load_model_and_data,
    parse_time,
    recipe_options,
    resume_note,
    run_trials,
    study_storage,
)
from steelyard.errors import ConfigError


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
    from steelyard.reporting.search_view import answer_text, render_summary
    from steelyard.search.optimize import default_study_name
    from steelyard.search.recipe_objective import RECIPE_METRICS, RecipeObjective
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
    check_isolation(isolation)
    parse_time(timeout, "--timeout"), parse_time(trial_timeout, "--trial-timeout")
    if sampler == "grid" and parsed_space.size() is not None and trials > parsed_space.size():  # type: ignore[operator]
        console.print(f"note: the grid has {parsed_space.size()} points; --trials {trials} lowered to that")
        trials = int(parsed_space.size())  # type: ignore[arg-type]
    chosen_sampler = make_sampler(sampler, parsed_space, len(goals), trials, sampler_seed)
    store = study_storage(storage)
    handle, _, data_spec = load_model_and_data(
        model, task, max_length, data, text_column, label_column, seed, clean, max_train_examples, max_eval_examples)
    name = study or default_study_name("search", model, data, Path(space).stem)
    options = recipe_options("validation", batch_size, max_length, rounds, threads, tokenizer, seed, True)
    settings = {"batch_size": batch_size, "max_length": max_length, "rounds": rounds, "threads": threads,
                "tokenizer": tokenizer, "seed": seed, "task": data_spec.task, "text_column": text_column,
                "label_column": label_column, "clean": clean, "max_train_examples": max_train_examples,
                "max_eval_examples": max_eval_examples}
    spec = StudySpec(name, model, model_fingerprint(model), goals, parsed_space.to_dict(), data, "search",
                     selection, settings)
    opened = open_study(store, spec, chosen_sampler, make_pruner(len(goals)))
    resume_note(opened, trials)
    del handle  # the trial processes load their own copy
    objective = RecipeObjective(model, data_spec, options, data_spec.task)
    outcome = run_trials(opened, objective, parsed_space, trials, timeout, trial_timeout, progress, isolation)
    summary = summarize(opened, spec, storage_url(store))
    render_summary(summary, console)
    best = summary.best
    if best is not None and best.recipe:
        build = ["steelyard", "compress", model, "--recipe", best.recipe, "--data", data, "--output", "DIR"]
        console.print("build it (measured on the test split): " + " ".join(shlex.quote(a) for a in build),
                      highlight=False)
    run_id = None
    if save:
        from steelyard.store.record import record_study

        run_id, url = record_study(summary, command_line("search", model, data, name, storage), None, OPTIONS.store_url)
        console.print(f"saved as run {run_id} in {url}")
    finish(summary, outcome, json_out)
    if selection and best is None and summary.rows:
        saved = f" (study recorded as run {run_id})" if run_id is not None else ""
        explanation = answer_text(summary)
        raise ConfigError(f"no trial meets --budget {budget}: {explanation}{saved}")


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
    from steelyard.reporting.search_view import render_summary
    from steelyard.search.storage import storage_url
    from steelyard.search.study import load_study
    from steelyard.search.summary import summarize

    store = study_storage(storage)
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

    store = study_storage(storage)
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
