"""Known-answer tests of convstudy.complexity: contraction factors, tuned steps, crossings, fits.

Exact cases (closed-form curves, exact spectra) must hold to rounding error; the gradient-descent
runs are deterministic given their seed and are compared with theory to within 1%.
"""

import numpy as np
import pandas as pd
import pytest

from convstudy import simulate
from convstudy.complexity import (
    bootstrap_crossings,
    crossing_points,
    expected_smoothness,
    fit_hitting_slope,
    fit_inverse_time_model,
    gd_contraction,
    inverse_time_model_iterations,
    iterations_per_efold,
    local_hessian,
    max_sample_smoothness,
    nan_ols_slope,
    tuned_inverse_time_k0,
)
from convstudy.problems import LeastSquares, Logistic, get_problem


def _frame(steps, curves, diverged=None) -> pd.DataFrame:
    """A tidy run frame (replicate, step, samples, subopt, diverged) from curves (R, S)."""
    curves = np.asarray(curves, float)
    R, S = curves.shape
    div = np.zeros(R, bool) if diverged is None else np.asarray(diverged)
    return pd.DataFrame(
        {
            "replicate": np.repeat(np.arange(R), S),
            "step": np.tile(steps, R),
            "samples": np.tile(steps, R),
            "subopt": np.where(div[:, None], np.nan, curves).ravel(),
            "diverged": np.repeat(div, S),
        }
    )


# ---- theory ---------------------------------------------------------------------------------
def test_gd_contraction_closed_forms():
    eig = np.array([1.0, 3.0, 10.0])  # mu = 1, L = 10, kappa = 10
    assert gd_contraction(eig, 1 / 10) == pytest.approx((1 - 1 / 10) ** 2)
    assert gd_contraction(eig, 2 / 11) == pytest.approx((9 / 11) ** 2)  # ((k-1)/(k+1))^2
    assert gd_contraction(eig, 0.25) == pytest.approx((1 - 2.5) ** 2)  # above 2/L: > 1
    # 2/(L+mu) minimises the contraction over all fixed steps
    steps = np.linspace(0.01, 0.2, 500)
    best = steps[np.argmin([gd_contraction(eig, s) for s in steps])]
    assert best == pytest.approx(2 / 11, abs=steps[1] - steps[0])


def test_iterations_per_efold_known_values():
    assert iterations_per_efold(np.exp(-2.0)) == pytest.approx(0.5)
    assert iterations_per_efold(1.0) == np.inf
    assert iterations_per_efold(1.5) == np.inf
    assert iterations_per_efold(0.0) == 0.0
    with pytest.raises(ValueError, match="'rho' parameter of iterations_per_efold"):
        iterations_per_efold(-0.1)
    with pytest.raises(ValueError, match="'step' parameter of gd_contraction"):
        gd_contraction([1.0], -1.0)


def test_local_hessian_quadratic_is_its_spectrum():
    q = get_problem("quadratic", dim=6, condition_number=20.0, n_samples=50)
    np.testing.assert_allclose(np.linalg.eigvalsh(local_hessian(q)), q.eigenvalues, rtol=1e-10)


def test_local_hessian_logistic_matches_finite_differences():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((40, 3))
    y = np.where(X @ np.array([1.0, -2.0, 0.5]) + rng.standard_normal(40) > 0, 1.0, -1.0)
    p = Logistic(lam=0.1, X=X, y=y)
    H = local_hessian(p)
    h = 1e-6
    fd = np.stack(
        [
            (p.grad((p.w_star + h * e)[None])[0] - p.grad((p.w_star - h * e)[None])[0]) / (2 * h)
            for e in np.eye(3)
        ]
    )
    np.testing.assert_allclose(H, fd, atol=1e-7)
    with pytest.raises(TypeError, match="'problem' parameter of local_hessian"):
        local_hessian(get_problem("teacher_student", n_samples=20))


def test_max_sample_smoothness_is_largest_sample_curvature():
    X = np.array([[1.0, 0.0], [3.0, 4.0], [0.0, 2.0]])
    ls = LeastSquares(X, np.array([1.0, 0.0, 1.0]), lam=0.5)
    assert max_sample_smoothness(ls) == pytest.approx(25.0 + 0.5)  # ||(3, 4)||^2 + lam
    lg = Logistic(lam=0.5, X=X, y=np.array([1.0, -1.0, 1.0]))
    assert max_sample_smoothness(lg) == pytest.approx(25.0 / 4 + 0.5)
    with pytest.raises(TypeError, match="'problem' parameter of max_sample_smoothness"):
        max_sample_smoothness(get_problem("teacher_student", n_samples=20))


