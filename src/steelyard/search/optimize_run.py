"""``optimize``: the cheapest compression recipe within an accuracy budget, as one call.

The workflow: the built-in space for the model (:mod:`steelyard.search.optimize`) → a study
(created, or resumed when it is the same search) → trials measured on the validation split →
the cheapest trial whose drop vs the original is at most ``max_drop`` points → that recipe re-run
and measured on the test split → the winner saved. A budget no trial meets is not an error here:
the result has no ``best`` and the study stays for a resume (the CLI turns it into a one-line error).
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import Any

from steelyard.data.options import DataOptions
from steelyard.search import workflow
from steelyard.search.config import OptimizeConfig
from steelyard.search.workflow import OnEvent, Status, StudyResult


@dataclass
class OptimizeResult(StudyResult):
    """What ``optimize`` found: the study (every trial, the front, the answer) and the winner's test run."""

    config: OptimizeConfig
    #: The winner re-run on the test split (a :class:`~steelyard.compression.recipe.RecipeResult`), when run.
    final: Any = None
    #: The options and recipe of that re-run (what a record of it stores).
    final_options: Any = None
    final_recipe: Any = None
    #: With a runtime dimension: the uncompressed model in each searched runtime and the winner as served,
    #: timed in one interleaved run (:func:`runtimes_versus_winner`), as a :class:`RuntimesVersusWinner`.
    versus: Any = None
    #: A new study with several runtimes: where its starting points were served (:func:`starting_runtime`).
    starting: StartingRuntime | None = None

    def final_dict(self) -> dict[str, Any] | None:
        """The winner's trial, recipe and test-split result, as stored with the study run."""
        if self.final is None:
            return None
        out = {"trial": self.best.number, "recipe": self.best.recipe, "result": self.final.to_dict()}
        if self.versus is not None:
            out["versus_runtimes"] = self.versus.to_dict()
        return out


@dataclass
class RuntimesVersusWinner:
    """The winner against each runtime used alone on the uncompressed model, from one interleaved run."""

    #: The runtime table of the uncompressed model, the winner as an extra row (``WINNER``).
    table: Any
    #: The winner's speedup over each other row (torch fp32 eager and every runtime alone), with intervals.
    speedups: list[Any]
    #: The fastest runtime alone on the uncompressed model (None when none was timed).
    best_alone: str | None

    def to_dict(self) -> dict[str, Any]:
        from steelyard.serialize import to_dict

        return {"table": self.table.to_dict(), "winner": WINNER, "best_alone": self.best_alone,
                "speedups": to_dict(self.speedups)}


#: The label of the winning model in the runtime comparison.
WINNER = "optimize winner"


@dataclass(frozen=True)
class RuntimeRanking:
    """One model structure's int8 timed in each searched runtime, interleaved with that structure in torch fp32."""

    #: What was timed: "the uncompressed model", or the prune steps of the space's cheapest corner.
    structure: str
    backend: str
    #: The row that won (e.g. "onnxruntime int8-dynamic") and its speedup over the structure in torch fp32 eager.
    label: str
    speedup: float | None
    #: Each timed int8 row's speedup, by label.
    speedups: dict[str, float]


@dataclass(frozen=True)
class StartingRuntime:
    """Where a new study's starting points are served, and the measurements that chose it: the uncompressed
    model's ranking places the points that keep most of the model, the corner's ranking the corners
    (the runtime with the least overhead can win on a model a sixth the size and lose on the full one)."""

    uncompressed: RuntimeRanking
    corner: RuntimeRanking | None
    rounds: int

    @property
    def backend(self) -> str:
        return self.uncompressed.backend

    @property
    def corner_backend(self) -> str:
        return (self.corner or self.uncompressed).backend

    def to_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "corner_backend": self.corner_backend, **dataclasses.asdict(self)}


#: Timing rounds of the quick runtime rankings that place the starting points.
STARTING_ROUNDS = 5
UNCOMPRESSED = "the uncompressed model"


