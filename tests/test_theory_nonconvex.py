"""Known-answer tests of convstudy.theory.nonconvex: Ghadimi & Lan's bound, the geometric
strata average, Kramers' rate and the constants measured along a run."""

from __future__ import annotations

import math

import numpy as np
import pytest

from convstudy.problems import get_problem
from convstudy.theory import nonconvex as T


def test_ghadimi_lan_bound_formula_and_limit():
    # B = (2 gap + L s2 K g^2) / (K g (2 - L g)); g = c / sqrt(K): sqrt(K) B -> gap/c + L s2 c/2
    K, g, L, s2, gap = 400, 0.05, 2.0, 3.0, 0.5
    expected = (2 * gap + L * s2 * K * g * g) / (K * g * (2 - L * g))
    assert T.ghadimi_lan_bound(K, g, L, s2, gap) == pytest.approx(expected)
    K, c = 1e10, 1.0
    limit = gap / c + L * s2 * c / 2
    assert math.sqrt(K) * T.ghadimi_lan_bound(K, c / math.sqrt(K), L, s2, gap) == pytest.approx(
        limit, rel=1e-4
    )


def test_ghadimi_lan_bound_holds_on_a_noisy_quadratic():
    # f = L w^2 / 2 with oracle noise s2: m_{k+1} = (1 - gL)^2 m_k + g^2 s2 exactly, and
    # E||grad f(w_k)||^2 = L^2 m_k; its average over k < K stays below B(K) for every K
    L, s2, w0 = 3.0, 2.0, 1.5
    for K in (10, 100, 1000, 10000):
        g, m, total = 1 / math.sqrt(K), w0**2, 0.0
        for _ in range(K):
            total += L * L * m
            m = (1 - g * L) ** 2 * m + g * g * s2
        assert total / K <= T.ghadimi_lan_bound(K, g, L, s2, L * w0**2 / 2)


@pytest.mark.parametrize(
    "args, match",
    [
        ((100, 1.0, 2.0, 1.0, 1.0), "step < 2/L"),
        ((0, 0.1, 2.0, 1.0, 1.0), "'K' parameter of ghadimi_lan_bound"),
        ((100, 0.1, 2.0, -1.0, 1.0), "'sigma2' parameter"),
        ((100, 0.1, math.nan, 1.0, 1.0), "'L' parameter"),
    ],
)
def test_ghadimi_lan_bound_rejects_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        T.ghadimi_lan_bound(*args)


def test_geometric_strata_weights_and_exactness():
    steps, weights = T.geometric_strata(25, 100)  # 25 ln 25 < 99: every step, weight 1/K
    np.testing.assert_array_equal(steps, np.arange(25))
    np.testing.assert_allclose(weights, 1 / 25)
    K = 10_000
    steps, weights = T.geometric_strata(K, 100)
    assert weights.sum() == pytest.approx(1.0) and steps[0] == 0 and steps[-1] <= K - 1
    assert np.all(np.diff(steps) > 0) and steps.size < 100
    # g_k = 1/sqrt(k + 1): the midpoint estimate is within 0.5% of the exact average
    exact = np.mean(1 / np.sqrt(np.arange(K) + 1.0))
    assert weights @ (1 / np.sqrt(steps + 1.0)) == pytest.approx(exact, rel=0.005)
    with pytest.raises(ValueError, match="geometric_strata needs K >= 1"):
        T.geometric_strata(0, 100)


def test_kramers_rate_temperature_and_escaped_fraction():
    assert T.sgd_temperature(0.1, 2.0, 4) == pytest.approx(0.1 * 4 / 8)
    rate = T.kramers_rate(0.5, 4.0, -1.0, 0.25)
    assert rate == pytest.approx(math.sqrt(4.0) / (2 * math.pi) * math.exp(-2.0))
    assert T.kramers_rate(0.5, 4.0, -1.0, 0.0) == 0.0
    assert T.escaped_fraction(rate, 0.1, 1000) == pytest.approx(1 - math.exp(-100 * rate))
    with pytest.raises(ValueError, match="f''\\(x_l\\) > 0 > f''\\(x_m\\)"):
        T.kramers_rate(0.5, 4.0, 1.0, 0.25)
    with pytest.raises(ValueError, match="'T' parameter of kramers_rate"):
        T.kramers_rate(0.5, 4.0, -1.0, -0.1)


def test_oracle_variance_and_hessian_norm_on_the_double_well():
    # per-sample gradients differ from grad f by noise * z_i, z standardised: variance noise^2;
    # f'' = 12 w^2 - 4 in one coordinate
    p = get_problem("double_well", tilt=0.8, noise=2.0, n_samples=200)
    assert not hasattr(p, "gradient_variance")  # oracle_variance's generic path
    w = np.array([[0.0], [0.5], [-1.0], [np.nan]])
    np.testing.assert_allclose(T.oracle_variance(p, w)[:3], 4.0, rtol=1e-10)
    assert np.isnan(T.oracle_variance(p, w)[3])
    h = T.hessian_norm(p, w, rows=2)
    np.testing.assert_allclose(h[:2], np.abs(12 * w[:2, 0] ** 2 - 4), rtol=1e-6)
    assert np.isnan(h[2:]).all()


