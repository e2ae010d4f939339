"""Tests of the iterations_to_eps study: its grids, its cells, its analysis and its claim numbers.

The full study runs in the report; here the analysis runs end to end at quick scale (once per
module), the deterministic GD claims and the quick-scale verdicts are checked on it, and the SGD
and minibatch claims on their full-length cells with 30 replicates (tolerances from the
measured standard errors).
"""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from convstudy.studies import iterations_to_eps as ite

from convstudy.runner import run_study
from convstudy.stats.curves import hitting_time_table
from convstudy.stats.fits import min_hitting_slope_ratio
from convstudy.study import Scale, build_problem, cell_seed, parameters_of
from convstudy.theory.complexity import (
    expected_smoothness,
    gd_rate,
    inverse_time_variance_share,
    max_sample_smoothness,
)

QUICK = Scale(True, 20)
REPORT = Path(__file__).parents[1] / "reports" / "iterations_to_eps"  # seed 0, full scale


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """The study at quick scale (20 replicates, the quick grid)."""
    return run_study(ite.study, quick=True, out=tmp_path_factory.mktemp("reports"))


def _condition(scale: Scale, curve: str) -> dict:
    return next(c for c in ite.study.grid(scale) if c["curve"] == curve)


def _cell(condition: dict, replicates) -> pd.DataFrame:
    """A cell as the runner computes it: parameters only, then the condition as columns."""
    params = parameters_of(condition, ite.study.labels)
    frame = ite.compute(params, cell_seed(0, params), np.asarray(replicates))
    return frame.assign(**condition)


# ---- the grid -------------------------------------------------------------------------------
def test_grids_are_valid_and_quick_is_a_subset():
    full, quick = ite.study.grids(Scale(False, 100)), ite.study.grids(QUICK)
    assert set(full) == set(quick) == {"gd", "sgd", "teacher"}
    names = [c["curve"] for c in ite.study.grid(Scale(False, 100))]
    assert len(set(names)) == len(names)
    assert {c["curve"] for c in ite.study.grid(QUICK)} <= set(names)
    assert all(c["sampler"] == "full" and c["batch_size"] > 1 for c in full["gd"])
    diverging = [c for c in full["gd"] if c["step_times_L"] > 2]
    assert {c["kappa"] for c in diverging} == set(ite.KAPPAS)


def test_labels_are_presentation_only():
    """Every label is a display name or a number derived from the parameters."""
    for c in ite.study.grid(Scale(False, 100)):
        assert set(ite.LABELS) - {"kappa", "step_times_L"} <= set(c)
        if "step_times_L" in c:
            p = build_problem(c)
            assert c["step_times_L"] == pytest.approx(c["schedule.eta0"] * p.L)


def test_tuned_schedule_uses_expected_smoothness():
    """k0_b = L_b / mu with L_b = L + (L_max - L)/b, so eta_0 = 1/(mu k0) = 1/L_b."""
    for c in ite.study.grids(Scale(False, 100))["sgd"]:
        p = build_problem(ite.PROBLEMS[c["problem_label"]])
        L_b = expected_smoothness(p.L, max_sample_smoothness(p), c["batch_size"])
        assert c["schedule.k0"] == pytest.approx(max(1.0, L_b / p.mu))
        assert c["schedule.eta0"] == pytest.approx(1 / (p.mu * c["schedule.k0"]))


def test_gd_cells_record_log_and_linear_steps():
    cond = _condition(QUICK, "quadratic kappa=10 | GD eta=1/L")
    steps = set(_cell(cond, [0])["step"].tolist())
    n, every = cond["n_steps"], cond["record_every"]
    assert every > 1 and set(range(0, n + 1, every)) <= steps  # linear part
    assert {0, 1, 2, n} <= steps  # log part


def test_cells_do_not_depend_on_replicate_chunking():
    cond = _condition(QUICK, "quadratic kappa=10 | minibatch b=16")
    together, alone = _cell(cond, np.arange(3)), _cell(cond, [2])
    pd.testing.assert_frame_equal(
        together[together["replicate"] == 2].reset_index(drop=True), alone
    )


