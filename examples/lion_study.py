"""A user study: Lion against SGD and Adam on a user problem, all named in the conditions.

Run it with ``convstudy run examples/lion_study.py --jobs 2`` (or ``--dask-local 2``).
"""

import lion  # noqa: F401  (registers "lion")
import noisy_line  # noqa: F401  (registers "noisy_line")
import pandas as pd

from convstudy.stats.means import mean_ci
from convstudy.study import Analysis, Study


def conditions(scale):
    return [
        {
            "problem": "noisy_line",
            "optimizer": name,
            "schedule.eta0": eta,
            "sampler": "reshuffle",
            "batch_size": 10,
            "n_steps": scale.pick(5000, 1000),
        }
        for name, eta in {"sgd": 0.02, "adam": 0.01, "lion": 0.001}.items()
    ]


def analyze(runs, scale):
    final = runs[runs["step"] == runs["step"].max()]
    rows = [
        {"optimizer": n, **mean_ci(p["subopt"]).as_row()} for n, p in final.groupby("optimizer")
    ]
    return Analysis(
        tables={"final_subopt": pd.DataFrame(rows)},
        captions={"final_subopt": "Mean final f - f* with its 95% CI."},
    )


study = Study(
    name="lion_vs_baselines",
    title="Lion against SGD and Adam",
    description="Final suboptimality of three optimizers on a user problem.",
    conditions=conditions,
    analyze=analyze,
    replicates=64,
    quick_replicates=16,
)