class GradOnly:
    """A problem seen through ``grad`` alone: hessian_norm must fall back to differences."""

    def __init__(self, problem):
        self.grad = problem.grad


def test_hessian_norm_double_well_by_finite_differences():
    # the fallback path, unchanged: f'' = 12 w^2 - 4 from central differences of grad
    p = get_problem("double_well", tilt=0.8, noise=2.0, n_samples=200)
    w = np.array([[0.0], [np.nan], [0.5], [-1.0]])
    h = T.hessian_norm(GradOnly(p), w, rows=2)
    np.testing.assert_allclose(h[[0, 2]], np.abs(12 * w[[0, 2], 0] ** 2 - 4), rtol=1e-6)
    assert np.isnan(h[[1, 3]]).all()


def network_points(name: str, seed: int, bad: float):
    """A study network and 10 points near random starts, rows 1 and 4 not finite (NaN, ``bad``);
    returns the problem, the points and the indices of the finite rows."""
    p = get_problem(name)
    rng = np.random.default_rng(seed)
    w = np.stack([p.random_initial_point(rng) for _ in range(10)])
    w = w + 0.3 * rng.standard_normal(w.shape)
    w[1, 3], w[4, 0] = np.nan, bad
    return p, w, np.array([0, 2, 3, 5, 6, 7, 8, 9])


@pytest.mark.parametrize("name", ["teacher_student", "tanh_network"])
def test_hessian_norm_exact_agrees_with_finite_differences(name):
    # the study's networks (N = 500, d = 25 and 33) at 10 points, two of them not finite. The
    # exact and differenced Hessians differ by < 1e-9 max|H| per entry (eps^2 truncation plus
    # eps_mach / eps rounding at eps = 1e-5; tests/test_problems_nonlinear.py), so their largest
    # |eigenvalues| differ by at most ||dH||_2 <= d max|dH| < 4e-8 relative; asserted 1e-6,
    # measured 5e-13 to 2e-11 (max|dH| / max|H| = 1.1e-10 and 1.8e-10).
    p, w, finite = network_points(name, seed=11, bad=np.inf)
    exact, fd = T.hessian_norm(p, w), T.hessian_norm(GradOnly(p), w)  # rows = 8 finite rows
    assert np.isfinite(exact[finite]).all() and np.isnan(np.delete(exact, finite)).all()
    np.testing.assert_array_equal(np.isnan(fd), np.isnan(exact))
    np.testing.assert_allclose(exact[finite], fd[finite], rtol=1e-6)
    # rows counts finite rows only; rows past it, and every row of an all-NaN w, are NaN
    first3 = np.where(np.arange(10) <= 3, exact, np.nan)  # rows 0, 2, 3
    np.testing.assert_allclose(T.hessian_norm(p, w, rows=3), first3, rtol=1e-12)
    assert np.isnan(T.hessian_norm(p, np.full((3, p.dim), np.nan))).all()


class SampleGradsOnly:
    """A problem seen through ``sample_grads`` alone: oracle_variance must centre them."""

    def __init__(self, problem):
        self.n_samples, self.sample_grads = problem.n_samples, problem.sample_grads


class FakeVariance:
    """A ``gradient_variance`` that returns the row sums and records the rows it was given."""

    n_samples = 3

    def __init__(self):
        self.seen = []

    def gradient_variance(self, w):
        self.seen.append(w.copy())
        return w.sum(axis=1)


def test_oracle_variance_uses_gradient_variance_on_finite_rows_only():
    fake, w = FakeVariance(), np.array([[1.0, 2.0], [np.nan, 0.0], [3.0, 4.0], [np.inf, 1.0]])
    np.testing.assert_array_equal(T.oracle_variance(fake, w), [3.0, np.nan, 7.0, np.nan])
    np.testing.assert_array_equal(fake.seen[0], w[[0, 2]])
    np.testing.assert_array_equal(T.oracle_variance(fake, np.full((2, 2), np.nan)), [np.nan] * 2)
    assert len(fake.seen) == 1  # not called when no row is finite


@pytest.mark.parametrize("name", ["teacher_student", "tanh_network"])
def test_oracle_variance_networks_agree_with_the_generic_path(name):
    # the study's networks at 10 points, two of them not finite: the networks' own
    # gradient_variance and the centred sample_grads (R, N, d) agree to rounding (derivation
    # in tests/test_problems_nonlinear.py: < 5e-13 relative; asserted 1e-12, measured 5.6e-16
    # and 1.0e-15); the non-finite rows are NaN on both paths, and an all-NaN w gives NaN (the
    # generic path used to fail there: the networks' sample_grads do not take zero rows).
    p, w, finite = network_points(name, seed=12, bad=-np.inf)
    fast, generic = T.oracle_variance(p, w), T.oracle_variance(SampleGradsOnly(p), w)
    assert np.all(fast[finite] > 0) and np.isnan(np.delete(fast, finite)).all()
    np.testing.assert_array_equal(np.isnan(generic), np.isnan(fast))
    np.testing.assert_allclose(fast[finite], generic[finite], rtol=1e-12)
    np.testing.assert_array_equal(fast[finite], p.gradient_variance(w[finite]))
    for problem in (p, SampleGradsOnly(p)):
        assert np.isnan(T.oracle_variance(problem, np.full((3, p.dim), np.nan))).all()
