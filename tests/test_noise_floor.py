"""Tests for convstudy.noise_floor.

Known answers: in one dimension the moment recursion of SGD with replacement is a scalar
recursion written out here by hand (P' = (1 - 2 eta h + eta^2 m4) P + eta^2 s + 2 eta^2 c m,
m' = (1 - eta h) m), with a closed-form stationary value eta s / (2 h - eta m4) and mean-square
limit 2 h / m4. In d dimensions the exact expectation is compared with the engine's Monte Carlo
mean, with a tolerance of 4 standard errors of that mean.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from convstudy.engine import simulate
from convstudy.measures import proportion_ci
from convstudy.noise_floor import (
    LeastSquaresSGDMoments,
    fit_power_law,
    ratio_of_means,
    time_average,
)
from convstudy.problems import LeastSquares, get_problem
from convstudy.schedules import constant, inverse_time


@pytest.fixture(scope="module")
def scalar_problem():
    rng = np.random.default_rng(3)
    x = rng.standard_normal(50) * 1.3
    y = 0.7 * x + 0.5 * rng.standard_normal(50)
    return LeastSquares(x[:, None], y, lam=0.2)


def _scalar_moments(problem):
    """h, m4, s, c of the 1-D recursion, computed directly from the data."""
    x, lam = problem.X[:, 0], problem.lam
    xi = x * (x * problem.w_star[0] - problem.y) + lam * problem.w_star[0]
    a = x**2 + lam  # per-sample curvature A_i
    h = a.mean()
    m4 = (a**2).mean()
    s = (xi**2).mean()
    c = (x**2 * xi).mean()  # C(m) = E[(x m) x xi] = m c
    return h, m4, s, c


def test_scalar_recursion_matches_hand_written_one(scalar_problem):
    h, m4, s, c = _scalar_moments(scalar_problem)
    moments = LeastSquaresSGDMoments.from_problem(scalar_problem)
    etas = inverse_time(0.3, 5.0)(np.arange(40))
    e0 = np.array([1.5])
    p, m, expected = e0[0] ** 2, e0[0], [h * e0[0] ** 2 / 2]
    for eta in etas:
        p = (1 - 2 * eta * h + eta**2 * m4) * p + eta**2 * s + 2 * eta**2 * c * m
        m = (1 - eta * h) * m
        expected.append(h * p / 2)
    np.testing.assert_allclose(moments.expected_suboptimality(etas, e0), expected, rtol=1e-12)


def test_scalar_stationary_floor_and_limit_closed_form(scalar_problem):
    h, m4, s, _ = _scalar_moments(scalar_problem)
    moments = LeastSquaresSGDMoments.from_problem(scalar_problem)
    limit = 2 * h / m4
    for eta in (0.01 * limit, 0.5 * limit, 0.9 * limit):
        want = h / 2 * eta * s / (2 * h - eta * m4)
        assert moments.stationary_suboptimality(eta) == pytest.approx(want, rel=1e-10)
        assert moments.first_order_floor(eta) == pytest.approx(eta * s / 4, rel=1e-12)
    assert moments.mean_square_step_limit() == pytest.approx(limit, rel=1e-8)
    assert moments.stationary_suboptimality(1.01 * limit) == math.inf


def test_first_order_floor_is_the_small_step_limit():
    problem = get_problem("quadratic", dim=4, condition_number=5.0, n_samples=300)
    moments = LeastSquaresSGDMoments.from_problem(problem)
    ratios = [
        moments.stationary_suboptimality(e) / moments.first_order_floor(e) for e in (1e-4, 1e-3)
    ]
    # the exact floor is eta tr(Sigma)/4 (1 + O(eta)): the relative gap shrinks 10x with eta
    assert abs(ratios[0] - 1) < 0.01
    assert abs(ratios[1] - 1) == pytest.approx(10 * abs(ratios[0] - 1), rel=0.05)


def test_realizable_problem_has_no_floor():
    problem = get_problem("quadratic", dim=3, noise=0.0, n_samples=100)
    moments = LeastSquaresSGDMoments.from_problem(problem)
    assert moments.stationary_suboptimality(0.01) == pytest.approx(0.0, abs=1e-20)


def test_large_batches_approach_gradient_descent_limit():
    problem = get_problem("quadratic", dim=3, condition_number=4.0, n_samples=200)
    lim1 = LeastSquaresSGDMoments.from_problem(problem, batch_size=1).mean_square_step_limit()
    lim200 = LeastSquaresSGDMoments.from_problem(problem, batch_size=200).mean_square_step_limit()
    assert lim1 < lim200 <= 2 / problem.L
    assert lim200 > 0.9 * 2 / problem.L


@pytest.mark.parametrize("batch_size", [1, 4])
def test_exact_expectation_matches_monte_carlo(batch_size):
    problem = get_problem("ridge", lam=0.1)
    moments = LeastSquaresSGDMoments.from_problem(problem, batch_size=batch_size)
    schedule = inverse_time(0.05, 100.0)
    steps = [0, 10, 100, 1000]
    exact = moments.expected_suboptimality(
        schedule(np.arange(1000)), problem.initial_point() - problem.w_star, steps
    )
    runs = simulate(
        problem,
        "sgd",
        schedule,
        n_steps=1000,
        sampler="replacement",
        batch_size=batch_size,
        n_replicates=300,
        seed=5,
        record=steps,
    )
    by_step = runs.groupby("step")["subopt"]
    mean, sem = by_step.mean().to_numpy(), by_step.sem().to_numpy()
    assert np.all(np.abs(mean[1:] - exact[1:]) < 4 * sem[1:])
    assert mean[0] == pytest.approx(exact[0], rel=1e-12)


def test_moments_validation():
    with pytest.raises(TypeError, match="LeastSquares"):
        LeastSquaresSGDMoments.from_problem(get_problem("logistic"))
    problem = get_problem("quadratic", dim=2, n_samples=10)
    with pytest.raises(ValueError, match="batch_size"):
        LeastSquaresSGDMoments.from_problem(problem, batch_size=11)
    moments = LeastSquaresSGDMoments.from_problem(problem)
    with pytest.raises(ValueError, match="w0_error"):
        moments.expected_suboptimality([0.1], np.zeros(3))
    with pytest.raises(ValueError, match="steps"):
        moments.expected_suboptimality([0.1, 0.1], np.zeros(2), steps=[3])
    with pytest.raises(ValueError, match="eta"):
        moments.stationary_suboptimality(-1.0)


def _frame(values, steps, diverged=None):
    R, S = values.shape
    diverged = np.zeros((R, S), bool) if diverged is None else diverged
    return pd.DataFrame(
        {
            "replicate": np.repeat(np.arange(R), S),
            "step": np.tile(steps, R),
            "subopt": values.ravel(),
            "diverged": diverged.ravel(),
        }
    )


def test_time_average_over_the_tail_and_diverged_rows():
    steps = np.array([0, 5, 10, 15, 20])
    values = np.array([[9.0, 9.0, 1.0, 2.0, 3.0], [9.0, 9.0, 4.0, np.nan, np.nan]])
    diverged = np.array([[False] * 5, [False, False, False, True, True]])
    out = time_average(_frame(values, steps, diverged), 10)
    assert out["value"].iloc[0] == pytest.approx(2.0)
    assert np.isnan(out["value"].iloc[1]) and out["diverged"].iloc[1]
    assert (out["n_points"] == 3).all()
    with pytest.raises(ValueError, match="start"):
        time_average(_frame(values, steps, diverged), 21)


def test_fit_power_law_recovers_exponent_with_covering_ci():
    rng = np.random.default_rng(1)
    x = np.array([1e-3, 2e-3, 4e-3, 8e-3])
    groups = [3.0 * xi**1.2 * rng.exponential(1.0, 400) for xi in x]
    groups[0][:5] = np.nan  # diverged replicates are dropped
    fit = fit_power_law(x, groups, seed=2)
    # known answer: log means are exact up to sampling error of exponential(1) means (se 0.05)
    assert fit["ci_low"] <= 1.2 <= fit["ci_high"]
    assert fit["ci_high"] - fit["ci_low"] < 0.15
    assert fit["n"] == 4 * 400 - 5
    assert np.exp(fit["intercept"]) == pytest.approx(3.0, rel=0.3)


def test_fit_power_law_validation():
    with pytest.raises(ValueError, match="'x'"):
        fit_power_law([1.0], [np.ones(3)])
    with pytest.raises(ValueError, match="'x'"):
        fit_power_law([1.0, -1.0], [np.ones(3), np.ones(3)])
    with pytest.raises(ValueError, match="groups"):
        fit_power_law([1.0, 2.0], [np.ones(3), np.array([np.nan, 1.0])])


def test_ratio_of_means_point_and_coverage():
    a, b = np.array([2.0, 4.0, 6.0]), np.array([1.0, 2.0, np.nan])
    assert ratio_of_means(a, b)["ratio"] == pytest.approx(4.0 / 1.5)
    assert ratio_of_means(a, b)["n_den"] == 2
    rng = np.random.default_rng(0)
    covered = 0
    for i in range(100):
        num, den = rng.exponential(3.0, 200), rng.exponential(1.0, 200)
        r = ratio_of_means(num, den, n_boot=300, seed=i)
        covered += r["ci_low"] <= 3.0 <= r["ci_high"]
    # 95% nominal: with 100 trials coverage below 87 has probability < 1e-3 under Binomial
    assert covered >= 87
    with pytest.raises(ValueError, match="denominator"):
        ratio_of_means(a, -b[:2])


def test_proportion_ci_is_wilson():
    share, lo, hi = proportion_ci(0, 200)
    z = stats.norm.ppf(0.975)
    assert share == 0 and lo == pytest.approx(0.0, abs=1e-12)
    assert hi == pytest.approx(z**2 / (200 + z**2), rel=1e-9)
    k, n = 13, 200
    centre = (k + z**2 / 2) / (n + z**2)
    half = z / (n + z**2) * math.sqrt(k * (n - k) / n + z**2 / 4)
    assert proportion_ci(k, n)[1:] == pytest.approx((centre - half, centre + half), rel=1e-9)
    assert all(math.isnan(v) for v in proportion_ci(0, 0))
    with pytest.raises(ValueError, match="successes"):
        proportion_ci(5, 4)
    with pytest.raises(TypeError, match="trials"):
        proportion_ci(1, 2.5)


def test_constant_schedule_floor_matches_simulation_plateau():
    """The stationary floor is what a long constant-step run settles at (4 SE tolerance)."""
    problem = get_problem("quadratic", dim=3, condition_number=3.0, n_samples=200)
    eta = 0.01
    moments = LeastSquaresSGDMoments.from_problem(problem)
    steps = np.linspace(1500, 3000, 31).astype(int)
    runs = simulate(
        problem,
        "sgd",
        constant(eta),
        n_steps=3000,
        sampler="replacement",
        n_replicates=200,
        seed=11,
        record=steps,
    )
    levels = time_average(runs, 1500)["value"].to_numpy()
    se = levels.std(ddof=1) / np.sqrt(levels.size)
    assert abs(levels.mean() - moments.stationary_suboptimality(eta)) < 4 * se
