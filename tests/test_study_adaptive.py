"""Tests for the adaptive study (claim 7): its problems, grids, broken variants and computes,
its measures on reduced runs, and the whole study at quick scale: the real study's verdicts, and
every broken variant turning each check that names it into "not reproduced"."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from convstudy.studies import adaptive as A

from convstudy.catalogue import adaptive as cat
from convstudy.claims import VERDICTS
from convstudy.optim import get_optimizer
from convstudy.problems import get_problem
from convstudy.runner import run_study
from convstudy.stats.means import mean_ci
from convstudy.study import cell_seed, parameters_of
from convstudy.theory.adaptive import bias_progress_ratio, bias_step_ratio, reddi_drift

GRIDS = A.conditions(A.study.scale(False))


def _cell(grid: str, **match) -> dict:
    return next(c for c in GRIDS[grid] if all(c.get(k) == v for k, v in match.items()))


def _run(grid: str, cond: dict, replicates) -> object:
    seed = cell_seed(0, parameters_of(cond, A.study.labels))
    return A.study.compute_for(grid)(parameters_of(cond, A.study.labels), seed, replicates)


# ---- theory and problems -----------------------------------------------------------------------
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
        np.testing.assert_allclose(steps[False] / steps[True], bias_step_ratio(k), rtol=1e-9)
    assert bias_step_ratio(1) == pytest.approx(0.1 / np.sqrt(0.001))
    assert bias_step_ratio(1e6) == pytest.approx(1.0, abs=1e-9)
    with pytest.raises(ValueError, match="'k'"):
        bias_step_ratio(0)
    with pytest.raises(ValueError, match="beta2"):
        bias_step_ratio(3, 0.9, 1.0)
    delta = get_problem("adam_counterexample", C=100.0, n_samples=101, n_large=2).delta
    assert reddi_drift(100.0, 2 / 101) == pytest.approx(delta) == 1.0  # p C - (1 - p)


def test_badly_scaled_problems_share_spectrum_and_data():
    kw = dict(dim=4, condition_number=100.0, noise=0.1, n_samples=50, seed=1)
    axis, rot = get_problem("axis_scaled", **kw), get_problem("rotated_scaled", **kw)
    H_axis = axis.X.T @ axis.X / axis.n_samples
    H_rot = rot.X.T @ rot.X / rot.n_samples
    np.testing.assert_allclose(np.diag(H_axis), np.logspace(-2, 0, 4), rtol=1e-10)
    np.testing.assert_allclose(H_axis - np.diag(np.diag(H_axis)), 0.0, atol=1e-12)
    assert np.abs(H_rot - np.diag(np.diag(H_rot))).max() > 1e-2  # not axis-aligned
    np.testing.assert_allclose(np.linalg.eigvalsh(H_rot), np.logspace(-2, 0, 4), rtol=1e-9)
    assert (axis.mu, axis.L) == pytest.approx((0.01, 1.0))
    np.testing.assert_array_equal(axis.y, rot.y)
    assert rot.f_star == pytest.approx(axis.f_star, rel=1e-10)
    np.testing.assert_array_equal(axis.initial_point(), axis.w_star)  # random starts: w* + z


def test_bias_progress_ratio_is_exact_to_first_order():
    """On a linear loss f(w) = g.w (constant gradient) progress is exactly -g.(w_k - w_0): the
    uncorrected / corrected ratio is the mean of the step ratios r_1..r_k."""
    g = np.array([[0.5, -2.0, 1e-3]])
    for c, runs in ((True, []), (False, [])):
        opt, w = get_optimizer("adam", bias_correction=c, eps=1e-16), np.zeros_like(g)
        state = opt.init(w)
        for _ in range(20):
            w, state = opt.update(g, w, state, 0.01)
            runs.append(-(g * w).sum())
        if c:
            corrected = np.array(runs)
    ratio = np.array(runs) / corrected
    np.testing.assert_allclose(ratio, bias_progress_ratio(np.arange(1, 21)), rtol=1e-9)
    assert bias_progress_ratio(1) == pytest.approx(bias_step_ratio(1))
    with pytest.raises(ValueError, match="'k'"):
        bias_progress_ratio(0)


def test_grids_phases_and_labels():
    quick = A.conditions(A.study.scale(True))
    assert set(quick) == {"tuning", "bias", "reddi"}
    assert (
        len(quick["tuning"]) == 3 * (6 * 2 + 1) * 2 and len(GRIDS["tuning"]) == 3 * (6 * 6 + 3) * 2
    )
    rprop = _cell("tuning", problem="teacher_student", optimizer="rprop")
    assert (rprop["sampler"], rprop["batch_size"]) == ("full", 500)
    # every tuning value is run once per phase: same parameters but the phase, other seeds
    tune = _cell("tuning", problem="axis_scaled", method="adam", phase="tune")
    ev = {**tune, "phase": "eval"}
    assert ev in GRIDS["tuning"] and cell_seed(0, tune) != cell_seed(0, ev)
    assert all("label" in c for c in GRIDS["reddi"])  # legend names only: not in seeds
    assert A.study.labels == ("label",)


def test_broken_variants_change_only_their_conditions():
    tune = _cell("tuning", problem="axis_scaled", method="adam")
    assert A.broken("sgd-for-adaptive", tune)["optimizer"] == "sgd"
    assert A.broken("sgd-for-adaptive", _cell("reddi", method="adam")) == _cell(
        "reddi", method="adam"
    )
    bias = GRIDS["bias"][0]
    assert A.broken("no-bias-correction", bias)["optimizer.bias_correction"] is False
    assert A.broken("no-bias-correction", tune) == tune
    rprop = _cell("tuning", method="rprop", **{"schedule.eta0": 0.01})
    assert A.broken("rprop-fixed-step", rprop)["optimizer.step_sizes"] == "0.01,0.01"
    swapped = A.broken("swap-adam-amsgrad", _cell("reddi", method="adam"))
    assert (swapped["method"], swapped["optimizer"]) == ("adam", "amsgrad")
    assert A.broken("swap-adam-amsgrad", _cell("reddi", method="sgd"))["optimizer"] == "sgd"
    assert set(A.study.variants) == {s.broken_variant for s in cat.SPECS if s.kind == "claim"}
    for variant in A.study.variants:  # every variant's grid is valid (no condition twice)
        A.study.grids(A.study.scale(True, variant=variant))


# ---- computes ---------------------------------------------------------------------------------
def test_reddi_cells_stay_feasible_and_are_chunk_free():
    cond = dict(_cell("reddi", optimizer="adam", **{"optimizer.beta1": 0.0}), n_steps=300)
    whole, part = _run("reddi", cond, np.arange(4)), _run("reddi", cond, np.array([2, 3]))
    assert whole["x"].between(-1, 1).all() and (whole["engine"] == "numpy").all()
    np.testing.assert_array_equal(whole.loc[whole["replicate"] >= 2, "x"], part["x"])


def test_reddi_counterexample_adam_wrong_side_amsgrad_right_side():
    """The study's claim at a reduced size: final x of Adam > 0, of AMSGrad < 0 (95% t-CI)."""
    finals = {}
    for method in ("adam", "amsgrad"):
        cond = dict(_cell("reddi", optimizer=method, **{"optimizer.beta1": 0.0}), n_steps=3000)
        frame = _run("reddi", cond, np.arange(24))
        finals[method] = mean_ci(frame.loc[frame["step"] == 3000, "x"].to_numpy())
    assert finals["adam"].ci_low > 0.0  # CI low of Adam's final x
    assert finals["amsgrad"].ci_high < 0.0  # CI high of AMSGrad's final x


