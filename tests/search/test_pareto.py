"""Pareto fronts and constrained recommendations on hand-made candidate sets with known answers."""

from __future__ import annotations

import json
import math

import pytest

from steelyard.reporting.explain import explanation_text
from steelyard.search.pareto import (
    Candidate,
    Constraint,
    Objective,
    Recommendation,
    Requirement,
    dominates,
    pareto_front,
    recommend,
)
from steelyard.serialize import from_dict, to_dict

ACC, LAT = Objective("accuracy", "max"), Objective("latency", "min")
COST = Objective("cost", "min")


def cands(**rows: tuple) -> list[Candidate]:
    return [Candidate(name, dict(zip(("accuracy", "latency", "cost"), values, strict=False)))
            for name, values in rows.items()]


def test_two_objective_front_and_dominators():
    cs = cands(a=(0.90, 50), b=(0.93, 80), c=(0.85, 20), d=(0.85, 30), e=(0.80, 90))
    r = pareto_front(cs, [ACC, LAT])
    assert r.front == ["a", "b", "c"]
    assert r.dominated_by["d"] == ["c"]  # same accuracy as c, slower
    assert sorted(r.dominated_by["e"]) == ["a", "b", "c", "d"]
    assert r.dominates["c"] == ["d", "e"]
    assert r.rank == {"a": 0, "b": 0, "c": 0, "d": 1, "e": 2}
    assert r.ties == []


def test_ties_stay_on_the_front_and_are_grouped():
    cs = cands(a=(0.9, 50), twin=(0.9, 50), worse=(0.9, 60))
    r = pareto_front(cs, [ACC, LAT])
    assert r.front == ["a", "twin"]
    assert r.ties == [["a", "twin"]]
    assert not dominates(cs[0], cs[1], [ACC, LAT]) and not dominates(cs[1], cs[0], [ACC, LAT])
    assert r.dominated_by["worse"] == ["a", "twin"]


def test_three_objectives_and_missing_values_count_as_worst():
    cs = cands(a=(0.9, 50, 1.0), b=(0.9, 50, None), c=(0.95, 100, 2.0))
    r = pareto_front(cs, [ACC, LAT, COST])
    assert r.front == ["a", "c"]
    assert r.dominated_by["b"] == ["a"]  # unknown cost cannot win on cost
    nan = Candidate("nan", {"accuracy": math.nan, "latency": 10, "cost": 0.1})
    r = pareto_front([*cs, nan], [ACC, LAT, COST])
    assert "nan" in r.front  # best latency and cost, unknown accuracy


def test_single_objective_front_is_the_best_and_its_ties():
    cs = cands(a=(0.9,), b=(0.95,), c=(0.95,))
    assert pareto_front(cs, [ACC]).front == ["b", "c"]


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="unique"):
        pareto_front(cands(a=(1, 1)) * 2, [ACC])
    with pytest.raises(ValueError, match="objective"):
        pareto_front(cands(a=(1, 1)), [])
    with pytest.raises(ValueError, match="direction"):
        Objective("x", "up")  # type: ignore[arg-type]


def test_recommend_best_feasible_names_the_binding_constraint():
    cs = cands(a=(0.90, 40), b=(0.93, 80), c=(0.85, 20))
    rec = recommend(cs, [ACC, LAT], [Constraint("latency", "max", 50, "max latency")])
    assert rec.chosen == "a"
    assert rec.feasible == ["a", "c"]
    assert rec.binding == ["max latency"]
    assert rec.excluded_better == {"b": ["max latency"]}
    why = rec.explanation
    assert why.chosen == "a" and why.n_feasible == 2 and why.sole
    assert [(m.constraint, m.bound, m.reading.value) for m in why.met] == [("max latency", 50, 40)]
    assert why.runner_up.name == "c" and why.runner_up.tie == "none" and why.runner_up.reading.value == 0.85
    (b,) = why.excluded
    assert b.name == "b" and b.reading.value == 0.93
    assert [(m.metric, m.value, m.gap, m.relative) for m in b.misses] == [("latency", 80, 30, pytest.approx(0.6))]
    text = explanation_text(rec)
    assert "a is recommended" in text
    assert "Binding constraint: max latency" in text
    assert "b (accuracy 0.93)" in text and "80 vs ≤ 50, 60% over" in text
    assert "runner-up c has 0.85" in text


def test_recommend_without_binding_constraint_reports_headroom():
    cs = cands(a=(0.90, 40), c=(0.85, 20))
    rec = recommend(cs, [ACC, LAT], [Constraint("latency", "max", 100, "max latency")])
    assert rec.chosen == "a" and rec.binding == []
    assert rec.explanation.excluded == [] and rec.explanation.tightest.constraint == "max latency"
    assert rec.explanation.tightest.fraction == pytest.approx(0.6)
    text = explanation_text(rec)
    assert "No constraint binds" in text and "60% headroom" in text


def test_recommend_tie_on_primary_broken_by_next_objective():
    cs = cands(slow=(0.9, 60), fast=(0.9, 30))
    rec = recommend(cs, [ACC, LAT])
    assert rec.chosen == "fast"
    assert rec.explanation.runner_up.tie == "primary" and rec.explanation.runner_up.basis == "latency"
    assert "tied with slow and ahead of it on latency" in explanation_text(rec)


def test_recommend_exact_tie_keeps_input_order():
    cs = cands(first=(0.9, 30), second=(0.9, 30))
    rec = recommend(cs, [ACC, LAT])
    assert rec.chosen == "first"
    assert rec.explanation.runner_up.name == "second" and rec.explanation.runner_up.tie == "all"
    assert "ties with second on every objective" in explanation_text(rec)


