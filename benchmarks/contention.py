"""Kernels next to a busy process: throughput of small and large cells, idle and under load.

``python benchmarks/contention.py [--quick] [--repeat 5] [--csv FILE]``

What is measured
----------------
Two cell sizes, both least squares (``Quadratic``: d = 32, N = 2000, condition number 10,
label noise 1), plain SGD with b = 1 (constant step 0.01 / L, random reshuffling), compiled
path, records at the first and last step only:

- small cells: 200 :func:`convstudy.simulate` calls of R = 8 replicates and 300 steps each
  (seeds 0..199), timed together with the wall clock: the shape of a study's many small cells;
- a large cell: one call of R = 1024 replicates, its step count calibrated at the start so that
  it takes about 1 s on this machine with the default thread choice.

Each is timed under three thread policies of the compiled kernels:

- ``work-based``: the default, :meth:`convstudy._fast.FastStepper._threads` picks a launch's
  threads from its work (``_WORK_PER_THREAD`` multiply-adds per thread), the cores available
  and the limit (none set);
- ``fixed 2``: :func:`convstudy._cores.set_thread_limit` (2) and ``_WORK_PER_THREAD`` lowered to
  1 in this process (monkeypatched here only), so that every launch takes 2 threads: the kernels'
  former behaviour, one thread per core;
- ``1 thread``: ``set_thread_limit(1)``, the reference a thread-per-launch choice cannot beat
  under load.

and under two conditions: ``idle`` (nothing started by the benchmark; other users of the machine
are measured and reported) and ``busy``, next to one separate Python process that spins two
threads of 256 x 256 numpy matrix products (BLAS limited to one thread each, so the process
wants two cores); the busy process is started once per repeat, stops itself after a deadline
(bounded in time) and is terminated at the end of its block.

Each repeat measures every (condition, cell, policy) once, policies interleaved; ``--repeat``
repeats (5 by default) give min / median / max. The slowdown is the busy time over the idle
time, both as the ratio of the medians and per repeat (min / median / max of the paired
ratios). The threads a kernel used are those :meth:`FastStepper._threads` returned for the
launches (steps and records), recorded by wrapping it during the measurement. Before every
measurement the 1-minute load average is read, and during it the cores used by other processes
(all CPU time of the machine from ``/proc/stat`` minus this process's, over the wall time):
about 2 in the busy condition means the busy process got its two cores' worth.

Target: next to one busy process, a slowdown of at most the lost core's share, about 2x.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pandas as pd

from convstudy import _cores, _fast, simulate
from convstudy._cores import available_cores, set_thread_limit
from convstudy._fast import FastStepper
from convstudy.problems import Quadratic

POLICIES = ("work-based", "fixed 2", "1 thread")
CONDITIONS = ("idle", "busy")
TARGET_SLOWDOWN = 2.0
OTHERS = "others' cores"
COLUMNS = [
    "cell", "policy", "threads idle", "threads busy", "idle median s", "idle min s",
    "idle max s", "busy median s", "busy min s", "busy max s", "slowdown",
    "slowdown min", "slowdown median", "slowdown max", "idle steps/s", "busy steps/s",
    "others' cores idle", "others' cores busy",
]  # fmt: skip

_BUSY = r"""
import os, sys, threading, time

import numpy as np

deadline = time.monotonic() + float(sys.argv[1])
a = np.random.default_rng(0).standard_normal((256, 256)) / 16.0


def spin():
    b = a.copy()
    while time.monotonic() < deadline:
        b = a @ b
        b *= 1.0 / (np.abs(b[0, 0]) + 1.0)


threads = [threading.Thread(target=spin, daemon=True) for _ in range(int(sys.argv[2]))]
for t in threads:
    t.start()
print("ready", flush=True)
for t in threads:
    t.join()
"""


@contextmanager
def busy_process(seconds: float, threads: int = 2) -> Iterator[subprocess.Popen]:
    """A separate Python process spinning ``threads`` threads of numpy matrix products (one
    BLAS thread each) for at most ``seconds``; terminated when the block ends."""
    one = {k: "1" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    proc = subprocess.Popen(
        [sys.executable, "-c", _BUSY, str(seconds), str(threads)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, **one},
    )  # fmt: skip
    try:
        if proc.stdout.readline().strip() != "ready":  # its threads are spinning
            raise RuntimeError("the busy process did not start (see its error above)")
        time.sleep(0.2)  # let the scheduler see it
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def _machine_busy_seconds() -> float:
    """CPU seconds spent by all processes of the machine so far (``/proc/stat``), or NaN."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return float("nan")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


@contextmanager
def thread_policy(name: str) -> Iterator[None]:
    """Apply one of :data:`POLICIES` to the compiled kernels; restore the previous state."""
    limit, work = _cores._LIMIT[0], _fast._WORK_PER_THREAD
    if name == "work-based":
        set_thread_limit(None)
    elif name == "fixed 2":
        set_thread_limit(2)
        _fast._WORK_PER_THREAD = 1  # every launch wants as many threads as it has tasks
    elif name == "1 thread":
        set_thread_limit(1)
    else:
        raise ValueError(f"unknown policy {name!r}; choose from {POLICIES}")
    try:
        yield
    finally:
        _fast._WORK_PER_THREAD = work
        set_thread_limit(limit)


