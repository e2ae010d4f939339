"""Seconds per iteration of minibatch SGD against b: ``python benchmarks/minibatch_wall_clock.py``.

Claim 4 says that minibatches win in wall-clock time through vector processing. The
``iterations_to_eps`` study measures iterations and samples to eps against b (deterministic,
machine-independent); this script times what one iteration costs on this machine, for the
same conditions (the tuned 1/k schedule on the kappa=10 quadratic, i.i.d. sampling, every b of
the study's grid), on the numpy engine (one vectorised update per step) and the compiled one
(numba, a loop over the samples of a minibatch). It prints seconds per iteration of a single
run (one replicate), best of ``--repeats`` timings after an untimed warm-up, and the ratio to
b = 1. Multiply by the study's iterations to eps (``tables/tradeoff_to_eps.csv``) for the
wall-clock time to eps. Timings are machine-dependent and not deterministic: they never enter a
study's results.
"""

from __future__ import annotations

import argparse

import pandas as pd
from convstudy.studies import iterations_to_eps as ite

from convstudy.engine import simulate
from convstudy.optim import get_optimizer
from convstudy.schedules import get_schedule
from convstudy.study import Scale, build_problem

ENGINES = {"numpy": "numpy (vectorised update)", "fast": "compiled (numba)"}


def minibatch_conditions(quick: bool) -> list[dict]:
    """The study's i.i.d. tuned-schedule conditions on the stochastic quadratic, one per b."""
    grid = ite.conditions(Scale(quick, 1))["sgd"]
    return [
        c for c in grid if c["problem_label"] == ite.STOCHASTIC and c["sampler"] == "replacement"
    ]


def seconds_per_iteration(condition: dict, engine: str, n_steps: int, repeats: int) -> float:
    """Best of ``repeats`` timings of ``n_steps`` updates of one replicate, per update."""
    schedule = get_schedule(
        "inverse_time", eta0=condition["schedule.eta0"], k0=condition["schedule.k0"]
    )

    def wall_time(steps: int) -> float:
        frame = simulate(
            build_problem(condition),
            get_optimizer("sgd"),
            schedule,
            n_steps=steps,
            sampler=condition["sampler"],
            batch_size=condition["batch_size"],
            n_replicates=1,
            record=[0, steps],
            engine=engine,
        )
        return frame.attrs["wall_time"]

    wall_time(10)  # warm-up: compilation, caches
    return min(wall_time(n_steps) for _ in range(repeats)) / n_steps


def timing_steps(engine: str, b: int, steps: int, samples: int) -> int:
    """Updates per timing: enough that the work, not the call overhead, is timed (the compiled
    kernel costs ~ b d operations per update, so it needs ~ samples / b updates)."""
    return steps if engine == "numpy" else max(steps, samples // b)


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="b in {1, 16, 256}, short timings")
    parser.add_argument("--steps", type=int, default=2000, help="updates per timing (numpy)")
    parser.add_argument(
        "--samples", type=int, default=500_000, help="sample gradients per timing (compiled)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timings per cell (best kept)")
    args = parser.parse_args(argv)
    steps = max(100, args.steps // 5) if args.quick else args.steps
    samples = args.samples // 5 if args.quick else args.samples
    rows = []
    for engine, label in ENGINES.items():
        for c in minibatch_conditions(args.quick):
            b = int(c["batch_size"])
            n = timing_steps(engine, b, steps, samples)
            rows.append(
                {
                    "engine": label,
                    "batch_size": b,
                    "seconds_per_iteration": seconds_per_iteration(c, engine, n, args.repeats),
                }
            )
    table = pd.DataFrame(rows)
    first = table.groupby("engine", sort=False)["seconds_per_iteration"].transform("first")
    table["ratio_to_b1"] = table["seconds_per_iteration"] / first
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    return table


if __name__ == "__main__":
    main()
