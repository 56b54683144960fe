"""The A/B timer: candidates timed in interleaved rounds, raw samples kept, speedups with intervals.

DESIGN.md: compare A and B interleaved in one process (A B A B …) and report the ratio, with an
interval from the interleaved rounds. Every candidate is warmed up, then each round times every
candidate once, in the same order, with a fixed thread count and the device's timer (CUDA events
on a GPU). Each candidate's :class:`LatencyStats` keeps its samples, in round order.

The speedup of a candidate is ``median(baseline) / median(candidate)`` (> 1: faster than the
baseline, the first candidate). Its interval is a **percentile bootstrap over paired rounds**:
whole rounds are resampled with replacement, so a resample keeps each baseline time next to the
candidate time measured moments later (drift that slowed a round slowed both), and the ratio of
medians is recomputed on each resample. The seed is fixed, so the interval is reproducible.

A speedup is *significant* only when its interval excludes 1.0 (:func:`speed_outcome`): a 1.03x
whose interval is [0.97, 1.09] is "not significantly faster", whatever its point value says.
Fewer than :data:`MIN_ROUNDS` rounds give no interval worth a verdict.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from steelyard.profiling.latency import compare_interleaved, fixed_threads, speedup, summarize, timer_for
from steelyard.profiling.report import LatencyStats

#: Resamples of the bootstrap over rounds (enough for a stable 95% percentile interval).
N_RESAMPLES = 2000
#: Fewer paired rounds than this cannot tell a speedup from noise (the interval of 1 round has zero width).
MIN_ROUNDS = 3


def speed_outcome(ratio: float, ci_low: float, ci_high: float, rounds: int) -> str:
    """``"faster"`` / ``"slower"`` when the interval excludes 1.0, else ``"not significant"``.

    The one rule every speedup verdict follows (compress, compare, runtimes, optimize).
    """
    if rounds < MIN_ROUNDS or not all(map(math.isfinite, (ratio, ci_low, ci_high))):
        return "not significant"
    if ci_low > 1.0:
        return "faster"
    if ci_high < 1.0:
        return "slower"
    return "not significant"


@dataclass(frozen=True)
class Speedup:
    """How much faster ``candidate`` ran than ``baseline``, with the bootstrap interval over rounds."""

    baseline: str
    candidate: str
    ratio: float
    ci_low: float
    ci_high: float
    confidence: float
    rounds: int
    #: ``"faster"``, ``"slower"`` or ``"not significant"``, always :func:`speed_outcome` of the numbers
    #: above (a field, so the JSON carries it).
    outcome: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "outcome", speed_outcome(self.ratio, self.ci_low, self.ci_high, self.rounds))

    @property
    def significant(self) -> bool:
        return self.outcome != "not significant"


@dataclass(frozen=True)
class InterleavedTiming:
    """Per-candidate latency (samples kept) and each candidate's speedup over the first."""

    stats: dict[str, LatencyStats]
    speedups: dict[str, Speedup]
    baseline: str


def speedup_interval(
    baseline: Sequence[float],
    candidate: Sequence[float],
    *,
    confidence: float = 0.95,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``median(baseline) / median(candidate)`` over paired rounds.

    ``baseline[i]`` and ``candidate[i]`` come from round ``i``; resampling keeps them together.
    One round gives a zero-width interval (there is nothing to resample).
    """
    b = np.asarray(baseline, dtype=float)
    c = np.asarray(candidate, dtype=float)
    if b.shape != c.shape or b.ndim != 1 or not len(b):
        raise ValueError(f"paired rounds needed: got {b.shape} baseline and {c.shape} candidate samples")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if len(b) == 1:
        ratio = float(b[0] / c[0])
        return ratio, ratio
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(b), size=(n_resamples, len(b)))
    ratios = np.median(b[idx], axis=1) / np.median(c[idx], axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(ratios, [tail, 100 - tail])
    return float(low), float(high)


def paired_speedup(baseline: str, candidate: str, samples: Mapping[str, Sequence[float]], *,
                   confidence: float = 0.95, n_resamples: int = N_RESAMPLES, seed: int = 0) -> Speedup:
    """The :class:`Speedup` of ``candidate`` over ``baseline`` from their interleaved samples."""
    b, c = samples[baseline], samples[candidate]
    low, high = speedup_interval(b, c, confidence=confidence, n_resamples=n_resamples, seed=seed)
    return Speedup(baseline, candidate, speedup(list(b), list(c)), low, high, confidence, len(b))


def time_interleaved(
    candidates: Mapping[str, Callable[[], Any]],
    *,
    device: torch.device | str = "cpu",
    batch_size: int | Mapping[str, int] = 1,
    warmup: int = 3,
    rounds: int = 20,
    threads: int | None = None,
    confidence: float = 0.95,
) -> InterleavedTiming:
    """Time ``candidates`` (the first is the baseline) in interleaved rounds on one device.

    ``batch_size``: rows per call, one number for all or one per candidate (it goes into each
    :class:`LatencyStats`; the timer does not look at inputs).
    """
    if not candidates:
        raise ValueError("nothing to time: no candidates")
    device = torch.device(device)
    with fixed_threads(threads) as used:
        samples = compare_interleaved(candidates, device=device, warmup=warmup, rounds=rounds, threads=used)
    timer = "interleaved " + timer_for(device)[0]
    sizes = batch_size if isinstance(batch_size, Mapping) else dict.fromkeys(candidates, batch_size)
    stats = {name: summarize(s, batch_size=sizes[name], warmup=warmup, threads=used, timer=timer)
             for name, s in samples.items()}
    baseline = next(iter(candidates))
    speedups = {name: paired_speedup(baseline, name, samples, confidence=confidence) for name in candidates}
    return InterleavedTiming(stats, speedups, baseline)