def test_expected_smoothness_limits_and_errors():
    assert expected_smoothness(2.0, 10.0, 1) == 10.0  # one sample: L_max
    assert expected_smoothness(2.0, 10.0, 4) == pytest.approx(2.0 + 8.0 / 4)
    assert expected_smoothness(2.0, 10.0, 7, n_samples=7, replacement=False) == pytest.approx(2)
    assert expected_smoothness(2.0, 10.0, 1, n_samples=7, replacement=False) == pytest.approx(10)
    with pytest.raises(ValueError, match="'L_max' parameter of expected_smoothness"):
        expected_smoothness(2.0, 1.0, 1)
    with pytest.raises(ValueError, match="n_samples"):
        expected_smoothness(2.0, 10.0, 2, replacement=False)
    with pytest.raises(ValueError, match="'batch_size' parameter of expected_smoothness"):
        expected_smoothness(2.0, 10.0, 0)


@pytest.mark.parametrize("replacement", [True, False])
def test_expected_smoothness_bounds_minibatch_gradient_variance(replacement):
    """The defining inequality E||g_b(w) - g_b(w*)||^2 <= 2 L_b (f(w) - f*), computed exactly
    (with replacement: (1 - 1/b)||grad f - grad f*||^2 + (1/b) mean_i ||grad div_i - ...||^2;
    without: the finite-population version) at random points of a least-squares problem."""
    p = get_problem("quadratic", dim=4, condition_number=10.0, n_samples=30, seed=2)
    N, L, L_max = p.n_samples, p.L, max_sample_smoothness(p)
    rng = np.random.default_rng(0)
    all_idx = np.arange(N)[None]
    for w in p.w_star + rng.standard_normal((20, 4)) * 3:
        dg = p.sample_grads(w[None], all_idx)[0] - p.sample_grads(p.w_star[None], all_idx)[0]
        mean_sq = np.mean(np.sum(dg**2, axis=1))
        full_sq = np.sum(dg.mean(axis=0) ** 2)
        gap = p.loss(w[None])[0] - p.f_star
        for b in (1, 3, 10, 30):
            if replacement:
                var = (1 - 1 / b) * full_sq + mean_sq / b
            else:  # E||mean of b distinct||^2 = full^2 + (N - b)/(b (N - 1)) (mean_sq - full_sq)
                var = full_sq + (N - b) / (b * (N - 1)) * (mean_sq - full_sq)
            Lb = expected_smoothness(L, L_max, b, n_samples=N, replacement=replacement)
            assert var <= 2 * Lb * gap * (1 + 1e-12)


def test_tuned_inverse_time_k0():
    assert tuned_inverse_time_k0(1.0, 161.0) == pytest.approx(161.0)
    assert tuned_inverse_time_k0(2.0, 1.0) == 1.0  # at least 1
    with pytest.raises(ValueError, match="'mu' parameter of tuned_inverse_time_k0"):
        tuned_inverse_time_k0(0.0, 1.0)


# ---- crossings and fits ---------------------------------------------------------------------
def test_crossing_points_are_exact_for_exponential_and_power_curves():
    xs = np.array([0.0, 2.0, 5.0, 9.0, 14.0])
    curves = np.exp(-xs)[None] * np.array([[1.0], [2.0]])  # f = C exp(-x), C = 1, 2
    eps = np.exp(-np.array([1.3, 7.7]))
    got = crossing_points(xs, curves, eps)
    np.testing.assert_allclose(got, [[1.3, 7.7], [1.3 + np.log(2), 7.7 + np.log(2)]], rtol=1e-12)
    xs = np.array([1.0, 10.0, 100.0, 1000.0])
    got = crossing_points(xs, 5.0 / xs[None], [5 / 37.0, 5 / 512.0], log_x=True)
    np.testing.assert_allclose(got, [[37.0, 512.0]], rtol=1e-12)


def test_crossing_points_edge_cases():
    xs = np.array([0.0, 1.0, 2.0])
    curves = np.array([[0.5, 0.1, 0.01], [1.0, 0.9, 0.8], [np.nan, np.nan, np.nan]])
    got = crossing_points(xs, curves, [0.6, 0.05])
    assert got[0, 0] == 0.0  # already below eps at the first record
    assert np.isnan(got[1]).all()  # never reaches: censored
    assert np.isnan(got[2]).all()  # diverged: never reaches
    with pytest.raises(ValueError, match="'eps' parameter of crossing_points"):
        crossing_points(xs, curves, [0.0])
    with pytest.raises(ValueError, match="'curves' parameter of crossing_points"):
        crossing_points(xs, curves[:, :2], [0.1])
    with pytest.raises(ValueError, match="strictly increasing"):
        crossing_points(xs[::-1], curves, [0.1])


