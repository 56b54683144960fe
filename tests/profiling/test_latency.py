"""The latency harness on functions of known duration (not a timed test of steelyard itself)."""

from __future__ import annotations

import time

import psutil
import pytest
import torch

from steelyard.profiling import latency
from steelyard.profiling.latency import PeakMemory, compare_interleaved, measure_latency, speedup, summarize

SLEEP = 0.02


def test_measure_latency_of_a_sleep():
    calls = []

    def fn():
        calls.append(1)
        time.sleep(SLEEP)

    stats = measure_latency(fn, warmup=2, runs=7, batch_size=3)
    assert len(calls) == 2 + 7
    assert stats.runs == 7 and stats.warmup == 2 and stats.batch_size == 3
    # sleep never returns early; allow generous overshoot on a busy CI machine
    assert SLEEP <= stats.median < SLEEP + 0.03
    assert SLEEP <= stats.minimum <= stats.median <= stats.p90 <= stats.p99 <= stats.maximum
    assert stats.cv >= 0
    assert stats.timer == "perf_counter"


def test_min_time_adds_runs():
    stats = measure_latency(lambda: time.sleep(0.005), warmup=0, runs=2, min_time=0.1)
    assert stats.runs >= 0.1 / 0.05  # sleeps of >= 5 ms fill at least 0.1 s: many more than 2 runs


def test_threads_fixed_and_restored():
    before = torch.get_num_threads()
    seen = []
    stats = measure_latency(lambda: seen.append(torch.get_num_threads()), warmup=0, runs=3, threads=1)
    assert stats.threads == 1
    assert seen == [1, 1, 1]
    assert torch.get_num_threads() == before


def test_measure_latency_runs_without_autograd():
    seen = []
    measure_latency(lambda: seen.append(torch.is_inference_mode_enabled()), warmup=0, runs=2)
    assert seen == [True, True]


def test_summarize_closed_form():
    stats = summarize([1.0, 2.0, 3.0, 4.0, 5.0], batch_size=1, warmup=0, threads=1, timer="t")
    assert stats.median == 3.0
    assert stats.mean == 3.0
    assert stats.minimum == 1.0 and stats.maximum == 5.0
    assert stats.std == pytest.approx(2.5**0.5)  # sample standard deviation (ddof=1)
    assert stats.cv == pytest.approx(2.5**0.5 / 3.0)
    assert stats.p90 == pytest.approx(4.6)  # numpy's linear interpolation
    single = summarize([0.5], batch_size=1, warmup=0, threads=1, timer="t")
    assert single.std == 0 and single.cv == 0


def test_compare_interleaved_order_and_counts():
    order = []
    candidates = {"a": lambda: order.append("a"), "b": lambda: order.append("b")}
    samples = compare_interleaved(candidates, warmup=2, rounds=4)
    assert set(samples) == {"a", "b"}
    assert len(samples["a"]) == len(samples["b"]) == 4
    # warm-up of each, then A B A B … so drift hits both alike
    assert order == ["a", "a", "b", "b"] + ["a", "b"] * 4


def test_compare_interleaved_ratio_of_sleeps():
    samples = compare_interleaved(
        {"slow": lambda: time.sleep(0.02), "fast": lambda: time.sleep(0.005)}, warmup=1, rounds=5
    )
    ratio = speedup(samples["slow"], samples["fast"])
    assert 1.5 < ratio < 5  # ~4x in theory; sleep overshoot pulls it towards 1


def test_speedup_is_ratio_of_medians():
    assert speedup([2.0, 2.0, 100.0], [1.0, 1.0, 1.0]) == 2.0
    assert speedup([1.0, 3.0, 2.0], [4.0, 4.0, 4.0]) == 0.5  # < 1: the candidate is slower


def _touch_400mb() -> None:
    big = torch.ones(100_000_000, dtype=torch.float32)  # 400 MB, every page written
    assert big[-1].item() == 1.0
    del big


def test_peak_memory_sees_a_400mb_allocation():
    baseline = psutil.Process().memory_info().rss
    with PeakMemory() as peak:
        _touch_400mb()
    assert peak.kind == "rss"
    assert peak.peak >= baseline + 0.9 * 400e6


def test_peak_memory_sampling_fallback(monkeypatch):
    # Where /proc/self/clear_refs cannot be written, a thread samples RSS every millisecond.
    monkeypatch.setattr(PeakMemory, "_reset_hwm", lambda self: False)
    baseline = psutil.Process().memory_info().rss

    with PeakMemory() as peak:
        big = torch.ones(100_000_000, dtype=torch.float32)
        time.sleep(0.1)  # give the sampler time to see it
        del big
    assert peak._thread is not None
    assert peak.peak >= baseline + 0.9 * 400e6


def test_vm_hwm_reads_proc():
    value = latency._vm_hwm()
    if value is None:
        pytest.skip("no /proc/self/status on this platform")
    assert value >= psutil.Process().memory_info().rss * 0.5


def test_peak_memory_belongs_to_its_block():
    with PeakMemory() as loud:
        _touch_400mb()
    with PeakMemory() as quiet:
        torch.ones(10)
    if quiet._thread is None and not latency._CLEAR_REFS.exists():
        pytest.skip("no way to reset the high-water mark here")
    # the kernel high-water mark was reset on entry: the earlier 400 MB does not leak into this block
    assert quiet.peak < loud.peak - 300e6