def test_recommend_primary_other_than_first_objective():
    cs = cands(a=(0.90, 40), c=(0.85, 20))
    assert recommend(cs, [ACC, LAT], primary="latency").chosen == "c"
    with pytest.raises(ValueError, match="primary"):
        recommend(cs, [ACC, LAT], primary="cost")


def test_recommend_overlapping_intervals_are_mentioned():
    cs = [Candidate("a", {"accuracy": 0.90, "latency": 40}, {"accuracy": (0.87, 0.93)}),
          Candidate("b", {"accuracy": 0.89, "latency": 20}, {"accuracy": (0.86, 0.92)})]
    rec = recommend(cs, [ACC, LAT])
    assert rec.chosen == "a"
    assert rec.explanation.runner_up.intervals_overlap
    assert rec.explanation.reading.interval == (0.87, 0.93)
    text = explanation_text(rec)
    assert "confidence intervals of the two overlap" in text
    assert "0.9 [0.87, 0.93]" in text


def test_no_feasible_candidate_lists_nearest_and_what_must_give():
    cs = cands(a=(0.90, 50), b=(0.93, 80), c=(0.85, 20))
    limits = [Constraint("latency", "max", 10, "max latency"), Constraint("accuracy", "min", 0.95, "min accuracy")]
    rec = recommend(cs, [ACC, LAT], limits)
    assert rec.chosen is None and rec.feasible == []
    assert set(rec.infeasible) == {"a", "b", "c"}
    miss = {m.constraint: m for m in rec.infeasible["c"]}
    assert miss["max latency"].gap == pytest.approx(10) and miss["max latency"].relative == pytest.approx(1.0)
    assert miss["min accuracy"].gap == pytest.approx(0.10)
    assert rec.nearest[0] == "c"  # 100% over on latency + 10.5% under on accuracy is the smallest total miss
    assert rec.relaxations == []  # every candidate misses both
    assert rec.explanation.chosen is None
    text = explanation_text(rec)
    assert "No candidate meets every constraint" in text
    assert "at least two would have to give" in text
    assert "Admitting the nearest, c, needs max latency ≤ 20 and min accuracy ≥ 0.85" in text


def test_no_feasible_candidate_single_relaxation():
    cs = cands(a=(0.90, 50), c=(0.85, 20))
    rec = recommend(cs, [ACC, LAT], [Constraint("latency", "max", 10, "max latency")])
    assert rec.chosen is None
    assert [(r.constraint, r.needed, r.admits) for r in rec.relaxations] == [("max latency", 20, "c")]
    assert "relax max latency to ≤ 20 (admits c)" in explanation_text(rec)


def test_requirements_block_and_unknown_values_fail_constraints():
    cs = [Candidate("big", {"accuracy": 0.99, "latency": 5, "cost": 0.05},
                    blockers={"fits in memory": "needs 20 GiB of 14 GiB"}),
          Candidate("unpriced", {"accuracy": 0.95, "latency": 5, "cost": None}),
          Candidate("small", {"accuracy": 0.90, "latency": 5, "cost": 0.01})]
    rec = recommend(cs, [ACC, LAT], [Constraint("cost", "max", 0.1, "max cost")])
    assert rec.chosen == "small"
    assert [m.detail for m in rec.infeasible["big"] if m.kind == "requirement"] == ["needs 20 GiB of 14 GiB"]
    assert rec.infeasible["unpriced"][0].value is None and rec.infeasible["unpriced"][0].relative is None
    # each of big and unpriced fails exactly one thing, so both bind on their own (big ranks first)
    assert rec.binding == ["fits in memory", "max cost"]
    assert "cost unknown" in explanation_text(rec)
    # the result is plain data: it serialises to strict JSON (no NaN / Infinity)
    json.dumps(to_dict(rec), allow_nan=False)


def test_formatter_is_used_for_every_number():
    cs = cands(a=(0.9, 0.040), c=(0.85, 0.020))
    rec = recommend(cs, [ACC, LAT], [Constraint("latency", "max", 0.030, "max latency")])
    assert rec.chosen == "c"
    text = explanation_text(rec, lambda metric, v: f"{v * 1e3:.0f} ms" if metric == "latency" else f"{v:.0%}")
    assert "max latency ≤ 30 ms: 20 ms" in text and "a (accuracy 90%) fails latency 40 ms" in text


def test_a_requirement_with_numbers_is_kept_as_data_and_worded_with_the_formatter():
    need = Requirement("does not fit in t4 memory", "memory", 20.0, 14.0)
    cs = [Candidate("big", {"accuracy": 0.99, "latency": 5}, blockers={"fits in memory": need}),
          Candidate("small", {"accuracy": 0.90, "latency": 5})]
    rec = recommend(cs, [ACC, LAT])
    (miss,) = rec.infeasible["big"]
    assert (miss.kind, miss.value, miss.bound, miss.gap) == ("requirement", 20.0, 14.0, 6.0)
    text = explanation_text(rec, lambda metric, v: f"{v:g} GiB")
    assert "fails does not fit in t4 memory (20 GiB needed, 14 GiB usable)" in text


def test_explanation_round_trips_through_the_store_and_old_text_is_kept():
    cs = cands(a=(0.90, 40), b=(0.93, 80), c=(0.85, 20))
    rec = recommend(cs, [ACC, LAT], [Constraint("latency", "max", 50, "max latency")])
    back = from_dict(Recommendation, json.loads(json.dumps(to_dict(rec), allow_nan=False)))
    assert back.explanation == rec.explanation
    assert explanation_text(back) == explanation_text(rec)
    old = to_dict(rec) | {"explanation": "a is recommended (written by an older steelyard)."}
    assert explanation_text(from_dict(Recommendation, old)) == "a is recommended (written by an older steelyard)."
