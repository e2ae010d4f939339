"""Tests of studies/iterations_to_eps.py: its grid, its cells, its analysis and its claim numbers.

The full study runs in the report; here the analysis runs end to end on a quick grid with 4
replicates (once per module), the deterministic GD claims are checked on it, and the SGD and
minibatch claims on their full-length cells with 30 replicates (tolerances from the measured
standard errors).
"""

import math

import numpy as np
import pandas as pd
import pytest
from convstudy.studies import iterations_to_eps as ite

from convstudy.runner import run_study
from convstudy.study import Scale, build_problem, cell_seed
from convstudy.theory.complexity import expected_smoothness, max_sample_smoothness


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    return run_study(ite.study, quick=True, replicates=4, out=out)


def _condition(scale: Scale, curve: str) -> dict:
    return next(c for c in ite.conditions(scale) if c["curve"] == curve)


# ---- the grid ---------------------------------------------------------------------------------
def test_grid_is_valid_and_quick_is_a_subset():
    full = ite.study.grid(Scale(False, 100))
    quick = ite.study.grid(Scale(True, 20))
    names = [c["curve"] for c in full]
    assert len(set(names)) == len(names)
    assert {c["curve"] for c in quick} <= set(names)
    gd = [c for c in full if c["method"] == "GD"]
    assert all(c["sampler"] == "full" and c["batch_size"] > 1 for c in gd)
    diverging = [c for c in gd if c.get("step_times_L", 0.0) > 2]
    assert {c["kappa"] for c in diverging} == set(ite.KAPPAS)


def test_tuned_schedule_uses_expected_smoothness():
    """k0_b = L_b / mu with L_b = L + (L_max - L)/b, so eta_0 = 1/(mu k0) = 1/L_b."""
    for c in ite.conditions(Scale(False, 100)):
        if c["step_rule"] != "1/(mu(k+k0))":
            continue
        p = build_problem(ite.PROBLEMS[c["problem_label"]])
        L_b = expected_smoothness(p.L, max_sample_smoothness(p), c["batch_size"])
        assert c["schedule.k0"] == pytest.approx(max(1.0, L_b / p.mu))
        assert c["schedule.eta0"] == pytest.approx(1 / (p.mu * c["schedule.k0"]))


def test_record_grid_has_log_and_linear_parts():
    grid = ite.record_grid(300, 10, 50)
    assert grid[0] == 0 and grid[-1] == 300
    assert set(range(0, 301, 50)) <= set(grid.tolist())
    assert {1, 2} <= set(grid.tolist())  # log part
    assert np.array_equal(ite.record_grid(300, 10, 0), np.unique(ite.record_grid(300, 10, 0)))


def test_cells_do_not_depend_on_replicate_chunking():
    cond = _condition(Scale(True, 4), "quadratic kappa=10 | minibatch b=16")
    seed = cell_seed(0, cond)
    together = ite.compute(cond, seed, np.arange(3))
    alone = ite.compute(cond, seed, np.array([2]))
    pd.testing.assert_frame_equal(
        together[together["replicate"] == 2].reset_index(drop=True), alone
    )


# ---- small estimators ---------------------------------------------------------------------------
def test_censored_quantiles_count_censored_as_infinite():
    hits = pd.DataFrame(
        {
            "eps": [0.1] * 4,
            "hit": [10.0, 20.0, np.nan, 40.0],
            "censored": [False, False, True, False],
        }
    )
    q = ite._censored_quantiles(hits, qs=(0.25, 0.5, 1.0)).iloc[0]
    assert (q["q25"], q["q50"], q["q100"]) == (10.0, 20.0, np.inf)
    assert (q["n_censored"], q["share_censored"]) == (1, 0.25)


def test_variance_share():
    assert ite.variance_share(1.0, 0.0, 10.0, 90.0) == 1.0
    # c/(k+k0) = 0.01 and B (k0/(k+k0))^2 = 0.01 at k = 90: half each
    assert ite.variance_share(1.0, 1.0, 10.0, 90.0) == pytest.approx(0.5)


# ---- the quick run: outputs and the deterministic claims ------------------------------------
def test_quick_run_writes_every_table_and_figure(quick):
    folder = quick.folder
    for stem in quick.analysis.tables:
        assert (folder / "tables" / f"{stem}.csv").exists()
    for stem in quick.analysis.figures:
        assert (folder / "figures" / f"{stem}.png").exists()
    assert set(quick.analysis.figures) == {
        "subopt_curves",
        "gd_linear_rate",
        "gd_step_sweep",
        "iterations_to_eps",
        "minibatch_tradeoff",
    }
    assert len(quick.analysis.checks) >= 5
    assert {c.claim for c in quick.analysis.checks} == {2, 3, 4}