def test_bias_table_on_paired_runs_follows_theory_early():
    cond = _cell("bias", **{"schedule.eta0": 1e-3})
    frame = _run("bias", cond, np.arange(8)).assign(eta0=1e-3)
    first = frame[frame["step"] == 1].pivot(index="replicate", columns="variant")
    # step 1: the uncorrected step is (1-b1)/sqrt(1-b2) = 3.162 times the corrected, on every
    # replicate (same start and minibatch: paired), and the corrected step is eta0 per coordinate
    np.testing.assert_allclose(first["step_per_eta", "corrected"], 1.0, rtol=1e-4)
    ratio = first["step_per_eta", "uncorrected"] / first["step_per_eta", "corrected"]
    np.testing.assert_allclose(ratio, bias_step_ratio(1), rtol=1e-3)  # eps aside
    table = A.bias_correction_table(frame, run_seed=0)
    early = table[table["k"] <= 10]
    rel = np.abs(early["step_ratio"] / early["step_ratio_theory"] - 1)
    assert rel.max() < 0.05  # small eta0: gradients barely change, the theory holds
    assert (early["progress_ratio_ci_low"] > 1).all()
    assert (table["step_ratio_ci_low"] <= table["step_ratio"]).all()
    assert (table["step_ratio"] <= table["step_ratio_ci_high"]).all()


