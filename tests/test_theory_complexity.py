"""Known-answer tests of convstudy.theory.complexity: contraction factors, smoothness constants,
tuned steps and the inverse-time model.

Exact cases (closed forms, exact spectra) must hold to rounding error.
"""

import numpy as np
import pytest

from convstudy.problems import LeastSquares, Logistic, get_problem
from convstudy.theory.complexity import (
    expected_smoothness,
    gd_contraction,
    inverse_time_model_iterations,
    inverse_time_variance_constant,
    iterations_per_efold,
    local_hessian,
    max_sample_smoothness,
    tuned_inverse_time_k0,
)


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


def test_inverse_time_model_iterations_roundtrip():
    c, B, k0 = 4.0, 0.7, 30.0
    eps = np.array([1e-1, 1e-2, 1e-4])
    K = inverse_time_model_iterations(c, B, k0, eps)
    np.testing.assert_allclose(c / (K + k0) + B * (k0 / (K + k0)) ** 2, eps, rtol=1e-10)
    np.testing.assert_allclose(inverse_time_model_iterations(c, 0.0, k0, eps), c / eps - k0)


def test_inverse_time_variance_constant_closed_form():
    """Rows (1, 0), (-1, 0), (0, 2), (0, -2), labels 1, 1, 2, 2: w* = 0, H = diag(1/2, 2) and
    per-sample gradient variances (1/2, 8) along the axes, so with a = 1/mu = 2:
    c_1 = (a^2/2) (1/2 * 1/2 / (2a/2 - 1) + 2 * 8 / (4a - 1)) = 1/2 + 32/7; c_b = c_1 / b."""
    X = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, -2.0]])
    p = LeastSquares(X, np.array([1.0, 1.0, 2.0, 2.0]))
    assert p.mu == pytest.approx(0.5)
    c1 = inverse_time_variance_constant(p, 1 / p.mu)
    assert c1 == pytest.approx(0.5 + 32 / 7, rel=1e-12)
    assert inverse_time_variance_constant(p, 1 / p.mu, 4) == pytest.approx(c1 / 4, rel=1e-12)
    with pytest.raises(ValueError, match="2 a lambda_min > 1"):
        inverse_time_variance_constant(p, 1.0)  # 2 a mu = 1: slower than 1/k
