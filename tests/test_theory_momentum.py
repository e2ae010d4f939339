"""Known-answer tests of convstudy.theory.momentum: optimal tunings, spectral radii, budgets, and
that torch's parametrisations of heavy ball and Nesterov are the textbook schemes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from convstudy.engine import simulate
from convstudy.optim import get_optimizer
from convstudy.problems import get_problem
from convstudy.theory.momentum import (
    TUNINGS,
    error_multipliers,
    gradient_descent_tuning,
    heavy_ball_tuning,
    iteration_budget,
    nesterov_tuning,
    predicted_hitting_time,
    predicted_iterations,
    spectral_radius,
    stationary_update_second_moment,
    update_second_moments,
)

KAPPAS = [4.0, 30.0, 1e3]


@pytest.mark.parametrize("kappa", KAPPAS)
def test_gradient_descent_tuning(kappa):
    t = gradient_descent_tuning(2.0, 2.0 * kappa)
    assert t.lr == pytest.approx(2 / (2.0 + 2.0 * kappa))
    rho = (kappa - 1) / (kappa + 1)
    assert t.rate == pytest.approx(rho**2)
    assert spectral_radius(t.lr, 0.0, [2.0, 2.0 * kappa]) == pytest.approx(rho)
    assert t.optimizer == "sgd" and t.momentum == 0.0


@pytest.mark.parametrize("kappa", KAPPAS)
def test_heavy_ball_tuning_is_optimal(kappa):
    mu, L = 1.0, kappa
    t = heavy_ball_tuning(mu, L)
    q = (math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)
    assert t.momentum == pytest.approx(q**2)
    assert t.lr == pytest.approx(4 / (math.sqrt(L) + math.sqrt(mu)) ** 2)
    eig = np.linspace(mu, L, 201)
    r = spectral_radius(t.lr, t.momentum, eig)
    assert r == pytest.approx(q, rel=1e-6)
    assert t.rate == pytest.approx(r**2, rel=1e-6)
    # any perturbation of the two parameters gives a slower worst-case rate (Polyak 1964)
    for dlr, dm in [(1.05, 1.0), (0.95, 1.0), (1.0, 0.97), (1.0, 1.01)]:
        assert spectral_radius(t.lr * dlr, t.momentum * dm, eig) > r + 1e-9


@pytest.mark.parametrize("kappa", KAPPAS)
def test_nesterov_tuning_meets_nesterovs_bound(kappa):
    t = nesterov_tuning(1.0, kappa)
    assert t.lr == pytest.approx(1 / kappa)
    assert t.momentum == pytest.approx((math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1))
    # Nesterov (2004) Thm 2.2.3: f - f* shrinks at least by (1 - 1/sqrt(kappa)) per step
    assert t.rate <= 1 - 1 / math.sqrt(kappa) + 1e-12
    # and it is accelerated: per-step rate 1 - O(1/sqrt(kappa)) against GD's 1 - O(1/kappa)
    gd = gradient_descent_tuning(1.0, kappa)
    assert -math.log(t.rate) > 0.2 * math.sqrt(kappa) * -math.log(gd.rate)


def test_tunings_name_registered_optimizers():
    for method, tuning in TUNINGS.items():
        t = tuning(1.0, 10.0)
        opt = get_optimizer(t.optimizer, **({"momentum": t.momentum} if t.momentum else {}))
        assert opt.name == t.optimizer, method


def test_spectral_radius_matches_simulated_contraction():
    # heavy ball with non-optimal parameters (a real dominant root, 0.9855, for lambda = mu):
    # (||e_200|| / ||e_100||)^(1/100) -> radius; the other roots are below 0.55
    problem = get_problem("quadratic", dim=2, condition_number=50.0, noise=0.0, n_samples=2)
    lr, m = 0.01, 0.3
    opt = get_optimizer("momentum", momentum=m)
    frame = simulate(problem, opt, lr, n_steps=200, sampler="full", batch_size=2,
                     record=[100, 200], record_iterates=True)  # fmt: skip
    w = frame[["w_0", "w_1"]].to_numpy() - problem.w_star
    measured = (np.linalg.norm(w[1]) / np.linalg.norm(w[0])) ** (1 / 100)
    assert measured == pytest.approx(spectral_radius(lr, m, problem.eigenvalues), rel=1e-4)


def test_bad_input_names_the_parameter():
    with pytest.raises(ValueError, match="'L' parameter of heavy_ball_tuning"):
        heavy_ball_tuning(2.0, 1.0)
    with pytest.raises(ValueError, match="'mu' parameter of nesterov_tuning"):
        nesterov_tuning(0.0, 1.0)
    with pytest.raises(ValueError, match="'nesterov' parameter of spectral_radius"):
        spectral_radius(0.1, 0.5, [1.0], nesterov="yes")
    with pytest.raises(ValueError, match="'rate' parameter of predicted_iterations"):
        predicted_iterations(1.5, 1e-3)


# ---- torch's parametrisations are the textbook schemes ------------------------------------------
def _quadratic_and_start():
    problem = get_problem("quadratic", dim=5, condition_number=40.0, noise=0.5, n_samples=50)
    return problem, problem.w_star + np.linspace(-1.0, 1.0, 5)


def _iterates(problem, w0, tuning, n_steps: int) -> np.ndarray:
    frame = simulate(problem, get_optimizer(tuning.optimizer, momentum=tuning.momentum),
                     tuning.lr, n_steps=n_steps, sampler="full", batch_size=problem.n_samples,
                     w0=w0, record="all", record_iterates=True)  # fmt: skip
    return frame[[f"w_{j}" for j in range(problem.dim)]].to_numpy()


def test_torch_nesterov_is_nesterovs_constant_step_scheme():
    """convstudy/torch's iterates w_k equal Nesterov's search points y_k (scheme III)."""
    problem, w0 = _quadratic_and_start()
    t = nesterov_tuning(problem.mu, problem.L)
    x_prev, y = w0.copy(), w0.copy()  # x_0 = y_0
    ys = [y.copy()]
    for _ in range(30):
        x = y - t.lr * problem.grad(y[None])[0]
        y = x + t.momentum * (x - x_prev)
        x_prev = x
        ys.append(y.copy())
    np.testing.assert_allclose(_iterates(problem, w0, t, 30), np.array(ys), rtol=1e-10, atol=1e-12)


def test_torch_heavy_ball_is_polyaks_two_step_recursion():
    problem, w0 = _quadratic_and_start()
    t = heavy_ball_tuning(problem.mu, problem.L)
    w_prev, w = w0.copy(), w0.copy()
    ref = [w.copy()]
    for _ in range(25):
        w, w_prev = w - t.lr * problem.grad(w[None])[0] + t.momentum * (w - w_prev), w
        ref.append(w.copy())
    np.testing.assert_allclose(_iterates(problem, w0, t, 25), np.array(ref), rtol=1e-10, atol=1e-12)


def test_gd_budget_is_a_guarantee():
    """With margin 1 the gradient-descent budget reaches the target from any start."""
    problem = get_problem("quadratic", dim=10, condition_number=300.0, noise=0.0, n_samples=10)
    t = gradient_descent_tuning(problem.mu, problem.L)
    n = iteration_budget(t.rate, 1e-6, 300.0, 1.0)
    frame = simulate(problem, "sgd", t.lr, n_steps=n - 20, sampler="full", batch_size=10,
                     n_replicates=30, w0="random", record=[0, n - 20])  # fmt: skip
    rel = frame.groupby("replicate")["subopt"].agg(lambda s: s.iloc[-1] / s.iloc[0])
    assert (rel <= 1e-6).all()
    assert predicted_iterations(t.rate, 1e-6) == pytest.approx(math.log(1e6) / -math.log(t.rate))


# ---- exact error curves and SGD update moments -------------------------------------------------
@pytest.mark.parametrize("method", list(TUNINGS))
def test_error_multipliers_are_the_simulated_error_in_the_eigenbasis(method):
    problem, w0 = _quadratic_and_start()
    t = TUNINGS[method](problem.mu, problem.L)
    V = np.linalg.eigh(problem.X.T @ problem.X / problem.n_samples)[1]
    frame = simulate(
        problem,
        get_optimizer(t.optimizer, **({"momentum": t.momentum} if t.momentum else {})),
        t.lr,
        n_steps=40,
        sampler="full",
        batch_size=problem.n_samples,
        w0=w0,
        record="all",
        record_iterates=True,
    )
    u = (frame[[f"w_{j}" for j in range(5)]].to_numpy() - problem.w_star) @ V
    p = error_multipliers(t.lr, t.momentum, problem.eigenvalues, 40, nesterov=method == "nesterov")
    np.testing.assert_allclose(u, p * u[0], rtol=1e-9, atol=1e-12)


def test_predicted_hitting_time_known_answers():
    # one eigenvalue, gradient descent: p(k)^2 = (1 - lr lambda)^(2k)
    k = math.ceil(math.log(1e-6) / (2 * math.log(0.5)))
    assert predicted_hitting_time(0.5, 0.0, [1.0], 1e-6, n_steps=100) == k
    assert predicted_hitting_time(0.5, 0.0, [1.0], 1e-6, n_steps=100, steps=[0, 5, 50]) == 50
    assert predicted_hitting_time(0.5, 0.0, [1.0], 1e-6, n_steps=k - 1) == math.inf
    # the weights pick the eigen-directions: all weight on the fast one hits at once
    lam = [1.0, 100.0]
    assert predicted_hitting_time(0.01, 0.0, lam, 1e-6, n_steps=5000, weights=[0, 1]) == 1
    # heavy ball's double root: the transient k q^k makes it slower than ln(1/eps)/-ln(q^2)
    t = heavy_ball_tuning(1.0, 1e3)
    hit = predicted_hitting_time(t.lr, t.momentum, [1.0, 1e3], 1e-6, n_steps=5000)
    assert hit > predicted_iterations(t.rate, 1e-6) + 10
    with pytest.raises(ValueError, match="'weights' parameter of predicted_hitting_time"):
        predicted_hitting_time(0.5, 0.0, [1.0], 1e-6, n_steps=10, weights=[1.0, 2.0])


def _noisy_quadratic():
    problem = get_problem("quadratic", dim=4, condition_number=10.0, noise=1.0, n_samples=40)
    return problem, problem.y - problem.X @ problem.w_star


@pytest.mark.parametrize(
    "optimizer, lr, m", [("sgd", 0.05, 0.0), ("momentum", 0.01, 0.8), ("nesterov", 0.02, 0.5)]
)
def test_update_second_moments_match_monte_carlo(optimizer, lr, m):
    """E||w_k - w_(k-1)||^2 from w*: exact moments against 6000 one-sample SGD runs (5 SE)."""
    problem, r = _noisy_quadratic()
    opt = get_optimizer(optimizer, **({"momentum": m} if m else {}))
    frame = simulate(
        problem,
        opt,
        lr,
        n_steps=30,
        sampler="replacement",
        n_replicates=6000,
        w0=problem.w_star,
        record=[0, 1, 2, 9, 10, 29, 30],
        record_iterates=True,
        seed=3,
    )
    w = frame[[f"w_{j}" for j in range(4)]].to_numpy().reshape(6000, 7, 4)
    sq = np.sum(np.diff(w, axis=1) ** 2, axis=2)[:, [0, 1, 3, 5]]  # steps 1, 2, 10, 30
    exact = update_second_moments(problem.X, r, lr, m, 30, nesterov=optimizer == "nesterov")
    se = sq.std(axis=0, ddof=1) / np.sqrt(6000)
    assert np.all(np.abs(sq.mean(axis=0) - exact[[0, 1, 9, 29]]) < 5 * se)
    tr_q0 = np.sum(r**2 * np.sum(problem.X**2, axis=1)) / 40  # first step: lr^2 c1^2 tr Q0
    assert exact[0] == pytest.approx((lr * (1 + m * (optimizer == "nesterov"))) ** 2 * tr_q0)


def test_stationary_update_moment_is_the_limit_and_the_small_step_ratio():
    problem, r = _noisy_quadratic()
    for m, nesterov in [(0.0, False), (0.9, False), (0.5, True)]:
        lr = 0.02 * (1 - m)
        seq = update_second_moments(problem.X, r, lr, m, 3000, nesterov=nesterov)
        st = stationary_update_second_moment(problem.X, r, lr, m, nesterov=nesterov)
        assert seq[-1] == pytest.approx(st, rel=1e-8)
    # at a small effective step eta the ratio momentum / SGD tends to (1 - beta)/(1 + beta)
    eta, beta = 1e-4, 0.8
    ratio = stationary_update_second_moment(problem.X, r, eta * (1 - beta), beta) / (
        stationary_update_second_moment(problem.X, r, eta, 0.0)
    )
    assert ratio == pytest.approx((1 - beta) / (1 + beta), rel=2e-3)


def test_update_moments_refuse_bad_input():
    problem, r = _noisy_quadratic()
    with pytest.raises(ValueError, match="residuals.*at w\\*"):
        update_second_moments(problem.X, r + 1.0, 0.01, 0.5, 10)
    with pytest.raises(ValueError, match="do not converge"):
        stationary_update_second_moment(problem.X, r, 0.25, 0.0)
