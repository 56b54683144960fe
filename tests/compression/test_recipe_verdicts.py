"""A recipe's verdicts follow the statistics: paired tests for metric changes, intervals for speedups.

The cards are hand-made (no model runs), so each verdict has a known answer: one example of 444
flipped is "no significant change" whichever way it flipped; a 30-to-2 split is a real drop; a speedup
whose interval includes 1.0 is "not significantly faster"; a noisy latency is marked in the table.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from steelyard.compression.recipe.measure import ModelCard
from steelyard.compression.recipe.result import RecipeResult
from steelyard.metrics import MetricValue
from steelyard.profiling.interleaved import paired_speedup
from steelyard.profiling.latency import summarize
from steelyard.reporting.compress_view import before_after_rows, verdict_lines
from steelyard.significance import paired_changes
from steelyard.units import Bytes


def predictions(n: int, both_right: int, only_before: int, only_after: int) -> tuple[np.ndarray, ...]:
    y = np.zeros(n, dtype=np.int64)
    a, b = np.ones(n, dtype=np.int64), np.ones(n, dtype=np.int64)
    i = 0
    for count, first, second in ((both_right, 0, 0), (only_before, 0, 1), (only_after, 1, 0)):
        a[i:i + count], b[i:i + count] = first, second
        i += count
    return y, a, b


def card(accuracy: float, n: int, samples: list[float] | None = None) -> ModelCard:
    c = ModelCard(params=1000, nonzero=1000, bytes=Bytes(4000))
    c.metrics = {"accuracy": MetricValue("accuracy", accuracy, accuracy - 0.03, accuracy + 0.03, n)}
    c.metric = "accuracy"
    if samples is not None:
        c.latency = summarize(samples, batch_size=8, warmup=1, threads=1, timer="perf_counter")
        c.throughput = 8 / float(c.latency.median)
    return c


def result(only_before: int, only_after: int, *, before_s: list[float] | None = None,
           after_s: list[float] | None = None, paired: bool = True) -> RecipeResult:
    y, a, b = predictions(444, 400, only_before, only_after)
    before, after = card(float((a == y).mean()), 444, before_s), card(float((b == y).mean()), 444, after_s)
    speed = None
    if before_s is not None and after_s is not None:
        speed = paired_speedup("original", "compressed", {"original": before_s, "compressed": after_s})
    changes = paired_changes(["accuracy"], y, a, b, n_resamples=300) if paired else {}
    return RecipeResult("m", "quantize:int8-dynamic", "data", "test", before, after, [], "torch", None,
                        {"rounds": 10, "warmup": 1, "threads": 1, "shape": [8, 32]}, 1.0, speed=speed,
                        changes=changes)


def metric_line(r: RecipeResult) -> str:
    return next(line for line in verdict_lines(r.to_dict()) if line.startswith("accuracy"))


@pytest.mark.parametrize(("only_before", "only_after"), [(1, 0), (0, 1)])
def test_one_discordant_example_of_444_is_no_significant_change(only_before, only_after):
    r = result(only_before, only_after)
    assert abs(r.metric_drop) == pytest.approx(100 / 444)  # the 0.23 points of the issue, either way
    (verdict,) = [v for v in r.verdicts() if v.kind == "metric"]
    assert verdict.outcome == "not significant" and verdict.p_value == 1.0
    line = metric_line(r)
    assert line.startswith("accuracy: no significant change (McNemar p=1.00, 1 of 444 examples changed")
    assert "rose" not in line and "dropped" not in line


def test_a_real_drop_is_worded_with_its_p_value_and_the_json_carries_the_test():
    r = result(30, 2)
    line = metric_line(r)
    assert line.startswith("accuracy dropped 6.31 points (McNemar p<0.001, 32 of 444 examples changed")
    d = json.loads(json.dumps(r.to_dict()))
    change = d["changes"]["accuracy"]
    assert change["test"] == "mcnemar-exact" and change["significant"] is True
    assert change["p_value"] == pytest.approx(2 * (1 + 32 + 496) / 2**32)
    assert change["ci_low"] < change["delta"] < 0
    metric_row = next(row for row in before_after_rows(d) if row[0].startswith("accuracy"))
    assert metric_row[3] == "-6.31 pts (McNemar p<0.001)"


def test_a_change_without_paired_predictions_is_never_called_a_rise():
    r = result(0, 5, paired=False)
    assert metric_line(r) == "accuracy changed by 1.13 points (not tested: no paired predictions)"


def test_a_speedup_whose_interval_includes_one_is_not_significantly_faster():
    rng = np.random.default_rng(0)
    base = list(0.010 + 0.002 * rng.random(12))
    same = list(0.010 + 0.002 * rng.random(12))
    r = result(1, 0, before_s=base, after_s=same)
    assert r.speed is not None and r.speed.ci_low < 1 < r.speed.ci_high and r.speed.outcome == "not significant"
    (speed,) = [v for v in r.verdicts() if v.kind == "speed"]
    assert speed.outcome == "not significant"
    lines = verdict_lines(r.to_dict())
    assert any(line.startswith("not significantly faster") and "includes 1.0" in line for line in lines)
    d = r.to_dict()
    assert d["speedup_outcome"] == "not significant" and d["speedup_ci"] == [r.speed.ci_low, r.speed.ci_high]
    row = next(row for row in before_after_rows(d) if row[0].startswith("latency, median"))
    assert row[3].endswith("not significantly faster") and "[" in row[3]


def test_a_clear_speedup_is_faster_with_its_interval():
    base = [0.020 + 0.0001 * i for i in range(10)]
    fast = [0.010 + 0.0001 * i for i in range(10)]
    r = result(0, 0, before_s=base, after_s=fast)
    assert r.speed.outcome == "faster" and r.speed.ci_low > 1
    row = next(row for row in before_after_rows(r.to_dict()) if row[0].startswith("latency, median"))
    assert row[3].startswith(f"{r.speedup:.2f}x faster [")


def test_a_noisy_latency_is_marked_in_the_table_and_flagged_in_the_json():
    steady = [0.010] * 9 + [0.0101]
    spiky = [0.010] * 7 + [0.030, 0.031, 0.032]  # p90 well above 1.5 x the median, CV far above 10%
    r = result(0, 0, before_s=steady, after_s=spiky)
    d = r.to_dict()
    assert d["before"]["latency"]["noisy"] is False and d["after"]["latency"]["noisy"] is True
    assert d["after"]["latency"]["noisy_because"] == ["cv", "tail"]
    row = next(row for row in before_after_rows(d) if row[0].startswith("latency, median"))
    assert "noisy" not in row[1] and row[2].endswith("± noisy")


def test_a_perplexity_verdict_says_the_value_rose_in_percent_not_points_dropped():
    from steelyard.compression.recipe.result import Verdict
    from steelyard.reporting.compress_view import verdict_text

    # perplexity 293.13 → 293.31: quality dropped ("dropped", 17.57 "points" = 100 × 0.1757), the value rose 0.06%
    v = Verdict("metric", "dropped", 17.57, metric="perplexity", ci_low=7.35, ci_high=27.66, p_value=0.0005,
                test="paired-bootstrap", before=293.13)
    text = verdict_text(v)
    assert text.startswith("perplexity rose 0.06% (") and "points" not in text, text
    assert "95% CI of the change +0.03% to +0.09%" in text, text
    improved = Verdict("metric", "rose", 40.0, metric="perplexity", p_value=0.001, test="paired-bootstrap", before=80.0)
    assert verdict_text(improved).startswith("perplexity fell 0.50% (")
    accuracy = Verdict("metric", "dropped", 2.0, metric="accuracy", ci_low=-3.0, ci_high=-1.0, p_value=0.01,
                       test="mcnemar", before=0.9)
    assert verdict_text(accuracy).startswith("accuracy dropped 2.00 points (")
