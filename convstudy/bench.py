"""Engine benchmark: replicate-steps per second of the compiled and numpy engines, side by side
with scikit-learn's SGD on the same problems, with compile time and peak memory.

Run ``convstudy bench`` or ``python benchmarks/engine.py`` (``--quick`` for a short run,
``--sizes 64,1024`` to choose the replicate counts R).

What is measured
----------------
- Problems: synthetic least squares (``Quadratic``: d = 32, N = 2000, condition number 10,
  label noise 1) and L2-logistic regression on scikit-learn's bundled breast-cancer data
  (569 x 30, lam = 1e-2).
- Methods: SGD with b = 1, minibatch SGD with b = 32 and Adam with b = 1 (constant steps, random
  reshuffling), for R in {64, 1024, 8192}.
- Ours: :func:`convstudy.simulate` calls timed end to end with the wall clock (random streams,
  records at the first and last step, the DataFrame); the fastest of ``--repeat`` runs (3) is
  reported, as is the fastest of 3 scikit-learn fits (timeit's convention: on a shared machine
  the slower repetitions measure the other processes). ``steps/s`` counts
  replicate-steps (one update of one replicate); ``samples/s`` counts sample gradients
  (b per replicate-step). ``stepping`` is the part spent updating (``attrs["stepping_time"]``).
- scikit-learn: ``SGDRegressor`` / ``SGDClassifier`` (``loss="log_loss"``, ``alpha`` = lam),
  constant step, ``shuffle=True``, no intercept, ``fit`` for E epochs = N E sample-gradient
  steps, in the same process. scikit-learn has no minibatches and no Adam: every row's ratio is
  ours in sample gradients per second over scikit-learn's SGD in sample gradients per second.
- ``cores`` is CPU time over wall time during the run: about 2 on an idle 2-core machine for
  the parallel kernels, less when other processes compete for the cores.
- Peak memory: the peak of memory allocated through Python (``tracemalloc``) during the run
  (numpy arrays; the kernels allocate only O(d) per thread), and, in a separate process, the
  peak resident set size of a long run of 1024 replicates (``resource.getrusage``).
- Warm-up: the time to compile the kernels in a fresh process with an empty cache (``cold``)
  and to load them from the on-disk cache (``cached``), each in a subprocess, plus the
  import of numba.
- Per core (:func:`per_core`): the same least-squares problem with the compiled kernels held
  to one thread (:func:`convstudy._cores.set_thread_limit` (1)) against scikit-learn's
  ``SGDRegressor`` (single-threaded) in sample gradients per second: SGD b = 1 and Adam b = 1
  at R = 1024, random reshuffling (and SGD with sampling with replacement). Beside each, a
  hand-written single-purpose numba kernel of the same method (:func:`_hand_kernels`: plain
  SGD or Adam on least squares and nothing else, one replicate per ``prange`` task, its own
  xorshift64* stream per replicate, on one thread) on the same data with the same sampler,
  plus a cyclic SGD run without random numbers: the fraction of its throughput that the
  general engine reaches, and how much of the time is sampling. The hand-written Adam shows
  what exact arithmetic allows: its square root and division per coordinate bound it as they
  bound the engine. The hand kernels are plain numba code, their four partial sums scalar; the
  engine holds them in one vector register (:func:`convstudy._fast._dot`, the same sums to the
  bit), so it can pass them. Each is the fastest of ``--repeat`` runs after a warm-up run that
  compiles or loads it, timed without tracing allocations (which slows the Python parts of a
  call).

Targets: all cores, SGD b = 1 least squares at R = 1024 at least 5x scikit-learn's SGD; per core,
that configuration at least 3x, and Adam b = 1 at least 2x scikit-learn's plain SGD per sample.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import tracemalloc
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["main", "per_core", "Setting", "SETTINGS"]


@dataclass(frozen=True)
class Setting:
    """One method of the benchmark: an optimizer, a batch size and its step (relative to 1/L)."""

    label: str
    optimizer: str
    batch_size: int
    step: float  # learning rate as a multiple of 1/L (SGD) or absolute (Adam)
    relative: bool = True


SETTINGS = (
    Setting("SGD", "sgd", 1, 0.01),
    Setting("minibatch SGD", "sgd", 32, 0.1),
    Setting("Adam", "adam", 1, 1e-3, relative=False),
)
SIZES = (64, 1024, 8192)
TARGET = ("least squares", "SGD", 1024)  # Target: ratio >= 5 here, all cores
TARGET_RATIO = 5.0
PER_CORE_TARGETS = {"SGD": 3.0, "Adam": 2.0}  # per core, against scikit-learn's SGD per sample
_HAND_PREFIX = "hand-written "
_PER_CORE_RUNS = (  # (method, sampler) of the per-core table; hand-written and engine rows
    (SETTINGS[0], "cyclic"), (SETTINGS[0], "replacement"), (SETTINGS[0], "reshuffle"),
    (SETTINGS[2], "reshuffle"),
)  # fmt: skip
PER_CORE_COLUMNS = [
    "method", "sampler", "R", "n_steps", "samples/s", "stepping samples/s", "sklearn",
    "ratio", "stepping ratio", "of hand kernel", "cores",
]  # fmt: skip


def _problems():
    from .problems import Logistic, Quadratic

    return {
        "least squares": Quadratic(
            dim=32, n_samples=2000, condition_number=10.0, noise=1.0, seed=0
        ),
        "logistic": Logistic(lam=1e-2),
    }


def _cpu_wall(fn):
    """(result, wall seconds, CPU seconds of this process) of fn()."""
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


# ---- scikit-learn ------------------------------------------------------------------------------
def sklearn_rate(name: str, problem, samples: int) -> dict:
    """Sample-gradient steps per second of scikit-learn's SGD on ``problem`` (about ``samples``
    steps, whole epochs)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import SGDClassifier, SGDRegressor

    epochs = max(1, samples // problem.n_samples)
    eta = 0.01 / problem.L
    common = dict(
        max_iter=epochs, tol=None, learning_rate="constant", eta0=eta, shuffle=True,
        fit_intercept=False, random_state=0, average=False,
    )  # fmt: skip
    if name == "least squares":
        model = SGDRegressor(loss="squared_error", penalty=None, **common)
    else:
        model = SGDClassifier(loss="log_loss", penalty="l2", alpha=problem.lam, **common)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        _, wall, cpu = _cpu_wall(lambda: model.fit(problem.X, problem.y))
    steps = epochs * problem.n_samples
    return {"samples": steps, "wall": wall, "rate": steps / wall, "cores": cpu / wall}


# ---- ours --------------------------------------------------------------------------------------
def run_ours(
    problem, setting: Setting, n_rep: int, n_steps: int, engine: str, sampler: str = "reshuffle",
    trace: bool = True,
) -> dict:  # fmt: skip
    """One timed simulate call (records at 0 and n_steps) and, if ``trace``, its peak traced
    memory (NaN otherwise). Tracing every allocation slows the Python parts of the call (about
    50 ms at R = 1024: the generators, the frame), so the per-core timings run without it."""
    from . import simulate

    lr = setting.step / problem.L if setting.relative else setting.step
    kwargs = dict(
        n_steps=n_steps, sampler=sampler, batch_size=setting.batch_size,
        n_replicates=n_rep, seed=0, record=[0, n_steps], engine=engine,
    )  # fmt: skip
    if trace:
        tracemalloc.start()
    try:
        frame, wall, cpu = _cpu_wall(lambda: simulate(problem, setting.optimizer, lr, **kwargs))
        peak = tracemalloc.get_traced_memory()[1] if trace else float("nan")
    finally:
        if trace:
            tracemalloc.stop()
    steps = n_rep * n_steps
    return {
        "engine": frame.attrs["engine"],
        "n_steps": n_steps,
        "wall": wall,
        "steps/s": steps / wall,
        "samples/s": steps * setting.batch_size / wall,
        "stepping steps/s": steps / max(frame.attrs["stepping_time"], 1e-12),
        "cores": cpu / wall,
        "peak MiB": peak / 2**20,
        "diverged": int(frame["diverged"].sum()),
    }


def _best(run, args: tuple, times: int, key: str) -> dict:
    """The fastest of ``times`` calls ``run(*args)`` (as timeit reports the minimum): on a
    shared machine the slower repetitions measure the other processes."""
    return max((run(*args) for _ in range(times)), key=lambda res: res[key])


def _n_steps(budget: float, n_rep: int, b: int, minimum: int) -> int:
    return int(max(minimum, budget // (n_rep * b)))


# ---- per core ----------------------------------------------------------------------------------
_SAMPLERS = {"cyclic": 0, "replacement": 1, "reshuffle": 2}


def _hand_kernels():
    """Compile (or load) the hand-written kernels on first use, so that importing this module
    does not need numba: ``{"SGD": hand_sgd, "Adam": hand_adam}``."""
    global _HAND
    if _HAND is None:
        from numba import njit, prange

        @njit(inline="always")
        def xorshift_high32(x):
            """(x, v): the next state of a xorshift64* stream and the high 32 bits of its
            output."""
            x ^= x >> np.uint64(12)
            x ^= x << np.uint64(25)
            x ^= x >> np.uint64(27)
            return x, (x * np.uint64(0x2545F4914F6CDD1D)) >> np.uint64(32)

        @njit(inline="always")
        def next_index(sampler, t, n, x, perm, pos):
            """(i, x, pos): the sample of step t and the stream's new state. Cyclic: i = t mod N,
            no random numbers; with replacement: a multiply-shift of the high 32 bits of a
            xorshift64* draw onto [0, N); random reshuffling: a Fisher-Yates permutation per
            epoch (``perm``, shuffled in place) with the same draw."""
            if sampler == 0:
                return t % n, x, pos
            if sampler == 2:
                if pos == n:
                    for k in range(n - 1, 0, -1):
                        x, v = xorshift_high32(x)
                        m = np.int64((v * np.uint64(k + 1)) >> np.uint64(32))
                        perm[k], perm[m] = perm[m], perm[k]
                    pos = 0
                return perm[pos], x, pos + 1
            x, v = xorshift_high32(x)
            return np.int64((v * np.uint64(n)) >> np.uint64(32)), x, pos

        @njit(inline="always")
        def residual(X, y, i, wr, d):
            """x_i . w_r - y_i with four scalar partial sums, added as the engine's _dot."""
            z0 = 0.0
            z1 = 0.0
            z2 = 0.0
            z3 = 0.0
            j = 0
            while j + 4 <= d:
                z0 += X[i, j] * wr[j]
                z1 += X[i, j + 1] * wr[j + 1]
                z2 += X[i, j + 2] * wr[j + 2]
                z3 += X[i, j + 3] * wr[j + 3]
                j += 4
            while j < d:
                z0 += X[i, j] * wr[j]
                j += 1
            return ((z0 + z1) + (z2 + z3)) - y[i]

        @njit(cache=True, parallel=True, nogil=True)
        def hand_sgd(X, y, w, lr, n_steps, seeds, sampler):
            """Plain SGD, b = 1, least squares: w_r <- w_r - (lr (x_i . w_r - y_i)) x_i.

            One replicate per prange task, its parameters in a local copy; the sample i from
            ``next_index`` with the replicate's own xorshift64* stream."""
            n_rep, d = w.shape
            n = X.shape[0]
            for r in prange(n_rep):
                x = np.uint64(seeds[r]) | np.uint64(1)
                wr = w[r].copy()
                perm = np.arange(n) if sampler == 2 else np.arange(1)
                pos = n
                for t in range(n_steps):
                    i, x, pos = next_index(sampler, t, n, x, perm, pos)
                    step = lr * residual(X, y, i, wr, d)
                    for j in range(d):
                        wr[j] -= step * X[i, j]
                for j in range(d):
                    w[r, j] = wr[j]

        @njit(cache=True, parallel=True, nogil=True)
        def hand_adam(X, y, w, lr, n_steps, seeds, sampler):
            """Adam (torch.optim.Adam's defaults: betas (0.9, 0.999), eps 1e-8, bias correction),
            b = 1, least squares, with g = (x_i . w_r - y_i) x_i: m <- b1 m + (1 - b1) g,
            v <- b2 v + (1 - b2) g^2, w <- w - lr / (1 - b1^t) m / (sqrt(v) / sqrt(1 - b2^t)
            + eps), its two factors computed once per step for all replicates, as the engine
            does (:func:`convstudy.optim.rules._adam_factors`). Replicates and samples as
            :func:`hand_sgd`; no branch for options it lacks."""
            b1, b2, eps = 0.9, 0.999, 1e-8
            n_rep, d = w.shape
            n = X.shape[0]
            t_1 = np.arange(1, n_steps + 1).astype(np.float64)
            steps = lr / (1.0 - np.power(b1, t_1))  # once per step, for every replicate
            inv_c2 = 1.0 / np.sqrt(1.0 - np.power(b2, t_1))
            for r in prange(n_rep):
                x = np.uint64(seeds[r]) | np.uint64(1)
                wr = w[r].copy()
                m = np.zeros(d)
                v = np.zeros(d)
                perm = np.arange(n) if sampler == 2 else np.arange(1)
                pos = n
                for t in range(n_steps):
                    i, x, pos = next_index(sampler, t, n, x, perm, pos)
                    e = residual(X, y, i, wr, d)
                    step, c2 = steps[t], inv_c2[t]
                    for j in range(d):
                        g = e * X[i, j]
                        m[j] = b1 * m[j] + (1.0 - b1) * g
                        v[j] = b2 * v[j] + (1.0 - b2) * (g * g)
                        wr[j] = wr[j] - step * (m[j] / (np.sqrt(v[j]) * c2 + eps))
                for j in range(d):
                    w[r, j] = wr[j]

        _HAND = {"SGD": hand_sgd, "Adam": hand_adam}
    return _HAND


_HAND = None


def run_hand(
    problem, method: str, sampler: str, n_rep: int, n_steps: int, lr: float,
    w: np.ndarray | None = None,
) -> dict:  # fmt: skip
    """One timed run of the hand-written kernel of ``method`` ("SGD" or "Adam",
    :func:`_hand_kernels`) on the current number of numba threads, from ``w`` (R, d), updated
    in place (zeros by default)."""
    kernel = _hand_kernels()[method]
    X = np.ascontiguousarray(problem.X, dtype=np.float64)
    y = np.ascontiguousarray(problem.y, dtype=np.float64)
    w = np.zeros((n_rep, X.shape[1])) if w is None else w
    seeds = np.arange(1, n_rep + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    _, wall, cpu = _cpu_wall(lambda: kernel(X, y, w, lr, n_steps, seeds, _SAMPLERS[sampler]))
    if not np.isfinite(w).all():
        raise RuntimeError(f"the hand-written {method} kernel diverged")
    samples = n_rep * n_steps
    return {"samples/s": samples / wall, "stepping samples/s": samples / wall,
            "cores": cpu / wall, "n_steps": n_steps}  # fmt: skip


def per_core(samples: float = 3e7, n_rep: int = 1024, repeat: int = 3) -> pd.DataFrame:
    """Per-core throughput on least squares (d = 32, N = 2000) with one thread: the engine's
    SGD b = 1 (reshuffle, replacement) and Adam b = 1 (reshuffle), the hand-written kernels
    (SGD: cyclic, replacement, reshuffle; Adam: reshuffle), each against scikit-learn's
    SGDRegressor; about ``samples`` sample gradients per run, the fastest of ``repeat`` runs.
    Columns :data:`PER_CORE_COLUMNS`; ``of hand kernel`` is a row's stepping throughput over
    the hand-written kernel's of the same method and sampler."""
    import numba

    from ._cores import _LIMIT, set_thread_limit

    problem = _problems()["least squares"]
    sk = _best(sklearn_rate, ("least squares", problem, int(samples / 5)), repeat, "rate")
    n_steps = _n_steps(samples, n_rep, 1, 20)
    limit, threads = _LIMIT[0], numba.get_num_threads()
    rows, hand_rate = [], {}
    set_thread_limit(1)
    numba.set_num_threads(1)
    try:
        for setting, sampler in _PER_CORE_RUNS:
            lr = setting.step / problem.L if setting.relative else setting.step
            hand = (problem, setting.label, sampler, n_rep)
            run_hand(*hand, 20, lr)  # compile or load
            res = _best(run_hand, (*hand, n_steps, lr), repeat, "samples/s")
            hand_rate[setting.label, sampler] = res["samples/s"]
            rows.append({"method": f"{_HAND_PREFIX}{setting.label}", "sampler": sampler,
                         "of hand kernel": 1.0, **res})  # fmt: skip
        for setting, sampler in _PER_CORE_RUNS:
            if (setting.label, sampler) == ("SGD", "cyclic"):
                continue  # the hand kernel's cyclic run shows the cost of sampling only
            run_ours(problem, setting, n_rep, 20, "fast", sampler)  # compile or load
            res = _best(run_ours, (problem, setting, n_rep, n_steps, "fast", sampler, False),
                        repeat, "samples/s")  # fmt: skip
            res["stepping samples/s"] = res["stepping steps/s"] * setting.batch_size
            res["of hand kernel"] = res["stepping samples/s"] / hand_rate[setting.label, sampler]
            rows.append({"method": setting.label, "sampler": sampler, **res})
    finally:
        set_thread_limit(limit)
        numba.set_num_threads(threads)
    table = pd.DataFrame(rows)
    table["R"] = n_rep
    table["sklearn"] = sk["rate"]
    table["ratio"] = table["samples/s"] / sk["rate"]
    table["stepping ratio"] = table["stepping samples/s"] / sk["rate"]
    return table[PER_CORE_COLUMNS]


def _verdict(ratio: float, target: float, judged: bool) -> str:
    """'met' / 'NOT met', or why a short run does not judge a target."""
    if not judged:
        return "not judged (--quick runs too few steps for the per-call setup to be negligible)"
    return "met" if ratio >= target else "NOT met"


def print_per_core(table: pd.DataFrame, judged: bool = True) -> None:
    """The per-core table and one line per target (its verdict only when ``judged``)."""
    shown = table.copy()
    for col in ["samples/s", "stepping samples/s", "sklearn"]:
        shown[col] = shown[col].map(lambda v: f"{v:.3g}")
    for col in ["ratio", "stepping ratio", "of hand kernel", "cores"]:
        shown[col] = shown[col].map("{:.2f}".format)
    print("\nPer core (the compiled kernels on one thread; scikit-learn's SGDRegressor is")
    print("single-threaded): least squares d=32, N=2000, b=1, samples = sample gradients;")
    print("'of hand kernel' = stepping samples/s over the hand-written kernel's, same method and")
    print("sampler:")
    print(shown.to_string(index=False))
    rows = table.set_index(["method", "sampler"])
    for method, target in PER_CORE_TARGETS.items():
        if (method, "reshuffle") not in rows.index:
            continue
        row = rows.loc[(method, "reshuffle")]
        what = "scikit-learn's SGDRegressor" if method == "SGD" else "scikit-learn's plain SGD"
        print(
            f"Target: per core, {method} b=1 least squares at R={int(row['R'])} at least "
            f"{target:g}x {what} per sample: {row['ratio']:.2f}x end to end "
            f"({row['stepping ratio']:.2f}x counting only the updates): "
            f"{_verdict(row['ratio'], target, judged)}"
        )
    if ("SGD", "reshuffle") in rows.index:
        print(
            f"The engine's SGD b=1 reaches {rows.loc[('SGD', 'reshuffle'), 'of hand kernel']:.0%}"
            f" (reshuffle) and {rows.loc[('SGD', 'replacement'), 'of hand kernel']:.0%} "
            "(replacement) of the hand-written SGD kernel's throughput per core."
        )
    if ("Adam", "reshuffle") in rows.index:
        hand = rows.loc[(f"{_HAND_PREFIX}Adam", "reshuffle")]
        print(
            f"The engine's Adam b=1 reaches {rows.loc[('Adam', 'reshuffle'), 'of hand kernel']:.0%}"
            f" of the hand-written Adam kernel's throughput per core; that kernel itself runs at "
            f"{hand['ratio']:.2f}x scikit-learn's plain SGD per sample."
        )


# ---- subprocess measurements -------------------------------------------------------------------
_WARMUP = """
import json, time
t0 = time.perf_counter()
import numba
t1 = time.perf_counter()
from convstudy import _fast
t2 = time.perf_counter()
seconds = _fast.warm_up()
print(json.dumps({"import_numba": t1 - t0, "import": t2 - t1, "warm_up": seconds,
                  "layer": _fast.threading_layer(),
                  "misses": _fast.kernel_cache_misses()}))
"""

_MEMORY = """
import json, resource, sys, time, tracemalloc
import numpy as np
from convstudy import simulate
from convstudy.problems import Quadratic


def status_kib(field):  # this process's own VmHWM / VmRSS (ru_maxrss can carry the parent's)
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


n_steps, n_rep, engine = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
problem = Quadratic(dim=32, n_samples=2000, condition_number=10.0, seed=0)
simulate(problem, "sgd", 0.01, n_steps=10, n_replicates=2, engine=engine)  # load kernels
base = status_kib("VmRSS")
tracemalloc.start()
t0 = time.perf_counter()
frame = simulate(problem, "sgd", 0.01 / problem.L, n_steps=n_steps, n_replicates=n_rep,
                 engine=engine)
wall = time.perf_counter() - t0
traced = tracemalloc.get_traced_memory()[1]
print(json.dumps({"base_kib": base, "peak_kib": status_kib("VmHWM"), "traced": traced,
                  "wall": wall, "rows": len(frame), "engine": frame.attrs["engine"]}))
"""


def _subprocess_json(code: str, *args: str, env: dict | None = None, timeout: float = 1800):
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})}, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def warm_up_times(cold: bool) -> dict:
    """Kernel compile time with an empty cache (if ``cold``) and load time from the cache."""
    out = {}
    if cold:
        with tempfile.TemporaryDirectory() as cache:
            out["cold"] = _subprocess_json(_WARMUP, env={"NUMBA_CACHE_DIR": cache})
    _subprocess_json(_WARMUP)  # make sure the regular cache is populated
    out["cached"] = _subprocess_json(_WARMUP)
    return out


def memory_check(n_steps: int, n_rep: int, engine: str) -> dict:
    """Peak RSS of a separate process running one long simulation (records log-spaced)."""
    return _subprocess_json(_MEMORY, str(n_steps), str(n_rep), engine)


# ---- the report --------------------------------------------------------------------------------
def _fmt(x: float) -> str:
    return f"{x:.3g}" if np.isfinite(x) else "-"


def _environment() -> str:
    import numba
    import sklearn

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return (
        f"Python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__} "
        f"({numba.config.NUMBA_NUM_THREADS} threads), scikit-learn {sklearn.__version__}; "
        f"{os.cpu_count()} CPUs; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )


def _parse(argv) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="convstudy bench", description=__doc__.split("\n\n")[0].replace("\n", " ")
    )
    parser.add_argument("--quick", action="store_true", help="about 10x fewer steps")
    parser.add_argument(
        "--sizes", default=",".join(map(str, SIZES)),
        help="comma-separated replicate counts R (default 64,1024,8192)",
    )  # fmt: skip
    parser.add_argument(
        "--repeat", type=int, default=3,
        help="runs per fast-path row and per scikit-learn baseline; the fastest is reported "
        "(default 3; numpy-path rows run once)",
    )  # fmt: skip
    parser.add_argument("--csv", default=None, help="also write the table to this CSV file")
    parser.add_argument("--no-numpy", action="store_true", help="skip the numpy-path rows")
    parser.add_argument(
        "--no-cold-compile", action="store_true",
        help="do not measure compilation with an empty cache (it takes 10-60 s)",
    )  # fmt: skip
    parser.add_argument(
        "--no-memory-check", action="store_true",
        help="skip the long run of 1024 replicates measured in a separate process",
    )  # fmt: skip
    parser.add_argument(
        "--no-per-core", action="store_true",
        help="skip the per-core comparison (one thread; hand-written kernel)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    try:
        args.sizes = [int(s) for s in str(args.sizes).split(",") if s.strip()]
    except ValueError:
        parser.error(f"--sizes must be comma-separated integers, got {args.sizes!r}")
    if not args.sizes or min(args.sizes) < 1:
        parser.error(f"--sizes must list replicate counts >= 1, got {args.sizes!r}")
    if args.repeat < 1:
        parser.error(f"--repeat must be >= 1, got {args.repeat}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the tables; returns the exit code (0)."""
    args = _parse(argv)
    scale = 0.1 if args.quick else 1.0
    fast_budget = 1e8 * scale  # sample gradients per fast-path run
    numpy_budget = 4e6 * scale  # sample gradients per numpy-path run
    sklearn_budget = int(2e7 * scale)
    repeat = args.repeat
    print("convstudy engine benchmark" + (" (--quick)" if args.quick else ""))
    print(_environment())

    warm = warm_up_times(cold=not args.no_cold_compile)
    from . import _fast

    here = _fast.warm_up()  # this process: load from the cache
    print("\nWarm-up (each in a fresh process):")
    if "cold" in warm:
        c = warm["cold"]
        print(
            f"  compile with an empty cache: {c['warm_up']:.2f} s "
            f"(+ import numba {c['import_numba']:.2f} s, convstudy._fast {c['import']:.2f} s)"
        )
    c = warm["cached"]
    print(
        f"  load from the on-disk cache: {c['warm_up']:.2f} s (cache misses: {c['misses']}; "
        f"+ import numba {c['import_numba']:.2f} s); in this process {here:.2f} s; "
        f"threading layer {c['layer']}"
    )

    problems = _problems()
    rows = []
    for name, problem in problems.items():
        sk = _best(sklearn_rate, (name, problem, sklearn_budget), repeat, "rate")
        print(
            f"\nscikit-learn {'SGDRegressor' if name == 'least squares' else 'SGDClassifier'} "
            f"on {name} (N={problem.n_samples}, d={problem.dim}): {_fmt(sk['rate'])} "
            f"sample-gradient steps/s ({sk['samples']} steps in {sk['wall']:.2f} s, "
            f"{sk['cores']:.2f} cores)"
        )
        for setting in SETTINGS:
            for n_rep in args.sizes:
                engines = ["fast"] if args.no_numpy else ["fast", "numpy"]
                for engine in engines:
                    budget = fast_budget if engine == "fast" else numpy_budget
                    n_steps = _n_steps(budget, n_rep, setting.batch_size, 20)
                    times = repeat if engine == "fast" else 1
                    args_ = (problem, setting, n_rep, n_steps, engine)
                    res = _best(run_ours, args_, times, "steps/s")
                    res.update(
                        problem=name, method=setting.label, b=setting.batch_size, R=n_rep,
                        sklearn=sk["rate"], ratio=res["samples/s"] / sk["rate"],
                    )  # fmt: skip
                    rows.append(res)
                    print(
                        f"  {setting.label:13s} R={n_rep:5d} {engine:5s}: "
                        f"{_fmt(res['steps/s'])} steps/s, ratio {res['ratio']:.2f}",
                        flush=True,
                    )

    table = pd.DataFrame(rows)[
        [
            "problem", "method", "b", "R", "engine", "n_steps", "steps/s", "samples/s",
            "stepping steps/s", "sklearn", "ratio", "cores", "peak MiB", "wall",
        ]
    ]  # fmt: skip
    shown = table.copy()
    for col in ["steps/s", "samples/s", "stepping steps/s", "sklearn"]:
        shown[col] = shown[col].map(lambda v: f"{v:.3g}")
    for col, spec in [("ratio", "{:.2f}"), ("cores", "{:.2f}"), ("peak MiB", "{:.1f}"),
                      ("wall", "{:.2f}")]:  # fmt: skip
        shown[col] = shown[col].map(spec.format)
    print("\nThroughput (steps = replicate-steps; samples = sample gradients; ratio = our")
    print("samples/s over scikit-learn's SGD samples/s on the same problem):")
    print(shown.to_string(index=False))
    if args.csv:
        table.to_csv(args.csv, index=False)
        print(f"(table written to {args.csv})")

    fast = table[table.engine == "fast"].set_index(["problem", "method", "R"])
    if args.no_numpy:
        speedup = None
    else:
        numpy_rows = table[table.engine == "numpy"].set_index(["problem", "method", "R"])
        speedup = fast["steps/s"] / numpy_rows["steps/s"]
        print(
            f"\nFast path over numpy path (replicate-steps/s): median {speedup.median():.1f}x, "
            f"range {speedup.min():.1f}x-{speedup.max():.1f}x"
        )

    if not args.no_memory_check:
        print("\nMemory (each in a separate process; least squares d=32, N=2000, SGD b=1, R=1024,")
        print("log-spaced records; peak RSS includes the interpreter and libraries):")
        for engine, n_steps in [("fast", 10**5 if args.quick else 10**6), ("numpy", 4096)]:
            mem = memory_check(n_steps, 1024, engine)
            print(
                f"  {engine:5s} {n_steps:>9,d} steps: peak RSS {mem['peak_kib'] / 2**20:.3f} GiB "
                f"(before the run {mem['base_kib'] / 2**20:.3f} GiB), peak allocated by the "
                f"run {mem['traced'] / 2**20:.1f} MiB, {mem['wall']:.1f} s, {mem['rows']} rows; "
                f"{'under' if mem['peak_kib'] < 2**20 else 'OVER'} 1 GiB"
            )
        print(
            "  (beyond the 8-byte step-size array, memory does not grow with the number of "
            "steps: the fast path stores no index blocks, the numpy path one block of "
            "2048 x R x b indices)"
        )

    if not args.no_per_core:
        print_per_core(per_core(samples=3e7 * scale, repeat=repeat), judged=not args.quick)

    if TARGET in fast.index:
        row = fast.loc[TARGET]
        stepping_ratio = float(row["stepping steps/s"]) / float(row["sklearn"])
        verdict = _verdict(row["ratio"], TARGET_RATIO, judged=not args.quick)
        print(
            f"\nTarget: SGD b=1 least squares at R=1024 at least {TARGET_RATIO:g}x "
            f"scikit-learn's SGDRegressor on all cores: {row['ratio']:.2f}x end to end "
            f"({verdict}); {stepping_ratio:.2f}x counting only the updates (without the "
            f"per-call setup and the two records); the kernels used {row['cores']:.2f} cores."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