def optimize(model: Any, data: DataOptions | str, config: OptimizeConfig | None = None, *,
             on_event: OnEvent | None = None, status: Status | None = None) -> OptimizeResult:
    """Search the built-in recipe space of ``model`` (a :class:`~steelyard.models.ModelHandle` or a
    source) on ``data`` for the cheapest recipe within ``config.max_drop`` points of accuracy.

    ``data`` is a :class:`~steelyard.data.options.DataOptions` (or a source name) rather than a
    loaded dataset because trial processes load the very same splits from it. ``status`` words the
    progress bar from the completed trials (the CLI passes reporting's; the default counts them).
    """
    from steelyard.outputs import check_output
    from steelyard.search.optimize import (
        builtin_space,
        corner_structure,
        default_study_name,
        optimize_spec,
        starting_points,
    )
    from steelyard.search.recipe_objective import RecipeObjective
    from steelyard.search.study import make_pruner, make_sampler, model_fingerprint, open_study

    cfg = config or OptimizeConfig()
    on_event = on_event or workflow.log_event
    source = workflow.source_of(model)
    if cfg.output is not None:
        check_output(cfg.output, (source, getattr(data, "source", data)), overwrite=cfg.overwrite)
    backends = searched_backends(cfg.backend)  # a runtime named but not installed fails here, before loading
    store = workflow.open_storage_of(cfg)
    handle, dataset, data_spec = workflow.model_and_data(model, data, cfg)
    check_scorable(handle, dataset, cfg)
    space = builtin_space(handle, cfg.recovery_steps, cfg.recovery_lr, backends, len(dataset.train))
    sampler = make_sampler(cfg.sampler, space, 2, cfg.trials, cfg.sampler_seed)
    name = cfg.study or default_study_name("optimize", source, data_spec.source, cfg.objective)
    spec = optimize_spec(name, source, model_fingerprint(source), space, data_spec.source, cfg.objective,
                         # costs are timed on this machine; "hardware" stays in the settings so older studies resume
                         cfg.max_drop, workflow.settings(cfg, data_spec, hardware="local"))
    study = open_study(store, spec, sampler, make_pruner(2))
    workflow.opened(study, cfg, on_event)
    options = cfg.recipe_options()
    starting = None
    if not study.get_trials(deepcopy=False):
        starting = starting_runtime(handle, dataset, backends, options, corner_structure(space))
        if starting is not None:
            on_event(workflow.StartingRuntimeChosen(starting))
        served = (starting.backend, starting.corner_backend) if starting else (None, None)
        _enqueue(study, starting_points(space, *served)[: cfg.trials])
    objective = RecipeObjective(source, data_spec, options, data_spec.task,
                                cfg.objective if cfg.prune_hopeless else None,
                                cfg.max_drop if cfg.prune_hopeless else None)
    outcome = workflow.run_trials(study, objective, space, cfg, on_event, status)
    result = OptimizeResult(cfg, data_spec, workflow.summary_of(study, spec, store), outcome, starting=starting)
    if result.best is not None and not result.interrupted and cfg.final:
        _final_run(result, handle, dataset, options, on_event)
    return result


def check_scorable(handle: Any, dataset: Any, cfg: OptimizeConfig) -> None:
    """Refuse, before a study exists, a model every trial would fail on: one that cannot score the data
    (an embedding model with no task head, a head of the wrong size, another modality). The same
    check the trials' evaluation makes, raised once as one line instead of once per trial."""
    from steelyard.evaluation.predictor import predictor_for

    predictor_for(handle, dataset, max_length=cfg.max_length, tokenizer=cfg.tokenizer)


def searched_backends(spec: str | None) -> tuple[str, ...]:
    """The ``backend`` dimension: "all" → the installed searched runtimes; a named one must be installed."""
    from steelyard.backends.registry import get_backend, require_backend
    from steelyard.backends.serve import SEARCHED

    wanted = [n.strip() for n in (spec or "").split(",") if n.strip()]
    if not wanted:
        return ()
    if wanted == ["all"]:
        return tuple(n for n in SEARCHED if get_backend(n).available())
    for name in wanted:
        require_backend(name)
    return tuple(dict.fromkeys(wanted))


def starting_runtime(handle: Any, dataset: Any, backends: tuple[str, ...], options: Any,
                     corner: str | None = None) -> StartingRuntime | None:
    """The searched runtime whose int8 runs the uncompressed model fastest and, given ``corner`` (the prune steps
    of the space's cheapest corner, :func:`~steelyard.search.optimize.corner_structure`), the one whose int8
    runs that structure fastest. Each is timed interleaved with the same structure in torch fp32 for
    :data:`STARTING_ROUNDS` rounds, int8 as a trial's ``precision=int8-dynamic`` runs it there (torch's and
    ONNX Runtime's dynamic int8, NNCF's calibrated int8 in OpenVINO). The corner is pruned but not trained:
    its speed does not depend on the weights' values, so seconds of pruning stand in for minutes of
    distillation. The six starting points are int8 recipes; they start where int8 is fastest on
    this machine instead of in the first runtime named, and the rest of the search still samples every
    runtime. None with fewer than two runtimes to choose from."""
    if len(backends) < 2:
        return None
    from steelyard.backends.data import runtime_data

    prepared = runtime_data(handle, dataset, batch_size=options.batch_size, max_length=options.max_length,
                            tokenizer=options.tokenizer, seed=options.seed)
    uncompressed = _ranking(UNCOMPRESSED, prepared.module, prepared, backends, options)
    if uncompressed is None:
        return None
    pruned = None
    if corner is not None:
        pruned = _ranking(corner, _pruned(handle, prepared.module, corner), prepared, backends, options)
    return StartingRuntime(uncompressed, pruned, STARTING_ROUNDS)


