"""Statistics in words, one rule everywhere: speedups with intervals, paired changes, noisy latencies.

Each view (compare, runtimes, profile) is checked on hand-made numbers with a known answer: a speedup
whose interval includes 1.0 is "not significantly faster", a noisy latency carries "± noisy", and a
metric change between candidates says its paired test.
"""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
from rich.console import Console

from compare_fakes import fake_comparison, fake_report
from steelyard.profiling.interleaved import MIN_ROUNDS, paired_speedup, speed_outcome
from steelyard.profiling.latency import noise_reasons, summarize
from steelyard.reporting.compare_console import quality_bits, render_comparison, speed_bits
from steelyard.reporting.console import render_cost_report
from steelyard.reporting.runtimes_view import runtime_rows, verdict
from steelyard.reporting.statistics import fmt_p, noise_text, noisy_mark, speedup_text
from steelyard.serialize import to_dict
from steelyard.significance import paired_changes


def text_of(render, *args) -> str:
    console = Console(width=200, record=True, color_system=None, force_terminal=False, file=io.StringIO())
    render(*args, console)
    return console.export_text()


# -- the rules -------------------------------------------------------------------------------------------
def test_a_speedup_is_faster_only_when_its_interval_excludes_one():
    assert speed_outcome(1.5, 1.2, 1.8, 10) == "faster"
    assert speed_outcome(0.7, 0.6, 0.8, 10) == "slower"
    assert speed_outcome(1.04, 0.98, 1.10, 10) == "not significant"
    assert speed_outcome(2.0, 2.0, 2.0, MIN_ROUNDS - 1) == "not significant"  # too few rounds for an interval
    assert speedup_text(1.5, 1.2, 1.8, 10) == "1.50x faster [1.20, 1.80]"
    assert speedup_text(1.04, 0.98, 1.1, 10) == "1.04x [0.98, 1.10], not significantly faster"
    assert speedup_text(0.7, 0.6, 0.8, 10) == "0.70x, slower [0.60, 0.80]"


@pytest.mark.parametrize(("cv", "p90", "median", "reasons"), [
    (0.05, 1.2, 1.0, []),
    (0.11, 1.2, 1.0, ["cv"]),
    (0.05, 1.6, 1.0, ["tail"]),
    (0.30, 2.0, 1.0, ["cv", "tail"]),
    (0.10, 1.5, 1.0, []),  # the thresholds themselves are not noisy
])
def test_noise_is_cv_above_ten_percent_or_p90_above_one_and_a_half_medians(cv, p90, median, reasons):
    assert noise_reasons(cv, p90, median) == reasons


def test_summarize_flags_a_noisy_latency_and_says_why():
    steady = summarize([0.010, 0.0101, 0.0099, 0.010] * 5, batch_size=1, warmup=1, threads=1, timer="perf_counter")
    spiky = summarize([0.010] * 16 + [0.05] * 4, batch_size=1, warmup=1, threads=1, timer="perf_counter")
    assert not steady.noisy and steady.noisy_because == [] and noisy_mark(steady) == ""
    assert spiky.noisy and spiky.noisy_because == ["cv", "tail"] and noisy_mark(spiky) == " ± noisy"
    assert noise_text(spiky).startswith("noisy: CV ") and "p90 " in noise_text(spiky)
    stored = to_dict(spiky)
    assert stored["noisy"] is True and stored["noisy_because"] == ["cv", "tail"]
    old = {k: v for k, v in stored.items() if k not in ("noisy", "noisy_because")}  # a run stored before the flag
    assert noisy_mark(old) == " ± noisy"


def test_p_values_are_short():
    assert [fmt_p(p) for p in (1.0, 0.6234, 0.0312, 0.0004, None)] == ["p=1.00", "p=0.62", "p=0.031", "p<0.001",
                                                                       "p=—"]


# -- compare ---------------------------------------------------------------------------------------------
def timed_comparison(second: list[float], third: list[float]):
    comp = fake_comparison()
    rng = np.random.default_rng(0)
    first = list(0.010 + 0.001 * rng.random(20))
    samples = {"tiny": first, "base": second, "huge": third}
    for c in comp.candidates:
        c.interleaved = summarize(samples[c.label], batch_size=1, warmup=1, threads=1, timer="interleaved")
        s = paired_speedup("tiny", c.label, samples)
        c.speedup_vs_first, c.speedup_ci = s.ratio, (s.ci_low, s.ci_high)
    return comp


def test_compare_states_each_speedup_with_its_interval_and_marks_noise():
    rng = np.random.default_rng(1)
    same = list(0.010 + 0.001 * rng.random(20))  # as fast as the first: the interval straddles 1
    slow_and_noisy = [0.020] * 15 + [0.06] * 5
    comp = timed_comparison(same, slow_and_noisy)
    bits = speed_bits(comp)
    assert bits[0].startswith("base ") and bits[0].endswith("not significantly faster")
    assert bits[1].startswith("huge ") and ", slower [" in bits[1]
    text = text_of(render_comparison, comp)
    assert "not significantly faster" in text and "huge: noisy: CV" in text


