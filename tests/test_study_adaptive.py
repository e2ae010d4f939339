"""Tests for studies/adaptive.py: its estimators on known answers, its parts, the whole study."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from convstudy.studies import adaptive as A

from convstudy.claims import VERDICTS
from convstudy.optim import get_optimizer
from convstudy.runner import run_study
from convstudy.stats.means import mean_ci
from convstudy.study import cell_seed


# ---- estimators on known answers --------------------------------------------------------------
def _frame(curves: np.ndarray, steps, diverged=None) -> pd.DataFrame:
    R, S = curves.shape
    div = np.zeros(R, bool) if diverged is None else np.asarray(diverged)
    return pd.DataFrame(
        {
            "replicate": np.repeat(np.arange(R), S),
            "step": np.tile(steps, R),
            "subopt": curves.ravel(),
            "diverged": np.repeat(div, S),
        }
    )


def test_hitting_time_bootstrap_known_answers():
    steps = np.array([0, 1, 2, 4, 8, 16])
    curve = 10.0 ** -np.arange(6.0)  # 1, 0.1, ..., 1e-5
    frame = _frame(np.tile(curve, (5, 1)), steps)
    out = A.hitting_time_bootstrap(frame, 1e-3, n_boot=50)
    assert out["hit"] == 4 and out["n"] == 5 and out["n_diverged"] == 0
    assert np.all(out["boots"] == 4)  # identical replicates: every bootstrap curve agrees
    assert A.hitting_time_bootstrap(frame, 1e-9, n_boot=20)["hit"] == np.inf  # censored


def test_hitting_time_bootstrap_excludes_diverged_and_handles_all_diverged():
    steps = np.array([0, 1, 2, 4])
    curves = np.array([[1.0, 0.1, 0.01, 0.001], [1.0, np.nan, np.nan, np.nan]])
    out = A.hitting_time_bootstrap(_frame(curves, steps, [False, True]), 0.05, n_boot=20)
    assert (out["hit"], out["n"], out["n_diverged"]) == (2, 1, 1)
    dead = A.hitting_time_bootstrap(_frame(curves[1:], steps, [True]), 0.05, n_boot=20)
    assert dead["n"] == 0 and dead["hit"] == np.inf and np.all(np.isinf(dead["boots"]))


def test_hitting_time_bootstrap_mean_curve_not_per_replicate():
    # replicate 0 reaches 0.1 at step 1, replicate 1 never does: the mean does at step 2
    steps = np.array([0, 1, 2])
    curves = np.array([[1.0, 0.0, 0.0], [1.0, 0.3, 0.15]])
    assert A.hitting_time_bootstrap(_frame(curves, steps), 0.1, n_boot=20)["hit"] == 2


def test_select_best_eta_rules():
    table = pd.DataFrame(
        {
            "problem": "p",
            "method": ["m"] * 5 + ["z"] * 2 + ["y"] * 2,
            "eta0": [0.1, 0.3, 1.0, 3.0, 10.0, 0.1, 0.3, 0.1, 0.3],
            "eps": 1e-2,
            "hit": [50.0, 20.0, 20.0, 5.0, 2.0, np.inf, np.inf, 30.0, 10.0],
            "final_subopt": [1e-3, 2e-3, 1e-4, 1e-6, 0.5, 0.5, 0.2, 0.3, 0.2],
            "n": [8, 8, 8, 6, 8, 8, 8, 8, 8],
            "n_diverged": [0, 0, 0, 2, 0, 0, 0, 0, 0],
        }
    )
    best = A.select_best_eta(table)
    # m: the fastest value that ends below eps without divergences, a tie broken by the final
    # suboptimality (eta0=3 had divergences; eta0=10 only dipped below eps and ended above it);
    # z: eps never reached, the lowest final suboptimality; y: none ends below eps, the fastest
    assert table.loc[best, ["method", "eta0"]].values.tolist() == [
        ["m", 1.0],
        ["z", 0.3],
        ["y", 0.3],
    ]


def test_bias_step_ratio_matches_adam_on_a_constant_gradient():
    g = np.array([[0.5, -2.0, 1e-3]])
    w = {True: np.zeros_like(g), False: np.zeros_like(g)}
    opts = {c: get_optimizer("adam", bias_correction=c, eps=1e-16) for c in (True, False)}
    states = {c: opts[c].init(w[c]) for c in (True, False)}
    for k in range(1, 31):
        steps = {}
        for c in (True, False):
            new, states[c] = opts[c].update(g, w[c], states[c], 0.01)
            steps[c] = np.abs(new - w[c])
            w[c] = new
        np.testing.assert_allclose(steps[False] / steps[True], A.bias_step_ratio(k), rtol=1e-9)
    assert A.bias_step_ratio(1) == pytest.approx(0.1 / np.sqrt(0.001))
    assert A.bias_step_ratio(1e6) == pytest.approx(1.0, abs=1e-9)


def test_badly_scaled_problems_share_spectrum_and_data():
    kw = dict(dim=4, condition_number=100.0, noise=0.1, n_samples=50, seed=1)
    axis = A.badly_scaled_least_squares("axis", **kw)
    rot = A.badly_scaled_least_squares("rotated", **kw)
    H_axis = axis.X.T @ axis.X / axis.n_samples
    H_rot = rot.X.T @ rot.X / rot.n_samples
    np.testing.assert_allclose(np.diag(H_axis), np.logspace(-2, 0, 4), rtol=1e-10)
    np.testing.assert_allclose(H_axis - np.diag(np.diag(H_axis)), 0.0, atol=1e-12)
    assert np.abs(H_rot - np.diag(np.diag(H_rot))).max() > 1e-2  # not axis-aligned
    np.testing.assert_allclose(np.linalg.eigvalsh(H_rot), np.logspace(-2, 0, 4), rtol=1e-9)
    assert (axis.mu, axis.L) == pytest.approx((0.01, 1.0))
    np.testing.assert_array_equal(axis.y, rot.y)
    assert rot.f_star == pytest.approx(axis.f_star, rel=1e-10)
    with pytest.raises(ValueError, match="orientation"):
        A.badly_scaled_least_squares("diagonal")


def test_eta_grid():
    assert A.eta_grid("sgd") == (0.01, 0.0316, 0.1, 0.316, 1.0, 3.16)
    assert A.eta_grid("rprop") == (0.001, 0.01, 0.1)
    assert A.eta_grid("adam", quick=True) == A.eta_grid("adam")[3:5]
    with pytest.raises(ValueError, match="method"):
        A.eta_grid("lbfgs")


# ---- the parts --------------------------------------------------------------------------------
def _cell(part: str, **match) -> dict:
    full = A.study.scale(False)
    return next(
        c
        for c in A.conditions(full)
        if c["part"] == part and all(c.get(k) == v for k, v in match.items())
    )


def test_simulate_projected_stays_feasible_and_is_chunk_free():
    cond = dict(_cell("reddi", method="adam", **{"optimizer.beta1": 0.0}), n_steps=300)
    whole = A.compute(cond, 7, np.arange(4))
    part = A.compute(cond, 7, np.array([2, 3]))
    assert whole["x"].between(-1, 1).all()
    pd.testing.assert_frame_equal(
        whole[whole["replicate"] >= 2].reset_index(drop=True), part.reset_index(drop=True)
    )


def test_reddi_counterexample_adam_wrong_side_amsgrad_right_side():
    """The study's claim at a reduced size: final x of Adam > 0, of AMSGrad < 0 (95% t-CI)."""
    finals = {}
    for method in ("adam", "amsgrad"):
        cond = dict(_cell("reddi", method=method, **{"optimizer.beta1": 0.0}), n_steps=3000)
        frame = A.compute(cond, cell_seed(0, cond), np.arange(24))
        finals[method] = mean_ci(frame.loc[frame["step"] == 3000, "x"].to_numpy())
    assert finals["adam"].ci_low > 0.0  # CI low of Adam's final x
    assert finals["amsgrad"].ci_high < 0.0  # CI high of AMSGrad's final x