def _ranking(structure: str, module: Any, prepared: Any, backends: tuple[str, ...],
             options: Any) -> RuntimeRanking | None:
    from steelyard.backends.select import ALL_CANDIDATES, runtime_table
    from steelyard.backends.serve import SEARCHED_INT8

    candidates = [("torch", "fp32")] + [c for c in ALL_CANDIDATES
                                        if c[0] in backends and SEARCHED_INT8.get(c[0]) == c[1]]
    table = runtime_table(module, prepared.inputs, candidates=candidates, calibration=prepared.calibration,
                          threads=options.threads, rounds=STARTING_ROUNDS, warmup=1)
    timed = [r for r in table.rows if r.speedup is not None and r.precision != "fp32"]
    if not timed:
        return None
    best = max(timed, key=lambda r: r.speedup.ratio)
    return RuntimeRanking(structure, best.backend, best.label, float(best.speedup.ratio),
                          {r.label: round(float(r.speedup.ratio), 3) for r in timed})


def _pruned(handle: Any, module: Any, structure: str) -> Any:
    """``module`` (what answers the task, :func:`~steelyard.backends.data.runtime_data`) cut by the prune steps
    ``structure``, untrained; a copy, the original is untouched."""
    from steelyard.compression.api import compress
    from steelyard.compression.recipe import parse_recipe

    current = dataclasses.replace(handle, module=module)
    for step in parse_recipe(structure).steps:
        current = compress(current, step.config, check=False).handle  # timed only: no fidelity needed
    return current.module


def _enqueue(study: Any, points: list[dict[str, Any]]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for point in points:
            study.enqueue_trial(point, skip_if_exists=True)


def _final_run(result: OptimizeResult, handle: Any, dataset: Any, search_options: Any, on_event: OnEvent) -> None:
    """Re-run the winning recipe measured on the test split, and save it to ``config.output``."""
    from steelyard.backends.serve import route
    from steelyard.compression.recipe import parse_recipe, run_recipe
    from steelyard.compression.recipe.runner import RECIPE_GENERATION

    best, cfg = result.best, result.config
    served = best.params.get("backend")  # the runtime the winning trial was served and timed in
    recipe, serve = route(parse_recipe(best.recipe), None if served in (None, "torch") else served, float_onnx=True)
    options = dataclasses.replace(search_options, eval_split="test", progress=None, n_resamples=1000, rounds=10,
                                  serve=serve, generation=RECIPE_GENERATION)
    on_event(workflow.FinalRunStarted(best.number, best.recipe))
    final = run_recipe(handle, recipe, dataset, options)
    if cfg.output is not None:
        final.save(cfg.output, overwrite=cfg.overwrite, preprocessing_from=handle.path)
    result.final, result.final_options, result.final_recipe = final, options, recipe
    backends = searched_backends(cfg.backend)
    if backends and final.compressed is not None:
        on_event(workflow.RuntimesTimingStarted(backends))
        result.versus = runtimes_versus_winner(handle, dataset, final.compressed.handle.module, backends, options)


def runtimes_versus_winner(handle: Any, dataset: Any, winner: Any, backends: tuple[str, ...],
                           options: Any) -> RuntimesVersusWinner:
    """The uncompressed model in every precision of each searched runtime, and ``winner``, timed interleaved
    with torch fp32 eager on the same validation batch; the winner's speedup over each (one run, so every
    ratio has its interval). int8 runtimes calibrate on the training split, as ``steelyard runtimes``."""
    from steelyard.backends.data import runtime_data
    from steelyard.backends.select import ALL_CANDIDATES, BASELINE, runtime_table, versus

    prepared = runtime_data(handle, dataset, batch_size=options.batch_size, max_length=options.max_length,
                            tokenizer=options.tokenizer, seed=options.seed)
    candidates = [c for c in ALL_CANDIDATES if c == ("torch", "fp32") or c[0] in backends]
    table = runtime_table(prepared.module, prepared.inputs, candidates=candidates, calibration=prepared.calibration,
                          threads=options.threads, rounds=options.rounds, extra={WINNER: winner})
    alone = [r for r in table.rows if r.speedup is not None and r.label not in (WINNER, BASELINE)]
    best = max(alone, key=lambda r: r.speedup.ratio).label if alone else None
    return RuntimesVersusWinner(table, versus(table, WINNER), best)
