"""Task metrics with bootstrap confidence intervals, so "A beats B" can be told from noise.

Point estimates come from scikit-learn. Intervals are percentile bootstraps over examples. A
bootstrap calls the metric a thousand times, and scikit-learn's input validation makes that take
seconds per metric, so accuracy, macro-F1, ROC-AUC and perplexity also have vectorised versions
that compute the very same numbers over all resamples at once (the tests check them against
scikit-learn on every resample); any other metric function takes the plain loop.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from steelyard.errors import ConfigError, DataError

Array = Any  # array-like: list, numpy array or tensor converted by np.asarray

CLASSIFICATION_TASKS: frozenset[str] = frozenset(
    {"text-classification", "image-classification", "feature-extraction"}
)
LM_TASKS: frozenset[str] = frozenset({"causal-lm"})


@dataclass(frozen=True)
class MetricValue:
    """A metric's value on ``n`` examples with its bootstrap confidence interval."""

    name: str
    value: float
    ci_low: float
    ci_high: float
    n: int
    confidence: float = 0.95
    #: What ``n`` counts when it is not examples (perplexity: "documents" or "blocks", the resampled units).
    unit: str | None = None

    @property
    def higher_is_better(self) -> bool:
        return METRICS[self.name].higher_is_better if self.name in METRICS else True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- point estimates (scikit-learn) -------------------------------------------------------------


def _labels_from(pred_or_proba: Array) -> np.ndarray:
    """Predicted labels: argmax of a 2-D probability/score matrix, a 0.5 threshold on 1-D
    positive-class probabilities, or the labels themselves when already integers."""
    arr = np.asarray(pred_or_proba)
    if arr.ndim == 2:
        return arr.argmax(axis=1)
    if arr.ndim != 1:
        raise DataError(f"predictions must be 1-D labels or a 2-D (examples, classes) matrix, got shape {arr.shape}")
    if np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.bool_):
        return arr.astype(np.int64)
    if arr.size and np.all((arr >= 0) & (arr <= 1)) and not np.all(arr == np.round(arr)):
        return (arr >= 0.5).astype(np.int64)
    return np.rint(arr).astype(np.int64)


def accuracy(y_true: Array, y_pred_or_proba: Array) -> float:
    """Fraction of examples whose predicted class is the true class."""
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(np.asarray(y_true), _labels_from(y_pred_or_proba)))


def macro_f1(y_true: Array, y_pred_or_proba: Array) -> float:
    """Unweighted mean of per-class F1 over the classes seen in the labels or the predictions.

    Macro averaging weighs a rare class as much as a common one, which accuracy hides.
    """
    from sklearn.metrics import f1_score

    return float(f1_score(np.asarray(y_true), _labels_from(y_pred_or_proba), average="macro", zero_division=0))


