"""What a comparison measures on its evaluation runs, each with a CI.

Per replicate (``times``): the time for the problem's metric to reach its target in
iterations, sample gradients and wall-clock seconds, located between record steps (log-linear
interpolation, :func:`convstudy.stats.survival.time_to_target`); a replicate that misses the
target within the budget, or diverges first, is censored at the budget.

Per (problem, method):

- ``medians``: the Kaplan-Meier median time to target in each unit with its CI (censoring
  handled by the survival estimate, not by dropping or imputing), and ``survival`` the curves;
- ``finals``: the final metric (mean over non-diverged replicates, Student-t CI), the number
  diverged, and where the problem has them the test metrics at the end and at the start
  (``untrained_*``), mean and t-CI;
- ``curves``: the mean metric at every record step with its t-CI (non-diverged replicates).

Across problems (scores: time to target in ``unit`` per replicate, censored = a failure):
``profile`` (Dolan-More performance profile with stratified-bootstrap bands),
``improvement`` (P(A faster than B) for every pair) and ``ranking`` (IQM of the normalised
scores, methods whose CIs overlap tied), see :mod:`convstudy.stats.comparisons`. Bootstrap
seeds derive from the run seed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..stats.comparisons import performance_profile, probability_of_improvement, ranking_table
from ..stats.curves import mean_curve
from ..stats.means import mean_ci
from ..stats.survival import UNITS, survival_table, time_to_target

__all__ = ["measure", "times_to_target", "final_table", "scores_of", "TEST_METRICS"]

TEST_METRICS = ("test_accuracy", "test_loss")
BY = ["problem", "method"]


def times_to_target(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (problem, method, replicate): times to the problem's target (module docstring)."""
    parts = [
        time_to_target(group, float(target), y="objective", by=BY, step_time="seconds")
        for target, group in runs.groupby("target", sort=False)
    ]
    return pd.concat(parts, ignore_index=True).sort_values(BY + ["replicate"], kind="stable")


def _mean_row(values, prefix: str) -> dict:
    est = mean_ci(values)
    return {prefix: est.value, f"{prefix}_ci_low": est.ci_low, f"{prefix}_ci_high": est.ci_high}


def final_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (problem, method): final metric and test metrics, mean with t-CI (module docstring)."""
    rows = []
    for (problem, method), cell in runs.groupby(BY, sort=False):
        last = cell[cell["step"] == cell["step"].max()]
        first = cell[cell["step"] == 0]
        alive = ~last["diverged"].astype(bool)
        row = {"problem": problem, "method": method, "lr": cell["schedule.eta0"].iloc[0],
               "n": len(last), "n_diverged": int((~alive).sum()),
               **_mean_row(last.loc[alive, "objective"], "final")}  # fmt: skip
        for name in TEST_METRICS:
            if name in cell and cell[name].notna().any():
                row.update(_mean_row(last.loc[alive, name], name))
                row.update(_mean_row(first[name], f"untrained_{name}"))
        rows.append(row)
    return pd.DataFrame(rows)


def scores_of(times: pd.DataFrame, unit: str = "iterations") -> pd.DataFrame:
    """``problem, method, replicate, score``: the time to target in ``unit``, inf if censored."""
    score = np.where(times["censored"], np.inf, times[unit].to_numpy(float))
    return times[BY + ["replicate"]].assign(score=score)


def _survival(times: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    curves, medians = [], []
    for unit in UNITS:
        if times[f"budget_{unit}"].notna().all():
            c, m = survival_table(times, unit=unit, by=BY)
            curves.append(c.assign(unit=unit))
            medians.append(m.assign(unit=unit))
    return pd.concat(curves, ignore_index=True), pd.concat(medians, ignore_index=True)


def measure(result, unit: str = "iterations") -> None:
    """Fill ``result.tables`` of a :class:`~convstudy.compare.protocol.Comparison` (and add a
    caveat per method that misses the target in some replicates)."""
    seed, n_boot = result.settings["seed"], result.settings["n_boot"]
    runs = result.runs
    times = times_to_target(runs)
    survival, medians = _survival(times)
    scores = scores_of(times, unit)
    boot = {"seed": seed, "n_boot": n_boot}
    tables = {
        "chosen": result.tuning[result.tuning["chosen"]].reset_index(drop=True),
        "tuning": result.tuning,
        "medians": medians,
        "finals": final_table(runs),
        "ranking": ranking_table(scores, **boot),
        "improvement": probability_of_improvement(scores, **boot),
        "profile": performance_profile(scores, **boot),
        "times": times,
        "survival": survival,
        "curves": mean_curve(runs, y="objective", by=BY),
    }
    result.tables.update(tables)
    result.settings["unit"] = unit
    censored = times.groupby(BY, sort=False)["censored"].agg(["sum", "size"])
    missed = censored[censored["sum"] > 0]
    if len(missed):
        shown = "; ".join(
            f"{method} on {problem}: {int(r['sum'])} of {int(r['size'])}"
            for (problem, method), r in missed.iterrows()
        )
        result.caveats.append(
            "Replicates that never reached the target within the budget (censored in the "
            f"survival estimates and a failure in the profiles): {shown}."
        )
