"""Metric values against hand-computed ones, bootstrap intervals, the registry and targets."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from steelyard.data import TASKS
from steelyard.errors import ConfigError, DataError
from steelyard.metrics import (
    _BATCH,
    METRICS,
    MetricValue,
    accuracy,
    bootstrap_ci,
    compute_metrics,
    macro_f1,
    metric_names,
    parse_target,
    perplexity,
    reached,
    resolve_metric,
    roc_auc,
)

# --- point values by hand -----------------------------------------------------------------------


def test_accuracy_three_of_four() -> None:
    assert accuracy([0, 1, 1, 0], [0, 1, 0, 0]) == 0.75
    proba = [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]]
    assert accuracy([0, 1, 1, 0], proba) == 0.75
    assert accuracy([0, 1, 1, 0], [0.1, 0.8, 0.4, 0.3]) == 0.75  # 1-D positive-class probabilities


def test_macro_f1_of_a_small_confusion() -> None:
    y = [0, 0, 1, 1, 2, 2]
    pred = [0, 1, 1, 1, 2, 0]
    # class 0: tp 1, fp 1, fn 1 -> 0.5; class 1: tp 2, fp 1, fn 0 -> 0.8; class 2: tp 1, fn 1 -> 2/3
    assert macro_f1(y, pred) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)


def test_binary_auc_of_a_tiny_ranking() -> None:
    y = [0, 0, 1, 1]
    # positive 0.35 beats 0.1 only; 0.8 beats both -> 3 of 4 pairs
    assert roc_auc(y, [0.1, 0.4, 0.35, 0.8]) == 0.75
    # a tie between a positive and a negative counts one half -> 3.5 / 4
    assert roc_auc(y, [0.1, 0.4, 0.4, 0.8]) == 0.875
    # two-column probabilities use the positive column
    assert roc_auc(y, [[0.9, 0.1], [0.6, 0.4], [0.65, 0.35], [0.2, 0.8]]) == 0.75


def test_multiclass_auc_matches_sklearn_ovr() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 200)
    p = rng.random((200, 4))
    p[np.arange(200), y] += 0.5
    p /= p.sum(axis=1, keepdims=True)
    assert roc_auc(y, p) == pytest.approx(roc_auc_score(y, p, multi_class="ovr"))
    # logits rank the same way, so AUC does not need probabilities
    assert roc_auc(y, np.log(p)) == pytest.approx(roc_auc(y, p))


def test_auc_undefined_with_one_class() -> None:
    with pytest.raises(ValueError, match="single class"):
        roc_auc([1, 1, 1], [0.2, 0.4, 0.9])


def test_perplexity_is_exp_of_mean_nll() -> None:
    nll = [1.0, 2.0, 3.0]
    assert perplexity(None, nll) == pytest.approx(math.exp(2.0))
    # per-sequence sums with token counts weigh tokens, not sequences: (3 + 3) / (1 + 5)
    assert perplexity([1, 5], [3.0, 3.0]) == pytest.approx(math.e)


# --- bootstrap ----------------------------------------------------------------------------------


def _noisy(n: int, acc: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    wrong = rng.random(n) > acc
    pred = np.where(wrong, (y + 1) % 3, y)
    proba = np.full((n, 3), 0.1)
    proba[np.arange(n), pred] = 0.8
    return y, proba


def test_ci_contains_the_estimate_and_narrows_with_more_data() -> None:
    widths = []
    for n in (100, 2000):
        y, proba = _noisy(n, 0.8, seed=n)
        result = compute_metrics(["accuracy", "f1", "auc"], y, proba, task="text-classification", n_resamples=400)
        for value in result.values():
            assert value.ci_low <= value.value <= value.ci_high
            assert value.n == n and value.confidence == 0.95
        widths.append(result["accuracy"].ci_high - result["accuracy"].ci_low)
    assert widths[1] < widths[0] / 2


def test_bootstrap_is_seeded() -> None:
    y, proba = _noisy(150, 0.7, seed=1)
    assert bootstrap_ci(macro_f1, y, proba, 200, seed=3) == bootstrap_ci(macro_f1, y, proba, 200, seed=3)
    assert bootstrap_ci(macro_f1, y, proba, 200, seed=3) != bootstrap_ci(macro_f1, y, proba, 200, seed=4)


@pytest.mark.parametrize("fn", [accuracy, macro_f1, roc_auc])
def test_vectorised_bootstrap_equals_the_plain_loop(fn: object, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 60)
    proba = np.round(rng.random((60, 3)), 1)  # rounded: plenty of ties for the AUC
    proba[np.arange(60), y] += 0.3
    fast = bootstrap_ci(fn, y, proba, n_resamples=60, seed=5)
    monkeypatch.delitem(_BATCH, fn)
    slow = bootstrap_ci(fn, y, proba, n_resamples=60, seed=5)
    assert fast == pytest.approx(slow, abs=1e-12)


def test_perplexity_bootstrap_fast_equals_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(1)
    nll, counts = rng.random(40) * 50, rng.integers(5, 20, 40)
    fast = bootstrap_ci(perplexity, counts, nll, 50, seed=0)
    monkeypatch.delitem(_BATCH, perplexity)
    assert fast == pytest.approx(bootstrap_ci(perplexity, counts, nll, 50, seed=0))


def test_auc_bootstrap_skips_resamples_missing_a_class(monkeypatch: pytest.MonkeyPatch) -> None:
    # one example of class 2: about a third of the resamples miss it and are skipped, not failed
    y = np.array([0] * 10 + [1] * 10 + [2])
    proba = np.eye(3)[y] * 0.5 + np.linspace(0, 0.3, 21)[:, None]
    fast = bootstrap_ci(roc_auc, y, proba, 100, seed=0)
    assert all(0.0 <= v <= 1.0 for v in fast)
    monkeypatch.delitem(_BATCH, roc_auc)
    assert bootstrap_ci(roc_auc, y, proba, 100, seed=0) == pytest.approx(fast)


def test_interval_is_nan_when_most_resamples_are_undefined() -> None:
    def fragile(y: np.ndarray, p: np.ndarray) -> float:
        if np.mean(y) < 1.0:  # any resample that drew the single 0 (about 65% of them)
            raise ValueError("undefined here")
        return 1.0

    low, high = bootstrap_ci(fragile, [1] * 9 + [0], [0] * 10, 100, seed=0)
    assert math.isnan(low) and math.isnan(high)


def test_custom_metric_takes_the_loop() -> None:
    def error_rate(y: np.ndarray, p: np.ndarray) -> float:
        return float(np.mean(y != p))

    low, high = bootstrap_ci(error_rate, [0, 1] * 20, [0, 0] * 20, 100, seed=0)
    assert low < 0.5 < high


# --- compute_metrics, registry and targets -----------------------------------------------------


def test_compute_metrics_for_causal_lm() -> None:
    nll = np.log(np.full(300, 20.0)) + np.random.default_rng(0).normal(0, 0.1, 300)
    result = compute_metrics(["ppl"], None, None, nll=nll, task="causal-lm", n_resamples=200)
    ppl = result["perplexity"]
    assert ppl.value == pytest.approx(math.exp(nll.mean()))
    assert ppl.ci_low <= ppl.value <= ppl.ci_high
    assert not ppl.higher_is_better


def test_compute_metrics_errors() -> None:
    with pytest.raises(DataError, match=r"labels range over 0\.\.5 but the model predicts 3 classes"):
        compute_metrics(["accuracy"], [0, 5], [[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
    with pytest.raises(DataError, match="2 labels but 3 predictions"):
        compute_metrics(["accuracy"], [0, 1], [0, 1, 1])
    with pytest.raises(DataError, match="needs probabilities"):
        compute_metrics(["auc"], [0, 1], np.array([0, 1]))
    with pytest.raises(DataError, match="empty evaluation set"):
        compute_metrics(["accuracy"], [], np.zeros((0, 2)))
    with pytest.raises(ConfigError, match="task 'causal-lm' has no metric 'accuracy'; valid metrics: perplexity"):
        compute_metrics(["accuracy"], [0], [[1.0, 0.0]], task="causal-lm")


def test_metric_value_is_frozen() -> None:
    value = MetricValue("accuracy", 0.9, 0.85, 0.94, 100)
    with pytest.raises(dataclasses.FrozenInstanceError):
        value.value = 1.0  # type: ignore[misc]
    assert value.to_dict()["ci_high"] == 0.94 and value.higher_is_better


def test_registry_covers_every_task() -> None:
    covered = set().union(*(spec.tasks for spec in METRICS.values()))
    assert covered == set(TASKS)
    assert metric_names("image-classification") == ["accuracy", "macro_f1", "roc_auc"]
    assert metric_names("causal-lm") == ["perplexity"]
    assert METRICS["accuracy"].higher_is_better and not METRICS["perplexity"].higher_is_better
    assert resolve_metric("F1") == "macro_f1" and resolve_metric("roc-auc") == "roc_auc"


def test_parse_target() -> None:
    assert parse_target("accuracy=0.95", "text-classification") == ("accuracy", 0.95)
    assert parse_target("f1=90%", "feature-extraction") == ("macro_f1", pytest.approx(0.9))
    assert parse_target("perplexity=25", "causal-lm") == ("perplexity", 25.0)
    with pytest.raises(ConfigError, match="task 'causal-lm' has no metric 'accuracy'; valid metrics: perplexity"):
        parse_target("accuracy=0.9", "causal-lm")
    with pytest.raises(ConfigError, match=r"unknown metric 'bleu'.*valid metrics.*accuracy, macro_f1, roc_auc"):
        parse_target("bleu=30", "text-classification")
    with pytest.raises(ConfigError, match="must look like METRIC=VALUE"):
        parse_target("accuracy", "text-classification")
    with pytest.raises(ConfigError, match="not a number"):
        parse_target("accuracy=high", "text-classification")
    with pytest.raises(ConfigError, match="between 0 and 1"):
        parse_target("accuracy=95", "text-classification")


def test_reached_respects_direction() -> None:
    assert reached("accuracy", 0.96, 0.95) and not reached("accuracy", 0.9, 0.95)
    assert reached("ppl", 20.0, 25.0) and not reached("perplexity", 30.0, 25.0)