def test_hitting_table_reports_censoring_and_never_drops_runs(quick):
    hits = quick.analysis.tables["hitting_times"]
    n_eps = {label: ite._eps_grid(label).size for label in ite.PROBLEMS}
    per_curve = hits.groupby("curve").size()
    for curve, rows in per_curve.items():
        assert rows == n_eps[curve.split(" | ")[0]]
    assert (hits["n"] + hits["n_diverged"] == 4).all()
    assert hits["n_censored"].between(0, 4).all()
    # a censored mean curve has no hitting time; a diverged condition has no mean curve (a
    # replicate may still reach a loose eps before it blows up: that hit is kept)
    assert hits.loc[hits["mean_curve_censored"], "iterations"].isna().all()
    diverged = hits[hits["step_times_L"] > 2]
    assert (diverged["n_diverged"] == 4).all() and diverged["mean_curve_censored"].all()
    assert (diverged.loc[diverged["eps"] < 0.1, "n_censored"] == 4).all()
    # samples = b x iterations
    np.testing.assert_allclose(hits["samples"], hits["batch_size"] * hits["iterations"])


def test_quick_run_gd_claims(quick):
    """GD is deterministic given its start: slopes within 5% of 1/ln(1/rho) even at R=4."""
    rates = quick.analysis.tables["gd_rates"]
    ok = rates[rates["step_times_L"] < 2]
    np.testing.assert_allclose(ok["slope"], ok["slope_theory"], rtol=0.05)
    checks = {c.id: c for c in quick.analysis.checks}
    assert checks["2-gd-diverges-above-2overL"].estimate == 1.0
    assert checks["2-gd-converges-below-2overL"].estimate == 0.0
    optimal = checks["2-gd-optimal-step"]
    assert optimal.ci_low > 1.0 and optimal.verdict == "reproduced"
    for cid in ("2-gd-slope-kappa10-1overL", "2-gd-slope-kappa100-opt"):
        assert checks[cid].verdict == "reproduced"


def test_wall_clock_is_its_own_table(quick):
    clock = quick.analysis.tables["wall_clock"]
    assert (clock["seconds_per_iteration"] > 0).all()
    finite = clock[~clock["censored"]]
    np.testing.assert_allclose(
        finite["seconds"], finite["seconds_per_iteration"] * finite["iterations"]
    )
    runs = pd.read_parquet(quick.folder / "runs.parquet")
    assert not {"wall_time", "seconds", "seconds_per_iteration"} & set(runs.columns)


# ---- SGD and minibatch claims on full-length cells -------------------------------------------
@pytest.fixture(scope="module")
def stochastic():
    """Full-length SGD (b=1) and minibatch (b=16) cells on the stochastic quadratic, R=30."""
    scale = Scale(False, 30)
    frames = {}
    for b, curve in [(1, "SGD b=1 (i.i.d.)"), (16, "minibatch b=16")]:
        cond = _condition(scale, f"quadratic kappa=10 | {curve}")
        frame = ite.compute(cond, cell_seed(0, cond), np.arange(30))
        for key, value in cond.items():
            frame[key] = value
        frames[b] = frame
    return frames


def test_sgd_iterations_grow_like_one_over_eps(stochastic):
    """Claim 3: log-log slope of iterations to eps against 1/eps is 1 (tolerance: the claim's
    [0.85, 1.15] widened by 3 bootstrap standard errors)."""
    curves = ite._curves(stochastic[1])
    fit = ite.sgd_rate_table(curves, n_boot=300).iloc[0]
    se = (fit["fit_ci_high"] - fit["fit_ci_low"]) / (2 * 1.96)
    assert fit["fit_n_eps"] >= 5
    assert abs(fit["slope"] - 1.0) <= 0.15 + 3 * se


def test_minibatch_variance_term_scales_like_one_over_b(stochastic):
    """Claim 4: the fitted variance coefficients of b=16 and b=1 differ by a factor 16 (log
    ratio within 3 bootstrap standard errors of -ln 16, plus 10%), and iterations to eps fall
    like 1/b."""
    by_b = {b: next(iter(ite._curves(f).values())) for b, f in stochastic.items()}
    var, boots = ite.variance_coefficients(by_b, n_boot=300)
    assert var["identified"].all()
    log_ratio = np.log(var["c"].iloc[1] / var["c"].iloc[0])
    se = np.nanstd(np.log(boots[:, 1] / boots[:, 0]), ddof=1)
    assert abs(log_ratio + math.log(16)) <= 0.1 * math.log(16) + 3 * se
    # while the variance term dominates (b <= 16 at eps = CLAIM_EPS), iterations to eps fall
    # like 1/b and samples to eps stay flat: the samples only grow once the bias term counts
    _, fits = ite.tradeoff_table(by_b, n_boot=300)
    it = fits["iterations"]
    assert abs(it["slope"] + 1.0) <= 0.1 + 3 * (it["ci_high"] - it["ci_low"]) / (2 * 1.96)