def test_nan_ols_slope():
    x = np.arange(5.0)
    y = np.array([[1.0, 3.0, np.nan, 7.0, 9.0], [2.0, np.nan, np.nan, np.nan, np.nan]])
    got = nan_ols_slope(x, y)
    assert got[0] == pytest.approx(2.0)
    assert np.isnan(got[1])


def test_fit_hitting_slope_linear_rate_known_answer():
    """f_k = C_r rho^k: the mean curve crosses eps at (ln mean C + ln 1/eps)/ln(1/rho)."""
    rho, steps = 0.9, np.arange(0, 400, 7)
    C = np.random.default_rng(1).uniform(0.5, 2.0, 12)
    frame = _frame(steps, C[:, None] * rho ** steps[None], diverged=[False] * 11 + [True])
    eps = np.geomspace(1e-3, 1e-12, 10)
    fit = fit_hitting_slope(frame, eps, scale="linear", n_boot=200)
    assert fit["slope"] == pytest.approx(iterations_per_efold(rho), rel=1e-9)
    assert fit["ci_low"] <= fit["slope"] <= fit["ci_high"]
    assert fit["ci_high"] - fit["ci_low"] < 1e-6  # the slope does not depend on C
    assert fit["intercept"] == pytest.approx(np.log(C[:11].mean()) / np.log(1 / rho), rel=1e-9)
    assert (fit["n"], fit["n_diverged"], fit["n_eps"]) == (11, 1, 10)


def test_fit_hitting_slope_power_law_and_window():
    steps = np.unique(np.geomspace(1, 1e5, 60).astype(int))
    frame = _frame(steps, np.array([[3.0], [5.0]]) / steps[None])  # f = C / k
    eps = np.geomspace(1e-1, 1e-4, 13)
    fit = fit_hitting_slope(frame, eps, scale="loglog", n_boot=100)
    assert fit["slope"] == pytest.approx(1.0, rel=1e-9)
    narrow = fit_hitting_slope(frame, eps, scale="loglog", window=(1e3, 2e3), n_boot=100)
    assert np.isnan(narrow["slope"]) and narrow["n_eps"] < 3
    with pytest.raises(ValueError, match="'scale' parameter of fit_hitting_slope"):
        fit_hitting_slope(frame, eps, scale="log")


def test_bootstrap_crossings_all_diverged():
    frame = _frame(np.arange(3), np.ones((2, 3)), diverged=[True, True])
    point, boots, n, n_div = bootstrap_crossings(frame, [0.5], n_boot=5)
    assert np.isnan(point).all() and np.isnan(boots).all() and (n, n_div) == (0, 2)


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
        fit = fit_hitting_slope(frame, np.geomspace(1e-5, 1e-10, 11), n_boot=200)
        assert fit["slope"] == pytest.approx(iterations_per_efold(rho), rel=0.01)


def test_fit_inverse_time_model_recovers_coefficients():
    k = np.unique(np.geomspace(1, 1e5, 50).astype(int)).astype(float)
    k0 = 30.0
    c, B = np.array([[4.0, 0.7], [0.5, 2.0]]).T
    curves = c[:, None] / (k + k0) + B[:, None] * (k0 / (k + k0)) ** 2
    curves[0, 3] = np.nan  # ignored
    got = fit_inverse_time_model(k, curves, k0, k_min=5.0)
    np.testing.assert_allclose(got, np.stack([c, B], axis=1), rtol=1e-9)
    assert np.isnan(fit_inverse_time_model(k[:1], curves[:, :1], k0)).all()  # one point


def test_inverse_time_model_iterations_roundtrip():
    c, B, k0 = 4.0, 0.7, 30.0
    eps = np.array([1e-1, 1e-2, 1e-4])
    K = inverse_time_model_iterations(c, B, k0, eps)
    np.testing.assert_allclose(c / (K + k0) + B * (k0 / (K + k0)) ** 2, eps, rtol=1e-10)
    np.testing.assert_allclose(inverse_time_model_iterations(c, 0.0, k0, eps), c / eps - k0)
