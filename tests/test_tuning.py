"""Tests for convstudy.tuning (step-size grids, the selection rule, hitting-time ratios) and the
statistics it and the adaptive study added (paired ratios of means, log reductions)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from convstudy import tuning
from convstudy.stats.curves import log_reduction, paired_curve_ratio
from convstudy.stats.means import paired_ratio_of_means


def _frame(curves: np.ndarray, steps, diverged=None, **columns) -> pd.DataFrame:
    R, S = curves.shape
    div = np.zeros(R, bool) if diverged is None else np.asarray(diverged)
    return pd.DataFrame(
        {
            **columns,
            "replicate": np.repeat(np.arange(R), S),
            "step": np.tile(steps, R),
            "samples": np.tile(steps, R) * 10,
            "subopt": curves.ravel(),
            "diverged": np.repeat(div, S),
        }
    )


# ---- grids and the selection rule --------------------------------------------------------------
def test_eta_grid():
    assert tuning.eta_grid("sgd") == (0.01, 0.0316, 0.1, 0.316, 1.0, 3.16)
    assert tuning.eta_grid("rprop") == (0.001, 0.01, 0.1)
    assert tuning.eta_grid("rprop", quick=True) == (0.01,)
    assert tuning.eta_grid("adam", quick=True) == tuning.eta_grid("adam")[3:5]
    with pytest.raises(ValueError, match="method"):
        tuning.eta_grid("lbfgs")


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
    best = tuning.select_best_eta(table)
    # m: the fastest value that ends below eps without divergences, a tie broken by the final
    # suboptimality (eta0=3 had divergences; eta0=10 only dipped below eps and ended above it);
    # z: eps never reached, the lowest final suboptimality; y: none ends below eps, the fastest
    assert table.loc[best, ["method", "eta0"]].values.tolist() == [
        ["m", 1.0],
        ["z", 0.3],
        ["y", 0.3],
    ]


# ---- hitting times of the mean curve -----------------------------------------------------------
def test_hitting_time_boots_known_answers():
    steps = np.array([0, 1, 2, 4, 8, 16])
    frame = _frame(np.tile(10.0 ** -np.arange(6.0), (5, 1)), steps)  # 1, 0.1, ..., 1e-5
    hit, boots, n, n_div = tuning.hitting_time_boots(frame, 1e-3, seed=0, n_boot=50)
    assert (hit, n, n_div) == (4, 5, 0)
    assert np.all(boots == 4)  # identical replicates: every bootstrap curve agrees
    assert tuning.hitting_time_boots(frame, 1e-9, seed=0, n_boot=20)[0] == np.inf  # censored


def test_hitting_time_boots_excludes_diverged_and_handles_all_diverged():
    steps = np.array([0, 1, 2, 4])
    curves = np.array([[1.0, 0.1, 0.01, 0.001], [1.0, np.nan, np.nan, np.nan]])
    hit, _, n, n_div = tuning.hitting_time_boots(_frame(curves, steps, [False, True]), 0.05, seed=1)
    assert (hit, n, n_div) == (2, 1, 1)
    hit, boots, n, _ = tuning.hitting_time_boots(_frame(curves[1:], steps, [True]), 0.05, seed=1)
    assert n == 0 and hit == np.inf and np.all(np.isinf(boots))


def test_hitting_time_is_the_mean_curve_not_per_replicate():
    # replicate 0 reaches 0.1 at step 1, replicate 1 never does: the mean does at step 2
    curves = np.array([[1.0, 0.0, 0.0], [1.0, 0.3, 0.15]])
    assert tuning.hitting_time_boots(_frame(curves, [0, 1, 2]), 0.1, seed=2)[0] == 2


def _tuning_runs(rng: np.random.Generator) -> pd.DataFrame:
    """Two problems x {sgd, adam} x two step sizes; exponential curves with known rates."""
    steps = np.unique(np.round(np.geomspace(1, 3000, 80)).astype(int))
    steps = np.concatenate([[0], steps])
    parts = []
    for problem, adam_rate in (("axis", 0.04), ("rotated", 0.01)):
        for method, rate in (("sgd", 0.01), ("adam", adam_rate)):
            for eta0, slow in ((0.1, 0.5), (0.3, 1.0)):
                r = rate * slow * np.exp(0.05 * rng.standard_normal((20, 1)))
                curves = np.exp(-r * steps[None, :])
                parts.append(_frame(curves, steps, problem=problem, method=method, eta0=eta0))
    return pd.concat(parts, ignore_index=True)


def test_tuning_table_ratio_and_contrast_on_known_rates():
    runs = _tuning_runs(np.random.default_rng(3))
    eps = {"axis": 1e-2, "rotated": 1e-2}
    table, boots = tuning.tuning_table(runs, eps, run_seed=0, tag="test", n_boot=200)
    assert len(table) == 8 and table.groupby(["problem", "method"])["best"].sum().eq(1).all()
    assert (table.loc[table["best"], "eta0"] == 0.3).all()  # the faster step of each pair
    assert table["at_grid_edge"].all()  # two values per grid: both are edges
    assert (table["samples_per_step"] == 10).all()
    best = tuning.ratio_to_reference(table, boots)
    # T = ln(100) / rate up to the record grid: adam/sgd = 0.25 on axis, 1 on rotated
    axis = tuning.ratio_estimate(best, "axis", "adam")
    assert axis.value == pytest.approx(0.25, rel=0.1) and axis.ci_low <= axis.value
    assert tuning.ratio_estimate(best, "rotated", "adam").value == pytest.approx(1.0, rel=0.1)
    contrast = tuning.contrast_estimate(best, boots, "adam", ("axis", "rotated"))
    assert contrast.value == pytest.approx(4.0, rel=0.15)
    assert contrast.ci_low > 2.5 and contrast.n == 20
    again, _ = tuning.tuning_table(runs, eps, run_seed=0, tag="test", n_boot=200)
    pd.testing.assert_frame_equal(table, again)  # bootstrap seeds come from the run seed
    text = tuning.describe_best(best[best["problem"] == "axis"], {"adam": "Adam"}, ("adam",))
    assert "Ratio to SGD: Adam 0.2" in text and "eta0 0.3, edge of its grid" in text
    curves = tuning.best_curves(runs, best)
    assert set(curves["label"]) == {"sgd, eta0=0.3", "adam, eta0=0.3"}


# ---- statistics: paired ratios and log reductions ----------------------------------------------
def test_paired_ratio_of_means_is_exact_for_proportional_pairs_and_covers_the_truth():
    rng = np.random.default_rng(4)
    a = rng.gamma(2.0, size=(200, 3))
    value, low, high = paired_ratio_of_means(2.5 * a, a, seed=0)
    np.testing.assert_allclose([value, low, high], 2.5, rtol=1e-12)  # pairing removes noise
    b = rng.gamma(2.0, size=400)
    value, low, high = paired_ratio_of_means(b + rng.normal(0, 0.1, 400) + 1.0, b, seed=1)
    assert low < 1.5 < high and value == pytest.approx(1.5, abs=0.05)  # E[b] = 2: (2+1)/2
    with pytest.raises(ValueError, match="paired"):
        paired_ratio_of_means(a, a[:, :2], seed=0)


def test_paired_curve_ratio_and_log_reduction():
    steps = np.arange(4)
    curves = np.array([[1.0, 0.5, 0.25, 1e-20], [2.0, 1.0, 0.5, 1e-20]])
    ratio = paired_curve_ratio(_frame(3 * curves, steps), _frame(curves, steps), "subopt", seed=0)
    np.testing.assert_allclose(ratio["value"], 3.0)
    assert list(ratio.columns) == ["step", "value", "ci_low", "ci_high", "n"]
    with pytest.raises(ValueError, match="same replicates"):
        paired_curve_ratio(_frame(curves, steps), _frame(curves[:1], steps), "subopt", seed=0)
    est = log_reduction(_frame(curves, steps), floor=1e-12)  # floored: 1e-12 / 1 and / 2
    assert est.value == pytest.approx(np.mean([-12.0, -12.0 - np.log10(2)]))
    assert est.n == 2


# ---- disjoint tuning and evaluation seeds ------------------------------------------------------
def _phased_runs(rng: np.random.Generator) -> pd.DataFrame:
    """One problem, sgd and adam, three step sizes; on the tuning seeds eta0 = 0.3 is fastest
    for adam, on the evaluation seeds eta0 = 1.0 (the selection must come from tuning)."""
    steps = np.concatenate([[0], np.unique(np.round(np.geomspace(1, 3000, 80)).astype(int))])
    fast = {("tune", 0.3): 0.04, ("eval", 1.0): 0.04}
    parts = []
    for phase in ("tune", "eval"):
        for method in ("sgd", "adam"):
            for eta0 in (0.1, 0.3, 1.0):
                rate = fast.get((phase, eta0), 0.01) if method == "adam" else 0.01 * eta0
                r = rate * np.exp(0.02 * rng.standard_normal((10, 1)))
                frame = _frame(np.exp(-r * steps[None, :]), steps, problem="p", method=method)
                parts.append(frame.assign(eta0=eta0, phase=phase))
    return pd.concat(parts, ignore_index=True)


def test_tune_and_evaluate_selects_on_tune_and_reports_eval():
    runs = _phased_runs(np.random.default_rng(5))
    with pytest.warns(UserWarning, match="largest value of its grid"):
        table, boots = tuning.tune_and_evaluate(runs, {"p": 1e-2}, run_seed=0, tag="t", n_boot=100)
    best = table[table["best"]].set_index("method")
    assert best.loc["adam", "eta0"] == 0.3  # chosen on the tuning seeds ...
    assert table.loc[table["eval_best"] & (table["method"] == "adam"), "eta0"].item() == 1.0
    # ... and reported from the evaluation cells at that value: rate 0.01, ln(100)/0.01 ~ 460
    assert best.loc["adam", "hit"] == pytest.approx(np.log(100) / 0.01, rel=0.1)
    assert best.loc["adam", "tune_hit"] == pytest.approx(np.log(100) / 0.04, rel=0.1)
    assert set(boots) == set(zip(table["problem"], table["method"], table["eta0"]))
    # sgd's fastest step is the largest of its grid: warned, and a caveat says so
    edges = tuning.grid_edge_choices(table)
    assert len(edges) == 1 and edges[0].startswith("sgd on p: the chosen eta0 = 1")
    caveats = tuning.tuning_caveats(table, tuning.ratio_to_reference(table, boots))
    assert any("adam on p: 1 instead of 0.3" in c for c in caveats)
    with pytest.raises(ValueError, match="both phases"):
        tuning.tune_and_evaluate(runs[runs["phase"] == "tune"], {"p": 1e-2}, run_seed=0, tag="t")


def test_tuning_caveats_name_costly_and_censored_methods():
    table = pd.DataFrame(
        {"problem": "p", "method": ["sgd", "rprop"], "eta0": [0.1, 0.01], "best": True,
         "eval_best": True, "at_grid_edge": False, "hit": [100.0, 20.0],
         "samples_per_step": [10, 1000], "hit_samples": [1000.0, 20000.0],
         "p_censored": [0.0, 0.2]}
    )  # fmt: skip
    text = " ".join(tuning.tuning_caveats(table, table, {"rprop": "RPROP"}))
    assert "RPROP on p: 20 iterations = 20000 samples against 1000" in text
    assert "RPROP on p 0.20" in text
