"""Latency, throughput and peak-memory measurement.

Rules (ARCHITECTURE.md): warm up, then time repeated runs; report median, p90, p99, mean and the
coefficient of variation; fix and record the thread count; on CUDA, time with events and
synchronise. To compare A and B, interleave them (A B A B …) in one process and report the
ratio of medians, not two absolute numbers taken at different moments: the A/B timer built on
:func:`compare_interleaved` is :func:`steelyard.profiling.interleaved.time_interleaved`.
Every :class:`LatencyStats` keeps its raw samples, and says when it is too noisy to trust as one
number (:func:`noise_reasons`: CV above 10%, or p90 above 1.5 × the median), so a table can flag it
instead of hiding it.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from steelyard.profiling.report import LatencyStats
from steelyard.units import Bytes, Seconds


@contextmanager
def fixed_threads(threads: int | None):
    """Pin torch's intra-op thread count for the duration (None keeps the current count)."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def timer_for(device: torch.device) -> tuple[str, Callable[[Callable[[], Any]], float]]:
    if device.type == "cuda":

        def time_cuda(fn: Callable[[], Any]) -> float:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize(device)
            return start.elapsed_time(end) / 1e3

        return "cuda-events", time_cuda

    def time_cpu(fn: Callable[[], Any]) -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    return "perf_counter", time_cpu


#: A latency whose coefficient of variation (std / mean) exceeds this is noisy.
NOISY_CV = 0.10
#: A latency whose p90 exceeds this multiple of its median is noisy (a slow tail the median hides).
NOISY_TAIL = 1.5


def noise_reasons(cv: float, p90: float, median: float) -> list[str]:
    """Why a latency is noisy: ``"cv"`` (CV above :data:`NOISY_CV`), ``"tail"`` (p90 above
    :data:`NOISY_TAIL` × the median); empty when it is not. The one definition every view uses."""
    reasons = []
    if cv > NOISY_CV:
        reasons.append("cv")
    if median > 0 and p90 > NOISY_TAIL * median:
        reasons.append("tail")
    return reasons


def summarize(samples: list[float], *, batch_size: int, warmup: int, threads: int, timer: str) -> LatencyStats:
    arr = np.asarray(samples, dtype=float)
    mean = float(arr.mean())
    std = float(arr.std(ddof=1)) if len(arr) > 1 else 0.0
    cv = std / mean if mean else 0.0
    median, p90 = float(np.median(arr)), float(np.percentile(arr, 90))
    because = noise_reasons(cv, p90, median)
    return LatencyStats(
        batch_size=batch_size,
        warmup=warmup,
        runs=len(arr),
        threads=threads,
        timer=timer,
        median=Seconds(median),
        p90=Seconds(p90),
        p99=Seconds(float(np.percentile(arr, 99))),
        mean=Seconds(mean),
        std=Seconds(std),
        cv=cv,
        minimum=Seconds(float(arr.min())),
        maximum=Seconds(float(arr.max())),
        samples=[float(x) for x in arr],
        noisy=bool(because),
        noisy_because=because,
    )


def measure_latency(
    fn: Callable[[], Any],
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 1,
    warmup: int = 3,
    runs: int = 20,
    min_time: float = 0.0,
    threads: int | None = None,
) -> LatencyStats:
    """Time ``fn`` ``runs`` times after ``warmup`` calls (more runs until ``min_time`` seconds)."""
    device = torch.device(device)
    name, time_once = timer_for(device)
    with fixed_threads(threads) as used, torch.inference_mode():
        for _ in range(warmup):
            fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        samples: list[float] = []
        started = time.perf_counter()
        while len(samples) < runs or time.perf_counter() - started < min_time:
            samples.append(time_once(fn))
    return summarize(samples, batch_size=batch_size, warmup=warmup, threads=used, timer=name)


def compare_interleaved(
    candidates: dict[str, Callable[[], Any]],
    *,
    device: torch.device | str = "cpu",
    warmup: int = 3,
    rounds: int = 20,
    threads: int | None = None,
) -> dict[str, list[float]]:
    """Raw seconds of several callables timed in rounds (A B A B …) so drift hits them all alike.

    :func:`steelyard.profiling.interleaved.time_interleaved` turns these into statistics and a
    speedup interval; this is the sampling loop it (and the benchmarks) run on.
    """
    device = torch.device(device)
    _, time_once = timer_for(device)
    samples: dict[str, list[float]] = {k: [] for k in candidates}
    with fixed_threads(threads), torch.inference_mode():
        for fn in candidates.values():
            for _ in range(warmup):
                fn()
        for _ in range(rounds):
            for key, fn in candidates.items():
                samples[key].append(time_once(fn))
    return samples


def speedup(baseline: list[float], candidate: list[float]) -> float:
    """Ratio of medians: > 1 means the candidate is faster."""
    return statistics.median(baseline) / statistics.median(candidate)


# -- peak memory -----------------------------------------------------------------------------
_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


def _vm_hwm() -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class PeakMemory:
    """Peak memory while the block runs: CUDA allocator peak, or process RSS on CPU.

    On Linux the kernel's high-water mark (VmHWM) is reset through /proc/self/clear_refs so
    the peak belongs to this block; elsewhere a sampling thread polls RSS every millisecond.
    """

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.peak = Bytes(0)
        self.kind = "cuda" if self.device.type == "cuda" else "rss"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sampled = 0

    def __enter__(self) -> PeakMemory:
        if self.kind == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            return self
        if self._reset_hwm():
            return self
        import psutil

        process = psutil.Process()

        def sample() -> None:
            while not self._stop.is_set():
                self._sampled = max(self._sampled, process.memory_info().rss)
                time.sleep(0.001)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def _reset_hwm(self) -> bool:
        try:
            _CLEAR_REFS.write_text("5")
        except OSError:
            return False
        return _vm_hwm() is not None

    def __exit__(self, *exc: Any) -> None:
        if self.kind == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = Bytes(torch.cuda.max_memory_allocated(self.device))
        elif self._thread is not None:
            self._stop.set()
            self._thread.join()
            self.peak = Bytes(self._sampled)
        else:
            self.peak = Bytes(_vm_hwm() or 0)