@contextmanager
def recorded_threads() -> Iterator[list[int]]:
    """The thread counts :meth:`FastStepper._threads` returns inside the block (a list)."""
    seen: list[int] = []
    original = FastStepper._threads

    def wrapped(self, tasks, updates):
        threads = original(self, tasks, updates)
        seen.append(threads)
        return threads

    FastStepper._threads = wrapped
    try:
        yield seen
    finally:
        FastStepper._threads = original


def _threads_label(seen: list[int]) -> str:
    values = sorted(set(seen))
    return "/".join(map(str, values)) if values else "-"


PROBLEM = Quadratic(dim=32, n_samples=2000, condition_number=10.0, noise=1.0, seed=0)


def run_cell(n_calls: int, n_rep: int, n_steps: int) -> None:
    """``n_calls`` simulate calls of ``n_rep`` replicates and ``n_steps`` SGD steps (b = 1)."""
    lr = 0.01 / PROBLEM.L
    for seed in range(n_calls):
        frame = simulate(
            PROBLEM, "sgd", lr, n_steps=n_steps, n_replicates=n_rep, seed=seed,
            record=[0, n_steps], engine="fast",
        )  # fmt: skip
        if frame.attrs["engine"] != "fast":
            raise RuntimeError("the compiled path did not run")


