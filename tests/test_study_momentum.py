"""Tests of the momentum study: its conditions, observables, cells and measured numbers.

The study's numbers are checked at quick scale (20 random starts, kappa up to 10^3) with margins
wider than their bootstrap CIs; the tuning theory is tested in test_theory_momentum.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from convstudy.studies import momentum as M

from convstudy.engine import record_steps, simulate
from convstudy.optim import get_optimizer
from convstudy.runner import run_study
from convstudy.study import Scale, build_problem


def _iterates(cond: dict, seed: int, replicates, record, w0) -> pd.DataFrame:
    """The condition's run recorded with every iterate (the reference for the observables)."""
    opt = get_optimizer(
        cond["optimizer"], **({"momentum": m} if (m := cond.get("optimizer.momentum")) else {})
    )
    return simulate(build_problem(cond), opt, cond["schedule.eta0"], n_steps=cond["n_steps"],
                    sampler=cond["sampler"], batch_size=cond.get("batch_size", 1),
                    replicates=replicates, seed=seed, w0=w0, record=record,
                    record_iterates=True)  # fmt: skip


def test_kappa_conditions_run_the_optimal_tunings_on_a_dense_geometric_grid():
    grids = M.conditions(Scale(False, 10))
    assert {k: len(v) for k, v in grids.items()} == {"kappa": 21, "trajectory": 3, "noise": 4}
    for cond in grids["kappa"]:
        t = M.TUNINGS[cond["method"]](1.0, cond["problem.condition_number"])
        assert cond["optimizer"] == t.optimizer
        assert cond["schedule.eta0"] == pytest.approx(t.lr, rel=1e-12)
        assert cond.get("optimizer.momentum", 0.0) == pytest.approx(t.momentum, rel=1e-12)
        grid = record_steps(cond["n_steps"], cond["record"], cond["n_records"])
        assert grid[0] == 0 and grid[-1] == cond["n_steps"]
        assert np.array_equal(grid[:50], np.arange(50))  # dense start: every step
        big = grid[grid >= 1000]  # ratio 1.01 up to rounding to integers
        assert big.size < 2 or np.max(big[1:] / big[:-1]) < 1.0111


@pytest.mark.parametrize("index", [3, 10])  # gradient descent and heavy ball at kappa = 100
def test_kappa_cell_hits_are_read_off_the_squared_error(index):
    cond = M.conditions(Scale(True, 4))["kappa"][index]
    hits = M.kappa_cell(cond, 11, np.arange(4))
    grid = record_steps(cond["n_steps"], "log", cond["n_records"])
    ref = _iterates(cond, 11, np.arange(4), grid, "random")
    err = ref[[f"w_{j}" for j in range(10)]].to_numpy() - build_problem(cond).w_star
    dist = np.einsum("ij,ij->i", err, err).reshape(4, grid.size)
    rel = dist / dist[:, :1]
    got = hits[hits["metric"] == "distance"].sort_values(["replicate", "eps"])
    expected = [grid[np.argmax(rel[r] <= eps)] for r in range(4) for eps in sorted(M.EPS)]
    np.testing.assert_array_equal(got["hit"].to_numpy(), expected)
    assert not hits["censored"].any()


def test_noise_cell_observes_the_squared_update():
    cond = M.conditions(Scale(True, 3))["noise"][2] | {"burn_in": 5, "n_steps": 9}
    frame = M.noise_cell(cond, 3, np.arange(3))
    ref = _iterates(cond, 3, np.arange(3), np.arange(4, 10), build_problem(cond).w_star)
    w = ref[[f"w_{j}" for j in range(10)]].to_numpy().reshape(3, 6, 10)
    expected = np.sum(np.diff(w, axis=1) ** 2, axis=2)
    np.testing.assert_allclose(frame["update_sq"].to_numpy().reshape(3, 5), expected, rtol=1e-10)


def test_trajectory_cell_observes_eigen_coordinates():
    cond = M.conditions(Scale(True, 3))["trajectory"][0]
    frame = M.trajectory_cell(cond, 0, [0, 1])
    assert set(frame["replicate"]) == {0} and M.trajectory_cell(cond, 0, [1, 2]).empty
    problem = build_problem(cond)
    u0 = frame.loc[frame["step"] == 0, ["u_flat", "u_steep"]].to_numpy()[0]
    np.testing.assert_allclose(u0, M.TRAJECTORY_START, atol=1e-12)
    dist = frame["u_flat"] ** 2 + frame["u_steep"] ** 2  # orthonormal basis: ||w - w*||^2
    f = 0.5 * (problem.eigenvalues[0] * frame["u_flat"] ** 2 + problem.L * frame["u_steep"] ** 2)
    np.testing.assert_allclose(frame["subopt"], f, rtol=1e-9, atol=1e-15)
    assert dist.iloc[-1] < dist.iloc[0]


def test_unknown_method_is_named():
    with pytest.raises(KeyError, match="nope"):
        M.tuned("nope", M.TRAJECTORY)


# ---- the study at quick scale (default R = 20) -----------------------------------------------
@pytest.fixture(scope="module")
def quick_result(tmp_path_factory):
    return run_study(M.study, quick=True, out=tmp_path_factory.mktemp("reports"))


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
    assert all(c.claim == 6 and c.n_replicates == 20 for c in quick_result.analysis.checks)
    assert (folder / "claims.csv").exists()


def test_quick_verdicts_match_the_full_report(quick_result):
    """reports/momentum/claims.csv (seed 0, full scale) has all four reproduced; quick scale
    (kappa up to 10^3, 20 starts, a shorter noise window) reproduces them too."""
    assert [c.verdict for c in quick_result.analysis.checks] == ["reproduced"] * 4


def test_study_measures_the_kappa_slopes(quick_result):
    """Even with 20 starts and kappa up to 10^3 the slopes sit in their intervals."""
    slopes = quick_result.analysis.tables["kappa_slopes"]
    s = slopes[slopes["checked"]].set_index("method")
    assert (s["metric"] == M.CHECK_METRIC).all() and np.allclose(s["eps"], M.CHECK_EPS)
    assert 0.85 <= s.loc["gd", "ci_low"] and s.loc["gd", "ci_high"] <= 1.15
    for m in ("heavy_ball", "nesterov"):
        assert 0.4 <= s.loc[m, "ci_low"] and s.loc[m, "ci_high"] <= 0.65
    assert (slopes["n_censored"] == 0).all()
    hits = quick_result.analysis.tables["kappa_hitting_times"]
    big = hits[(hits["kappa"] == hits["kappa"].max()) & np.isclose(hits["eps"], M.CHECK_EPS)]
    it = big[big["metric"] == M.CHECK_METRIC].set_index("method")["mean_iterations"]
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
    # ratios fall with beta and sit near (1 - beta)/(1 + beta); SGD's own is about 1 in its
    # units (eta_eff^2 tr Cov), within 4 standard errors of the t-CI
    assert np.all(np.diff(table["ratio_to_sgd"].to_numpy()) < 0)
    ratio = table.loc[0.9, "ratio_to_sgd"]
    assert 0.5 * table.loc[0.9, "theory_ratio"] < ratio < 1.5 * table.loc[0.9, "theory_ratio"]
    sgd = table.loc[0.0]
    se = (sgd["update_var_high"] - sgd["update_var_low"]) / (2 * 1.96)
    assert abs(sgd["update_var"] - 1.0) < 0.5 + 4 * se
