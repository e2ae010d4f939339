"""A user's update rule on the compiled path against the numpy path, in one process.

``python benchmarks/rules.py [--quick] [--replicates R]``

The rule is the Lion example (``examples/lion.py``), written once as a per-coordinate function
and registered by name like any user optimizer; Adam, a built-in rule written the same way, is
measured alongside. Each is run with ``simulate(..., engine="numpy")`` and
``engine="fast"`` from the same seed on SGD-style least squares (one sample per step,
``Quadratic(dim=32, n_samples=2000)``), R replicates in lockstep, after a warm-up run that
compiles (or loads) the kernel. The time per update is the median of three runs of the
stepping loop (``stepping_time``; records excluded). Only the compiled path's speed-up is
printed (numpy time per update / compiled time per update): a ratio of two timings taken in the
same process on the same machine, meaningful where absolute times are not.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
from pathlib import Path

from convstudy import simulate
from convstudy.problems import Quadratic

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "lion.py"


def load_example() -> None:
    """Import the Lion example (which registers "lion"), as a user's module would be."""
    spec = importlib.util.spec_from_file_location("lion_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)


def seconds_per_update(problem, optimizer: str, engine: str, n_steps: int, n_rep: int) -> float:
    """Median stepping time per update over three runs (after one warm-up run)."""
    kw = dict(n_replicates=n_rep, batch_size=1, n_records=2, seed=0, engine=engine)
    simulate(problem, optimizer, 0.1 / problem.L, n_steps=10, **kw)
    times = []
    for _ in range(3):
        frame = simulate(problem, optimizer, 1e-3 / problem.L, n_steps=n_steps, **kw)
        assert frame.attrs["engine"] == engine
        times.append(frame.attrs["stepping_time"] / n_steps)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer updates per run")
    parser.add_argument("--replicates", type=int, default=1024, help="R (default 1024)")
    args = parser.parse_args(argv)
    load_example()
    problem = Quadratic(dim=32, n_samples=2000, condition_number=10.0, seed=0)
    steps = {"numpy": 300 if args.quick else 2000, "fast": 3000 if args.quick else 20000}
    print(f"least squares d=32, N=2000, b=1, R={args.replicates}")
    print(f"{'rule':8s} {'compiled path speed-up over the numpy path':>44s}")
    for name in ("lion", "adam"):
        per = {
            engine: seconds_per_update(problem, name, engine, n, args.replicates)
            for engine, n in steps.items()
        }
        print(f"{name:8s} {per['numpy'] / per['fast']:43.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