def test_adam_beats_sgd_on_axis_aligned_scaling_not_when_rotated():
    """Iterations to eps (mean curve) at the grid values the full run selects as best on both
    problems: SGD eta0 = 0.316, Adam eta0 = 0.0316."""
    hits = {}
    for problem in ("axis_scaled", "rotated_scaled"):
        for method, eta0 in (("adam", 0.0316), ("sgd", 0.316)):
            cond = _cell("tuning", problem=problem, method=method, eta0=eta0)
            frame = A.compute(cond, cell_seed(0, cond), np.arange(24))
            eps = 1e-3 * frame.loc[frame["step"] == 0, "subopt"].mean()
            out = A.hitting_time_bootstrap(frame, eps, n_boot=400, seed=1)
            hits[problem, method] = out["boots"]
    ratio_axis = hits["axis_scaled", "adam"] / hits["axis_scaled", "sgd"]
    ratio_rot = hits["rotated_scaled", "adam"] / hits["rotated_scaled", "sgd"]
    # axis-aligned: Adam needs under a third of SGD's iterations (full run: ~0.16); rotated: the
    # advantage is (mostly) gone (full run: ~1). The two 95% intervals do not overlap.
    assert np.quantile(ratio_axis, 0.975) < 0.35
    assert np.quantile(ratio_rot, 0.025) > 0.4


