"""Tiny studies for the Dask, determinism, interruption and divergence tests.

They live in a real module (not in a test function) so that joblib and Dask worker processes can
import their functions, as they would import a study from ``studies/``.

- ``study``: three SGD conditions on a small quadratic (one with heavy-ball momentum), a table
  per condition with n and the fraction diverged, a figure and a finding; runs in well under a
  second at R = 6.
- ``slow_study``: the same grid with more steps, so a run chunked into single replicates takes a
  few seconds and can be interrupted part-way.
- ``diverging_study``: gradient descent on the quartic from random starts, at a step where some
  replicates blow up and the others converge, and a stable control condition.
"""

from __future__ import annotations

import pandas as pd

from convstudy.figures import new_figure, plot_mean_curves
from convstudy.stats.curves import mean_curve
from convstudy.study import Analysis, Study, simulate_cell

BASE = {
    "problem": "quadratic",
    "problem.dim": 4,
    "problem.n_samples": 64,
    "problem.condition_number": 10.0,
    "optimizer": "sgd",
    "schedule": "constant",
    "sampler": "reshuffle",
    "batch_size": 4,
    "n_records": 12,
}
LABELS = ["label", "optimizer", "schedule.eta0"]


def tiny_conditions(scale, n_steps: int = 60) -> list[dict]:
    """Three conditions: SGD at two constant steps and heavy-ball momentum."""
    return [
        {**BASE, "label": "sgd small step", "schedule.eta0": 0.02, "n_steps": n_steps},
        {**BASE, "label": "sgd large step", "schedule.eta0": 0.05, "n_steps": n_steps},
        {
            **BASE,
            "label": "momentum",
            "optimizer": "momentum",
            "optimizer.momentum": 0.5,
            "schedule.eta0": 0.02,
            "n_steps": n_steps,
        },
    ]


def tiny_conditions_changed(scale) -> list[dict]:
    """The tiny grid with one condition changed (momentum 0.6 instead of 0.5)."""
    conds = tiny_conditions(scale)
    conds[2] = {**conds[2], "optimizer.momentum": 0.6}
    return conds


def slow_conditions(scale) -> list[dict]:
    return tiny_conditions(scale, n_steps=400)


def diverging_conditions(scale) -> list[dict]:
    """Gradient descent on the quartic from random starts at distance 2 from w*: with step
    0.15 about a third of the starting directions blow up within a few steps (the quartic's
    curvature grows with the distance) and the rest converge; with step 0.05 none diverges."""
    common = {
        "problem": "quartic_regression",
        "problem.dim": 4,
        "problem.n_samples": 64,
        "problem.init_distance": 2.0,
        "optimizer": "sgd",
        "schedule": "constant",
        "sampler": "full",
        "batch_size": 64,
        "n_steps": 300,
        "n_records": 12,
        "w0": "random",
    }
    return [
        {**common, "label": "unstable", "schedule.eta0": 0.15},
        {**common, "label": "stable", "schedule.eta0": 0.05},
    ]


def final_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per condition: final mean suboptimality over non-diverged replicates with its 95% CI,
    n (replicates in the mean), n_diverged and the fraction diverged."""
    last = runs[runs["step"] == runs.groupby("label")["step"].transform("max")]
    curves = mean_curve(last, "subopt", "step", by=["label"])
    table = curves.drop(columns=["step"])
    table["fraction_diverged"] = table["n_diverged"] / (table["n"] + table["n_diverged"])
    return table


def analyze(runs: pd.DataFrame, scale) -> Analysis:
    curves = mean_curve(runs, "subopt", "step", by=["label"])
    fig, ax = new_figure()
    plot_mean_curves(ax, curves, x="step", hue="label", ylabel="f(w) - f*")
    table = final_table(runs)
    best = table.loc[table["mean"].idxmin()]
    return Analysis(
        tables={"final": table, "curves": curves},
        figures={"curves": fig},
        captions={"final": "Final suboptimality per condition.", "curves": "Mean curves."},
        findings=[f"Lowest final suboptimality: {best['label']} ({best['mean']:.4g})."],
    )


def analyze_tables_only(runs: pd.DataFrame, scale) -> Analysis:
    return Analysis(tables={"final": final_table(runs)})


study = Study(
    name="tiny",
    title="Tiny study",
    description="Three SGD conditions on a small quadratic.",
    conditions=tiny_conditions,
    compute=simulate_cell,
    analyze=analyze,
    replicates=6,
    quick_replicates=4,
)

slow_study = Study(
    name="tiny_slow",
    title="Tiny slow study",
    description="The tiny study with more steps, to be interrupted.",
    conditions=slow_conditions,
    compute=simulate_cell,
    analyze=analyze_tables_only,
    replicates=10,
    quick_replicates=10,
)

diverging_study = Study(
    name="tiny_diverging",
    title="Tiny diverging study",
    description="Gradient descent on a quartic at a step where some replicates blow up.",
    conditions=diverging_conditions,
    compute=simulate_cell,
    analyze=analyze_tables_only,
    replicates=40,
    quick_replicates=40,
)
