"""Tests of the momentum study: tuning, the torch/Nesterov mapping, estimators, analysis."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from convstudy.engine import simulate
from convstudy.optim import get_optimizer
from convstudy.problems import get_problem
from convstudy.runner import run_study
from studies import momentum as M

KAPPAS = [4.0, 30.0, 1e3]


# ---- optimal parameters -------------------------------------------------------------------------
@pytest.mark.parametrize("kappa", KAPPAS)
def test_gradient_descent_tuning(kappa):
    t = M.gradient_descent_tuning(2.0, 2.0 * kappa)
    assert t.lr == pytest.approx(2 / (2.0 + 2.0 * kappa))
    rho = (kappa - 1) / (kappa + 1)
    assert t.rate == pytest.approx(rho**2)
    assert M.spectral_radius(t.lr, 0.0, [2.0, 2.0 * kappa]) == pytest.approx(rho)


@pytest.mark.parametrize("kappa", KAPPAS)
def test_heavy_ball_tuning_is_optimal(kappa):
    mu, L = 1.0, kappa
    t = M.heavy_ball_tuning(mu, L)
    q = (math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)
    assert t.momentum == pytest.approx(q**2)
    assert t.lr == pytest.approx(4 / (math.sqrt(L) + math.sqrt(mu)) ** 2)
    eig = np.linspace(mu, L, 201)
    r = M.spectral_radius(t.lr, t.momentum, eig)
    assert r == pytest.approx(q, rel=1e-6)
    assert t.rate == pytest.approx(r**2, rel=1e-6)
    # any perturbation of the two parameters gives a slower worst-case rate (Polyak 1964)
    for dlr, dm in [(1.05, 1.0), (0.95, 1.0), (1.0, 0.97), (1.0, 1.01)]:
        assert M.spectral_radius(t.lr * dlr, t.momentum * dm, eig) > r + 1e-9


@pytest.mark.parametrize("kappa", KAPPAS)
def test_nesterov_tuning_meets_nesterovs_bound(kappa):
    t = M.nesterov_tuning(1.0, kappa)
    assert t.lr == pytest.approx(1 / kappa)
    assert t.momentum == pytest.approx((math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1))
    # Nesterov (2004) Thm 2.2.3: f - f* shrinks at least by (1 - 1/sqrt(kappa)) per step
    assert t.rate <= 1 - 1 / math.sqrt(kappa) + 1e-12
    # and it is accelerated: per-step rate 1 - O(1/sqrt(kappa)) against GD's 1 - O(1/kappa)
    gd = M.gradient_descent_tuning(1.0, kappa)
    assert -math.log(t.rate) > 0.2 * math.sqrt(kappa) * -math.log(gd.rate)


def test_spectral_radius_matches_simulated_contraction():
    # heavy ball with non-optimal parameters (a real dominant root, 0.9855, for lambda = mu):
    # (||e_200|| / ||e_100||)^(1/100) -> radius; the other roots are below 0.55
    problem = get_problem("quadratic", dim=2, condition_number=50.0, noise=0.0, n_samples=2)
    lr, m = 0.01, 0.3
    frame = simulate(
        problem,
        get_optimizer("momentum", momentum=m),
        lr,
        n_steps=200,
        sampler="full",
        batch_size=2,
        record=[100, 200],
        record_iterates=True,
    )
    w = frame[["w_0", "w_1"]].to_numpy() - problem.w_star
    measured = (np.linalg.norm(w[1]) / np.linalg.norm(w[0])) ** (1 / 100)
    assert measured == pytest.approx(M.spectral_radius(lr, m, problem.eigenvalues), rel=1e-4)


def test_tuning_rejects_bad_input():
    with pytest.raises(ValueError, match="'L' parameter of heavy_ball_tuning"):
        M.heavy_ball_tuning(2.0, 1.0)
    with pytest.raises(ValueError, match="'mu' parameter of nesterov_tuning"):
        M.nesterov_tuning(0.0, 1.0)
    with pytest.raises(ValueError, match="'nesterov' parameter of spectral_radius"):
        M.spectral_radius(0.1, 0.5, [1.0], nesterov="yes")


# ---- torch's parametrisations are the textbook schemes ------------------------------------------
def _quadratic_and_start():
    problem = get_problem("quadratic", dim=5, condition_number=40.0, noise=0.5, n_samples=50)
    return problem, problem.w_star + np.linspace(-1.0, 1.0, 5)


def test_torch_nesterov_is_nesterovs_constant_step_scheme():
    """convstudy/torch's iterates w_k equal Nesterov's search points y_k (scheme III)."""
    problem, w0 = _quadratic_and_start()
    t = M.nesterov_tuning(problem.mu, problem.L)
    frame = simulate(
        problem,
        M.make_optimizer("nesterov", t),
        t.lr,
        n_steps=30,
        sampler="full",
        batch_size=problem.n_samples,
        w0=w0,
        record="all",
        record_iterates=True,
    )
    ours = frame[[f"w_{j}" for j in range(5)]].to_numpy()
    x_prev, y = w0.copy(), w0.copy()  # x_0 = y_0
    ys = [y.copy()]
    for _ in range(30):
        x = y - t.lr * problem.grad(y[None])[0]
        y = x + t.momentum * (x - x_prev)
        x_prev = x
        ys.append(y.copy())
    np.testing.assert_allclose(ours, np.array(ys), rtol=1e-10, atol=1e-12)


def test_torch_heavy_ball_is_polyaks_two_step_recursion():
    problem, w0 = _quadratic_and_start()
    t = M.heavy_ball_tuning(problem.mu, problem.L)
    frame = simulate(
        problem,
        M.make_optimizer("heavy_ball", t),
        t.lr,
        n_steps=25,
        sampler="full",
        batch_size=problem.n_samples,
        w0=w0,
        record="all",
        record_iterates=True,
    )
    ours = frame[[f"w_{j}" for j in range(5)]].to_numpy()
    w_prev, w = w0.copy(), w0.copy()
    ref = [w.copy()]
    for _ in range(25):
        w, w_prev = w - t.lr * problem.grad(w[None])[0] + t.momentum * (w - w_prev), w
        ref.append(w.copy())
    np.testing.assert_allclose(ours, np.array(ref), rtol=1e-10, atol=1e-12)


# ---- budgets, grids and estimators --------------------------------------------------------------
def test_gd_budget_is_a_guarantee():
    """With margin 1 the gradient-descent budget reaches the target from any start."""
    problem = get_problem("quadratic", dim=10, condition_number=300.0, noise=0.0, n_samples=10)
    t = M.gradient_descent_tuning(problem.mu, problem.L)
    n = M.iteration_budget(t.rate, 1e-6, 300.0, 1.0)
    frame = simulate(
        problem,
        "sgd",
        t.lr,
        n_steps=n - 20,
        sampler="full",
        batch_size=10,
        n_replicates=30,
        w0="random",
        record=[0, n - 20],
    )
    rel = frame.groupby("replicate")["subopt"].agg(lambda s: s.iloc[-1] / s.iloc[0])
    assert (rel <= 1e-6).all()


def test_geometric_record_grid():
    grid = M.geometric_record_grid(5000)
    assert grid[0] == 0 and grid[-1] == 5000
    assert np.all(np.diff(grid) > 0)
    assert np.array_equal(grid[:50], np.arange(50))  # dense start: every step
    big = grid[grid >= 1000]  # ratio 1.01 up to rounding to integers
    assert np.max(big[1:] / big[:-1]) < 1.0111


def test_update_statistics_known_answer():
    # two replicates moving by known increments: ||dw||^2 = 1 + 4 = 5 and 0
    steps = np.arange(5, 9)
    frame = pd.DataFrame(
        {
            "replicate": np.repeat([0, 1], 4),
            "step": np.tile(steps, 2),
            "w_0": np.concatenate([np.arange(4.0), np.zeros(4)]),
            "w_1": np.concatenate([2 * np.arange(4.0), np.ones(4)]),
            "subopt": np.concatenate([np.full(4, 2.0), np.full(4, 4.0)]),
            "diverged": False,
        }
    )
    out = M.update_statistics(frame, dim=2, scale=2.5)
    np.testing.assert_allclose(out["update_var"], [2.0, 0.0])
    np.testing.assert_allclose(out["subopt_mean"], [2.0, 4.0])
    with pytest.raises(ValueError, match="consecutive"):
        M.update_statistics(frame[frame["step"] != 6], dim=2, scale=1.0)


def test_gradient_noise_trace_brute_force():
    problem = get_problem("quadratic", dim=3, condition_number=5.0, noise=1.0, n_samples=40)
    w = problem.w_star + 0.1
    G = np.array([problem.sample_grads(w[None], np.array([[i]]))[0, 0] for i in range(40)])
    expected = np.trace(np.cov(G.T, ddof=0))
    assert M.gradient_noise_trace(problem, w) == pytest.approx(expected)


# ---- the study ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def quick_result(tmp_path_factory):
    return run_study(M.study, quick=True, replicates=6, out=tmp_path_factory.mktemp("reports"))


def test_study_writes_tables_figures_and_checks(quick_result):
    folder = quick_result.folder
    for stem in ("kappa_scaling", "trajectories", "update_variance"):
        assert (folder / "figures" / f"{stem}.png").exists()
    for stem in quick_result.analysis.tables:
        assert (folder / "tables" / f"{stem}.csv").exists()
    ids = [c.id for c in quick_result.analysis.checks]
    assert ids == [
        "6a-gd-kappa-slope",
        "6b-heavy-ball-kappa-slope",
        "6c-nesterov-kappa-slope",
        "6d-momentum-update-variance",
    ]
    assert all(c.claim == 6 and c.n_replicates == 6 for c in quick_result.analysis.checks)
    assert (folder / "claims.csv").exists()


def test_study_measures_the_kappa_slopes(quick_result):
    """Even with 6 starts and kappa up to 10^3 the slopes sit in their intervals."""
    slopes = quick_result.analysis.tables["kappa_slopes"]
    s = slopes[slopes["checked"]].set_index("method")
    assert (s["metric"] == M.CHECK_METRIC).all() and np.allclose(s["eps"], M.CHECK_EPS)
    assert 0.85 <= s.loc["gd", "ci_low"] and s.loc["gd", "ci_high"] <= 1.15
    for m in ("heavy_ball", "nesterov"):
        assert 0.4 <= s.loc[m, "ci_low"] and s.loc[m, "ci_high"] <= 0.65
    assert (slopes["n_censored"] == 0).all()
    hits = quick_result.analysis.tables["kappa_hitting_times"]
    big = hits[(hits["kappa"] == hits["kappa"].max()) & np.isclose(hits["eps"], M.CHECK_EPS)]
    big = big[big["metric"] == M.CHECK_METRIC]
    it = big.set_index("method")["mean_iterations"]
    assert it["heavy_ball"] < it["gd"] / 5 and it["nesterov"] < it["gd"] / 5


def test_study_trajectories_oscillate_and_damp(quick_result):
    t = quick_result.analysis.tables["trajectory_summary"].set_index("method")
    assert t.loc["gd", "steep_sign_changes"] == t.loc["gd", "steps"]  # zig-zag every step
    # GD's steep coordinate decays like ((kappa-1)/(kappa+1))^k; momentum's far faster
    rho = (30 - 1) / (30 + 1)
    assert t.loc["gd", "steep_abs_after_20"] == pytest.approx(
        abs(M.TRAJECTORY_START[1]) * rho**20, rel=1e-6
    )
    assert t.loc["heavy_ball", "steep_abs_after_20"] < t.loc["gd", "steep_abs_after_20"] / 5
    assert t.loc["heavy_ball", "final_subopt"] < 1e-3 * t.loc["gd", "final_subopt"]


def test_study_momentum_reduces_update_variance(quick_result):
    table = quick_result.analysis.tables["update_variance_by_momentum"].set_index("momentum")
    assert table.loc[0.9, "ratio_high"] < 1
    # ratios fall with beta and sit near (1 - beta)/(1 + beta)
    assert np.all(np.diff(table["ratio_to_sgd"].to_numpy()) < 0)
    ratio = table.loc[0.9, "ratio_to_sgd"]
    assert 0.5 * table.loc[0.9, "theory_ratio"] < ratio < 1.5 * table.loc[0.9, "theory_ratio"]


def test_compute_rejects_an_unknown_part():
    with pytest.raises(ValueError, match="'part' parameter of momentum.compute"):
        M.compute({"part": "nope"}, 0, np.arange(2))
