import numpy as np
import pytest

from convstudy.problems import LeastSquares, Logistic, Quadratic, Ridge, get_problem, load_dataset


def _fd_grad(problem, w, idx, h=1e-6):
    """Central finite differences of the mean per-sample loss over idx, per replicate."""
    g = np.zeros_like(w)
    for j in range(w.shape[1]):
        e = np.zeros_like(w)
        e[:, j] = h
        g[:, j] = (
            problem.sample_losses(w + e, idx).mean(1) - problem.sample_losses(w - e, idx).mean(1)
        ) / (2 * h)
    return g


PROBLEMS = [
    lambda: Quadratic(6, condition_number=50, noise=0.5, n_samples=40),
    lambda: Ridge(lam=0.1),
    lambda: Logistic(lam=0.05),
]


@pytest.mark.parametrize("make", PROBLEMS)
def test_gradients_match_finite_differences(make):
    p = make()
    rng = np.random.default_rng(0)
    w = rng.standard_normal((3, p.dim)) * 0.3
    idx = rng.integers(0, p.n_samples, (3, 5))
    g = p.batch_grad(w, idx)
    np.testing.assert_allclose(g, _fd_grad(p, w, idx), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(p.sample_grads(w, idx).mean(1), g, rtol=1e-12, atol=1e-14)
    full = np.broadcast_to(np.arange(p.n_samples), (3, p.n_samples))
    np.testing.assert_allclose(p.grad(w), _fd_grad(p, w, full), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(p.loss(w), p.sample_losses(w, full).mean(1), rtol=1e-12)


@pytest.mark.parametrize("make", PROBLEMS)
def test_optimum_is_certified(make):
    p = make()
    cert = p.certificate()
    assert cert.grad_norm <= 1e-10
    assert cert.gap_bound <= 1e-18
    assert p.f_star == pytest.approx(p.loss(p.w_star[None])[0], abs=0)
    # any other point is worse
    w = p.w_star[None] + 1e-3
    assert p.loss(w)[0] > p.f_star


def test_quadratic_has_the_chosen_spectrum():
    p = Quadratic(8, condition_number=1e3, mu=0.5, n_samples=100, seed=3)
    H = p.X.T @ p.X / p.n_samples
    eig = np.linalg.eigvalsh(H)
    assert eig[0] == pytest.approx(0.5, rel=1e-10) and eig[-1] == pytest.approx(500, rel=1e-10)
    assert (p.mu, p.L) == (pytest.approx(0.5), pytest.approx(500))


def test_logistic_constants_bound_the_hessian():
    p = Logistic(lam=0.01)
    eig = np.linalg.eigvalsh(p._hessian(p.w_star))
    assert p.mu <= eig[0] + 1e-12 and eig[-1] <= p.L + 1e-12


def test_datasets_are_standardised_and_bundled():
    X, y = load_dataset("breast_cancer")
    assert X.shape == (569, 30) and set(np.unique(y)) == {-1.0, 1.0}
    np.testing.assert_allclose(X.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(X.std(0), 1, atol=1e-12)
    X, y = load_dataset("diabetes")
    assert X.shape == (442, 10) and abs(y.mean()) < 1e-12


def test_rank_deficient_least_squares_is_convex_not_strongly():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 2)) @ rng.standard_normal((2, 4))  # rank 2 < d = 4
    p = LeastSquares(X, rng.standard_normal(30))
    assert p.convexity == "convex" and p.mu == 0.0
    assert np.linalg.norm(p.grad(p.w_star[None])) < 1e-10


@pytest.mark.parametrize(
    "call, err, match",
    [
        (lambda: Quadratic(0), ValueError, "'dim' parameter of Quadratic"),
        (lambda: Quadratic(5, condition_number=0.5), ValueError, "'condition_number'"),
        (lambda: Quadratic(5, n_samples=3), ValueError, "'n_samples'"),
        (lambda: Quadratic(5, noise=-1.0), ValueError, "'noise'"),
        (lambda: Ridge(lam=0.0), ValueError, "'lam' parameter of Ridge"),
        (lambda: LeastSquares([[1.0, np.nan]], [1.0]), ValueError, "'X' parameter.*finite"),
        (lambda: LeastSquares([[1.0, 2.0]], [1.0, 2.0]), ValueError, "'y' parameter.*shape"),
        (lambda: Logistic(X=np.ones((3, 2)), y=[0.0, 1.0, 1.0]), ValueError, "-1 and \\+1"),
        (lambda: get_problem("mnist"), ValueError, "'problem' parameter of get_problem"),
        (lambda: load_dataset("iris"), ValueError, "'name' parameter of load_dataset"),
    ],
)
def test_bad_arguments(call, err, match):
    with pytest.raises(err, match=match):
        call()