def measure(n_calls: int, n_rep: int, n_steps: int, policy: str) -> dict:
    """One timed run of a cell under ``policy``: wall seconds, threads used, load."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    with thread_policy(policy), recorded_threads() as seen:
        m0, c0, t0 = _machine_busy_seconds(), time.process_time(), time.perf_counter()
        run_cell(n_calls, n_rep, n_steps)
        wall = time.perf_counter() - t0
        own, machine = time.process_time() - c0, _machine_busy_seconds() - m0
    return {
        "wall": wall,
        "steps/s": n_calls * n_rep * n_steps / wall,
        "threads": _threads_label(seen),
        "cores": own / wall,
        OTHERS: max(0.0, machine - own) / wall,
        "load": load,
    }


def calibrate_steps(n_rep: int, seconds: float) -> int:
    """SGD steps for one call of ``n_rep`` replicates to take about ``seconds`` (default
    threads), from the fastest of three probe runs, twice."""
    steps = 2000
    with thread_policy("work-based"):
        run_cell(1, n_rep, steps)  # load the kernels
        for _ in range(2):  # a second round corrects for the fixed cost of a call
            best = min(_timed(lambda n=steps: run_cell(1, n_rep, n)) for _ in range(3))
            steps = int(max(2000, steps * seconds / max(best, 1e-9)))
    return steps


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run(cells: dict[str, tuple[int, int, int]], repeat: int, policies=POLICIES,
        verbose: bool = True) -> pd.DataFrame:  # fmt: skip
    """Every (repeat, condition, cell, policy) measured once; one row each."""
    for _calls, n_rep, n_steps in cells.values():  # compile or load, outside the timings
        for policy in policies:
            with thread_policy(policy):
                run_cell(1, n_rep, min(n_steps, 100))
    block = sum(n * r * s for n, r, s in cells.values()) * len(policies) / 2e7  # generous
    rows = []
    for rep in range(repeat):
        for condition in CONDITIONS:
            if condition == "busy":
                context = busy_process(seconds=min(600.0, 30.0 + 20.0 * block))
            else:
                context = _nothing()
            with context:
                for cell, (n_calls, n_rep, n_steps) in cells.items():
                    for policy in policies:
                        res = measure(n_calls, n_rep, n_steps, policy)
                        res.update(repeat=rep, condition=condition, cell=cell, policy=policy)
                        rows.append(res)
                        if verbose:
                            print(
                                f"  repeat {rep + 1}/{repeat} {condition:4s} {cell:5s} "
                                f"{policy:10s}: {res['wall']:.3f} s, threads {res['threads']}, "
                                f"others {res[OTHERS]:.2f} cores, "
                                f"load {res['load']:.2f}",
                                flush=True,
                            )
    return pd.DataFrame(rows)


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


def summarize(raw: pd.DataFrame) -> pd.DataFrame:
    """Per (cell, policy): idle and busy times (min / median / max), the slowdown busy / idle
    (ratio of medians, and min / median / max of the per-repeat ratios), threads used."""
    out = []
    for (cell, policy), group in raw.groupby(["cell", "policy"], sort=False):
        idle = group[group.condition == "idle"].set_index("repeat")
        busy = group[group.condition == "busy"].set_index("repeat")
        paired = (busy["wall"] / idle["wall"]).dropna()
        out.append({
            "cell": cell, "policy": policy,
            "threads idle": _threads_label([int(t) for s in idle["threads"]
                                            for t in s.split("/") if t != "-"]),
            "threads busy": _threads_label([int(t) for s in busy["threads"]
                                            for t in s.split("/") if t != "-"]),
            "idle median s": idle["wall"].median(), "idle min s": idle["wall"].min(),
            "idle max s": idle["wall"].max(),
            "busy median s": busy["wall"].median(), "busy min s": busy["wall"].min(),
            "busy max s": busy["wall"].max(),
            "slowdown": busy["wall"].median() / idle["wall"].median(),
            "slowdown min": paired.min(), "slowdown median": paired.median(),
            "slowdown max": paired.max(),
            "idle steps/s": idle["steps/s"].median(), "busy steps/s": busy["steps/s"].median(),
            "others' cores idle": idle["others' cores"].median(),
            "others' cores busy": busy["others' cores"].median(),
        })  # fmt: skip
    return pd.DataFrame(out, columns=COLUMNS)


def _mmm(row, prefix: str, suffix: str = " s", spec: str = "{:.3f}") -> str:
    lo, mid, hi = (row[f"{prefix} {k}{suffix}"] for k in ("min", "median", "max"))
    return f"{spec.format(mid)} [{spec.format(lo)}, {spec.format(hi)}]"


def report(summary: pd.DataFrame, raw: pd.DataFrame) -> None:
    """Print the table and one verdict line per cell size."""
    shown = pd.DataFrame({
        "cell": summary["cell"], "policy": summary["policy"],
        "threads": summary["threads idle"] + " | " + summary["threads busy"],
        "idle s med [min, max]": [_mmm(r, "idle") for _, r in summary.iterrows()],
        "busy s med [min, max]": [_mmm(r, "busy") for _, r in summary.iterrows()],
        "slowdown": summary["slowdown"].map("{:.2f}x".format),
        "per repeat med [min, max]": [
            _mmm(r, "slowdown", "", "{:.2f}") for _, r in summary.iterrows()
        ],
        "others' cores": summary["others' cores idle"].map("{:.2f}".format) + " | "
        + summary["others' cores busy"].map("{:.2f}".format),
    })  # fmt: skip
    print("\nTimes in seconds per cell (median [min, max] over repeats); threads and others'")
    print("cores as 'idle | busy'; slowdown = busy median / idle median:")
    print(shown.to_string(index=False))
    for condition in CONDITIONS:
        load = raw[raw.condition == condition]["load"]
        print(
            f"load average (1 min) before the {condition} measurements: "
            f"{load.min():.2f} .. {load.max():.2f}"
        )
    print()
    table = summary.set_index(["cell", "policy"])
    for cell in dict.fromkeys(summary["cell"]):
        if (cell, "work-based") not in table.index:
            continue
        ours = table.loc[(cell, "work-based")]
        verdict = "met" if ours["slowdown"] <= TARGET_SLOWDOWN * 1.05 else "NOT met"
        line = (
            f"Target: {cell} cells slowed down at most ~{TARGET_SLOWDOWN:.0f}x next to a busy "
            f"process: {ours['slowdown']:.2f}x with the work-based choice ({verdict})"
        )
        if (cell, "fixed 2") in table.index:
            fixed = table.loc[(cell, "fixed 2")]
            line += (
                f"; fixed 2 threads {fixed['slowdown']:.2f}x; under load the work-based choice "
                f"is {fixed['busy median s'] / ours['busy median s']:.2f}x as fast as fixed 2 "
                f"threads, idle {fixed['idle median s'] / ours['idle median s']:.2f}x"
            )
        print(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny cells, one repeat (a smoke "
                        "test: the numbers mean little)")  # fmt: skip
    parser.add_argument("--repeat", type=int, default=None, help="repeats (default 5; 1 quick)")
    parser.add_argument("--seconds", type=float, default=1.0,
                        help="target duration of the large cell, idle (default 1)")  # fmt: skip
    parser.add_argument("--csv", default=None, help="also write every measurement to this CSV")
    args = parser.parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 5)
    if repeat < 1:
        parser.error("--repeat must be >= 1")
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(
        f"Contention benchmark: {available_cores()} cores available, numba "
        f"{_fast.numba.config.NUMBA_NUM_THREADS} threads, _WORK_PER_THREAD = "
        f"{_fast._WORK_PER_THREAD}; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    if args.quick:
        cells = {"small": (10, 8, 100), "large": (1, 1024, 200)}
    else:
        large_steps = calibrate_steps(1024, args.seconds)
        cells = {"small": (200, 8, 300), "large": (1, 1024, large_steps)}
    for cell, (n_calls, n_rep, n_steps) in cells.items():
        print(f"  {cell} cell: {n_calls} call(s) of R = {n_rep}, {n_steps} SGD steps (b = 1)")
    raw = run(cells, repeat)
    summary = summarize(raw)
    report(summary, raw)
    if args.csv:
        raw.to_csv(args.csv, index=False)
        print(f"(every measurement written to {args.csv})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
