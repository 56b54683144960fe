"""Calibration observers: watch activations on sample batches and propose a range [lo, hi].

* ``minmax``: the smallest and largest value ever seen. Exact coverage, but one outlier
  stretches the scale for every other value.
* ``percentile``: per batch, the ``p``-th and ``(100 - p)``-th percentiles (on at most
  ``MAX_SAMPLES`` values drawn evenly), averaged over batches. Clips rare outliers to keep a
  finer step for the bulk of the values.
"""

from __future__ import annotations

import torch

from steelyard.compression.quantization.formulas import QuantParams, range_params

MAX_SAMPLES = 1 << 20


class MinMaxObserver:
    def __init__(self) -> None:
        self.lo = float("inf")
        self.hi = float("-inf")
        self.batches = 0

    def observe(self, x: torch.Tensor) -> None:
        x = x.detach().float()
        self.lo = min(self.lo, float(x.min()))
        self.hi = max(self.hi, float(x.max()))
        self.batches += 1

    def range(self) -> tuple[float, float]:
        if not self.batches:
            raise RuntimeError("observer saw no data")
        return self.lo, self.hi

    def params(self, bits: int = 8, scheme: str = "affine", signed: bool = False) -> QuantParams:
        lo, hi = self.range()
        return range_params(lo, hi, bits, scheme, signed)  # type: ignore[arg-type]


class PercentileObserver(MinMaxObserver):
    def __init__(self, percentile: float = 99.99) -> None:
        super().__init__()
        if not 50.0 < percentile <= 100.0:
            raise ValueError(f"percentile must be in (50, 100], got {percentile}")
        self.percentile = percentile
        self._lo_sum = 0.0
        self._hi_sum = 0.0

    def observe(self, x: torch.Tensor) -> None:
        flat = x.detach().float().reshape(-1)
        if flat.numel() > MAX_SAMPLES:
            step = flat.numel() // MAX_SAMPLES + 1
            flat = flat[::step]
        q = torch.quantile(flat, torch.tensor([1 - self.percentile / 100, self.percentile / 100]))
        self._lo_sum += float(q[0])
        self._hi_sum += float(q[1])
        self.batches += 1

    def range(self) -> tuple[float, float]:
        if not self.batches:
            raise RuntimeError("observer saw no data")
        return self._lo_sum / self.batches, self._hi_sum / self.batches


def make_observer(kind: str, percentile: float = 99.99) -> MinMaxObserver:
    if kind == "minmax":
        return MinMaxObserver()
    if kind == "percentile":
        return PercentileObserver(percentile)
    raise ValueError(f"unknown observer '{kind}'; choose minmax or percentile")
