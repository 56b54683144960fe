"""``steelyard optimize``: the cheapest compression recipe within an accuracy budget.

It searches the built-in space of recipes (:mod:`steelyard.search.optimize`) on the validation
split, picks the cheapest trial whose drop vs the original is at most ``--max-drop`` points,
re-runs that recipe measured on the test split, saves the model and records both runs. A budget
no trial meets is a one-line error naming the closest trials; the study stays for a resume.
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
    record,
    resume_note,
    run_trials,
    study_storage,
)
from steelyard.errors import ConfigError


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
    backend: Annotated[list[str] | None, typer.Option(
        "--backend", help="runtimes a trial may be served in, a search dimension: all (torch, onnxruntime, "
        "openvino where installed) or names, repeatable; default: torch only")] = None,
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
    check_isolation(isolation)
    parse_time(timeout, "--timeout"), parse_time(trial_timeout, "--trial-timeout")
    _check_output(output, model, overwrite)
    _backends(backend)  # a runtime named but not installed fails here, before loading anything
    store = study_storage(storage)
    handle, dataset, data_spec = load_model_and_data(
        model, task, max_length, data, text_column, label_column, seed, clean, max_train_examples, max_eval_examples)
    space = builtin_space(handle, recovery_steps, recovery_lr, _backends(backend))
    chosen_sampler = make_sampler(sampler, space, 2, trials, sampler_seed)
    name = study or default_study_name("optimize", model, data, objective)
    settings = {"batch_size": batch_size, "max_length": max_length, "rounds": rounds, "threads": threads,
                "tokenizer": tokenizer, "seed": seed, "task": data_spec.task, "text_column": text_column,
                "label_column": label_column, "clean": clean, "max_train_examples": max_train_examples,
                "max_eval_examples": max_eval_examples, "hardware": hardware}
    spec = optimize_spec(name, model, model_fingerprint(model), space, data, objective, max_drop, settings)
    opened = open_study(store, spec, chosen_sampler, make_pruner(2))
    resume_note(opened, trials)
    if not opened.get_trials(deepcopy=False):
        _enqueue(opened, starting_points(space))
    options = recipe_options("validation", batch_size, max_length, rounds, threads, tokenizer, seed, True)
    trial_objective = RecipeObjective(model, data_spec, options, data_spec.task, objective if prune_hopeless else None,
                                      max_drop if prune_hopeless else None)

    def status(trials_: Any, study_: Any) -> str:
        from steelyard.search.runner import completed_metrics

        rows = completed_metrics(trials_, ["accuracy", objective])
        within = status_text(rows, objective, "min", lambda r: r.get("drop", float("inf")) <= max_drop,
                             f"within {max_drop:g} pt:")
        return within + f" · {len(rows)} completed"

    outcome = run_trials(opened, trial_objective, space, trials, timeout, trial_timeout, progress, isolation, status)
    summary = summarize(opened, spec, storage_url(store), formatter=format_metric)
    render_summary(summary, console)
    command = command_line("optimize", model, data, name, storage, objective=objective, max_drop=max_drop)
    if summary.best is None:
        run_id = record(summary, command, None, save)
        finish(summary, outcome, json_out)
        raise ConfigError(_no_answer(summary, max_drop, objective, run_id))
    extra: dict[str, Any] = {}
    if outcome.stopped != "interrupted" and final:
        extra["final"] = _final_run(handle, dataset, data_spec, summary, options, output, overwrite, max_drop,
                                    model, save)
    record(summary, command, extra, save)
    finish(summary, outcome, json_out, extra)


def _backends(names: list[str] | None) -> tuple[str, ...]:
    """The ``backend`` dimension: "all" → the installed :data:`SEARCHED` runtimes; a name must be installed."""
    from steelyard.backends.registry import get_backend, require_backend
    from steelyard.backends.serve import SEARCHED

    wanted = [n.strip() for b in names or [] for n in b.split(",") if n.strip()]
    if not wanted:
        return ()
    if wanted == ["all"]:
        return tuple(n for n in SEARCHED if get_backend(n).available())
    for name in wanted:
        require_backend(name)
    return tuple(dict.fromkeys(wanted))


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

    from steelyard.backends.serve import route
    from steelyard.cli.compress_cmd import render
    from steelyard.compression.recipe import parse_recipe, run_recipe

    best = summary.best
    served = best.params.get("backend")
    recipe, serve = route(parse_recipe(best.recipe), None if served in (None, "torch") else served, float_onnx=True)
    options = dataclasses.replace(search_options, eval_split="test", progress=None, n_resamples=1000, rounds=10,
                                  serve=serve)
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

        args = ["steelyard", "compress", model, "--recipe", best.recipe, "--data", data_spec.source]
        if served not in (None, "torch") and (serve != "onnxruntime"):  # float ONNX serving has no compress flag
            args += ["--backend", served]
        command = " ".join(shlex.quote(a) for a in args)
        run_id, url = record_compression(result, [options, recipe.text, data_spec], command, OPTIONS.store_url)
        out["run_id"] = run_id
        console.print(f"winner saved as run {run_id} in {url}")
    return out


