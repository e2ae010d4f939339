"""Tests of convstudy.stats.fits: slopes along a curve, slopes of hitting times, trends across
conditions and power laws, each with a bootstrap CI, and the 1/k model fit.

Exact cases (closed-form curves) must hold to rounding error; coverage tests count how often the
95% CI covers the truth over independent data sets, with binomial tolerances.
"""

import math

import numpy as np
import pytest
from _frames import _curves_frame, _frame

from convstudy import simulate
from convstudy.problems import get_problem
from convstudy.stats.fits import (
    condition_bootstrap,
    fit_hitting_slope,
    fit_inverse_time_model,
    fit_linear_rate,
    fit_loglog_slope,
    fit_power_law,
    fit_trend,
    ols_slope,
    trend_from_bootstrap,
)
from convstudy.theory.complexity import gd_contraction, iterations_per_efold, local_hessian


def test_loglog_slope_recovers_a_power_law_with_noise():
    rng = np.random.default_rng(0)
    steps = np.unique(np.geomspace(1, 1e4, 40).astype(int))
    R = 300
    noise = np.exp(0.3 * rng.standard_normal((R, steps.size)))
    values = 5.0 * steps[None, :] ** -1.0 * noise
    fit = fit_loglog_slope(_frame(values, steps), window=(10, 1e4), seed=1)
    assert fit.estimate.ci_low <= -1.0 <= fit.estimate.ci_high
    assert fit.estimate.ci_high - fit.estimate.ci_low < 0.05
    assert fit.estimate.n == R and fit.details["n_diverged"] == 0


def test_bootstrap_ci_covers_truth_at_nominal_rate():
    """Over 100 independent data sets, the 95% slope CI covers the true slope ~95% of the time."""
    steps = np.unique(np.geomspace(1, 1e3, 20).astype(int))
    covered = 0
    n_sets = 100
    for s in range(n_sets):
        rng = np.random.default_rng(100 + s)
        # replicate-level random slope: the mean curve's slope is -0.5 in expectation of logs
        values = steps[None, :] ** -0.5 * np.exp(0.5 * rng.standard_normal((50, 1)))
        values = values * np.exp(0.2 * rng.standard_normal((50, steps.size)))
        fit = fit_loglog_slope(_frame(values, steps), n_boot=400, seed=s)
        covered += fit.estimate.ci_low <= -0.5 <= fit.estimate.ci_high
    # binomial(100, 0.95): P(X < 87) < 0.2%
    assert covered >= 87


def test_linear_rate_recovers_geometric_decay():
    steps = np.arange(0, 50, 2)
    values = np.tile(3.0 * 0.9**steps, (5, 1)) * np.linspace(1, 2, 5)[:, None]
    fit = fit_linear_rate(_frame(values, steps), seed=0)
    assert fit.details["rate"].value == pytest.approx(0.9, rel=1e-10)


def test_nan_ols_slope():
    x = np.arange(5.0)
    y = np.array([[1.0, 3.0, np.nan, 7.0, 9.0], [2.0, np.nan, np.nan, np.nan, np.nan]])
    got = ols_slope(x, y, skip_nan=True)
    assert got[0] == pytest.approx(2.0)
    assert np.isnan(got[1])


def test_fit_hitting_slope_linear_rate_known_answer():
    """f_k = C_r rho^k: the mean curve crosses eps at (ln mean C + ln 1/eps)/ln(1/rho)."""
    rho, steps = 0.9, np.arange(0, 400, 7)
    C = np.random.default_rng(1).uniform(0.5, 2.0, 12)
    frame = _curves_frame(steps, C[:, None] * rho ** steps[None], diverged=[False] * 11 + [True])
    eps = np.geomspace(1e-3, 1e-12, 10)
    fit = fit_hitting_slope(frame, eps, scale="linear", n_boot=200, seed=0)
    assert fit.estimate.value == pytest.approx(iterations_per_efold(rho), rel=1e-9)
    assert fit.estimate.ci_low <= fit.estimate.value <= fit.estimate.ci_high
    assert fit.estimate.ci_high - fit.estimate.ci_low < 1e-6  # the slope does not depend on C
    assert fit.intercept == pytest.approx(np.log(C[:11].mean()) / np.log(1 / rho), rel=1e-9)
    assert (fit.estimate.n, fit.details["n_diverged"], fit.details["n_eps"]) == (11, 1, 10)


def test_fit_hitting_slope_power_law_and_window():
    steps = np.unique(np.geomspace(1, 1e5, 60).astype(int))
    frame = _curves_frame(steps, np.array([[3.0], [5.0]]) / steps[None])  # f = C / k
    eps = np.geomspace(1e-1, 1e-4, 13)
    fit = fit_hitting_slope(frame, eps, scale="loglog", n_boot=100, seed=0)
    assert fit.estimate.value == pytest.approx(1.0, rel=1e-9)
    narrow = fit_hitting_slope(frame, eps, scale="loglog", window=(1e3, 2e3), n_boot=100, seed=0)
    assert np.isnan(narrow.estimate.value) and narrow.details["n_eps"] < 3
    with pytest.raises(ValueError, match="'scale' parameter of fit_hitting_slope"):
        fit_hitting_slope(frame, eps, scale="log", seed=0)


