"""Tests of the nonconvex escape study: estimators, the escape mechanism, and the analysis."""

from __future__ import annotations

import numpy as np
import pytest

from convstudy.engine import record_steps
from convstudy.runner import run_study
from convstudy.study import Scale, build_problem
from studies import nonconvex_escape as E


# ---- estimators ---------------------------------------------------------------------------------
def test_trapezoid_average_known_answers():
    steps = np.array([0, 1, 2, 4, 8, 16, 100])
    assert E.trapezoid_average(steps, np.full(steps.size, 3.0)) == pytest.approx(3.0)
    # a linear curve v_k = k is integrated exactly: average K / 2
    assert E.trapezoid_average(steps, steps.astype(float)) == pytest.approx(50.0)
    rows = np.vstack([np.ones(steps.size), 2 * steps.astype(float)])
    np.testing.assert_allclose(E.trapezoid_average(steps, rows), [1.0, 100.0])


def test_trapezoid_average_estimates_a_discrete_average_on_a_log_grid():
    # v_k = 1 / sqrt(k + 1): the trapezoid on ~40 log-spaced steps is within 2% of the sum
    K = 10_000
    steps = record_steps(K, "log", 40)
    exact = np.mean(1 / np.sqrt(np.arange(K) + 1))
    assert E.trapezoid_average(steps, 1 / np.sqrt(steps + 1.0)) == pytest.approx(exact, rel=0.02)


@pytest.mark.parametrize(
    "steps, values",
    [([1, 2, 3], [1.0, 1.0, 1.0]), ([0, 2, 1], [1.0, 1.0, 1.0]), ([0, 1], [1.0, 1.0, 1.0])],
)
def test_trapezoid_average_rejects_bad_grids(steps, values):
    with pytest.raises(ValueError, match="'steps' parameter of trapezoid_average"):
        E.trapezoid_average(steps, values)


def test_barrier_height_of_the_double_well():
    problem = build_problem(E.DOUBLE_WELL)
    tilt = E.DOUBLE_WELL["problem.tilt"]

    def f1(x):
        return (x * x - 1) ** 2 + tilt * x

    expected = f1(problem.x_max) - f1(problem.x_local)
    assert E.barrier_height(problem) == pytest.approx(expected)
    assert 0 < E.barrier_height(problem) < f1(problem.x_max) - f1(problem.x_global)


# ---- the escape mechanism -----------------------------------------------------------------------
def _escape_condition(method: str, b: int) -> dict:
    conds = E.conditions(Scale(True, 4))
    return next(
        c for c in conds if c["part"] == "escape" and c["method"] == method and c["batch_size"] == b
    )


def test_gradient_descent_never_leaves_the_poor_minimum():
    cond = _escape_condition("gd", E.DOUBLE_WELL["problem.n_samples"])
    frame = E.compute(cond, seed=1, replicate_ids=np.arange(3))
    problem = build_problem(E.DOUBLE_WELL)
    assert not frame["good_basin"].any()
    np.testing.assert_allclose(frame["w_0"], problem.x_local, atol=1e-9)


def test_sgd_with_small_batches_escapes_and_large_batches_do_not():
    r = 40
    small = E.compute(_escape_condition("sgd", 1), seed=2, replicate_ids=np.arange(r))
    large = E.compute(_escape_condition("sgd", 32), seed=2, replicate_ids=np.arange(r))
    frac = {
        name: f.loc[f["step"] == E.ESCAPE_STEPS, "good_basin"].mean()
        for name, f in [("small", small), ("large", large)]
    }
    # b = 1: the noise temperature is eta s^2 / 2 = 0.2 against a barrier of 0.33 (escape is
    # near certain in 2000 steps); b = 32: temperature 0.006, Delta F / T = 52 (none escapes)
    assert frac["small"] > 0.8
    assert frac["large"] == 0.0


def test_escape_cell_columns_and_replicate_independence():
    cond = _escape_condition("sgd", 3)
    both = E.compute(cond, seed=5, replicate_ids=np.array([0, 1]))
    alone = E.compute(cond, seed=5, replicate_ids=np.array([1]))
    assert {"replicate", "step", "good_basin", "w_0", "diverged"} <= set(both.columns)
    np.testing.assert_array_equal(
        both.loc[both["replicate"] == 1, "w_0"].to_numpy(), alone["w_0"].to_numpy()
    )


def test_compute_rejects_an_unknown_part():
    with pytest.raises(ValueError, match="'part' parameter of nonconvex_escape.compute"):
        E.compute({"part": "nope"}, 0, np.arange(2))


# ---- the study ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def quick_result(tmp_path_factory):
    return run_study(E.study, quick=True, replicates=12, out=tmp_path_factory.mktemp("reports"))


def test_study_writes_tables_figures_and_checks(quick_result):
    folder = quick_result.folder
    for stem in ("escape", "ghadimi_lan"):
        assert (folder / "figures" / f"{stem}.png").exists()
    for stem in ("escape_by_batch_size", "ghadimi_lan", "ghadimi_lan_slopes"):
        assert (folder / "tables" / f"{stem}.md").exists()
    ids = [c.id for c in quick_result.analysis.checks]
    assert len(ids) == len(set(ids)) == 2 + 2 * len(E.GL_PROBLEMS)
    assert all(c.claim == 8 for c in quick_result.analysis.checks)


def test_study_escape_table(quick_result):
    table = quick_result.analysis.tables["escape_by_batch_size"]
    gd = table[table["method"] == "gd"].iloc[0]
    assert gd["escaped"] == 0 and gd["n"] == 12
    sgd = table[table["method"] == "sgd"].set_index("batch_size")
    assert list(sgd.index) == list(E.BATCH_SIZES)
    assert (sgd["ci_low"] <= sgd["fraction_good_basin"]).all()
    assert (sgd["fraction_good_basin"] <= sgd["ci_high"]).all()
    # the claim numbers, already visible with 12 replicates
    assert sgd.loc[1, "minus_gd_low"] > 0
    checks = {c.id: c for c in quick_result.analysis.checks}
    assert checks["8b-escape-falls-with-batch-size"].ci_high < 0
    np.testing.assert_allclose(
        sgd["noise_temperature"],
        E.ESCAPE_LR * E.DOUBLE_WELL["problem.noise"] ** 2 / (2 * np.array(E.BATCH_SIZES)),
    )


def test_study_ghadimi_lan_table(quick_result):
    table = quick_result.analysis.tables["ghadimi_lan"]
    assert set(table["problem"]) == set(E.GL_PROBLEMS)
    for _, part in table.groupby("problem"):
        part = part.sort_values("K")
        np.testing.assert_allclose(part["lr"], E.GL_STEP_CONSTANT / np.sqrt(part["K"]))
        # the minimum over k of the mean curve never exceeds the average over k
        assert (part["min_mean_grad_norm_sq"] <= part["avg_grad_norm_sq"]).all()
        assert (part["n_diverged"] == 0).all()
    fits = quick_result.analysis.tables["ghadimi_lan_slopes"]
    avg = fits[fits["quantity"] == "average over k"]
    # K = 100..1000 only: the average still falls clearly, between K^-0.3 and K^-0.8
    assert (avg["slope"] < -0.3).all() and (avg["slope"] > -0.8).all()
    assert avg["ci_low"].notna().all() and (avg["ci_low"] <= avg["ci_high"]).all()