def test_bias_table_on_paired_runs_follows_theory_early():
    cond = _cell("bias", eta0=1e-3)
    frame = A.compute(cond, cell_seed(0, cond), np.arange(8)).assign(eta0=1e-3)
    table = A.bias_correction_table(frame)
    first = table[table["k"] == 1].iloc[0]
    # step 1: uncorrected moves (1-b1)/sqrt(1-b2) = 3.162 times further, on every replicate
    assert first["step_ratio"] == pytest.approx(A.bias_step_ratio(1), rel=1e-3)  # eps aside
    early = table[table["k"] <= 10]
    rel = np.abs(early["step_ratio"] / early["step_ratio_theory"] - 1)
    assert rel.max() < 0.05  # small eta0: gradients barely change, the theory holds
    assert (early["progress_ratio_ci_low"] > 1).all()
    assert (table["step_ratio_ci_low"] <= table["step_ratio"]).all()
    assert (table["step_ratio"] <= table["step_ratio_ci_high"]).all()


# ---- the whole study on tiny inputs ------------------------------------------------------------
def test_study_runs_quick_and_reports_its_checks():
    import matplotlib.pyplot as plt

    result = run_study(A.study, quick=True, replicates=4, out=None)  # writing is the runner's
    analysis = result.analysis
    ids = [c.id for c in analysis.checks]
    assert len(ids) == len(set(ids)) == 8
    assert all(c.claim == 7 and c.study == "adaptive" for c in analysis.checks)
    assert all(c.verdict in VERDICTS for c in analysis.checks)
    assert all(np.isfinite(c.estimate) for c in analysis.checks)
    best = analysis.tables["best_eta"]
    assert len(best) == len(A.PROBLEMS) * len(A.METHODS)
    grid = analysis.tables["eta_grid"]
    assert grid.groupby(["problem", "method"])["best"].sum().eq(1).all()
    assert set(analysis.figures) == {
        "curves_best_eta",
        "eta_sensitivity",
        "iterations_to_eps",
        "bias_correction",
        "reddi_counterexample",
    }
    assert set(analysis.captions) >= set(analysis.figures) | set(analysis.tables)
    assert analysis.findings and all(isinstance(f, str) for f in analysis.findings)
    for fig in analysis.figures.values():
        plt.close(fig)