def test_gd_on_a_quadratic_matches_its_contraction_factor():
    """Batch GD from random starts: the measured iterations per e-fold equal 1/ln(1/rho) with
    rho = (1 - 1/kappa)^2 for eta = 1/L and ((kappa - 1)/(kappa + 1))^2 for 2/(L + mu)."""
    q = get_problem("quadratic", dim=5, condition_number=20.0, n_samples=40)
    for eta, rho in [
        (1 / q.L, (1 - 1 / 20) ** 2),
        (2 / (q.L + q.mu), (19 / 21) ** 2),
    ]:
        assert gd_contraction(np.linalg.eigvalsh(local_hessian(q)), eta) == pytest.approx(rho)
        frame = simulate(
            q, "sgd", eta, n_steps=700, sampler="full", batch_size=40, n_replicates=5,
            w0="random", record="all", engine="numpy",
        )  # fmt: skip
        fit = fit_hitting_slope(frame, np.geomspace(1e-5, 1e-10, 11), n_boot=200, seed=0)
        assert fit.estimate.value == pytest.approx(iterations_per_efold(rho), rel=0.01)


def test_fit_inverse_time_model_recovers_coefficients():
    k = np.unique(np.geomspace(1, 1e5, 50).astype(int)).astype(float)
    k0 = 30.0
    c, B = np.array([[4.0, 0.7], [0.5, 2.0]]).T
    curves = c[:, None] / (k + k0) + B[:, None] * (k0 / (k + k0)) ** 2
    curves[0, 3] = np.nan  # ignored
    got = fit_inverse_time_model(k, curves, k0, k_min=5.0)
    np.testing.assert_allclose(got, np.stack([c, B], axis=1), rtol=1e-9)
    assert np.isnan(fit_inverse_time_model(k[:1], curves[:, :1], k0)).all()  # one point


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
    point, _ = condition_bootstrap([x, x], np.median, n_boot=10, seed=0)
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
        condition_bootstrap(samples, **kwargs, seed=0)


def test_fit_trend_exact_power_law():
    # every condition's values are symmetric around C x^p, so the means lie exactly on the law
    x = np.array([1.0, 10.0, 100.0, 1000.0])
    offsets = np.array([-0.5, 0.5, -0.25, 0.25])
    samples = [3.0 * xi**0.7 * (1 + 0.1 * offsets) for xi in x]
    fit = fit_trend(x, samples, n_boot=200, seed=0)
    assert fit.estimate.value == pytest.approx(0.7, abs=1e-12)
    assert fit.intercept == pytest.approx(math.log(3.0), abs=1e-12)
    assert fit.estimate.ci_low <= 0.7 <= fit.estimate.ci_high
    assert fit.estimate.n == 4 and fit.details["n_conditions"] == 4 and fit.n_boot_nonfinite == 0


def test_fit_trend_linear_scale():
    x = np.array([0.0, 1.0, 2.0, 3.0])
    samples = [np.array([1.0 - 0.2 * xi - 0.01, 1.0 - 0.2 * xi + 0.01]) for xi in x]
    fit = fit_trend(x, samples, log_x=False, log_y=False, n_boot=100, seed=0)
    assert fit.estimate.value == pytest.approx(-0.2)


def test_fit_trend_interval_covers_the_true_exponent():
    # exponential replicate values with mean x^-0.5; the 95% CI should cover -0.5 about 95% of
    # the time. 200 repetitions: a binomial(200, 0.95) count lies in [180, 197] with prob > 0.99
    x = np.array([1.0, 3.0, 10.0, 30.0, 100.0])
    rng = np.random.default_rng(2024)
    covered = 0
    for i in range(200):
        samples = [rng.exponential(xi**-0.5, size=60) for xi in x]
        fit = fit_trend(x, samples, n_boot=400, seed=i)
        covered += fit.estimate.ci_low <= -0.5 <= fit.estimate.ci_high
    assert 180 <= covered <= 197


def test_fit_trend_reports_censoring_as_missing_interval():
    x = np.array([1.0, 10.0, 100.0])
    samples = [np.array([1.0, 2.0]), np.array([10.0, 20.0]), np.array([100.0, np.inf])]
    fit = fit_trend(x, samples, n_boot=200, seed=0)
    assert math.isnan(fit.estimate.value)
    assert math.isnan(fit.estimate.ci_low) and math.isnan(fit.estimate.ci_high)
    assert fit.n_boot_nonfinite > 0


def test_trend_from_bootstrap_uses_given_boots():
    x = np.array([1.0, 2.0, 4.0])
    boots = np.array([[1.0, 2.0, 4.0], [1.0, 4.0, 16.0]])  # slopes 1 and 2
    fit = trend_from_bootstrap(x, [1.0, 2.0, 4.0], boots, n=2, level=0.5)
    assert fit.estimate.value == pytest.approx(1.0)
    assert 1.0 <= fit.estimate.ci_low < fit.estimate.ci_high <= 2.0


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
        fit_trend(x, samples, n_boot=10, **kwargs, seed=0)


def test_fit_power_law_recovers_exponent_with_covering_ci():
    rng = np.random.default_rng(1)
    x = np.array([1e-3, 2e-3, 4e-3, 8e-3])
    groups = [3.0 * xi**1.2 * rng.exponential(1.0, 400) for xi in x]
    groups[0][:5] = np.nan  # diverged replicates are dropped
    fit = fit_power_law(x, groups, seed=2)
    # known answer: log means are exact up to sampling error of exponential(1) means (se 0.05)
    assert fit.estimate.ci_low <= 1.2 <= fit.estimate.ci_high
    assert fit.estimate.ci_high - fit.estimate.ci_low < 0.15
    assert fit.estimate.n == 4 * 400 - 5
    assert np.exp(fit.intercept) == pytest.approx(3.0, rel=0.3)


def test_fit_power_law_validation():
    with pytest.raises(ValueError, match="'x'"):
        fit_power_law([1.0], [np.ones(3)], seed=0)
    with pytest.raises(ValueError, match="'x'"):
        fit_power_law([1.0, -1.0], [np.ones(3), np.ones(3)], seed=0)
    with pytest.raises(ValueError, match="groups"):
        fit_power_law([1.0, 2.0], [np.ones(3), np.array([np.nan, 1.0])], seed=0)
