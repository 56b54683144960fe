"""``search``: a space of compression recipes searched for the Pareto front of any objectives, as one call.

The space (YAML or a :class:`~steelyard.search.space.SearchSpace`) turns each point into a recipe
through its ``recipe:`` template. Bad input fails before the study is touched: an empty or
contradictory space, a template that gives a step no recipe accepts, an unknown objective or
sampler, an unreachable storage, a study of another model. With ``budget`` the answer is the best
first objective among the trials within the limits (architecture search under a budget); a budget
nobody meets leaves ``best`` None and the study intact.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steelyard.data.options import DataOptions
from steelyard.errors import ConfigError
from steelyard.search import workflow
from steelyard.search.config import SearchConfig
from steelyard.search.space import SearchSpace
from steelyard.search.workflow import OnEvent, StudyResult


@dataclass
class SearchResult(StudyResult):
    """The study after this worker's trials: every trial, the front and the answer (``summary.best``)."""

    config: SearchConfig
    #: The trial budget used: ``config.trials``, or fewer when a grid has fewer points.
    trials: int = 0


def load_space(space: SearchSpace | str | Path) -> SearchSpace:
    """The space, read from YAML when given as a path; it must have a recipe template whose lowest and
    highest points parse as recipes (a step name or parameter no recipe accepts fails now, not in
    every trial)."""
    from steelyard.compression.recipe import parse_recipe

    parsed = space if isinstance(space, SearchSpace) else SearchSpace.from_yaml(space)
    if parsed.recipe is None:
        raise ConfigError(f"the search space {space} has no 'recipe:' template; steelyard search turns each point "
                          "into a recipe, e.g. recipe: \"prune:layers,amount={depth}; quantize:{precision}\"")
    for pick in (0, -1):
        values = {p.name: p.ends()[pick] for p in parsed.params}
        text = parsed.recipe_text(values)
        if text:
            try:
                parse_recipe(text)
            except ConfigError as exc:
                raise ConfigError(f"the recipe template gives '{text}' for {values}: {exc}") from None
    return parsed


def parse_budget(text: str | None, primary: str, valid: tuple[str, ...]) -> dict[str, Any]:
    """``"flops<=2e10,drop<=1"`` → the study's selection rule (best ``primary`` within the limits)."""
    from steelyard.units_parse import parse_count

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
        constraints.append([name, "max" if op == "<=" else "min", parse_count(raw, f"--budget {name}")])
    return {"primary": primary, "constraints": constraints}


def search(model: Any, data: DataOptions | str, config: SearchConfig, *,
           on_event: OnEvent | None = None) -> SearchResult:
    """Search ``config.space`` on ``model`` (a :class:`~steelyard.models.ModelHandle` or a source) and
    ``data`` (a :class:`~steelyard.data.options.DataOptions`, which trial processes load the same
    splits from, or a source name) for ``config.objectives``, on the validation split."""
    from steelyard.search.optimize import default_study_name
    from steelyard.search.recipe_objective import RECIPE_METRICS, RecipeObjective
    from steelyard.search.study import (
        StudySpec,
        make_pruner,
        make_sampler,
        model_fingerprint,
        open_study,
        parse_objectives,
    )

    on_event = on_event or workflow.log_event
    space = load_space(config.space)
    goals = parse_objectives(config.objectives, tuple(RECIPE_METRICS))
    selection = parse_budget(config.budget, goals[0].name, tuple(RECIPE_METRICS))
    trials = config.trials
    size = space.size()
    if config.sampler == "grid" and size is not None and trials > size:
        on_event(workflow.TrialsCapped(int(size), trials))
        trials = int(size)
    sampler = make_sampler(config.sampler, space, len(goals), trials, config.sampler_seed)
    store = workflow.open_storage_of(config)
    source = workflow.source_of(model)
    _, _, data_spec = workflow.model_and_data(model, data, config)  # the trial processes load their own copy
    stem = Path(config.space).stem if isinstance(config.space, (str, Path)) else "space"
    name = config.study or default_study_name("search", source, data_spec.source, stem)
    spec = StudySpec(name, source, model_fingerprint(source), goals, space.to_dict(), data_spec.source, "search",
                     selection, workflow.settings(config, data_spec))
    run_config = config if trials == config.trials else _with_trials(config, trials)
    study = open_study(store, spec, sampler, make_pruner(len(goals)))
    workflow.opened(study, run_config, on_event)
    objective = RecipeObjective(source, data_spec, config.recipe_options(), data_spec.task)
    outcome = workflow.run_trials(study, objective, space, run_config, on_event)
    return SearchResult(config, data_spec, workflow.summary_of(study, spec, store), outcome, trials)


def _with_trials(config: SearchConfig, trials: int) -> SearchConfig:
    import dataclasses

    return dataclasses.replace(config, trials=trials)