# ---- small estimators -----------------------------------------------------------------------
def test_hitting_time_quantiles_count_censored_as_infinite():
    """Replicates reaching eps=0.1 at steps 10, 20, never, 40: quantiles with +inf."""
    reach = {0: 10, 1: 20, 2: None, 3: 40}
    steps = np.array([0, 10, 20, 30, 40])
    rows = [
        {"replicate": r, "step": k, "subopt": 0.05 if hit is not None and k >= hit else 1.0,
         "diverged": False}
        for r, hit in reach.items() for k in steps
    ]  # fmt: skip
    q = hitting_time_table(pd.DataFrame(rows), [0.1], seed=0, quantiles=(0.25, 0.5, 1.0))
    q = q.iloc[0]
    assert (q["q25"], q["q50"], q["q100"]) == (10.0, 20.0, np.inf)
    assert (q["n_censored"], q["share_censored"]) == (1, 0.25)


def test_gd_rate_on_the_quadratic():
    """rho = (1 - 1/kappa)^2 at eta = 1/L, ((kappa - 1)/(kappa + 1))^2 at 2/(L + mu)."""
    p = build_problem(ite.PROBLEMS["quadratic kappa=10"])
    rate = gd_rate(p, 1 / p.L)
    assert (rate["mu_local"], rate["L_local"]) == pytest.approx((p.mu, p.L))
    assert rate["rho_theory"] == pytest.approx((1 - p.mu / p.L) ** 2)
    assert rate["slope_theory"] == pytest.approx(1 / math.log(1 / rate["rho_theory"]))
    kappa = p.L / p.mu
    assert gd_rate(p, 2 / (p.L + p.mu))["rho_theory"] == pytest.approx(
        ((kappa - 1) / (kappa + 1)) ** 2
    )


def test_min_hitting_slope_ratio_on_exact_linear_rates():
    """Curves f_k = rho^k (no noise): slopes 1/ln(1/rho); the ratio is that of the slowest
    competitor to the reference, with a degenerate CI."""
    steps = np.arange(0, 200)
    frames = {
        name: pd.DataFrame(
            [
                {"replicate": r, "step": k, "subopt": rho**k, "diverged": False}
                for r in range(3)
                for k in steps
            ]
        )  # fmt: skip
        for name, rho in {"ref": 0.5, "slow": 0.8, "slower": 0.9}.items()
    }
    est, closest = min_hitting_slope_ratio(frames, "ref", 10.0 ** -np.arange(1, 8), seed=0)
    assert closest == "slow"
    assert est.value == pytest.approx(math.log(2) / math.log(1 / 0.8), rel=1e-6)
    assert est.ci_low == pytest.approx(est.value) and est.ci_high == pytest.approx(est.value)


def test_variance_share():
    assert inverse_time_variance_share(1.0, 0.0, 10.0, 90.0) == 1.0
    # c/(k+k0) = 0.01 and B (k0/(k+k0))^2 = 0.01 at k = 90: half each
    assert inverse_time_variance_share(1.0, 1.0, 10.0, 90.0) == pytest.approx(0.5)


# ---- the quick run: outputs, deterministic claims, verdicts -----------------------------------
def test_quick_run_writes_every_table_and_figure(quick):
    folder = quick.folder
    assert set(quick.analysis.tables) == {
        "hitting_times", "gd_rates", "gd_divergence", "sgd_rates", "tradeoff_to_eps",
        "minibatch_variance", "minibatch_fits",
    }  # fmt: skip
    for stem in quick.analysis.tables:
        assert (folder / "tables" / f"{stem}.csv").exists()
    assert set(quick.analysis.figures) == {
        "subopt_curves", "gd_linear_rate", "gd_step_sweep", "iterations_to_eps",
        "minibatch_tradeoff",
    }  # fmt: skip
    for stem in quick.analysis.figures:
        assert (folder / "figures" / f"{stem}.png").exists()
    assert {c.claim for c in quick.analysis.checks} == {2, 3, 4}
    for grid in ("gd", "sgd", "teacher"):  # timing probes live in benchmarks/, not in the runs
        runs = pd.read_parquet(folder / f"runs_{grid}.parquet")
        assert not {"wall_time", "seconds", "seconds_per_iteration"} & set(runs.columns)


