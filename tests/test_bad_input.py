"""Bad input gets a one-line error naming the culprit (library API and the command line), and
overflowing runs are data: counted per condition, never a crash, never in a mean."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from _tiny_study import BASE, diverging_study, final_table

from convstudy import cli
from convstudy.engine import simulate
from convstudy.loader import load_study
from convstudy.problems import LeastSquares, Logistic, Problem
from convstudy.runner import run_study
from convstudy.stats.curves import hitting_times, mean_curve, mean_curve_hitting_time
from convstudy.stats.fits import fit_loglog_slope
from convstudy.study import Analysis, Study, simulate_cell

GOOD = {**BASE, "schedule.eta0": 0.05, "n_steps": 5, "n_records": 3}


def no_analysis(runs, scale):
    return Analysis()


def study_with(override: dict) -> Study:
    return Study(
        name="bad_input",
        title="Bad input",
        description="One condition with a bad entry.",
        conditions=lambda scale: [GOOD, {**GOOD, "label": "bad", **override}],
        compute=simulate_cell,
        analyze=no_analysis,
        replicates=2,
    )


STUDY_FILE = """
from convstudy.study import Analysis, Study, simulate_cell

GOOD = {good!r}
OVERRIDE = {override!r}


def conditions(scale):
    return [GOOD, {{**GOOD, "label": "bad", **OVERRIDE}}]


def analyze(runs, scale):
    return Analysis()


study = Study(name="bad_input", title="Bad input", description="A bad condition.",
              conditions=conditions, compute=simulate_cell, analyze=analyze, replicates=2)
