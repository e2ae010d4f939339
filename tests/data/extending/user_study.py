"""A user study: Lion against SGD on a user problem, both named in the conditions."""

import line_problem  # noqa: F401  (registers "noisy_line")
import lion  # noqa: F401  (registers "lion")

from convstudy.study import Analysis, Study


def conditions(scale):
    return [
        {
            "problem": problem,
            "optimizer": optimizer,
            "schedule": "constant",
            "schedule.eta0": 0.01,
            "n_steps": scale.pick(400, 200),
            "label": optimizer,
        }
        for problem, optimizer in [
            ("noisy_line", "lion"),
            ("noisy_line", "sgd"),
            ("line_problem:noisy_line", "lion:lion"),
        ]
    ]


def analyze(runs, scale):
    last = runs[runs["step"] == runs["step"].max()]
    table = (
        last.groupby("optimizer", sort=True)
        .agg(final_loss=("loss", "mean"), path=("engine", "first"))
        .reset_index()
    )
    return Analysis(tables={"final": table})  # ANALYSIS MARKER


study = Study(
    name="extending",
    title="Lion vs SGD",
    description="A user study.",
    conditions=conditions,
    analyze=analyze,
    labels=("label",),
    replicates=8,
    quick_replicates=8,
)
