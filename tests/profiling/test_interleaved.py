"""The interleaved A/B timer: raw samples kept, speedup over the first, bootstrap interval over rounds."""

from __future__ import annotations

import numpy as np
import pytest

from steelyard.profiling.interleaved import paired_speedup, speedup_interval, time_interleaved


def test_constant_ratio_gives_a_zero_width_interval():
    base = [2.0, 4.0, 3.0, 5.0, 2.5]
    fast = [b / 2 for b in base]  # exactly twice as fast in every round, whatever the drift
    assert speedup_interval(base, fast) == pytest.approx((2.0, 2.0))


def test_pairing_cancels_drift_that_would_blur_unpaired_samples():
    drift = np.linspace(1.0, 3.0, 40)  # the machine slows down threefold over the run
    rng = np.random.default_rng(1)
    base = drift * (1 + 0.01 * rng.standard_normal(40))
    cand = drift / 1.5 * (1 + 0.01 * rng.standard_normal(40))
    low, high = speedup_interval(base, cand)
    assert low < 1.5 < high
    assert high - low < 0.2  # the drift moves both medians together


def test_interval_covers_the_ratio_of_medians_and_is_reproducible():
    rng = np.random.default_rng(7)
    base = 1.0 + 0.3 * rng.random(30)
    cand = 0.8 + 0.3 * rng.random(30)
    s = paired_speedup("a", "b", {"a": list(base), "b": list(cand)})
    assert s.ratio == pytest.approx(np.median(base) / np.median(cand))
    assert s.ci_low < s.ratio < s.ci_high and s.rounds == 30 and s.confidence == 0.95
    assert speedup_interval(base, cand) == speedup_interval(base, cand)  # fixed seed
    wide = speedup_interval(base, cand, confidence=0.99)
    assert wide[0] <= s.ci_low and wide[1] >= s.ci_high


def test_single_round_and_bad_input():
    assert speedup_interval([3.0], [1.0]) == (3.0, 3.0)
    with pytest.raises(ValueError, match="paired"):
        speedup_interval([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="confidence"):
        speedup_interval([1.0], [1.0], confidence=1.0)


def test_timer_smoke_keeps_samples_and_speedups_over_the_first():
    calls: list[str] = []
    timing = time_interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                              warmup=1, rounds=5, threads=1, batch_size={"a": 2, "b": 4})
    assert calls == ["a", "b"] + ["a", "b"] * 5
    assert timing.baseline == "a"
    assert [len(timing.stats[k].samples) for k in "ab"] == [5, 5]
    assert timing.stats["a"].batch_size == 2 and timing.stats["b"].batch_size == 4
    assert timing.stats["a"].threads == 1 and timing.stats["a"].timer == "interleaved perf_counter"
    assert timing.speedups["a"].ratio == 1.0
    b = timing.speedups["b"]
    assert b.ratio == pytest.approx(float(timing.stats["a"].median) / float(timing.stats["b"].median))
    assert 0 < b.ci_low <= b.ci_high
