"""``sy.optimize`` and ``sy.search`` end to end in this process, without the CLI: tiny BERT, tiny data,
a couple of trials; results are data and progress arrives as events."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

import steelyard as sy
from steelyard.data.options import DataOptions
from steelyard.errors import ConfigError
from steelyard.search import workflow
from text_toys import reviews_csv, tiny_bert

pytestmark = pytest.mark.usefixtures("one_thread")

FAST = {"batch_size": 8, "max_length": 32, "rounds": 2, "isolation": "inline", "progress": False}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("search-verbs")
    return tiny_bert(root / "model", layers=3, hidden=32, heads=4, max_positions=64), reviews_csv(root / "r.csv", 60)


def test_search_is_a_callable_package_and_a_verb():
    space = importlib.import_module("steelyard.search.space")
    assert callable(sy.search) and sy.search is importlib.import_module("steelyard.search")
    assert space.SearchSpace is sy.SearchSpace
    assert {"optimize", "OptimizeConfig", "OptimizeResult", "search", "SearchConfig", "SearchResult"} <= set(sy.__all__)


def test_optimize_in_process_picks_a_winner_and_measures_it_on_test(tiny, tmp_path):
    model, data = tiny
    events: list[object] = []
    cfg = sy.OptimizeConfig(trials=2, max_drop=100.0, recovery_steps=2, storage=str(tmp_path / "s.db"),
                            study="verb-opt", sampler_seed=0, output=tmp_path / "winner", **FAST)
    result = sy.optimize(str(model), DataOptions(str(data)), cfg, on_event=events.append)
    assert isinstance(result, sy.OptimizeResult)
    assert result.summary.counts.get("complete", 0) >= 1 and result.best is not None
    assert result.final.eval_split == "test" and result.final_dict()["recipe"] == result.best.recipe
    assert (tmp_path / "winner" / "config.json").is_file()
    assert result.data.task == "text-classification"  # the model's task, since none was given
    kinds = [type(e) for e in events]
    assert kinds[0] is workflow.StudyOpened and events[0].used == 0
    assert kinds.count(workflow.TrialFinished) == 2 and workflow.FinalRunStarted in kinds


def test_search_in_process_with_a_space_object_and_a_budget(tiny, tmp_path):
    model, data = tiny
    space = sy.SearchSpace.from_dict({"params": {"precision": ["none", "int8-dynamic"]},
                                      "recipe": "quantize:{precision}"})
    cfg = sy.SearchConfig(space=space, objectives="accuracy:max,size:min", sampler="grid", trials=5,
                          budget="size<=1e12", storage=str(tmp_path / "s.db"), **FAST)
    events: list[object] = []
    result = sy.search(str(model), str(data), cfg, on_event=events.append)
    assert isinstance(result, sy.SearchResult) and result.trials == 2
    assert any(isinstance(e, workflow.TrialsCapped) and e.points == 2 and e.asked == 5 for e in events)
    recipes = {r.recipe: r.state for r in result.summary.rows}
    assert recipes == {"": "pruned", "quantize:int8-dynamic": "complete"}
    assert result.best is not None and result.best.recipe == "quantize:int8-dynamic"
    assert result.summary.name == "search-model-r.csv-space"


@pytest.mark.parametrize("kwargs, words", [
    ({"objective": "accuracy"}, "unknown --objective"),
    ({"max_drop": -1.0}, "--max-drop must be zero or more"),
    ({"isolation": "thread"}, "--isolation must be process or inline"),
    ({"trial_timeout": 0.0}, "--trial-timeout must be longer than zero"),
])
def test_a_bad_optimize_config_is_refused_when_built(kwargs, words):
    with pytest.raises(ConfigError, match=words):
        sy.OptimizeConfig(**kwargs)