def _score_columns(y: np.ndarray, proba: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(is_positive, score) pairs for ROC-AUC: one for binary data, one per present class otherwise."""
    if proba.ndim == 1:
        # Binary scores for the positive class, which is the larger label (scikit-learn's rule).
        return [(y == (y.max() if y.size else 1), proba)]
    if proba.ndim != 2:
        raise DataError(f"ROC-AUC needs probabilities of shape (examples, classes), got {proba.shape}")
    k = proba.shape[1]
    if y.size and (y.min() < 0 or y.max() >= k):
        raise DataError(f"labels range over {int(y.min())}..{int(y.max())} but the scores have {k} classes")
    if k == 2:
        return [(y == 1, proba[:, 1])]
    return [(y == c, proba[:, c]) for c in np.unique(y)]


def roc_auc(y_true: Array, proba: Array) -> float:
    """ROC-AUC from scores: binary, or one-vs-rest macro average over the classes in ``y_true``.

    For multi-class data each present class is scored against the rest by its own column, which
    equals scikit-learn's ``multi_class="ovr"`` average when every class is present, without its
    requirement that rows sum to 1 (logits work too, AUC only ranks).
    """
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y_true).astype(np.int64)
    p = np.asarray(proba, dtype=float)
    columns = _score_columns(y, p)
    if len(np.unique(y)) < 2:
        raise ValueError("ROC-AUC is undefined when y_true has a single class")
    return float(np.mean([roc_auc_score(pos, score) for pos, score in columns]))


roc_auc.requires_all_classes = True  # type: ignore[attr-defined]


def perplexity(n_tokens: Array | None, nll: Array) -> float:
    """exp of the mean negative log-likelihood per token (natural log).

    ``nll`` holds per-token NLLs (``n_tokens`` None) or per-sequence sums with ``n_tokens`` the
    token count of each sequence, so the mean weighs every token equally.
    """
    values = np.asarray(nll, dtype=float)
    if n_tokens is None:
        return float(math.exp(values.mean()))
    counts = np.asarray(n_tokens, dtype=float)
    return float(math.exp(values.sum() / counts.sum()))


# --- vectorised bootstrap versions ----------------------------------------------------------------


def _weights(idx: np.ndarray, n: int) -> np.ndarray:
    """(resamples, n) counts of how often each example is drawn in each resample."""
    r = idx.shape[0]
    return np.bincount((idx + n * np.arange(r)[:, None]).ravel(), minlength=r * n).reshape(r, n).astype(float)


def _accuracy_batch(y: np.ndarray, p: np.ndarray, idx: np.ndarray) -> np.ndarray:
    correct = (y == _labels_from(p)).astype(float)
    return correct[idx].mean(axis=1)


def _f1_batch(y: np.ndarray, p: np.ndarray, idx: np.ndarray) -> np.ndarray:
    pred = _labels_from(p)
    classes, codes = np.unique(np.concatenate([y, pred]), return_inverse=True)
    k = len(classes)
    yt, yp = codes[: len(y)], codes[len(y) :]
    r = idx.shape[0]
    flat = (yt * k + yp)[idx] + (k * k) * np.arange(r)[:, None]
    cm = np.bincount(flat.ravel(), minlength=r * k * k).reshape(r, k, k).astype(float)
    tp = np.diagonal(cm, axis1=1, axis2=2)
    true_n = cm.sum(axis=2)
    pred_n = cm.sum(axis=1)
    denom = true_n + pred_n
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    present = denom > 0
    return (f1 * present).sum(axis=1) / present.sum(axis=1)


def _auc_batch(y: np.ndarray, p: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Weighted Mann-Whitney AUC (ties count one half), which is what the ROC area equals."""
    y = y.astype(np.int64)
    w = _weights(idx, len(y))
    per_class = []
    for pos, score in _score_columns(y, np.asarray(p, dtype=float)):
        order = np.argsort(score, kind="mergesort")
        s = score[order]
        starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
        ws = w[:, order]
        pos_sorted = pos[order]
        gp = np.add.reduceat(ws * pos_sorted, starts, axis=1)
        gn = np.add.reduceat(ws * ~pos_sorted, starts, axis=1)
        below = np.cumsum(gn, axis=1) - gn
        num = (gp * (below + 0.5 * gn)).sum(axis=1)
        total = gp.sum(axis=1) * gn.sum(axis=1)
        per_class.append(np.divide(num, total, out=np.full(len(num), np.nan), where=total > 0))
    # A resample missing any class of the full sample gets NaN and is skipped.
    return np.mean(per_class, axis=0)


def _perplexity_batch(n_tokens: np.ndarray, nll: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return np.exp(nll.astype(float)[idx].sum(axis=1) / n_tokens.astype(float)[idx].sum(axis=1))


_BATCH: dict[Callable[..., float], Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    accuracy: _accuracy_batch,
    macro_f1: _f1_batch,
    roc_auc: _auc_batch,
    perplexity: _perplexity_batch,
}


# --- bootstrap ---------------------------------------------------------------------------------


def resamples(n: int, n_resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Index matrices of resamples with replacement, in chunks that keep memory bounded.

    The same ``seed`` gives the same resamples, which is what a paired bootstrap
    (:mod:`steelyard.significance`) relies on: both models are scored on the very same draws.
    """
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_resamples, 2_000_000 // max(n, 1)))
    done = 0
    while done < n_resamples:
        size = min(chunk, n_resamples - done)
        yield rng.integers(0, n, size=(size, n))
        done += size


def bootstrap_ci(
    metric_fn: Callable[[Any, Any], float],
    y_true: Array,
    y_pred_or_proba: Array,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``metric_fn(y_true, y_pred_or_proba)`` over examples.

    Examples are drawn with replacement ``n_resamples`` times from a generator seeded by ``seed``.
    Resamples where the metric is undefined are skipped: it raised ValueError, returned NaN, or
    (for metrics marked ``requires_all_classes``, such as ROC-AUC) a class of ``y_true`` is
    missing. When fewer than half the resamples are usable the interval is (nan, nan), because
    what is left would be biased.
    """
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise ConfigError(f"n_resamples must be >= 1, got {n_resamples}")
    y = np.asarray(y_true) if y_true is not None else None
    p = np.asarray(y_pred_or_proba)
    n = len(p)
    if n == 0:
        return (math.nan, math.nan)
    if y is not None and len(y) != n:
        raise DataError(f"{len(y)} labels but {n} predictions")
    all_values = np.concatenate([resample_values(metric_fn, y, p, idx) for idx in resamples(n, n_resamples, seed)])
    ok = all_values[np.isfinite(all_values)]
    if len(ok) < max(1, n_resamples // 2):
        return (math.nan, math.nan)
    alpha = (1 - confidence) / 2
    low, high = np.percentile(ok, [100 * alpha, 100 * (1 - alpha)])
    return (float(low), float(high))


def resample_values(metric_fn: Callable[..., float], y: np.ndarray | None, p: np.ndarray,
                    idx: np.ndarray) -> np.ndarray:
    """``metric_fn`` on each row of resample indices ``idx`` (NaN where undefined on that resample).

    The vectorised version when the metric has one, else the plain loop; ``y`` None with
    :func:`perplexity` means per-token NLLs (every count 1).
    """
    fast = _BATCH.get(metric_fn)
    if fast is not None:
        y_arg = np.ones(len(p)) if (y is None and metric_fn is perplexity) else y
        return fast(y_arg, p, idx)  # type: ignore[arg-type]
    return np.array([_call(metric_fn, y, p, row) for row in idx], dtype=float)


def _call(fn: Callable[[Any, Any], float], y: np.ndarray | None, p: np.ndarray, row: np.ndarray) -> float:
    y_r = y[row] if y is not None else None
    if getattr(fn, "requires_all_classes", False) and y is not None and len(np.unique(y_r)) < len(np.unique(y)):
        return math.nan
    try:
        return float(fn(y_r, p[row]))
    except ValueError:
        return math.nan


# --- registry ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricSpec:
    """A registered metric: where it applies, which way is better, and its valid range."""

    name: str
    fn: Callable[..., float]
    tasks: frozenset[str]
    higher_is_better: bool
    needs: str  # "labels" (predictions or probabilities), "proba" (scores), or "nll"
    low: float
    high: float
    description: str
    aliases: tuple[str, ...] = ()


METRICS: dict[str, MetricSpec] = {
    "accuracy": MetricSpec(
        "accuracy", accuracy, CLASSIFICATION_TASKS, True, "labels", 0.0, 1.0,
        "fraction of correct predictions", ("acc",),
    ),
    "macro_f1": MetricSpec(
        "macro_f1", macro_f1, CLASSIFICATION_TASKS, True, "labels", 0.0, 1.0,
        "unweighted mean of per-class F1", ("f1", "macro-f1", "f1_macro"),
    ),
    "roc_auc": MetricSpec(
        "roc_auc", roc_auc, CLASSIFICATION_TASKS, True, "proba", 0.0, 1.0,
        "ROC-AUC, one-vs-rest macro average for multi-class", ("auc", "roc-auc", "auroc"),
    ),
    "perplexity": MetricSpec(
        "perplexity", perplexity, LM_TASKS, False, "nll", 1.0, math.inf,
        "exp of the mean token negative log-likelihood", ("ppl",),
    ),
}

_ALIASES: dict[str, str] = {alias: spec.name for spec in METRICS.values() for alias in (spec.name, *spec.aliases)}


def metric_names(task: str | None = None) -> list[str]:
    """Canonical metric names, those applicable to ``task`` when given."""
    return [name for name, spec in METRICS.items() if task is None or task in spec.tasks]


def resolve_metric(name: str, task: str | None = None) -> str:
    """The canonical name of a metric or alias (``f1`` -> ``macro_f1``), checked against the task."""
    key = name.strip().lower().replace(" ", "_")
    canonical = _ALIASES.get(key) or _ALIASES.get(key.replace("-", "_"))
    valid = metric_names(task)
    if canonical is None:
        scope = f" for task {task!r}" if task else ""
        raise ConfigError(f"unknown metric {name!r}; valid metrics{scope}: {', '.join(valid)}")
    if task is not None and task not in METRICS[canonical].tasks:
        raise ConfigError(f"task {task!r} has no metric {name!r}; valid metrics: {', '.join(valid)}")
    return canonical


def parse_target(spec: str, task: str) -> tuple[str, float]:
    """Parse ``"accuracy=0.95"`` (or ``accuracy=95%``) into ``("accuracy", 0.95)`` for ``task``.

    Raises ConfigError naming the valid metrics when the task has no such metric, and when the
    value is outside the metric's range.
    """
    name, sep, raw = str(spec).partition("=")
    if not sep or not name.strip() or not raw.strip():
        raise ConfigError(f"target {spec!r} must look like METRIC=VALUE, for example accuracy=0.95")
    canonical = resolve_metric(name.rstrip(">< "), task)
    text = raw.strip()
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError as exc:
        raise ConfigError(f"target {spec!r}: {text!r} is not a number") from exc
    m = METRICS[canonical]
    if not (m.low <= value <= m.high) or math.isnan(value):
        raise ConfigError(f"target {spec!r}: {canonical} must be between {m.low:g} and {m.high:g}")
    return canonical, value


def reached(name: str, value: float, target: float) -> bool:
    """Whether ``value`` meets ``target`` for this metric (>= when higher is better, else <=)."""
    spec = METRICS[resolve_metric(name)]
    return value >= target if spec.higher_is_better else value <= target


def compute_metrics(
    names: Sequence[str],
    y_true: Array | None,
    proba: Array | None,
    *,
    task: str | None = None,
    nll: Array | None = None,
    n_tokens: Array | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    unit: str | None = None,
) -> dict[str, MetricValue]:
    """Each named metric with its bootstrap CI, keyed by canonical name.

    Classification metrics read ``y_true`` (label ids) and ``proba`` (an (examples, classes)
    matrix of probabilities or scores; accuracy and F1 also take predicted labels). Perplexity
    reads ``nll``: per-token NLLs, or per-unit sums with ``n_tokens`` per unit (``unit`` names what
    a unit is: documents, blocks), and resamples those units.
    """
    out: dict[str, MetricValue] = {}
    for raw_name in names:
        name = resolve_metric(raw_name, task)
        spec = METRICS[name]
        if spec.needs == "nll":
            if nll is None:
                raise DataError(f"{name} needs per-token negative log-likelihoods (nll=...)")
            values = np.asarray(nll, dtype=float)
            counts = None if n_tokens is None else np.asarray(n_tokens, dtype=float)
            if values.size == 0:
                raise DataError(f"cannot compute {name} on an empty evaluation set")
            value = perplexity(counts, values)
            lo, hi = bootstrap_ci(perplexity, counts, values, n_resamples, seed, confidence)
            out[name] = MetricValue(name, value, lo, hi, int(values.size), confidence, unit)
            continue
        if y_true is None or proba is None:
            raise DataError(f"{name} needs true labels and predicted probabilities")
        y = np.asarray(y_true).astype(np.int64)
        p = np.asarray(proba)
        if len(y) == 0:
            raise DataError(f"cannot compute {name} on an empty evaluation set")
        if len(y) != len(p):
            raise DataError(f"{len(y)} labels but {len(p)} predictions")
        if p.ndim == 2 and y.size and (y.min() < 0 or y.max() >= p.shape[1]):
            raise DataError(
                f"labels range over {int(y.min())}..{int(y.max())} but the model predicts {p.shape[1]} classes"
            )
        if spec.needs == "proba" and (p.ndim == 1 and np.issubdtype(p.dtype, np.integer)):
            raise DataError(f"{name} needs probabilities or scores, not predicted labels")
        try:
            value = float(spec.fn(y, p))
        except ValueError:
            value = math.nan
        lo, hi = bootstrap_ci(spec.fn, y, p, n_resamples, seed, confidence)
        out[name] = MetricValue(name, value, lo, hi, len(y), confidence)
    return out