def test_compare_tests_quality_against_the_first_candidate_paired():
    comp = fake_comparison()
    y = np.zeros(444, dtype=np.int64)
    first = np.zeros(444, dtype=np.int64)
    second = first.copy()
    second[0] = 1  # one example of 444 flipped
    comp.candidates[1].changes = paired_changes(["accuracy"], y, first, second, n_resamples=200)
    (line,) = quality_bits(comp)
    assert line == "base: accuracy -0.23 pts, n.s. (McNemar p=1.00)"
    assert "quality relative to tiny on the same examples" in text_of(render_comparison, comp)
    again = type(comp).from_dict(comp.to_dict())  # the JSON carries the test and round-trips
    assert again.candidates[1].changes["accuracy"].p_value == 1.0


# -- runtimes -------------------------------------------------------------------------------------------
def runtime_dict(candidate: list[float]) -> dict:
    base = [0.010 + 0.0001 * (i % 5) for i in range(12)]
    samples = {"torch fp32": base, "onnxruntime int8": candidate}
    rows = []
    for label, s in samples.items():
        stats = summarize(s, batch_size=1, warmup=1, threads=1, timer="interleaved")
        rows.append({"label": label, "status": "timed", "stats": to_dict(stats),
                     "speedup": to_dict(paired_speedup("torch fp32", label, samples)), "sqnr_db": 40.0, "note": ""})
    fastest = max(rows, key=lambda r: r["speedup"]["ratio"])["label"]
    return {"rows": rows, "fastest": fastest}


def test_runtimes_say_not_significantly_faster_when_the_interval_includes_one():
    rng = np.random.default_rng(2)
    d = runtime_dict(list(0.0099 + 0.0006 * rng.random(12)))
    assert d["fastest"] == "onnxruntime int8"  # the larger point ratio, by a hair
    assert verdict(d).startswith("no runtime is significantly faster than torch fp32 eager here")
    assert "the interval includes 1.0" in verdict(d)
    rows = runtime_rows(d)
    assert rows[0][3] == "1.00x (baseline)" and rows[1][3].endswith("not significantly faster")


def test_runtimes_word_a_clear_win_with_its_interval():
    d = runtime_dict([0.005 + 0.00005 * (i % 5) for i in range(12)])
    assert verdict(d).startswith("fastest here: onnxruntime int8 — ") and "95% CI" in verdict(d)
    assert runtime_rows(d)[1][3].startswith("2.0") and "faster [" in runtime_rows(d)[1][3]


# -- profile ---------------------------------------------------------------------------------------------
def test_profile_marks_a_noisy_latency_in_its_table():
    report = fake_report("tiny", 10_000_000, 2.0, 40e6, measured_ms=8.0)
    assert "noisy" not in text_of(render_cost_report, report)
    lat = report.measured.latency
    report.measured.latency = dataclasses.replace(lat, cv=0.25, noisy=True, noisy_because=["cv"])
    text = text_of(render_cost_report, report)
    assert "± noisy" in text and "noisy: CV 25% (> 10%)" in text


def test_a_perplexity_change_reads_relative_to_the_value_before_not_in_points():
    from steelyard.reporting.statistics import change_cell
    from steelyard.significance import PairedChange

    ppl = PairedChange("perplexity", 40.0, 42.0, 2.0, 1.0, 3.0, 0.001, "paired-bootstrap", 300)
    assert change_cell(ppl).startswith("+5.00% (")  # 2 / 40, never "+200.00 pts"
    acc = PairedChange("accuracy", 0.9, 0.88, -0.02, -0.04, 0.0, 0.2, "mcnemar", 300)
    assert change_cell(acc).startswith("-2.00 pts, n.s.")


def test_the_starting_runtime_lines_say_which_points_each_ranking_placed():
    from steelyard.reporting.runtimes_view import starting_runtime_text
    from steelyard.search.optimize_run import RuntimeRanking, StartingRuntime

    whole = RuntimeRanking("the uncompressed model", "torch", "torch int8-dynamic", 1.4,
                           {"torch int8-dynamic": 1.4, "onnxruntime int8-dynamic": 1.3})
    corner = RuntimeRanking("prune:layers; prune:structured,amount=0.75", "onnxruntime", "onnxruntime int8-dynamic",
                            1.39, {"torch int8-dynamic": 1.3, "onnxruntime int8-dynamic": 1.39})
    first, second = starting_runtime_text(StartingRuntime(whole, corner, 5)).splitlines()
    assert first.startswith("the other starting points served in torch: its int8 ran the uncompressed model fastest")
    assert "torch int8-dynamic 1.40x, onnxruntime int8-dynamic 1.30x" in first and "5 interleaved rounds" in first
    assert second.startswith("the corners served in onnxruntime: its int8 ran the corner's structure "
                             "(prune:layers; prune:structured,amount=0.75, untrained) fastest")
    alone = starting_runtime_text(StartingRuntime(whole, None, 5))
    assert alone.startswith("starting points served in torch") and "\n" not in alone
