"""Tests for the sample_order study: sorted problems, records, estimators and claim numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from convstudy.studies import sample_order as so

from convstudy.problems import get_problem
from convstudy.runner import run_study
from convstudy.stats.curves import time_average_estimate
from convstudy.stats.estimate import Estimate
from convstudy.stats.fits import SlopeFit, curve_loglog_slope, slope_difference


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """A quick run with 20 replicates, written to a temporary report folder."""
    return run_study(so.study, quick=True, replicates=20, out=tmp_path_factory.mktemp("out"))


def test_sorting_changes_the_order_not_the_objective():
    ridge = get_problem("ridge_sorted", lam=0.1)
    assert ridge.name == "ridge_sorted" and np.all(np.diff(ridge.y) >= 0)
    plain = get_problem("ridge", lam=0.1)
    assert ridge.f_star == pytest.approx(plain.f_star, rel=1e-12)
    np.testing.assert_allclose(ridge.w_star, plain.w_star, rtol=1e-10)
    logistic = get_problem("logistic_sorted", lam=0.1)
    assert np.all(np.diff(logistic.y) >= 0) and set(logistic.y) == {-1.0, 1.0}
    assert logistic.f_star == pytest.approx(get_problem("logistic", lam=0.1).f_star, rel=1e-10)
    with pytest.raises(ValueError, match="lam"):
        get_problem("ridge_sorted", lam=-1.0)


def test_grids_and_record_plans():
    grids = so.study.grids(so.study.scale(quick=True))
    assert set(grids) == {"decay", "oscillation"} and len(grids["decay"]) == 6
    decay = grids["decay"][0]
    n = decay["n_steps"] // decay["epochs"]
    steps = so.decay_records(decay)
    assert set(range(0, decay["n_steps"] + 1, n)) <= set(steps.tolist())
    assert (steps >= decay["n_steps"] - n).sum() == so.LAST_EPOCH_RECORDS
    # eta_k = eta0 k0 / (k0 + k) with beta mu = eta0 k0 mu = 2
    mu = get_problem(decay["problem"], lam=so.LAM).mu
    assert decay["schedule.eta0"] * decay["schedule.k0"] * mu == pytest.approx(so.BETA_MU)


def test_oscillation_cells_record_the_last_two_epochs_of_the_first_replicates():
    cond = so.study.grids(so.study.scale(True))["oscillation"][0]
    n = cond["n_steps"] // cond["epochs"]
    cond = {**cond, "n_steps": 2 * n, "epochs": 2}
    frame = so.oscillation_cell(cond, 0, np.arange(2, 9))
    assert sorted(frame["replicate"].unique()) == [2, 3]
    np.testing.assert_array_equal(np.unique(frame["step"]), np.arange(0, 2 * n + 1))
    empty = so.oscillation_cell(cond, 0, np.arange(10, 12))
    assert empty.empty and list(empty.columns)[:3] == ["replicate", "step", "samples"]


def test_slope_difference_normal_interval():
    def fit(slope, se, n):
        return SlopeFit(Estimate(slope, slope - 0.1, slope + 0.1, n, "test"), se, 0.0, 0)

    d = slope_difference(fit(-1.8, 0.03, 20), fit(-0.9, 0.04, 19))
    assert d.value == pytest.approx(-0.9) and d.n == 19
    assert d.ci_high - d.value == pytest.approx(1.959964 * 0.05)
    assert d.value - d.ci_low == pytest.approx(d.ci_high - d.value)


def test_reference_slopes_and_last_epoch_averages_known_answers():
    steps = np.geomspace(10, 1e4, 20)
    assert curve_loglog_slope(steps, steps**-2.0) == pytest.approx(-2.0)
    assert -1.0 < curve_loglog_slope(steps, (100 + steps) ** -1.0) < -0.5  # the k0 offset
    frame = pd.DataFrame(
        {"replicate": np.repeat([0, 1, 2], 3), "step": np.tile([0, 5, 10], 3),
         "subopt": [9.0, 1.0, 3.0, 9.0, 2.0, 4.0, 9.0, np.nan, np.nan],
         "diverged": [False] * 7 + [True] * 2}
    )  # fmt: skip
    last = time_average_estimate(frame, 5)
    np.testing.assert_allclose(last.values, [2.0, 3.0, np.nan])
    row = last.row("final_subopt")
    assert row["final_subopt"] == 2.5 and row["n"] == 2 and row["n_diverged"] == 1
    assert row["share_diverged"] == pytest.approx(1 / 3) and row["ci_low"] < 2.5 < row["ci_high"]


def test_cyclic_order_is_deterministic(quick):
    decay = quick.runs["decay"]
    cyclic = decay[decay["sampler"] == "cyclic"]
    assert cyclic.groupby(["problem", "step"])["subopt"].agg(np.ptp).max() == 0.0
    final = quick.analysis.tables["final_subopt"].set_index(["problem", "sampler"])
    width = final["ci_high"] - final["ci_low"]
    assert (width.xs("cyclic", level="sampler") < 1e-12 * final["final_subopt"].max()).all()


def test_claim_numbers_on_a_quick_run(quick):
    checks = {c.id: c for c in quick.analysis.checks}
    assert len(checks) == 6 and all(c.claim == 5 for c in checks.values())
    for problem in so.ETA0:
        assert checks[f"5a-cyclic-worse-{problem}"].ci_low > 1
        assert checks[f"5b-reshuffle-beats-replacement-{problem}"].ci_low > 1
    rates = quick.analysis.tables["rates"].set_index(["problem", "sampler"])
    # with replacement and eta ~ 1/k the curve follows (k0 + k)^-1 (within 4 bootstrap SEs)
    rep = rates.loc[("ridge_sorted", "replacement")]
    assert abs(rep["slope"] - rep["reference_1_over_k"]) < 4 * rep["se"]
    # the slope difference of check 5c is the difference of the table's slopes
    for problem in so.ETA0:
        diff = (
            rates.loc[(problem, "reshuffle"), "slope"]
            - rates.loc[(problem, "replacement"), "slope"]
        )
        assert checks[f"5c-reshuffle-faster-rate-{problem}"].estimate == pytest.approx(diff)


def test_quick_verdicts(quick):
    """At quick scale (20 replicates, 8 epochs) every verdict is the full report's except 5c on
    ridge_sorted: its slope difference needs the full 20 epochs and 200 replicates (CI width
    about 2.6 at quick scale, 0.19 in the full run), so it is inconclusive here."""
    verdicts = {c.id: c.verdict for c in quick.analysis.checks}
    expected = {c: "reproduced" for c in verdicts}
    expected["5c-reshuffle-faster-rate-ridge_sorted"] = "inconclusive"
    assert verdicts == expected


def test_run_writes_the_report(quick):
    folder = quick.folder
    for stem in ("curves", "oscillation", "final"):
        assert (folder / "figures" / f"{stem}.png").exists()
    for stem in ("final_subopt", "ratios", "rates"):
        assert (folder / "tables" / f"{stem}.csv").exists()
    for grid in ("decay", "oscillation"):
        assert (folder / f"runs_{grid}.parquet").exists()
    claims = pd.read_csv(folder / "claims.csv")
    assert len(claims) == 6 and set(claims["claim"]) == {5}
    assert len(quick.analysis.findings) == 2
