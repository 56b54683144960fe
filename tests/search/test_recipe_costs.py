"""What a recipe search may rank trials by: only costs that are what they say.

``energy`` was latency × one constant (both models of a trial run here with the same threads and no
power counter is read while timing), so it is refused with that reason rather than offered as
latency under another name. ``optimize --hardware`` accepted only ``local``: costs are timed on this
machine, so the option is gone (``compress --hardware`` projects onto catalog devices instead).
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
import typer

from steelyard.errors import ConfigError
from steelyard.search.config import OptimizeConfig, SearchConfig
from steelyard.search.recipe_objective import COSTS, RECIPE_METRICS, recipe_metrics


def _result(speedup: float) -> SimpleNamespace:
    card = SimpleNamespace(headline=None, metric="accuracy", bytes=100.0, params=10, flops=None, agreement=None,
                           latency=SimpleNamespace(median=0.01))
    return SimpleNamespace(before=card, after=card, speedup=speedup, size_ratio=1.0, flops_ratio=None,
                           metric_drop=0.0, changes={}, speed=None)


def test_energy_is_not_a_cost_a_trial_reports():
    metrics = recipe_metrics(_result(2.0))
    assert metrics["latency"] == pytest.approx(0.5) and "energy" not in metrics
    assert "energy" not in COSTS and "energy" not in RECIPE_METRICS


def test_optimize_refuses_energy_and_says_why():
    with pytest.raises(ConfigError, match="ranks trials exactly as latency does"):
        OptimizeConfig(objective="energy")


def test_search_refuses_energy_as_an_objective():
    from steelyard.search.study import parse_objectives

    with pytest.raises(ConfigError, match="energy"):
        parse_objectives("accuracy:max,energy:min", tuple(RECIPE_METRICS))
    assert "energy" not in {f.metadata.get("help", "") for f in dataclasses.fields(SearchConfig)
                            if f.name == "objectives"}.pop()


def test_optimize_has_no_hardware_option():
    from steelyard.cli.main import app

    assert "hardware" not in {f.name for f in dataclasses.fields(OptimizeConfig)}
    params = {p.name for p in typer.main.get_command(app).commands["optimize"].params}
    assert "hardware" not in params and "objective" in params
