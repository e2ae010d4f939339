"""``convstudy compare``: equal budgets, disjoint tuning and evaluation seeds, known orderings
with disjoint CIs, and a user's optimizer and problem from a temporary folder end to end."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from convstudy.compare import LogUniform, Method, TestbedProblem, compare
from convstudy.compare.protocol import select_trials
from convstudy.compare.space import trial_budgets, trials
from convstudy.compare.testbed import resolve_problems
from convstudy.runner import JoblibExecutor

USER_FILES = Path(__file__).parent / "data" / "extending"


# ---- search spaces and budgets ------------------------------------------------------------------
def test_grid_trials_span_the_space_and_random_trials_are_seeded_per_method():
    grid = [t["lr"] for t in trials(Method("sgd"), 7)]
    assert grid[0] == pytest.approx(1e-5) and grid[-1] == pytest.approx(10.0)
    assert np.allclose(np.diff(np.log10(grid)), 1.0, atol=1e-3)  # 6 decades in 6 steps
    assert all(t["momentum"] == 0.9 for t in trials(Method("momentum", fixed={"momentum": 0.9}), 3))
    two = Method("adam", space={"lr": LogUniform(1e-4, 1e-1), "beta1": LogUniform(0.5, 0.99)})
    first, again = trials(two, 5, search="random", seed=3), trials(two, 5, search="random", seed=3)
    assert first == again and trials(two, 5, search="random", seed=4) != first
    assert all(1e-4 <= t["lr"] <= 1e-1 and 0.5 <= t["beta1"] <= 0.99 for t in first)
    with pytest.raises(ValueError, match="grid search takes one hyper-parameter"):
        trials(two, 4)


def test_changing_one_methods_budget_is_refused_or_reported_as_unequal():
    methods = [Method("sgd"), Method("adam", budget=8)]
    with pytest.raises(ValueError, match=r"Unequal tuning budgets \(sgd: 16, adam: 8 trials\)"):
        trial_budgets(methods, 16)
    budgets, caveats = trial_budgets(methods, 16, allow_unequal=True)
    assert budgets == {"sgd": 16, "adam": 8}
    assert "Unequal comparison" in caveats[0]
    assert trial_budgets([Method("sgd"), Method("adam", budget=16)], 16)[1] == []
    with pytest.raises(ValueError, match="Unequal tuning budgets"):
        compare(methods, baselines=(), problems="quadratic_k10", budget=16, quick=True)


def test_bad_methods_and_problems_get_one_line_errors():
    with pytest.raises(ValueError, match="at least two methods"):
        compare(["sgd"], baselines=(), problems="quadratic_k10")
    with pytest.raises(ValueError, match="Two methods are named"):
        compare(["sgd"], baselines=["sgd"], problems="quadratic_k10")
    with pytest.raises(ValueError, match="'no_such_problem'"):
        resolve_problems("no_such_problem")
    with pytest.raises(ValueError, match="exactly one of 'target' and 'relative_target'"):
        TestbedProblem("x", "quadratic")
    with pytest.raises(ValueError, match="low < high"):
        LogUniform(1.0, 0.1)
    with pytest.raises(ValueError, match="both searched and fixed"):
        Method("sgd", fixed={"lr": 0.1})


def test_selection_excludes_diverged_trials_and_breaks_ties_by_the_final_value():
    table = pd.DataFrame(
        {
            "problem": "p", "method": "m", "trial": [0, 1, 2, 3],
            "n_diverged": [0, 1, 0, 0],
            "median_iterations": [np.inf, 5.0, np.inf, 40.0],
            "median_final": [1e-3, 1e-9, 1e-4, 2e-3],
        }
    )  # fmt: skip
    assert select_trials(table, "time").tolist() == [False, False, False, True]
    assert select_trials(table, "final").tolist() == [False, False, True, False]
    censored = table.assign(median_iterations=np.inf)
    assert select_trials(censored, "time").tolist() == [False, False, True, False]


def test_a_choice_at_the_edge_of_the_space_warns_and_becomes_a_caveat():
    narrow = Method("sgd", space={"lr": LogUniform(1e-5, 1e-3)}, name="narrow")
    with pytest.warns(UserWarning, match="narrow on quadratic_k10: the chosen lr = 0.001 is the "
                      "largest value tried"):  # fmt: skip
        result = compare([narrow], baselines=["sgd"], problems="quadratic_k10", budget=3,
                         quick=True, replicates=4, tune_replicates=2)  # fmt: skip
    assert any("narrow on quadratic_k10" in c for c in result.caveats)
    assert result.tuning["at_edge"].sum() == 4  # both ends of each method's three trials


# ---- the protocol on the testbed ----------------------------------------------------------------
@pytest.fixture(scope="module")
def testbed_result():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # grid-edge notes are tested above
        return compare(
            baselines=["sgd", "momentum", "nesterov", "adam"],
            problems="quadratic_k1000,digits_mlp",
            budget=16,
            quick=True,
            replicates=16,
        )


def test_tuning_and_evaluation_run_on_disjoint_seeds(testbed_result):
    runs, trial_runs = testbed_result.runs, testbed_result.trials
    assert set(runs["phase"]) == {"eval"} and set(trial_runs["phase"]) == {"tune"}
    # the same chosen setting gives other starting points on the evaluation seeds
    chosen = testbed_result.tuning[testbed_result.tuning["chosen"]].iloc[0]
    key = ["problem", "method", "trial", "replicate", "step"]
    at = {"problem": chosen["problem"], "method": chosen["method"], "trial": chosen["trial"]}
    first = [
        frame.loc[(frame[list(at)] == pd.Series(at)).all(axis=1) & (frame["step"] == 0)].set_index(
            key
        )["objective"]
        for frame in (trial_runs, runs)
    ]
    shared = first[0].index.intersection(first[1].index)
    assert len(shared) >= 2
    assert not np.allclose(first[0][shared], first[1][shared])


def test_heavy_ball_and_nesterov_reach_the_target_in_fewer_iterations_than_tuned_gd(
    testbed_result,
):
    medians = testbed_result.tables["medians"]
    at = medians[(medians["problem"] == "quadratic_k1000") & (medians["unit"] == "iterations")]
    at = at.set_index("method")
    for fast in ("momentum", "nesterov"):
        # Kaplan-Meier medians with disjoint CIs: kappa = 1000 is where momentum pays off
        assert at.loc[fast, "ci_high"] < at.loc["sgd", "ci_low"], at


def test_every_tuned_method_beats_the_untrained_test_accuracy_on_digits(testbed_result):
    finals = testbed_result.tables["finals"].set_index(["problem", "method"]).loc["digits_mlp"]
    assert len(finals) == 4
    assert (finals["test_accuracy_ci_low"] > finals["untrained_test_accuracy_ci_high"]).all()
    assert (finals["test_accuracy"] > 0.85).all()


def test_aggregates_cover_every_method_with_cis(testbed_result):
    tables = testbed_result.tables
    assert sorted(tables["ranking"]["method"]) == ["adam", "momentum", "nesterov", "sgd"]
    assert (tables["ranking"]["ci_low"] <= tables["ranking"]["iqm"]).all()
    improvement = tables["improvement"].set_index(["method_a", "method_b"])["probability"]
    assert improvement["momentum", "sgd"] + improvement["sgd", "momentum"] == pytest.approx(1.0)
    profile = tables["profile"]
    assert ((profile["ci_low"] <= profile["rho"]) & (profile["rho"] <= profile["ci_high"])).all()
    times = tables["times"]
    assert times["seconds"].dropna().gt(0).all()
    assert {"iterations", "samples", "seconds"} <= set(tables["medians"]["unit"])


def test_executor_and_cache_change_no_number(testbed_result, tmp_path):
    kwargs = dict(baselines=["sgd", "adam"], problems="quadratic_k10", budget=3, quick=True,
                  replicates=4, tune_replicates=2)  # fmt: skip
    serial = compare(**kwargs, cache_dir=tmp_path)
    again = compare(**kwargs, cache_dir=tmp_path)
    assert again.n_computed == 0 and again.n_cached == serial.n_computed
    parallel = compare(**kwargs, executor=JoblibExecutor(2))
    drop = ["seconds"]  # wall-clock is the machine's time, not a result
    for other in (again, parallel):
        pd.testing.assert_frame_equal(other.runs.drop(columns=drop), serial.runs.drop(columns=drop))
        pd.testing.assert_frame_equal(other.tables["ranking"], serial.tables["ranking"])


# ---- the command on a user's files ---------------------------------------------------------------
def _compare(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "convstudy", "compare", "--quick", "--quiet", *args],
        cwd=folder, capture_output=True, text=True, timeout=900,
    )  # fmt: skip


def test_compare_command_on_a_user_optimizer_and_a_user_problem(tmp_path):
    folder = tmp_path / "user"
    shutil.copytree(USER_FILES, folder)
    args = ["--optimizer", "lion.py:lion", "--baselines", "sgd,momentum,adam",
            "--problems", "line_problem:noisy_line,quadratic_k10", "--budget", "3",
            "--replicates", "6", "--tune-replicates", "2", "--out", "cmp"]  # fmt: skip
    proc = _compare(folder, *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "compare: " in proc.stdout and "ranking" in proc.stdout
    out = folder / "cmp"
    ranking = pd.read_csv(out / "tables" / "ranking.csv")
    assert sorted(ranking["method"]) == ["adam", "lion", "momentum", "sgd"]
    runs = pd.read_parquet(out / "runs.parquet")
    assert set(runs["problem"]) == {"noisy_line", "quadratic_k10"}
    assert (runs.loc[runs["method"] == "lion", "engine"] == "fast").all()
    meta = json.loads(pq.read_schema(out / "runs.parquet").metadata[b"convstudy_provenance"])
    assert {"convstudy", "numpy", "numba", "platform", "git_revision", "engines"} <= set(meta)
    assert meta["seed"] == 0 and meta["budget"]["lion"] == 3
    page = (out / "index.html").read_text()
    assert "lion" in page and 'src="figures/' not in page
    for stem in ("curves", "survival", "profile", "sensitivity"):
        assert (out / "figures" / f"{stem}.png").is_file()
    again = _compare(folder, *args)
    assert again.returncode == 0 and "0 cells computed, 32 from cache" in again.stdout
    lion = folder / "lion.py"  # an edit to the user's optimizer recomputes its cells only
    lion.write_text(lion.read_text().replace("SCALE = 1.0", "SCALE = 0.5"))
    edited = _compare(folder, *args)
    assert edited.returncode == 0 and "8 cells computed, 24 from cache" in edited.stdout


def test_compare_command_refuses_an_unequal_budget_in_one_line(tmp_path):
    proc = _compare(tmp_path, "--baselines", "sgd,adam", "--problems", "quadratic_k10",
                    "--method-budget", "adam=2", "--out", "cmp")  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "convstudy: error: Unequal tuning budgets (sgd: 16, adam: 2 trials): a comparison gives "
        "every method the same number of trials. Remove the per-method budget, or pass "
        "allow_unequal_budgets=True (--allow-unequal-budgets) to run it reported as an unequal "
        "comparison."
    ]


@pytest.mark.parametrize(
    "option, message",
    [
        (["--lr-range", "adam=1:0.1"], "--lr-range adam=1:0.1: LogUniform needs low < high"),
        (["--lr-range", "adam=1e-3"], "--lr-range adam=1e-3: give LOW:HIGH, e.g. 1e-4:1"),
        (["--lr-range", "lion=1e-3:1"], "name ['lion'], which are not compared"),
        (["--method-budget", "adam=x"], "--method-budget adam: not an integer"),
        (["--problems", "nowhere"], "names 'nowhere', which is neither a testbed problem"),
    ],
)
def test_bad_compare_options_get_one_line_errors(tmp_path, option, message):
    proc = _compare(tmp_path, "--baselines", "sgd,adam", "--problems", "quadratic_k10",
                    "--out", "cmp", *option)  # fmt: skip
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("convstudy: error: ") and message in lines[0]
