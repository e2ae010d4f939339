"""A tiny study for the command-line and report tests: sample means of Gaussian draws.

Condition ``mu`` draws ``n_draws`` samples N(mu, 1) per replicate and records their mean. The
check asks whether the mean at mu = 1 lies in [EXPECTED_LOW, EXPECTED_HIGH]; the test fixtures
copy this file outside ``studies/`` and rewrite those two numbers (and NAME) to make the check
reproduced or not. When a file ``<this file>.fail`` exists holding a value of mu, computing that
condition raises: the tests use it to simulate a run killed part-way. When a file
``<this file>.figfail`` exists, the figure gets a title that fails only when it is drawn.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from convstudy.claims import Check  # noqa: E402
from convstudy.engine import replicate_generators  # noqa: E402
from convstudy.stats.means import mean_ci  # noqa: E402
from convstudy.study import Analysis, Study  # noqa: E402

NAME = "tiny"
EXPECTED_LOW = 0.5
EXPECTED_HIGH = 1.5
FAIL_MARKER = Path(__file__).with_suffix(".fail")
FIGURE_FAIL_MARKER = Path(__file__).with_suffix(".figfail")


def conditions(scale):
    return [{"mu": mu, "n_draws": scale.pick(400, 100)} for mu in (0.0, 1.0, 2.0, 3.0)]


def compute(condition, seed, replicates):
    if FAIL_MARKER.exists() and condition["mu"] == float(FAIL_MARKER.read_text()):
        raise RuntimeError("simulated crash")
    sampling, _ = replicate_generators(seed, replicates)
    means = [g.normal(condition["mu"], 1.0, condition["n_draws"]).mean() for g in sampling]
    return pd.DataFrame({"replicate": np.asarray(replicates, dtype=int), "value": means})


def analyze(runs, scale):
    rows = []
    for mu, part in runs.groupby("mu", sort=True):
        estimate = mean_ci(part["value"].to_numpy())
        mean, low, high, n = estimate.value, estimate.ci_low, estimate.ci_high, estimate.n
        rows.append({"mu": mu, "mean": mean, "ci_low": low, "ci_high": high, "n": int(n)})
    table = pd.DataFrame(rows)
    fig, ax = plt.subplots(figsize=(3.2, 2.4))
    ax.errorbar(
        table["mu"],
        table["mean"],
        yerr=[table["mean"] - table["ci_low"], table["ci_high"] - table["mean"]],
        fmt="o",
    )
    ax.set_xlabel("mu")
    ax.set_ylabel("mean of draws (95% CI)")
    if FIGURE_FAIL_MARKER.exists():
        ax.set_title(r"$\frac{1}$")  # bad mathtext: raises when drawn, not here
    at_one = table[table["mu"] == 1.0].iloc[0]
    check = Check(
        id=f"{NAME}-mean",
        claim=1,
        statement="The sample mean is an unbiased estimate of mu.",
        source="test fixture",
        quantity="mean of draws at mu = 1",
        expected=f"in [{EXPECTED_LOW}, {EXPECTED_HIGH}]",
        expected_low=EXPECTED_LOW,
        expected_high=EXPECTED_HIGH,
        estimate=float(at_one["mean"]),
        ci_low=float(at_one["ci_low"]),
        ci_high=float(at_one["ci_high"]),
        n_replicates=int(at_one["n"]),
        study=NAME,
        figure="figures/means.png",
        table="tables/means.md",
    )
    return Analysis(
        tables={"means": table},
        figures={"means": fig},
        captions={"means": "Mean of the draws per mu with its 95% CI."},
        findings=[f"At mu = 1 the mean of the draws is **{at_one['mean']:.3f}**."],
        checks=[check],
    )


study = Study(
    name=NAME,
    title="Tiny study: sample means",
    description="Means of Gaussian draws, one condition per mu (a test fixture).",
    conditions=conditions,
    compute=compute,
    analyze=analyze,
    claims=(1,),
    replicates=8,
    quick_replicates=4,
)
