"""Tests of convstudy.theory.noise_floor: exact SGD moments on least squares.

Known answers: in one dimension the moment recursion of SGD with replacement is a scalar
recursion written out here by hand (P' = (1 - 2 eta h + eta^2 m4) P + eta^2 s + 2 eta^2 c m,
m' = (1 - eta h) m), with a closed-form stationary value eta s / (2 h - eta m4) and mean-square
limit 2 h / m4. In d dimensions the exact expectation is compared with the engine's Monte Carlo
mean, with a tolerance of 4 standard errors of that mean.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from convstudy.engine import simulate
from convstudy.problems import LeastSquares, get_problem
from convstudy.schedules import constant, inverse_time
from convstudy.stats.curves import time_average
from convstudy.theory.noise_floor import (
    LeastSquaresSGDMoments,
    expected_suboptimality_curve,
    inverse_time_offset,
    plateau_prediction,
    sgd_moments,
    step_size_sums,
)


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


def test_expected_curve_from_the_default_start_uses_cached_moments(scalar_problem):
    assert sgd_moments(scalar_problem) is sgd_moments(scalar_problem)
    etas = inverse_time(0.3, k0=5.0)(np.arange(40))
    e0 = scalar_problem.initial_point() - scalar_problem.w_star
    direct = LeastSquaresSGDMoments.from_problem(scalar_problem).expected_suboptimality(etas, e0)
    np.testing.assert_allclose(expected_suboptimality_curve(scalar_problem, etas), direct)
    w0 = scalar_problem.w_star + 1.0  # e0 = 1: f(w0) - f* = H / 2 at k = 0
    h = np.mean(scalar_problem.X[:, 0] ** 2) + scalar_problem.lam
    start = expected_suboptimality_curve(scalar_problem, etas, [0], w0=w0)[0]
    assert start == pytest.approx(h / 2)


def test_inverse_time_offset_and_step_size_sums():
    k0 = inverse_time_offset(0.004, 1.0, 2.0)
    assert k0 == pytest.approx(500.0)
    etas = inverse_time(0.004, k0=k0)(np.arange(10**5))
    assert etas[0] * k0 * 1.0 == pytest.approx(2.0)  # beta mu = eta0 k0 mu
    s1, s2 = step_size_sums(etas)
    np.testing.assert_allclose([s1[-1], s2[-1]], [etas.sum(), (etas**2).sum()])
    assert s1[-1] > 10 * s1[999] / 3 and s2[-1] < 1.01 * 2.0**2 / k0  # sum eta^2 <= beta^2 / k0
    with pytest.raises(ValueError, match="eta0"):
        inverse_time_offset(-1.0, 1.0)


def test_plateau_prediction_is_the_stationary_floor_after_the_transient(scalar_problem):
    eta = 0.05
    window = np.arange(2000, 4001, 50)  # (1 - eta h)^(2k) is ~e^-400 at the window start
    got = plateau_prediction(scalar_problem, eta, window)
    moments = sgd_moments(scalar_problem)
    assert got["exact_stationary"] == pytest.approx(moments.stationary_suboptimality(eta))
    assert got["exact_window_mean"] == pytest.approx(got["exact_stationary"], rel=1e-9)
    assert abs(got["transient_share_at_window_start"]) < 1e-9
    assert got["first_order"] == pytest.approx(moments.first_order_floor(eta))
    early = plateau_prediction(scalar_problem, eta, np.arange(0, 11))  # still in the transient
    assert early["transient_share_at_window_start"] > 1.0
