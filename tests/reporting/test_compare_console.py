"""The comparison on hand-made candidates: options, front, recommendation, lifetime cost, and a golden
snapshot of the console output (fixed width, no colour, fixed numbers).

Regenerate the snapshot after an intended change with
``STEELYARD_UPDATE_GOLDEN=1 pytest tests/reporting/test_compare_console.py`` and review the diff.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from rich.console import Console

from compare_fakes import fake_comparison
from steelyard.comparison.config import CompareConfig, Constraints
from steelyard.comparison.result import Comparison
from steelyard.reporting.commands import COMPARE_FLAGS, COMPARE_UNFLAGGED, compare_command, config_fields
from steelyard.reporting.compare_console import render_comparison, value_text
from steelyard.reporting.explain import explanation_text
from steelyard.units import Bytes, Seconds

GOLDEN = Path(__file__).parents[1] / "golden" / "compare_console.txt"
LIMITS = Constraints(max_latency=Seconds(0.05), min_accuracy=0.85)


def rendered(comp: Comparison) -> str:
    console = Console(width=160, record=True, color_system=None, force_terminal=False, file=io.StringIO())
    render_comparison(comp, console)
    return console.export_text()


def test_console_golden_snapshot():
    text = rendered(fake_comparison(LIMITS))
    if os.environ.get("STEELYARD_UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text, encoding="utf-8")
    expected = GOLDEN.read_text(encoding="utf-8")
    assert text == expected, "console output changed; see the module docstring to regenerate the snapshot"


def test_console_render_is_deterministic_and_complete():
    text = rendered(fake_comparison(LIMITS))
    assert text == rendered(fake_comparison(LIMITS))
    for fragment in ("Candidates × hardware", "0.900 [0.870, 0.930]", "does not fit (2 dev)", "Pareto front over",
                     "Recommendation: base @ a100-80gb", "Lifetime cost", "Accessibility", "cheapest", "reproduce:"):
        assert fragment in text


def test_options_fit_and_costs():
    comp = fake_comparison(LIMITS)
    assert comp.hardware == ["laptop-cpu", "t4", "a100-80gb"]
    assert len(comp.options) == 9
    huge_t4 = comp.option("huge", "t4")
    assert not huge_t4.fits_inference and comp.option("huge", "a100-80gb").fits_inference
    laptop = comp.option("tiny", "laptop-cpu")
    assert laptop.cost_per_1k is None and laptop.lifetime_cost is None  # no price for a laptop
    t4 = comp.option("tiny", "t4")
    requests = comp.config.requests_per_day * comp.config.days
    assert float(t4.serving_cost) == pytest.approx(float(t4.cost_per_1k) * requests / 1000)
    assert float(t4.lifetime_cost) == pytest.approx(float(t4.serving_cost) + float(t4.finetune_cost))
    assert t4.throughput == pytest.approx(1 / float(t4.latency))


def test_recommendation_under_constraints():
    rec = fake_comparison(LIMITS).recommendation
    assert rec.chosen == "base @ a100-80gb"
    assert rec.binding == ["max latency"]
    assert "huge @ a100-80gb" in rec.excluded_better
    assert [o.name for o in fake_comparison(LIMITS).objectives] == ["accuracy", "latency", "cost_per_1k"]
    # options that do not fit are never chosen, however accurate
    loose = fake_comparison(Constraints(min_accuracy=0.92)).recommendation
    assert loose.chosen == "huge @ a100-80gb"
    assert any(m.kind == "requirement" for m in loose.infeasible["huge @ t4"])


def test_nothing_feasible_says_what_must_give():
    rec = fake_comparison(Constraints(max_latency=Seconds(0.001), min_accuracy=0.85)).recommendation
    assert rec.chosen is None
    assert rec.nearest and rec.relaxations
    assert rec.explanation.chosen is None
    assert "What would have to give" in explanation_text(rec, value_text)
    needed = {r.constraint: r.needed for r in rec.relaxations}
    assert needed["max latency"] == pytest.approx(float(fake_comparison().option("base", "a100-80gb").latency))


def test_without_data_accuracy_is_dropped_from_objectives():
    comp = fake_comparison(with_data=False)
    assert [o.name for o in comp.objectives] == ["latency", "cost_per_1k"]
    assert comp.recommendation.chosen == "tiny @ a100-80gb"


def test_comparison_json_round_trip():
    comp = fake_comparison(LIMITS)
    data = json.loads(json.dumps(comp.to_dict(), allow_nan=False))
    back = Comparison.from_dict(data)
    assert back.to_dict() == comp.to_dict()
    assert isinstance(back.options[0].latency, Seconds)
    assert back.recommendation.chosen == comp.recommendation.chosen
    assert rendered(back) == rendered(comp)


def test_a_run_stored_with_a_text_explanation_and_command_still_renders():
    """Runs saved before explanations were data hold a plain string there, and a ``command`` field."""
    comp = fake_comparison(LIMITS)
    data = json.loads(json.dumps(comp.to_dict()))
    data["recommendation"]["explanation"] = "base @ a100-80gb is recommended (stored text)."
    data["command"] = "steelyard compare a b"
    del data["paths"]
    old = Comparison.from_dict(data)
    assert old.recommendation.explanation == "base @ a100-80gb is recommended (stored text)."
    text = rendered(old)
    assert "base @ a100-80gb is recommended (stored text)." in text
    assert "reproduce: steelyard compare models/tiny models/base models/huge --hardware" in text


def test_reproduce_command_writes_changed_fields_and_covers_every_config_field():
    comp = fake_comparison(LIMITS)
    command = compare_command(comp)
    assert "--dtype" not in command and "--no-interleave" not in command  # defaults stay out
    assert "--max-latency 50ms --min-accuracy 0.85" in command
    flagged = {f.path for f in COMPARE_FLAGS}
    assert set(config_fields(CompareConfig)) == flagged | set(COMPARE_UNFLAGGED)
    assert not flagged & set(COMPARE_UNFLAGGED)


def test_reproduce_command_options_for_non_defaults():
    from dataclasses import replace

    comp = fake_comparison(LIMITS)
    comp.config = replace(comp.config, dtype="bfloat16", interleave=False, metrics=("accuracy", "f1"),
                          constraints=Constraints(max_memory=Bytes(4 * 2**30)), config_only=False)
    comp.paths = {"models/tiny": "/abs/models/tiny", "data.csv": "/abs/data.csv"}
    command = compare_command(comp)
    assert command.startswith("steelyard compare /abs/models/tiny models/base")
    assert "--dtype bfloat16" in command and "--no-interleave" in command
    assert "--data /abs/data.csv --split test --metrics accuracy,f1" in command
    assert "--max-memory 4GiB" in command and "--max-latency" not in command
