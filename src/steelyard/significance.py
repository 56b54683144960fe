"""Is a change between two models on the same examples real? Paired tests, so a verdict can say.

Two models scored on the very same examples are *paired*: most examples both get right (or both
wrong), and only the examples they disagree on carry information about which is better.
Comparing the two metrics' separate bootstrap intervals ignores that pairing and is far too
conservative; comparing the point values alone calls one flipped example of 444 a change.

- **Accuracy: exact McNemar test.** Of the ``b + c`` discordant examples (``b`` only the first
  model got right, ``c`` only the second), under "no difference" each is equally likely to go
  either way, so ``b ~ Binomial(b + c, 1/2)``. The two-sided exact p-value is
  ``min(1, 2 · P(X ≤ min(b, c)))``, the conditional exact test (what ``scipy.stats.binomtest(b,
  b + c, 0.5)`` gives). One discordant pair gives p = 1: nothing can be concluded from it. The
  mid-p variant (``mid_p=True``: subtract ``P(X = min(b, c))`` once) is less conservative; the
  default is the exact test, so a verdict never claims a change the exact test does not support.
- **Any metric (macro-F1, ROC-AUC, perplexity, accuracy too): paired bootstrap** of the
  difference ``metric(after) − metric(before)``. Each resample draws examples with replacement
  and scores *both* models on the same draw (:func:`steelyard.metrics.resamples` with one seed),
  so the interval is the percentile interval of the paired differences. Its two-sided p-value is
  ``min(1, 2 · min(P*(Δ ≤ 0), P*(Δ ≥ 0)))`` over the resamples (the percentile-bootstrap test:
  p < α exactly when the (1 − α) interval excludes 0, up to resampling granularity).

A change is *significant* when its p-value is below ``1 − confidence`` (0.05 by default). For
accuracy the McNemar p-value decides; the bootstrap interval is reported beside it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from steelyard.errors import ConfigError, DataError
from steelyard.metrics import METRICS, _labels_from, resample_values, resamples, resolve_metric

#: Names of the tests a :class:`PairedChange` can come from.
MCNEMAR_EXACT = "mcnemar-exact"
MCNEMAR_MID_P = "mcnemar-mid-p"
PAIRED_BOOTSTRAP = "paired-bootstrap"


@dataclass(frozen=True)
class McNemar:
    """The discordant counts of two paired classifiers and the McNemar p-value of their difference."""

    #: Examples only the first model classified correctly.
    only_first: int
    #: Examples only the second model classified correctly.
    only_second: int
    p_value: float
    method: str = MCNEMAR_EXACT

    @property
    def discordant(self) -> int:
        return self.only_first + self.only_second


@dataclass(frozen=True)
class PairedChange:
    """One metric of a second model against a first on the same ``n`` examples, with a paired test.

    ``delta = after − before`` in the metric's own units (accuracy 0.0023 = 0.23 points).
    ``ci_low`` / ``ci_high`` bound ``delta`` (paired bootstrap); ``p_value`` is that of ``test``.
    """

    metric: str
    before: float
    after: float
    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    test: str
    n: int
    confidence: float = 0.95
    #: McNemar only: examples only the first (before) / only the second (after) model got right.
    only_before: int | None = None
    only_after: int | None = None

    @property
    def alpha(self) -> float:
        return 1.0 - self.confidence

    @property
    def significant(self) -> bool:
        """Whether the test rejects "no difference" at ``1 − confidence``."""
        return bool(math.isfinite(self.p_value) and self.p_value < self.alpha)

    @property
    def higher_is_better(self) -> bool:
        return METRICS[self.metric].higher_is_better if self.metric in METRICS else True

    @property
    def outcome(self) -> str:
        """``"unchanged"`` (identical on every resample), ``"not significant"``, ``"improved"`` or ``"worse"``."""
        if self.delta == 0 and self.ci_low == 0 == self.ci_high:
            return "unchanged"
        if not self.significant:
            return "not significant"
        better = self.delta > 0 if self.higher_is_better else self.delta < 0
        return "improved" if better else "worse"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "significant": self.significant}


# -- McNemar ---------------------------------------------------------------------------------------


def _log_pmf_half(k: int, n: int) -> float:
    """log P(X = k) for X ~ Binomial(n, 1/2)."""
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) - n * math.log(2.0)


def binomial_tail_half(k: int, n: int) -> float:
    """P(X ≤ k) for X ~ Binomial(n, 1/2): exact (integer) up to 5,000 trials, log-space sums beyond."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    if n <= 5000:
        return sum(math.comb(n, i) for i in range(k + 1)) / 2**n  # int / int: correctly rounded
    logs = np.array([_log_pmf_half(i, n) for i in range(k + 1)])
    top = logs.max()
    return float(min(1.0, math.exp(top) * np.exp(logs - top).sum()))


