"""Tests for studies/sample_order.py: sorted problems, records, estimators and claim numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from convstudy.problems import get_problem
from convstudy.runner import run_study
from studies import sample_order as so


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """A quick run with 20 replicates, written to a temporary report folder."""
    return run_study(so.study, quick=True, replicates=20, out=tmp_path_factory.mktemp("out"))


def test_sorting_changes_the_order_not_the_objective():
    ridge = so.sorted_problem("ridge_sorted", 0.1)
    assert np.all(np.diff(ridge.y) >= 0)
    plain = get_problem("ridge", lam=0.1)
    assert ridge.f_star == pytest.approx(plain.f_star, rel=1e-12)
    np.testing.assert_allclose(ridge.w_star, plain.w_star, rtol=1e-10)
    logistic = so.sorted_problem("logistic_sorted", 0.1)
    assert np.all(np.diff(logistic.y) >= 0) and set(logistic.y) == {-1.0, 1.0}
    assert logistic.f_star == pytest.approx(get_problem("logistic", lam=0.1).f_star, rel=1e-10)
    with pytest.raises(ValueError, match="ridge_sorted"):
        so.sorted_problem("ridge")


def test_record_plans():
    conds = so.conditions(so.study.scale(quick=True))
    decay = next(c for c in conds if c["part"] == "decay")
    n = decay["n_steps"] // decay["epochs"]
    steps = so.record_plan(decay)
    assert set(range(0, decay["n_steps"] + 1, n)) <= set(steps.tolist())
    assert (steps >= decay["n_steps"] - n).sum() == so.LAST_EPOCH_RECORDS
    osc = next(c for c in conds if c["part"] == "oscillation")
    n = osc["n_steps"] // osc["epochs"]
    np.testing.assert_array_equal(
        so.record_plan(osc), np.arange(osc["n_steps"] - 2 * n, osc["n_steps"] + 1)
    )


def test_oscillation_cells_keep_only_the_first_replicates():
    cond = next(c for c in so.conditions(so.study.scale(True)) if c["part"] == "oscillation")
    cond = {**cond, "n_steps": 2 * cond["n_steps"] // cond["epochs"], "epochs": 2}
    frame = so.compute(cond, 0, np.arange(2, 9))
    assert sorted(frame["replicate"].unique()) == [2, 3]
    empty = so.compute(cond, 0, np.arange(10, 12))
    assert empty.empty and list(empty.columns)[:3] == ["replicate", "step", "samples"]


def test_reference_slope_known_answers():
    steps = np.geomspace(10, 1e4, 20)
    assert so.reference_slope(steps, 0.0, 2.0) == pytest.approx(-2.0)
    shallow = so.reference_slope(steps, 100.0, 1.0)
    assert -1.0 < shallow < -0.5


def test_slope_difference_normal_interval():
    rates = pd.DataFrame(
        {
            "problem": ["p", "p"],
            "sampler": ["reshuffle", "replacement"],
            "slope": [-1.8, -0.9],
            "se": [0.03, 0.04],
            "n": [20, 19],
            "reference_1_over_k": [-0.8, -0.8],
            "reference_1_over_k2": [-1.6, -1.6],
        }
    )
    d = so.slope_difference(rates, "p")
    assert d["estimate"] == pytest.approx(-0.9)
    assert d["ci_high"] - d["estimate"] == pytest.approx(1.959964 * 0.05)
    assert d["reference"] == pytest.approx(-0.8) and d["n"] == 19


def test_cyclic_order_is_deterministic(quick):
    runs = quick.runs
    cyclic = runs[(runs["part"] == "decay") & (runs["sampler"] == "cyclic")]
    spread = cyclic.groupby(["problem", "step"])["subopt"].agg(np.ptp)
    assert spread.max() == 0.0


def test_claim_numbers_on_a_quick_run(quick):
    checks = {c.id: c for c in quick.analysis.checks}
    assert len(checks) == 6 and all(c.claim == 5 for c in checks.values())
    for problem in so.PROBLEMS:
        assert checks[f"5a-cyclic-worse-{problem}"].ci_low > 1
        assert checks[f"5b-reshuffle-beats-replacement-{problem}"].ci_low > 1
    rates = quick.analysis.tables["rates"].set_index(["problem", "sampler"])
    # with replacement and eta ~ 1/k the curve follows (k0 + k)^-1 (within 4 bootstrap SEs)
    rep = rates.loc[("ridge_sorted", "replacement")]
    assert abs(rep["slope"] - rep["reference_1_over_k"]) < 4 * rep["se"]


def test_run_writes_the_report(quick):
    folder = quick.folder
    for stem in ("curves", "oscillation", "final"):
        assert (folder / "figures" / f"{stem}.png").exists()
    for stem in ("final_subopt", "ratios", "rates"):
        assert (folder / "tables" / f"{stem}.csv").exists()
    claims = pd.read_csv(folder / "claims.csv")
    assert len(claims) == 6 and set(claims["claim"]) == {5}