# ---- the whole study at quick scale ------------------------------------------------------------
# Quick scale (R = 10, budgets of 400 iterations, eps 10x looser, two step sizes per method)
# cannot resolve the tuning comparisons (hitting times of ~40 iterations, CIs of the ratios
# straddle the 2x gain) nor Reddi's limits after 1000 steps: those read inconclusive here.
QUICK_VERDICTS = {
    "7-adam-vs-sgd-axis_scaled": "inconclusive",
    "7-rmsprop-vs-sgd-axis_scaled": "inconclusive",
    "7-rprop-converges-full-batch": "reproduced",
    "7-adam-bias-correction-step": "within tolerance",  # the arms' gradients drift apart
    "7-adam-bias-correction-first-step": "within tolerance",  # eps = 1e-8 moves the identity
    "7-reddi-adam": "inconclusive",
    "7-reddi-amsgrad": "inconclusive",
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The real study and every broken variant at quick scale, sharing one cache (a variant
    recomputes only the cells it changes)."""
    cache = tmp_path_factory.mktemp("adaptive_cache")
    out = {}
    for variant in (None, *A.study.variants):
        out[variant] = run_study(A.study, quick=True, out=None, cache_dir=cache, variant=variant)
        for fig in out[variant].analysis.figures.values():
            plt.close(fig)
    return out


def test_study_runs_quick_and_reports_its_checks(runs):
    analysis = runs[None].analysis
    ids = [c.id for c in analysis.checks]
    assert len(ids) == len(set(ids)) == 7
    assert all(c.claim == 7 and c.study == "adaptive" for c in analysis.checks)
    assert all(c.verdict in VERDICTS and np.isfinite(c.estimate) for c in analysis.checks)
    best = analysis.tables["best_eta"]
    assert len(best) == len(A.PROBLEMS) * len(A.METHODS)
    grid = analysis.tables["eta_grid"]
    assert grid.groupby(["problem", "method"])["best"].sum().eq(1).all()
    assert {"tune_hit", "eval_best"} <= set(grid.columns)
    assert set(analysis.figures) == {
        "curves_best_eta",
        "eta_sensitivity",
        "samples_to_eps",
        "bias_correction",
        "reddi",
    }
    assert set(analysis.captions) >= set(analysis.figures) | set(analysis.tables)
    assert analysis.findings and analysis.caveats
    assert any("samples" in c and "RPROP" in c for c in analysis.caveats)


def test_quick_verdicts(runs):
    checks = {c.id: c for c in runs[None].analysis.checks}
    assert {k: c.verdict for k, c in checks.items()} == QUICK_VERDICTS
    step = checks["7-adam-bias-correction-step"]
    assert step.prediction == pytest.approx(bias_step_ratio(10)) and step.kind == "claim"
    assert checks["7-adam-bias-correction-first-step"].kind == "sanity"
    assert abs(step.estimate / step.prediction - 1) < 0.01
    assert checks["7-rprop-converges-full-batch"].ci_high < -10  # ~12 decades in 100 iterations
    reddi = runs[None].analysis.tables["reddi_final_x"].set_index("label")
    assert (reddi.loc[reddi["method"] == "adam", "ci_low"] > 0).all()  # both beta1 values
    assert (reddi.loc[["SGD, alpha=0.03", "AMSGrad, beta1=0"], "ci_high"] < 0).all()


@pytest.mark.parametrize("variant", sorted(A.study.variants))
def test_each_broken_variant_fails_the_checks_naming_it(runs, variant):
    named = [c for c in runs[variant].analysis.checks if c.broken_variant == variant]
    assert named, f"no check names {variant!r}"
    assert {c.id: c.verdict for c in named} == {c.id: "not reproduced" for c in named}