def mcnemar_p(only_first: int, only_second: int, *, mid_p: bool = False) -> float:
    """Two-sided McNemar p-value from the discordant counts: ``min(1, 2·P(X ≤ k))``, ``k = min(b, c)``,
    ``X ~ Binomial(b + c, 1/2)``; the mid-p variant subtracts ``P(X = k)`` (half of it on each side)."""
    if only_first < 0 or only_second < 0:
        raise ValueError(f"discordant counts must be >= 0, got {only_first} and {only_second}")
    n = only_first + only_second
    if n == 0:
        return 1.0
    k = min(only_first, only_second)
    two_sided = 2.0 * binomial_tail_half(k, n)
    if mid_p:
        two_sided -= math.exp(_log_pmf_half(k, n))
    return float(min(1.0, two_sided))


def mcnemar(correct_first: Any, correct_second: Any, *, mid_p: bool = False) -> McNemar:
    """McNemar's test on two boolean vectors of "this example was classified correctly"."""
    a = np.asarray(correct_first, dtype=bool)
    b = np.asarray(correct_second, dtype=bool)
    if a.shape != b.shape or a.ndim != 1:
        raise DataError(f"paired predictions needed: got {a.shape} and {b.shape} correctness vectors")
    only_first, only_second = int((a & ~b).sum()), int((~a & b).sum())
    return McNemar(only_first, only_second, mcnemar_p(only_first, only_second, mid_p=mid_p),
                   MCNEMAR_MID_P if mid_p else MCNEMAR_EXACT)


# -- paired bootstrap ------------------------------------------------------------------------------


def paired_bootstrap(
    metric_fn: Callable[..., float],
    y_true: Any,
    first: Any,
    second: Any,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float, float]:
    """``(ci_low, ci_high, p_value)`` of ``metric(second) − metric(first)``, both scored on the same resamples.

    ``first`` / ``second`` are what ``metric_fn`` reads beside ``y_true`` (labels or probabilities;
    per-block NLLs with ``y_true`` the token counts for perplexity). Resamples where either value is
    undefined are skipped; with fewer than half usable, every number is NaN.
    """
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise ConfigError(f"n_resamples must be >= 1, got {n_resamples}")
    y = None if y_true is None else np.asarray(y_true)
    a, b = np.asarray(first), np.asarray(second)
    n = len(a)
    if len(b) != n or (y is not None and len(y) != n):
        raise DataError(f"paired scores need the same examples: {n} and {len(b)} predictions"
                        + ("" if y is None else f", {len(y)} labels"))
    if n == 0:
        return (math.nan, math.nan, math.nan)
    deltas = np.concatenate([resample_values(metric_fn, y, b, idx) - resample_values(metric_fn, y, a, idx)
                             for idx in resamples(n, n_resamples, seed)])
    ok = deltas[np.isfinite(deltas)]
    if len(ok) < max(1, n_resamples // 2):
        return (math.nan, math.nan, math.nan)
    tail = (1 - confidence) / 2
    low, high = np.percentile(ok, [100 * tail, 100 * (1 - tail)])
    p = min(1.0, 2.0 * min(float(np.mean(ok <= 0)), float(np.mean(ok >= 0))))
    return float(low), float(high), p


# -- one call per pair of scored models -----------------------------------------------------------


def paired_changes(
    names: Sequence[str],
    y_true: Any | None,
    proba_before: Any | None,
    proba_after: Any | None,
    *,
    task: str | None = None,
    nll_before: Any | None = None,
    nll_after: Any | None = None,
    n_tokens: Any | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    mid_p: bool = False,
) -> dict[str, PairedChange]:
    """Each named metric of ``after`` against ``before`` on the same examples, keyed by canonical name.

    The inputs are those of :func:`steelyard.metrics.compute_metrics`, once per model: classification
    reads ``y_true`` with each model's probabilities (or predicted labels); perplexity reads each
    model's per-block NLL sums over the same blocks (``n_tokens`` per block, shared). Accuracy is
    tested with McNemar, every other metric with the paired bootstrap.
    """
    out: dict[str, PairedChange] = {}
    for raw in names:
        name = resolve_metric(raw, task)
        spec = METRICS[name]
        if spec.needs == "nll":
            if nll_before is None or nll_after is None:
                raise DataError(f"a paired {name} needs both models' negative log-likelihoods")
            counts = None if n_tokens is None else np.asarray(n_tokens, dtype=float)
            a, b = np.asarray(nll_before, dtype=float), np.asarray(nll_after, dtype=float)
            y = counts
        else:
            if y_true is None or proba_before is None or proba_after is None:
                raise DataError(f"a paired {name} needs the true labels and both models' predictions")
            y, a, b = np.asarray(y_true).astype(np.int64), np.asarray(proba_before), np.asarray(proba_after)
        try:
            before, after = float(spec.fn(y, a)), float(spec.fn(y, b))
        except ValueError:
            before = after = math.nan
        low, high, p = paired_bootstrap(spec.fn, y, a, b, n_resamples=n_resamples, seed=seed, confidence=confidence)
        only_before = only_after = None
        test = PAIRED_BOOTSTRAP
        if name == "accuracy":
            mc = mcnemar(_labels_from(a) == y, _labels_from(b) == y, mid_p=mid_p)
            p, test, only_before, only_after = mc.p_value, mc.method, mc.only_first, mc.only_second
        out[name] = PairedChange(name, before, after, after - before, low, high, p, test, len(a), confidence,
                                 only_before, only_after)
    return out