def test_hitting_table_reports_censoring_and_never_drops_runs(quick):
    hits = quick.analysis.tables["hitting_times"]
    for curve, rows in hits.groupby("curve").size().items():
        eps = ite.EPS_TEACHER if curve.startswith(ite.TEACHER) else ite.EPS
        assert rows == eps.size
    assert (hits["n"] + hits["n_diverged"] == 20).all()
    assert hits["n_censored"].between(0, 20).all()
    # a censored mean curve has no hitting time; a diverged condition has no mean curve (a
    # replicate may still reach a loose eps before it blows up: that hit is kept)
    assert hits.loc[hits["mean_curve_censored"], "iterations"].isna().all()
    diverged = hits[hits["step_times_L"] > 2]
    assert (diverged["n_diverged"] == 20).all() and diverged["mean_curve_censored"].all()
    assert (diverged.loc[diverged["eps"] <= 1e-3, "n_censored"] == 20).all()
    np.testing.assert_allclose(hits["samples"], hits["batch_size"] * hits["iterations"])


def test_quick_run_gd_claims(quick):
    """GD is deterministic given its start: slopes within 5% of 1/ln(1/rho)."""
    rates = quick.analysis.tables["gd_rates"]
    ok = rates[rates["step_times_L"] < 2]
    np.testing.assert_allclose(ok["slope"], ok["slope_theory"], rtol=0.05)
    checks = {c.id: c for c in quick.analysis.checks}
    assert checks["2-gd-diverges-above-2overL"].estimate == 1.0
    assert checks["2-gd-converges-below-2overL"].estimate == 0.0
    optimal = checks["2-gd-optimal-step"]
    assert optimal.ci_low > 1.0 and optimal.verdict == "reproduced"


def test_quick_verdicts_match_the_full_report(quick):
    """At quick scale every check has the verdict of the full report (seed 0) except two that
    are inconclusive by design: 0 of 20 GD runs diverging at 1.95/L has an exact upper bound
    of 0.17 > 0.1 (R >= 36 is needed), and the quick SGD budget (20k steps) ends before enough
    eps are crossed past 50 k0 for a tight 1/eps slope."""
    full = pd.read_csv(REPORT / "claims.csv").set_index("id")["verdict"]
    quick_only = {"2-gd-converges-below-2overL", "3-sgd-iterations-1overeps"}
    got = {c.id: c.verdict for c in quick.analysis.checks}
    assert set(full.index) - set(got) == {"2-gd-slope-kappa30-1overL"}  # kappa=30: full grid only
    for cid, verdict in got.items():
        assert verdict == ("inconclusive" if cid in quick_only else full[cid]), cid


# ---- SGD and minibatch claims on full-length cells ------------------------------------------
@pytest.fixture(scope="module")
def stochastic():
    """Full-length SGD (b=1) and minibatch (b=16) cells on the stochastic quadratic, R=30."""
    scale = Scale(False, 30)
    return {
        name: _cell(_condition(scale, f"{ite.STOCHASTIC} | {name}"), np.arange(30))
        for name in ("SGD b=1 (i.i.d.)", "minibatch b=16")
    }


def test_sgd_iterations_grow_like_one_over_eps(stochastic):
    """Claim 3: log-log slope of iterations to eps against 1/eps is 1 (tolerance: the claim's
    [0.85, 1.15] widened by 3 bootstrap standard errors)."""
    sgd = ite._by_curve(stochastic["SGD b=1 (i.i.d.)"])
    fit = ite.rate_tables({}, sgd, n_boot=300, seed=0)[2].iloc[0]
    assert fit["n_eps"] >= 5
    assert abs(fit["slope"] - 1.0) <= 0.15 + 3 * fit["se"]


def test_minibatch_variance_term_scales_like_one_over_b(stochastic):
    """Claim 4: the fitted variance coefficients of b=16 and b=1 differ by a factor 16 (log
    ratio within 3 standard errors of -ln 16, plus 10%), and iterations to eps fall like 1/b
    while the variance term dominates (b <= 16 at eps = CLAIM_EPS)."""
    curves = {k: v for frame in stochastic.values() for k, v in ite._by_curve(frame).items()}
    _, var, slopes = ite.minibatch_tables(curves, n_boot=300, seed=0)
    assert var["identified"].all()
    se_log_c = (np.log(var["c_ci_high"]) - np.log(var["c_ci_low"])) / (2 * 1.96)
    log_ratio = np.log(var["c"].iloc[1] / var["c"].iloc[0])
    assert abs(log_ratio + math.log(16)) <= 0.1 * math.log(16) + 3 * np.hypot(*se_log_c)
    it = slopes["iterations"]
    assert abs(it.estimate.value + 1.0) <= 0.1 + 3 * it.se
