"""Paired tests on hand-made pairs of prediction vectors with known answers.

McNemar p-values are checked against values computed by hand (binomial sums over 2^n) and against
``scipy.stats.binomtest`` (an independent implementation); the paired bootstrap against the
pairing itself (two models that differ on a fixed set of examples).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from steelyard.errors import DataError
from steelyard.metrics import accuracy, macro_f1
from steelyard.significance import (
    MCNEMAR_EXACT,
    MCNEMAR_MID_P,
    PAIRED_BOOTSTRAP,
    binomial_tail_half,
    mcnemar,
    mcnemar_p,
    paired_bootstrap,
    paired_changes,
)


def pair(n: int, both_right: int, only_first: int, only_second: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and two prediction vectors on ``n`` binary examples with the given agreement counts."""
    y = np.zeros(n, dtype=np.int64)
    a, b = np.ones(n, dtype=np.int64), np.ones(n, dtype=np.int64)  # both wrong by default
    i = 0
    for count, first, second in ((both_right, 0, 0), (only_first, 0, 1), (only_second, 1, 0)):
        a[i:i + count], b[i:i + count] = first, second
        i += count
    return y, a, b


# -- McNemar by hand ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("b", "c", "expected"), [
    (0, 1, 1.0),  # one discordant pair: 2 * P(X <= 0) = 2 * 1/2 = 1
    (1, 0, 1.0),
    (0, 0, 1.0),  # no discordant pair: nothing to test
    (0, 6, 2 / 64),  # 2 * (1/2)^6
    (1, 6, 2 * (1 + 7) / 128),  # 2 * (C(7,0) + C(7,1)) / 2^7 = 0.125
    (3, 10, 2 * (1 + 13 + 78 + 286) / 8192),  # 2 * sum C(13, k<=3) / 2^13
    (5, 5, 1.0),
])
def test_mcnemar_exact_p_values_by_hand(b, c, expected):
    assert mcnemar_p(b, c) == pytest.approx(expected, rel=1e-12)


def test_mcnemar_mid_p_subtracts_the_observed_probability():
    assert mcnemar_p(0, 6, mid_p=True) == pytest.approx(2 / 64 - 1 / 64)
    assert mcnemar_p(1, 6, mid_p=True) == pytest.approx(2 * 8 / 128 - 7 / 128)
    assert mcnemar_p(0, 1, mid_p=True) == pytest.approx(0.5)
    assert mcnemar_p(5, 5, mid_p=True) == 1.0


@pytest.mark.parametrize(("b", "c"), [(0, 1), (2, 9), (12, 30), (40, 60), (250, 300), (2900, 3100)])
def test_mcnemar_matches_scipy_binomtest(b, c):
    stats = pytest.importorskip("scipy.stats")
    assert mcnemar_p(b, c) == pytest.approx(stats.binomtest(b, b + c, 0.5).pvalue, rel=1e-9)


def test_the_large_sample_tail_is_the_exact_one():
    # 6001 trials goes through the log-space sum; its value must agree with exact integers.
    exact = sum(math.comb(6001, i) for i in range(2950)) / 2**6001
    assert binomial_tail_half(2949, 6001) == pytest.approx(exact, rel=1e-9)


def test_mcnemar_counts_the_discordant_examples_from_correctness_vectors():
    y, a, b = pair(444, 400, 1, 0)  # the compressed model got one example wrong that the original got right
    result = mcnemar(a == y, b == y)
    assert (result.only_first, result.only_second, result.discordant) == (1, 0, 1)
    assert result.p_value == 1.0 and result.method == MCNEMAR_EXACT
    assert mcnemar(a == y, b == y, mid_p=True).method == MCNEMAR_MID_P
    with pytest.raises(DataError, match="paired predictions"):
        mcnemar([True, False], [True])


# -- the paired verdict on accuracy ----------------------------------------------------------------
def test_one_flipped_example_of_444_is_no_significant_change():
    y, a, b = pair(444, 400, 1, 0)
    change = paired_changes(["accuracy"], y, a, b, n_resamples=400)["accuracy"]
    assert change.delta == pytest.approx(-1 / 444)
    assert change.test == MCNEMAR_EXACT and change.p_value == 1.0
    assert (change.only_before, change.only_after) == (1, 0)
    assert not change.significant and change.outcome == "not significant"
    assert change.ci_low <= change.delta <= change.ci_high <= 0.0


def test_a_consistent_loss_is_significant_and_worse():
    y, a, b = pair(444, 380, 30, 2)  # 30 examples lost, 2 gained: p = 2 * sum C(32, k<=2) / 2^32
    change = paired_changes(["accuracy"], y, a, b, n_resamples=400)["accuracy"]
    assert change.p_value == pytest.approx(2 * (1 + 32 + 496) / 2**32)
    assert change.significant and change.outcome == "worse"
    assert change.ci_high < 0
    gained = paired_changes(["accuracy"], y, b, a, n_resamples=400)["accuracy"]
    assert gained.outcome == "improved" and gained.delta == pytest.approx(28 / 444)


def test_identical_predictions_are_unchanged():
    y, a, _ = pair(100, 60, 0, 0)
    change = paired_changes(["accuracy", "f1"], y, a, a.copy(), n_resamples=100)
    assert change["accuracy"].outcome == "unchanged" and change["accuracy"].p_value == 1.0
    assert change["macro_f1"].outcome == "unchanged" and change["macro_f1"].test == PAIRED_BOOTSTRAP


# -- the paired bootstrap --------------------------------------------------------------------------
def test_paired_bootstrap_is_narrower_than_two_separate_intervals():
    """Two models that agree on 95% of examples: the pairing removes the shared variance."""
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 600)
    a = np.where(rng.random(600) < 0.8, y, (y + 1) % 3)
    b = a.copy()
    flip = rng.choice(600, 30, replace=False)
    b[flip] = y[flip]  # b fixes 30 examples (some were already right)
    low, high, p = paired_bootstrap(macro_f1, y, a, b, n_resamples=500, seed=0)
    assert low <= macro_f1(y, b) - macro_f1(y, a) <= high
    assert low > 0 and p < 0.05  # b is better on the same examples, and the paired test sees it
    from steelyard.metrics import bootstrap_ci

    separate = bootstrap_ci(macro_f1, y, a, n_resamples=500)
    assert high - low < separate[1] - separate[0]


def test_paired_bootstrap_of_accuracy_agrees_with_the_values():
    y, a, b = pair(50, 30, 5, 5)
    low, high, p = paired_bootstrap(accuracy, y, a, b, n_resamples=300)
    assert low < 0 < high and p > 0.5  # as many lost as gained


def test_paired_inputs_must_cover_the_same_examples():
    with pytest.raises(DataError, match="same examples"):
        paired_bootstrap(accuracy, [0, 1], [0, 1], [0, 1, 1])
    with pytest.raises(DataError, match="both models"):
        paired_changes(["accuracy"], [0, 1], [0, 1], None)


def test_perplexity_is_paired_over_the_same_blocks():
    n_tokens = np.full(40, 10.0)
    before = np.full(40, 20.0)
    after = before + 1.0  # every block 1 nat worse: perplexity exp(2.1) vs exp(2.0)
    change = paired_changes(["perplexity"], None, None, None, task="causal-lm", nll_before=before,
                            nll_after=after, n_tokens=n_tokens, n_resamples=200)["perplexity"]
    assert change.delta == pytest.approx(math.exp(2.1) - math.exp(2.0))
    assert change.test == PAIRED_BOOTSTRAP and change.significant and change.outcome == "worse"
