"""Tests of convstudy.trends: bootstraps across conditions, trend fits, binomial intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from convstudy.measures import proportion_ci, proportion_difference_ci
from convstudy.trends import condition_bootstrap, fit_trend, trend_from_bootstrap


# ---- condition_bootstrap ------------------------------------------------------------------------
def test_condition_bootstrap_shapes_point_and_seed():
    rng = np.random.default_rng(0)
    samples = [rng.normal(size=30), rng.normal(size=50), rng.normal(size=40)]
    point, boots = condition_bootstrap(samples, n_boot=300, seed=4)
    assert point.shape == (3,) and boots.shape == (300, 3)
    np.testing.assert_allclose(point, [s.mean() for s in samples])
    again = condition_bootstrap(samples, n_boot=300, seed=4)[1]
    np.testing.assert_array_equal(boots, again)
    assert not np.array_equal(boots, condition_bootstrap(samples, n_boot=300, seed=5)[1])


def test_condition_bootstrap_standard_error_matches_theory():
    # the bootstrap SE of a mean is sd * sqrt((n - 1) / n) / sqrt(n) up to Monte Carlo error
    rng = np.random.default_rng(1)
    x = rng.exponential(size=100)
    _, boots = condition_bootstrap([x, x], n_boot=4000, seed=0)
    expected = x.std(ddof=0) / math.sqrt(x.size)
    # the SE of a standard deviation estimated from B draws is about sd / sqrt(2 B)
    tol = 4 * expected / math.sqrt(2 * 4000)
    assert abs(boots[:, 0].std(ddof=1) - expected) < tol


def test_condition_bootstrap_paired_uses_the_same_indices():
    x = np.arange(20.0)
    point, boots = condition_bootstrap([x, 2 * x], n_boot=200, seed=3, paired=True)
    np.testing.assert_allclose(boots[:, 1], 2 * boots[:, 0])
    _, indep = condition_bootstrap([x, 2 * x], n_boot=200, seed=3, paired=False)
    assert not np.allclose(indep[:, 1], 2 * indep[:, 0])


def test_condition_bootstrap_other_statistic():
    x = np.array([1.0, 2.0, 3.0, 100.0])
    point, _ = condition_bootstrap([x, x], np.median, n_boot=10)
    np.testing.assert_allclose(point, [2.5, 2.5])


@pytest.mark.parametrize(
    "samples, kwargs, error",
    [
        (np.ones((2, 5)), {}, TypeError),
        ([], {}, TypeError),
        ([np.ones(5), np.ones(1)], {}, ValueError),
        ([np.ones(5), np.ones(6)], {"paired": True}, ValueError),
        ([np.ones((5, 2))], {}, ValueError),
        ([np.ones(5)], {"n_boot": 0}, ValueError),
    ],
)
def test_condition_bootstrap_rejects_bad_input(samples, kwargs, error):
    with pytest.raises(error, match="condition_bootstrap"):
        condition_bootstrap(samples, **kwargs)


# ---- fit_trend ----------------------------------------------------------------------------------
def test_fit_trend_exact_power_law():
    # every condition's values are symmetric around C x^p, so the means lie exactly on the law
    x = np.array([1.0, 10.0, 100.0, 1000.0])
    offsets = np.array([-0.5, 0.5, -0.25, 0.25])
    samples = [3.0 * xi**0.7 * (1 + 0.1 * offsets) for xi in x]
    fit = fit_trend(x, samples, n_boot=200, seed=0)
    assert fit["slope"] == pytest.approx(0.7, abs=1e-12)
    assert fit["intercept"] == pytest.approx(math.log(3.0), abs=1e-12)
    assert fit["ci_low"] <= 0.7 <= fit["ci_high"]
    assert fit["n_min"] == 4 and fit["n_conditions"] == 4 and fit["n_boot_nonfinite"] == 0


def test_fit_trend_linear_scale():
    x = np.array([0.0, 1.0, 2.0, 3.0])
    samples = [np.array([1.0 - 0.2 * xi - 0.01, 1.0 - 0.2 * xi + 0.01]) for xi in x]
    fit = fit_trend(x, samples, log_x=False, log_y=False, n_boot=100)
    assert fit["slope"] == pytest.approx(-0.2)


def test_fit_trend_interval_covers_the_true_exponent():
    # exponential replicate values with mean x^-0.5; the 95% CI should cover -0.5 about 95% of
    # the time. 200 repetitions: a binomial(200, 0.95) count lies in [180, 197] with prob > 0.99
    x = np.array([1.0, 3.0, 10.0, 30.0, 100.0])
    rng = np.random.default_rng(2024)
    covered = 0
    for i in range(200):
        samples = [rng.exponential(xi**-0.5, size=60) for xi in x]
        fit = fit_trend(x, samples, n_boot=400, seed=i)
        covered += fit["ci_low"] <= -0.5 <= fit["ci_high"]
    assert 180 <= covered <= 197


def test_fit_trend_reports_censoring_as_missing_interval():
    x = np.array([1.0, 10.0, 100.0])
    samples = [np.array([1.0, 2.0]), np.array([10.0, 20.0]), np.array([100.0, np.inf])]
    fit = fit_trend(x, samples, n_boot=200, seed=0)
    assert math.isnan(fit["slope"])
    assert math.isnan(fit["ci_low"]) and math.isnan(fit["ci_high"])
    assert fit["n_boot_nonfinite"] > 0


def test_trend_from_bootstrap_uses_given_boots():
    x = np.array([1.0, 2.0, 4.0])
    boots = np.array([[1.0, 2.0, 4.0], [1.0, 4.0, 16.0]])  # slopes 1 and 2
    fit = trend_from_bootstrap(x, [1.0, 2.0, 4.0], boots, level=0.5)
    assert fit["slope"] == pytest.approx(1.0)
    assert 1.0 <= fit["ci_low"] < fit["ci_high"] <= 2.0


@pytest.mark.parametrize(
    "x, kwargs, error, match",
    [
        ([1.0, 2.0], {}, ValueError, "one value per condition"),
        ([0.0, 1.0, 2.0], {}, ValueError, "must be > 0"),
        ([1.0, 2.0, 3.0], {"level": 1.5}, ValueError, "level"),
        ([1.0, 2.0, 3.0], {"log_x": "yes"}, ValueError, "log_x"),
    ],
)
def test_fit_trend_rejects_bad_input(x, kwargs, error, match):
    samples = [np.ones(3), np.ones(3), np.ones(3)]
    with pytest.raises(error, match=match):
        fit_trend(x, samples, n_boot=10, **kwargs)


# ---- binomial intervals -------------------------------------------------------------------------
def test_proportion_ci_known_answers():
    # Newcombe (1998a), Stat. Med. 17, 857-872, Table I: 81/263, Wilson score 0.2553-0.3662
    p, lo, hi = proportion_ci(81, 263)
    assert p == pytest.approx(81 / 263)
    assert (lo, hi) == pytest.approx((0.2553, 0.3662), abs=5e-5)
    # Clopper-Pearson for 0/20: upper bound 1 - 0.025^(1/20)
    p, lo, hi = proportion_ci(0, 20, method="exact")
    assert lo == 0.0 and hi == pytest.approx(1 - 0.025 ** (1 / 20))


@pytest.mark.parametrize(
    "counts, expected",
    [
        # Newcombe (1998b), Stat. Med. 17, 873-890, Table II, method 10 (hybrid score)
        ((56, 70, 48, 80), (0.0524, 0.3339)),
        ((9, 10, 3, 10), (0.1705, 0.8090)),
        ((6, 7, 2, 7), (0.0582, 0.8062)),
        ((5, 56, 0, 29), (-0.0381, 0.1926)),
        ((0, 10, 0, 20), (-0.1611, 0.2775)),
        ((10, 10, 0, 20), (0.6791, 1.0000)),
    ],
)
def test_proportion_difference_ci_matches_newcombe(counts, expected):
    d, lo, hi = proportion_difference_ci(*counts)
    assert d == pytest.approx(counts[0] / counts[1] - counts[2] / counts[3])
    assert (lo, hi) == pytest.approx(expected, abs=5e-5)


def test_proportion_difference_ci_coverage():
    # two binomials with p = 0.3 and 0.1, n = 40 each: coverage of the true 0.2 near 95%
    rng = np.random.default_rng(7)
    k1 = rng.binomial(40, 0.3, size=400)
    k2 = rng.binomial(40, 0.1, size=400)
    covered = sum(
        lo <= 0.2 <= hi
        for lo, hi in (proportion_difference_ci(a, 40, b, 40)[1:] for a, b in zip(k1, k2))
    )
    # binomial(400, 0.95) lies in [367, 392] with probability > 0.99
    assert 367 <= covered <= 392
    assert stats.binom.cdf(366, 400, 0.95) < 0.005


@pytest.mark.parametrize(
    "args, error, match",
    [
        ((3, 0), ValueError, "trials"),
        ((5, 4), ValueError, "successes"),
        ((1.5, 4), TypeError, "successes"),
    ],
)
def test_proportion_ci_rejects_bad_counts(args, error, match):
    with pytest.raises(error, match=match):
        proportion_ci(*args)


def test_proportion_difference_ci_names_the_bad_argument():
    with pytest.raises(ValueError, match="successes_2"):
        proportion_difference_ci(1, 4, 9, 4)
