"""Tests of the nonconvex escape study: its cells, its analysis at quick scale, and every broken
variant turning the checks that name it into "not reproduced"."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from convstudy.studies import nonconvex_escape as E

from convstudy.catalogue.nonconvex_escape import SPECS
from convstudy.runner import run_study
from convstudy.stats.proportions import proportions_by
from convstudy.study import Scale, build_problem, cell_seed, parameters_of
from convstudy.theory import nonconvex as theory

# Good-basin fractions of the full run (R = 200, seed 0) with this code's cell seeds.
FULL_FRACTIONS = {1: 1.0, 2: 0.99, 3: 0.555, 4: 0.14, 6: 0.0, 8: 0.0, 16: 0.0, 32: 0.0}
FULL_R = 200


# ---- estimators ---------------------------------------------------------------------------------
def test_proportions_by_with_a_reference_group():
    frame = pd.DataFrame(
        {"g": ["a"] * 10 + ["b"] * 10, "ok": [True] * 7 + [False] * 3 + [False] * 10}
    )
    table = proportions_by(frame, "ok", ["g"], reference={"g": "b"}).set_index("g")
    assert table.loc["a", "successes"] == 7 and table.loc["a", "trials"] == 10
    assert table.loc["a", "value"] == pytest.approx(0.7)
    assert table.loc["a", "minus_reference"] == pytest.approx(0.7)
    assert table.loc["b", "minus_reference"] == 0.0
    assert table.loc["a", "minus_reference_low"] > 0  # 7/10 against 0/10 is a clear difference
    with pytest.raises(ValueError, match="'reference' parameter of proportions_by"):
        proportions_by(frame, "ok", ["g"], reference={"g": "c"})


def test_good_basin_observable_and_kramers_fraction():
    problem = build_problem(E.WELL)
    w = np.array([[problem.x_global], [problem.x_max - 1e-9], [problem.x_local]])
    np.testing.assert_array_equal(E.in_good_basin(w), [1.0, 1.0, 0.0])
    # Kramers: the fraction falls from ~1 at b = 1 (dF/T = 1.6) to ~0 at b = 32 (dF/T = 52)
    fractions = [E.kramers_fraction(b) for b in E.BATCH_SIZES]
    assert fractions[0] > 0.999 and fractions[-1] < 1e-12 and np.all(np.diff(fractions) <= 0)


# ---- the grids and the cells ---------------------------------------------------------------------
def _condition(grid: str, **match) -> dict:
    conds = E.conditions(Scale(True, 4))[grid]
    return next(c for c in conds if all(c[k] == v for k, v in match.items()))


def test_the_method_label_is_presentation_only():
    cond = _condition("escape", method="gd")
    params = parameters_of(cond, E.study.labels)
    assert "method" not in params
    assert cell_seed(0, params) == cell_seed(0, parameters_of({**cond, "method": "GD"}, ["method"]))
    assert set(E.study.grids(Scale(True, 4))) == {"escape", "ghadimi_lan"}


def test_gradient_descent_never_leaves_the_poor_minimum():
    frame = E.ESCAPE_CELL(_condition("escape", method="gd"), 1, np.arange(3))
    assert not (frame["good_basin"] == 1).any()
    np.testing.assert_allclose(frame["w_0"], build_problem(E.WELL).x_local, atol=1e-9)


def test_ghadimi_lan_cell_records_the_strata_and_the_constants():
    cond = _condition("ghadimi_lan", problem="teacher_student", n_steps=316)
    frame = E.ghadimi_lan_cell(cond, 3, np.arange(10))
    steps = theory.geometric_strata(316, E.N_STRATA)[0]
    np.testing.assert_array_equal(np.sort(frame["step"].unique()), steps)
    assert frame["sigma2"].notna().all() and (frame["sigma2"] > 0).all()
    rows = frame.groupby("step")["hess_norm"].count()
    assert (rows == 8).all()  # the Hessian on a sample of 8 replicates per record


# ---- the study at quick scale (R = 20, seed 0) and its broken variants ---------------------------
@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def quick_result(tmp_path_factory, cache):
    return run_study(E.study, quick=True, out=tmp_path_factory.mktemp("reports"), cache_dir=cache)


@pytest.fixture(scope="module")
def variant_results(quick_result, cache):
    # the shared cache lets each variant recompute only the grid it breaks
    return {
        name: run_study(E.study, quick=True, out=None, cache_dir=cache, variant=name)
        for name in E.study.variants
    }


def test_study_writes_tables_figures_and_checks(quick_result):
    folder = quick_result.folder
    for stem in ("escape", "ghadimi_lan"):
        assert (folder / "figures" / f"{stem}.png").exists()
    for stem in ("escape_by_batch_size", "ghadimi_lan_by_horizon"):
        assert (folder / "tables" / f"{stem}.md").exists()
    checks = quick_result.analysis.checks
    assert len({c.id for c in checks}) == len(checks) == 2 + 2 * len(E.GL_PROBLEMS)
    assert all(c.claim == 8 for c in checks)
    assert [c.id for c in checks if c.kind == "sanity"] == ["8a-gd-stays-at-poor-minimum"]
    assert len(quick_result.analysis.caveats) == 2 + len(E.GL_PROBLEMS)


def test_every_claim_check_names_a_declared_variant():
    for spec in SPECS:
        assert spec.kind == "sanity" or spec.broken_variant in E.study.variants


def test_study_escape_table(quick_result):
    table = quick_result.analysis.tables["escape_by_batch_size"]
    gd = table[table["method"] == "gd"].iloc[0]
    assert gd["escaped"] == 0 and gd["n"] == 20 and gd["max_drift"] < 1e-9
    sgd = table[table["method"] == "sgd"].set_index("batch_size")
    assert list(sgd.index) == list(E.BATCH_SIZES)
    assert (sgd["ci_low"] <= sgd["fraction_good_basin"]).all()
    assert (sgd["fraction_good_basin"] <= sgd["ci_high"]).all()
    np.testing.assert_allclose(sgd["temperature"], 0.1 * 2.0**2 / (2 * np.array(E.BATCH_SIZES)))
    np.testing.assert_allclose(sgd["kramers"], [E.kramers_fraction(b) for b in E.BATCH_SIZES])


def test_quick_escape_fractions_agree_with_the_full_report(quick_result):
    # each quick fraction lies within 4 standard errors of the difference from the full one
    table = quick_result.analysis.tables["escape_by_batch_size"]
    sgd = table[table["method"] == "sgd"].set_index("batch_size")
    for b, p_full in FULL_FRACTIONS.items():
        p, n = sgd.loc[b, "fraction_good_basin"], sgd.loc[b, "n"]
        se = np.sqrt(p_full * (1 - p_full) / FULL_R + p * (1 - p) / n)
        assert abs(p - p_full) <= 4 * se + 1e-12, (b, p, p_full)


def test_study_ghadimi_lan_table(quick_result):
    table = quick_result.analysis.tables["ghadimi_lan_by_horizon"]
    runs = quick_result.runs["ghadimi_lan"]
    assert set(table["problem"]) == set(E.GL_PROBLEMS) and (table["n_diverged"] == 0).all()
    for name, part in table.groupby("problem"):
        sub = runs[runs["problem"] == name]
        f0 = sub.loc[sub["step"] == 0, "loss"].to_numpy()
        assert np.ptp(f0) == 0  # one starting point for every replicate and K
        gap = f0[0] - (0.0 if name == "teacher_student" else sub["loss"].min())
        L, s2 = sub["hess_norm"].max(), sub["sigma2"].max()
        for row in part.itertuples():
            B = theory.ghadimi_lan_bound(row.K, E.GL_C / math.sqrt(row.K), L, s2, gap)
            assert row.bound == pytest.approx(B)
            assert row.ratio == pytest.approx(row.avg_grad_norm_sq / B)
            assert row.avg_ci_low <= row.avg_grad_norm_sq <= row.avg_ci_high


def test_quick_verdicts(quick_result):
    """The verdicts at quick scale (R = 20, K <= 1000, seed 0), stated.

    The tanh network's E||grad f(w_R)||^2 falls more slowly than K^-1/2 (quick slope of the
    scaled quantity about +0.1, CI above 0): not reproduced, as in the full run; every other
    check reads reproduced. The Kramers slope's CI covers the prediction at R = 20.
    """
    verdicts = {c.id: c.verdict for c in quick_result.analysis.checks}
    assert verdicts == {
        "8a-gd-stays-at-poor-minimum": "reproduced",
        "8b-escape-falls-with-batch-size": "reproduced",
        "8c-ghadimi-lan-bound-tanh_network": "reproduced",
        "8d-ghadimi-lan-rate-tanh_network": "not reproduced",
        "8c-ghadimi-lan-bound-teacher_student": "reproduced",
        "8d-ghadimi-lan-rate-teacher_student": "reproduced",
    }


@pytest.mark.parametrize("variant", list(E.study.variants))
def test_broken_variant_fails_every_check_naming_it(variant_results, variant):
    checks = [c for c in variant_results[variant].analysis.checks if c.broken_variant == variant]
    assert checks, f"no check names the variant {variant!r}"
    for check in checks:
        assert check.verdict == "not reproduced", (check.id, check.estimate, check.ci_low)