"""


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    status = cli.main(args)
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_usage_error(status: int, err: str, *culprits: str) -> None:
    lines = err.strip().splitlines()
    assert status == 2 and len(lines) == 1, f"exit {status}, stderr:\n{err}"
    for culprit in culprits:
        assert culprit in lines[0]


# ---- malformed study files ---------------------------------------------------------------------
MALFORMED = {
    "syntax": ("def conditions(:\n", "SyntaxError"),
    "no-study": ("x = 1\n", "study"),
    "not-a-study": ("study = {'name': 'x'}\n", "dict"),
    "raises": ("raise RuntimeError('boom at import')\n", "boom at import"),
    "bad-import": ("import convstudy.no_such_module\n", "no_such_module"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_study_file_is_one_line_error(tmp_path, capsys, case):
    source, culprit = MALFORMED[case]
    path = tmp_path / f"{case.replace('-', '_')}.py"
    path.write_text(source)
    with pytest.raises(ValueError, match=culprit) as info:
        load_study(path)
    assert path.name in str(info.value) and "\n" not in str(info.value)
    status, _, err = run_cli(["run", str(path), "--out", str(tmp_path / "out")], capsys)
    assert_one_line_usage_error(status, err, path.name, culprit)


@pytest.mark.parametrize("name", ["no_such_study", "missing_file.py"])
def test_unknown_study_or_missing_file_is_one_line_error(tmp_path, capsys, name):
    status, _, err = run_cli(["run", name, "--out", str(tmp_path)], capsys)
    assert_one_line_usage_error(status, err, name)


# ---- bad conditions ----------------------------------------------------------------------------
BAD_CONDITIONS = {
    "unknown-problem": ({"problem": "quadratc"}, ["'problem'", "'quadratc'"]),
    "unknown-optimizer": ({"optimizer": "adamw"}, ["'optimizer'", "'adamw'"]),
    "unknown-schedule": ({"schedule": "linear"}, ["'schedule'", "'linear'"]),
    "unknown-sampler": ({"sampler": "shuffle"}, ["'sampler'", "'shuffle'"]),
    "unknown-hyperparameter": ({"optimizer.lr": 0.1}, ["'lr'"]),
    "negative-step": ({"schedule.eta0": -0.1}, ["'eta0'", "-0.1"]),
    "condition-number-below-1": ({"problem.condition_number": 0.5}, ["'condition_number'"]),
    "fractional-dim": ({"problem.dim": 2.5}, ["'dim'"]),
    "zero-batch": ({"batch_size": 0}, ["'batch_size'"]),
    "full-batch-not-N": ({"sampler": "full", "batch_size": 4}, ["'batch_size'"]),
    "negative-steps": ({"n_steps": -1}, ["'n_steps'"]),
    "negative-momentum": ({"optimizer.momentum": -0.5}, ["'momentum'"]),
    "bad-start": ({"w0": "randm"}, ["'w0'"]),
}


@pytest.mark.parametrize("case", sorted(BAD_CONDITIONS))
def test_bad_condition_is_a_one_line_value_or_type_error_naming_the_culprit(case):
    """Bad input is ValueError/TypeError (the charter), also when raised inside a task."""
    override, culprits = BAD_CONDITIONS[case]
    with pytest.raises(Exception) as info:
        run_study(study_with(override), out=None)
    message = str(info.value)
    assert "\n" not in message
    for culprit in culprits:
        assert culprit in message
    assert isinstance(info.value, (ValueError, TypeError)), type(info.value).__name__


@pytest.mark.parametrize(
    "case",
    ["unknown-problem", "unknown-optimizer", "unknown-schedule", "unknown-sampler"]
    + ["negative-step", "zero-batch"],
)
def test_bad_condition_through_the_cli_is_one_line_exit_2(tmp_path, capsys, case):
    override, culprits = BAD_CONDITIONS[case]
    path = tmp_path / "bad_condition_study.py"
    path.write_text(STUDY_FILE.format(good=GOOD, override=override))
    status, _, err = run_cli(["run", str(path), "--out", str(tmp_path / "out")], capsys)
    assert_one_line_usage_error(status, err, *culprits)


def test_non_scalar_condition_value_is_refused_before_running(tmp_path, capsys):
    path = tmp_path / "list_value_study.py"
    path.write_text(STUDY_FILE.format(good=GOOD, override={"problem.dim": [2, 3]}))
    status, _, err = run_cli(["run", str(path), "--out", str(tmp_path / "out")], capsys)
    assert_one_line_usage_error(status, err, "'problem.dim'", "[2, 3]")


# ---- user data ---------------------------------------------------------------------------------
X_GOOD = np.arange(12.0).reshape(6, 2) / 10 + np.eye(6, 2)
Y_GOOD = np.linspace(-1, 1, 6)


def with_value(array, index, value):
    out = np.array(array, dtype=float)
    out[index] = value
    return out


@pytest.mark.parametrize(
    ("make", "culprit"),
    [
        (lambda: LeastSquares(with_value(X_GOOD, (2, 1), np.nan), Y_GOOD), "'X'"),
        (lambda: LeastSquares(with_value(X_GOOD, (0, 0), np.inf), Y_GOOD), "'X'"),
        (lambda: LeastSquares(X_GOOD, with_value(Y_GOOD, 3, np.nan)), "'y'"),
        (lambda: LeastSquares(X_GOOD, Y_GOOD[:4]), "'y'"),
        (lambda: LeastSquares(X_GOOD[:, 0], Y_GOOD), "'X'"),
        (lambda: LeastSquares(X_GOOD, Y_GOOD, lam=-1.0), "'lam'"),
        (lambda: LeastSquares(X_GOOD.astype(object).tolist() + [["a", "b"]], Y_GOOD), "'X'"),
        (lambda: Logistic(X=X_GOOD, y=with_value(np.sign(Y_GOOD + 0.1), 0, np.nan)), "'y'"),
        (lambda: Logistic(X=X_GOOD, y=Y_GOOD), "'y'"),  # labels not in {-1, +1}
    ],
)
def test_bad_user_data_is_one_line_error_naming_the_argument(make, culprit):
    with pytest.raises((ValueError, TypeError), match=culprit) as info:
        make()
    assert "\n" not in str(info.value)


NAN_DATA_STUDY = """
import numpy as np
from convstudy.problems import LeastSquares
X = np.ones((5, 2)); X[1, 1] = np.nan
problem = LeastSquares(X, np.zeros(5))
"""


def test_nan_in_a_study_file_s_data_is_one_line_cli_error(tmp_path, capsys):
    path = tmp_path / "nan_study.py"
    path.write_text(NAN_DATA_STUDY)
    status, _, err = run_cli(["run", str(path), "--out", str(tmp_path / "out")], capsys)
    assert_one_line_usage_error(status, err, "nan_study.py", "'X'", "finite")


# ---- a user problem with the wrong gradient shape ----------------------------------------------
class WrongShape(Problem):
    """f(w) = 1/N sum_i ||w - c_i||^2 / 2 with one method returning the wrong shape."""

    name = "wrong_shape"

    def __init__(self, broken: str):
        self.n_samples, self.dim, self.broken = 20, 3, broken
        self.c = np.linspace(-1, 1, 60).reshape(20, 3)

    def sample_losses(self, w, idx):
        out = 0.5 * ((w[:, None, :] - self.c[idx]) ** 2).sum(axis=-1)
        return out[:, :1] if self.broken == "sample_losses" else out

    def sample_grads(self, w, idx):
        g = w[:, None, :] - self.c[idx]
        return g[..., :2] if self.broken == "sample_grads" else g

    def batch_grad(self, w, idx):
        g = super().batch_grad(w, idx)
        return {"batch_grad": g[:, :2], "batch_grad_1d": g[0]}.get(self.broken, g)


@pytest.mark.parametrize("broken", ["batch_grad", "batch_grad_1d", "sample_grads"])
@pytest.mark.parametrize("sampler", ["reshuffle", "full"])
def test_user_problem_with_wrong_gradient_shape_is_named(broken, sampler):
    problem = WrongShape(broken)
    batch = problem.n_samples if sampler == "full" else 4
    with pytest.raises(ValueError) as info:
        simulate(problem, "sgd", 0.1, n_steps=3, n_replicates=2, sampler=sampler, batch_size=batch)
    message = str(info.value)
    assert "WrongShape" in message or "wrong_shape" in message, message
    assert "grad" in message and "(2, 3)" in message and "\n" not in message


def test_user_problem_with_wrong_loss_shape_is_named():
    with pytest.raises(ValueError, match="sample_losses") as info:
        simulate(WrongShape("sample_losses"), "sgd", 0.1, n_steps=3, n_replicates=2, batch_size=4)
    assert "WrongShape" in str(info.value) or "wrong_shape" in str(info.value)


# ---- divergence is data --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def diverging_runs() -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning escapes either
        return run_study(diverging_study, out=None).runs


def test_some_replicates_diverge_and_the_run_completes(diverging_runs):
    per_replicate = diverging_runs.groupby(["label", "replicate"])["diverged"].any()
    unstable, stable = per_replicate["unstable"], per_replicate["stable"]
    assert 0.1 < unstable.mean() < 0.9  # a mixture: some blew up, others did not
    assert not stable.any()


def test_diverged_flag_is_final_and_its_values_are_nan(diverging_runs):
    for _, rows in diverging_runs.groupby(["label", "replicate"]):
        flags = rows.sort_values("step")["diverged"].to_numpy()
        assert np.all(np.diff(flags.astype(int)) >= 0)  # once diverged, always diverged
    bad = diverging_runs[diverging_runs["diverged"]]
    assert bad[["loss", "subopt", "grad_norm_sq"]].isna().all().all()
    good = diverging_runs[~diverging_runs["diverged"]]
    assert np.isfinite(good[["loss", "subopt", "grad_norm_sq"]].to_numpy()).all()


def test_table_counts_diverged_and_averages_the_rest(diverging_runs):
    table = final_table(diverging_runs).set_index("label")
    last = diverging_runs[diverging_runs["step"] == diverging_runs["step"].max()]
    for label, part in last.groupby("label"):
        diverged = part.groupby("replicate")["diverged"].any()
        kept = part[~part["replicate"].isin(diverged[diverged].index)]
        row = table.loc[label]
        assert row["n"] == len(kept) and row["n_diverged"] == diverged.sum()
        assert row["n"] + row["n_diverged"] == diverging_study.replicates
        assert row["fraction_diverged"] == pytest.approx(diverged.mean())
        assert row["mean"] == pytest.approx(kept["subopt"].mean(), rel=1e-12)
        assert np.isfinite(row[["mean", "ci_low", "ci_high"]].to_numpy(dtype=float)).all()
    assert table.loc["unstable", "mean"] < 1e-3  # the survivors converged: nothing poisoned


def test_measures_exclude_and_count_diverged_replicates(diverging_runs):
    unstable = diverging_runs[diverging_runs["label"] == "unstable"]
    n_div = int(unstable.groupby("replicate")["diverged"].any().sum())
    curve = mean_curve(unstable)
    assert (curve["n_diverged"] == n_div).all()
    assert (curve["n"] == diverging_study.replicates - n_div).all()  # same n at every step
    assert np.isfinite(curve["mean"]).all()
    fit = fit_loglog_slope(unstable, window=(10, 300), n_boot=200, seed=0)
    slope = fit.estimate
    assert fit.details["n_diverged"] == n_div and slope.n == diverging_study.replicates - n_div
    assert np.isfinite([slope.value, slope.ci_low, slope.ci_high]).all()
    hits = hitting_times(unstable, 1e-3)
    assert hits.loc[hits["diverged"], "censored"].all() and hits["diverged"].sum() == n_div
    mean_hit = mean_curve_hitting_time(unstable, 1e-3, n_boot=200, seed=0)
    assert mean_hit["n_diverged"].iloc[0] == n_div and np.isfinite(mean_hit["hit"].iloc[0])


def test_late_divergence_does_not_leak_its_early_values_into_the_mean():
    """A replicate finite for a while and then diverged is dropped at every step (its early,
    huge but finite values would otherwise dominate the mean)."""
    frame = pd.DataFrame(
        {
            "replicate": np.repeat([0, 1, 2], 3),
            "step": np.tile([0, 1, 2], 3),
            "subopt": [1.0, 0.5, 0.25, 1.0, 0.5, 0.25, 1.0, 1e250, np.nan],
            "diverged": [False] * 7 + [False, True],
        }
    )
    curve = mean_curve(frame)
    assert curve["mean"].tolist() == [1.0, 0.5, 0.25]
    assert curve["n"].tolist() == [2, 2, 2] and (curve["n_diverged"] == 1).all()


def test_overflow_between_records_is_caught_without_warnings():
    """Overflow to inf between two recorded steps: marked diverged, no RuntimeWarning, the
    other replicates unaffected."""
    problem = LeastSquares(np.eye(4) * np.array([1.0, 1.0, 1.0, 30.0]), np.zeros(4))
    w0 = np.array([[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0]])  # only row 1 feels L = 900
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frame = simulate(
            problem,
            "sgd",
            0.5,
            n_steps=400,
            sampler="full",
            batch_size=4,
            n_replicates=2,
            w0=w0,
            record=[0, 400],
        )
    end = frame[frame["step"] == 400].set_index("replicate")
    assert end.loc[1, "diverged"] and not end.loc[0, "diverged"]
    assert end.loc[0, "subopt"] < 1e-12
