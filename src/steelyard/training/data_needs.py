"""``data_needs``: how many labelled examples reach a target metric, from a learning curve.

The model is trained on stratified subsets of growing size and scored on the fixed test split.
The error (distance of the metric from its best value: ``1 − accuracy``, ``perplexity − 1``)
is fitted with a power law plus a floor, ``error(n) = a·n^(−b) + c`` (Hestness et al. 2017;
Kaplan et al. 2020), and solved for the target. A target below the fitted floor ``c`` is
reported as not reachable by adding data alone; an answer far beyond the largest measured size
is flagged as a long extrapolation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from steelyard.data.dataset import TaskDataset, stratified_sample
from steelyard.errors import ConfigError, DataError
from steelyard.metrics import METRICS, parse_target
from steelyard.models.handle import ModelHandle
from steelyard.models.loading import LoadConfig
from steelyard.serialize import to_dict
from steelyard.training.config import FinetuneConfig
from steelyard.training.features import FeatureCache, build_cache
from steelyard.training.finetune import finetune, resolve_handle, with_validation
from steelyard.training.setup import prepare

#: An estimate beyond this multiple of the largest measured size is called a long extrapolation.
EXTRAPOLATION_WARNING = 10.0


@dataclass
class CurvePoint:
    size: int
    repeat: int
    value: float
    ci_low: float
    ci_high: float
    seconds: float


@dataclass
class PowerLawFit:
    """``error(n) = a · n^(−b) + c`` fitted by least squares (scipy ``curve_fit``)."""

    a: float
    b: float
    c: float
    rmse: float
    r2: float | None

    def error(self, n: float) -> float:
        return self.a * n ** (-self.b) + self.c


@dataclass
class DataNeeds:
    model: str
    dataset: str
    metric: str
    target: float
    mode: str
    available: int
    points: list[CurvePoint]
    fit: PowerLawFit | None
    needed: int | None
    reachable: bool
    message: str
    seconds: float
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


def to_error(metric: str, value: float) -> float:
    spec = METRICS[metric]
    return spec.high - value if spec.higher_is_better else value - spec.low


def from_error(metric: str, error: float) -> float:
    spec = METRICS[metric]
    return spec.high - error if spec.higher_is_better else spec.low + error


def default_sizes(n_train: int, num_labels: int, points: int) -> list[int]:
    """``points`` sizes spaced geometrically from a few examples per class to all of train."""
    if points < 3:
        raise ConfigError(f"a power law has 3 parameters: use at least 3 sizes, got {points}")
    low = min(n_train, max(2 * max(num_labels, 1), 10))
    sizes = np.unique(np.round(np.geomspace(low, n_train, points)).astype(int))
    return [int(s) for s in sizes]


def fit_power_law(sizes: Sequence[float], errors: Sequence[float]) -> PowerLawFit:
    """Least-squares fit of ``a·n^(−b) + c`` with a, b, c ≥ 0 and c below the smallest error."""
    from scipy.optimize import curve_fit

    n = np.asarray(sizes, dtype=float)
    e = np.asarray(errors, dtype=float)
    if len(np.unique(n)) < 3:
        raise ConfigError("a power-law fit needs at least 3 different training-set sizes")

    def law(x: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
        return a * np.power(x, -b) + c

    floor = max(float(e.min()), 1e-12)
    p0 = (max(float(e.max()) * float(n.min()) ** 0.5, 1e-6), 0.5, floor * 0.5)
    try:
        params, _ = curve_fit(law, n, e, p0=p0, bounds=([0.0, 0.0, 0.0], [np.inf, 5.0, floor]), maxfev=20000)
    except (RuntimeError, ValueError) as exc:
        raise DataError(f"the learning curve could not be fitted with a power law: {exc}") from exc
    a, b, c = (float(x) for x in params)
    residual = e - law(n, a, b, c)
    total = float(((e - e.mean()) ** 2).sum())
    r2 = 1 - float((residual**2).sum()) / total if total > 0 else None
    return PowerLawFit(a, b, c, float(np.sqrt((residual**2).mean())), r2)


def solve(fit: PowerLawFit, target_error: float) -> int | None:
    """Smallest n with fitted error ≤ target, None when the floor c is at or above the target."""
    if target_error <= fit.c or fit.a <= 0 or fit.b <= 0:
        return None
    return math.ceil((fit.a / (target_error - fit.c)) ** (1.0 / fit.b))


def data_needs(
    model: ModelHandle | str,
    dataset: TaskDataset,
    target: str,
    config: FinetuneConfig | None = None,
    *,
    sizes: Sequence[int] | None = None,
    points: int = 5,
    repeats: int = 1,
    load: LoadConfig | None = None,
) -> DataNeeds:
    """Learning curve of ``model`` on ``dataset`` and the labelled examples needed for ``target``.

    ``config`` controls each training run; by default ``freeze_encoder=True`` (a head on frozen
    embeddings: the frozen encoder runs once, so the whole curve costs little more than one
    run). Pass ``freeze_encoder=False`` to fine-tune end to end at every size.
    """
    start = time.perf_counter()
    metric, target_value = parse_target(target, dataset.task)
    cfg = replace(config or FinetuneConfig(freeze_encoder=True), target=None, metric=metric, progress=False)
    if repeats < 1:
        raise ConfigError(f"repeats must be at least 1, got {repeats}")
    handle = resolve_handle(model, load)
    ds, notes = with_validation(dataset, cfg.seed)
    if not ds.test:
        raise DataError(f"{ds.name!r} has no test split to measure the learning curve on")
    n_train = len(ds.train)
    chosen = sorted({int(s) for s in sizes}) if sizes else default_sizes(n_train, ds.num_labels, points)
    if any(s < 1 for s in chosen):
        raise ConfigError("training-set sizes must be positive")
    too_big = [s for s in chosen if s > n_train]
    if too_big:
        raise ConfigError(f"size {too_big[0]} is larger than the {n_train} training examples available")
    cache: FeatureCache | None = None
    prep = prepare(handle, ds, cfg)
    if prep.mode == "head-only" and cfg.nproc == 1:
        from steelyard.training.dist import DistContext

        assert prep.encoder is not None
        splits = {"train": ds.train, "validation": ds.validation, "test": ds.test}
        cache = build_cache(prep.encoder, prep.adapter, splits, cfg.eval_batch_size, DistContext())
        notes.append(f"embeddings computed once in {cache.seconds:.1f} s; each point's time includes that pass")
    labels = [ex.label for ex in ds.train]
    curve: list[CurvePoint] = []
    for size in chosen:
        for rep in range(repeats):
            idx = stratified_sample(labels, size, seed=cfg.seed + rep)
            sub = ds.with_splits(train=[ds.train[i] for i in idx])
            run_cfg = replace(cfg, seed=cfg.seed + rep)
            result = finetune(handle, sub, run_cfg, cache=cache.with_train(idx) if cache is not None else None)
            result.trained = None
            value = result.test[metric]
            curve.append(CurvePoint(size, rep, value.value, value.ci_low, value.ci_high, result.seconds))
    target_error = to_error(metric, target_value)
    fit = fit_power_law([p.size for p in curve], [to_error(metric, p.value) for p in curve])
    needed = solve(fit, target_error)
    floor = from_error(metric, fit.c)
    if needed is None:
        message = (f"{metric} {target_value:g} is not reachable by adding data alone: the fitted curve levels off "
                   f"at {metric} ≈ {floor:.4f}")
    else:
        message = f"about {needed:,} labelled training examples reach {metric} {target_value:g}"
        if needed > EXTRAPOLATION_WARNING * max(chosen):
            message += f" (extrapolated {needed / max(chosen):.0f}× beyond the largest size measured: low confidence)"
        elif needed <= max(chosen):
            message += f" (within the measured range; {n_train:,} are available)"
    return DataNeeds(
        model=handle.name, dataset=ds.name, metric=metric, target=target_value, mode=prep.mode,
        available=n_train, points=curve, fit=fit, needed=needed, reachable=needed is not None,
        message=message, seconds=time.perf_counter() - start, notes=notes,
    )
