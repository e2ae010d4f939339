"""The benchmarks run (small sizes, no timing assertions) and the kernels' thread choice."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import numba
import numpy as np
import pandas as pd
import pytest

from convstudy import _cores, _fast, bench, simulate
from convstudy._cores import available_cores, set_thread_limit, thread_limit
from convstudy._fast import FastStepper
from convstudy.problems import Quadratic

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def restore_limit():
    limit, work = _cores._LIMIT[0], _fast._WORK_PER_THREAD
    yield
    set_thread_limit(limit)
    _fast._WORK_PER_THREAD = work


def test_engine_benchmark_is_the_bench_module():
    assert _load("engine").main is bench.main


def test_contention_runs_and_summarizes(restore_limit, capsys):
    contention = _load("contention")
    limit, work = _cores._LIMIT[0], _fast._WORK_PER_THREAD
    cells = {"small": (2, 8, 50), "large": (1, 64, 50)}
    raw = contention.run(cells, repeat=1, verbose=False)
    assert len(raw) == len(cells) * len(contention.POLICIES) * len(contention.CONDITIONS)
    assert set(raw["threads"]) <= {"1", "2", "1/2"}
    fixed = raw[raw.policy == "fixed 2"]["threads"]
    if available_cores() > 1 and numba.config.NUMBA_NUM_THREADS > 1:
        assert (fixed == "2").all()  # the forced policy takes 2 threads even for tiny launches
    assert (raw[raw.policy == "1 thread"]["threads"] == "1").all()
    summary = contention.summarize(raw)
    assert list(summary.columns) == contention.COLUMNS
    assert len(summary) == len(cells) * len(contention.POLICIES)
    assert (summary["slowdown"] > 0).all()
    contention.report(summary, raw)
    out = capsys.readouterr().out
    assert "Target: small cells" in out and "Target: large cells" in out
    assert "issue" not in out.lower()
    # the policies leave the process as they found it
    assert _cores._LIMIT[0] == limit and _fast._WORK_PER_THREAD == work


def test_per_core_table(restore_limit, capsys):
    limit = _cores._LIMIT[0]
    table = bench.per_core(samples=2e5, n_rep=16, repeat=1)
    assert list(table.columns) == bench.PER_CORE_COLUMNS
    assert set(zip(table["method"], table["sampler"])) == {
        ("hand-written SGD", "cyclic"), ("hand-written SGD", "replacement"),
        ("hand-written SGD", "reshuffle"), ("hand-written Adam", "reshuffle"),
        ("SGD", "reshuffle"), ("SGD", "replacement"), ("Adam", "reshuffle"),
    }  # fmt: skip
    assert (table["ratio"] > 0).all() and (table["of hand kernel"] > 0).all()
    # each engine row is divided by the hand-written kernel of its own method and sampler
    rate = table.set_index(["method", "sampler"])
    for method, sampler in [("SGD", "replacement"), ("Adam", "reshuffle")]:
        row, hand = rate.loc[(method, sampler)], rate.loc[(f"hand-written {method}", sampler)]
        assert row["of hand kernel"] == pytest.approx(
            row["stepping samples/s"] / hand["samples/s"], rel=1e-12
        )
    bench.print_per_core(table)
    out = capsys.readouterr().out
    assert "Target: per core, SGD" in out and "Target: per core, Adam" in out
    assert "of the hand-written Adam kernel's throughput" in out
    for method, target in bench.PER_CORE_TARGETS.items():  # each verdict from its own ratio
        met = rate.loc[(method, "reshuffle"), "ratio"] >= target
        line = next(x for x in out.splitlines() if x.startswith(f"Target: per core, {method}"))
        assert line.endswith(": met" if met else ": NOT met")
    bench.print_per_core(table, judged=False)  # a --quick run is too short to judge
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("Target")]
    assert len(lines) == 2 and all("not judged (--quick" in x for x in lines)
    assert "issue" not in out.lower()
    assert _cores._LIMIT[0] == limit  # the limit is restored


@pytest.mark.parametrize(
    ("method", "optimizer", "lr"), [("SGD", "sgd", 0.01), ("Adam", "adam", 1e-2)]
)
def test_hand_kernels_compute_their_method(method, optimizer, lr):
    """The hand-written kernels are the methods they stand for: with the cyclic sampler (no
    random numbers) they reach the engine's parameters to rounding (1e-12 relative, the
    engines' own parity), after enough steps that the parameters have moved far from 0."""
    problem = bench._problems()["least squares"]
    d, n_steps = problem.dim, 3 * problem.n_samples + 7
    lr = lr / problem.L if method == "SGD" else lr
    coords = {f"w{j}": (lambda w, j=j: w[:, j]) for j in range(d)}
    frame = simulate(
        problem, optimizer, lr, n_steps=n_steps, sampler="cyclic", n_replicates=2,
        w0=np.zeros(d), record=[n_steps], observe=coords, engine="fast", seed=0,
    )  # fmt: skip
    engine_w = frame[frame.step == n_steps][list(coords)].to_numpy()
    w = np.zeros((2, d))
    bench.run_hand(problem, method, "cyclic", 2, n_steps, lr, w)
    assert np.abs(engine_w).min() > 1e-3  # every coordinate moved
    np.testing.assert_allclose(w, engine_w, rtol=1e-12)
    # and a wrong step size is caught: the comparison can fail
    other = np.zeros((2, d))
    bench.run_hand(problem, method, "cyclic", 2, n_steps, lr * (1 + 1e-6), other)
    assert not np.allclose(other, engine_w, rtol=1e-12, atol=0)


def test_bench_main_quick_path(tmp_path, capsys):
    csv = tmp_path / "table.csv"
    argv = ["--quick", "--sizes", "8", "--repeat", "1", "--no-numpy", "--no-cold-compile",
            "--no-memory-check", "--no-per-core", "--csv", str(csv)]  # fmt: skip
    assert bench.main(argv) == 0
    out = capsys.readouterr().out
    assert "issue" not in out.lower()
    table = pd.read_csv(csv)
    assert {"problem", "method", "R", "engine", "steps/s", "ratio", "cores"} <= set(table.columns)
    assert set(table["engine"]) == {"fast"}


def _stub(n_rep: int, d: int = 32, b: int = 1, sample_cost: int | None = None):
    cost = d if sample_cost is None else sample_cost
    return types.SimpleNamespace(b=b, w=np.zeros((n_rep, d)), sample_cost=cost)


def test_thread_choice_follows_the_work(restore_limit):
    set_thread_limit(None)
    assert FastStepper._threads(_stub(8), tasks=4, updates=300) == 1  # a tiny launch
    # the same launch on a network, whose samples each take tanh calls, is worth two threads
    tanh = _stub(64, d=25, sample_cost=_fast.sample_cost(_fast._TANH_NETWORK, 25, 4, 4))
    plain = _stub(64, d=25, sample_cost=_fast.sample_cost(_fast._LEAST_SQUARES, 25, 0, 0))
    assert tanh.sample_cost == 25 + 4 * _fast._MULTIPLY_ADDS_PER_TRANSCENDENTAL
    if available_cores() > 1 and numba.config.NUMBA_NUM_THREADS > 1:
        assert FastStepper._threads(tanh, tasks=64, updates=500) == 2
    assert FastStepper._threads(plain, tasks=64, updates=500) == 1
    large = FastStepper._threads(_stub(1024), tasks=512, updates=1 << 16)
    if available_cores() > 1 and numba.config.NUMBA_NUM_THREADS > 1:
        assert large > 1
    assert 1 <= large <= thread_limit()
    set_thread_limit(1)
    assert thread_limit() == 1
    assert FastStepper._threads(_stub(1024), tasks=512, updates=1 << 16) == 1
    assert FastStepper._threads(_stub(1024, b=64), tasks=1024, updates=1 << 16) == 1


def test_launches_take_one_thread_when_small_and_never_above_the_limit(restore_limit,
                                                                      monkeypatch):  # fmt: skip
    seen: list[int] = []
    original = FastStepper._threads

    def recording(self, tasks, updates):
        seen.append(original(self, tasks, updates))
        return seen[-1]

    monkeypatch.setattr(FastStepper, "_threads", recording)
    problem = Quadratic(dim=32, n_samples=2000, condition_number=10.0, seed=0)
    run = dict(n_replicates=8, record=[0, 200], engine="fast")
    simulate(problem, "sgd", 0.01 / problem.L, n_steps=200, **run)
    assert seen and set(seen) == {1}
    seen.clear()
    set_thread_limit(1)
    simulate(problem, "sgd", 0.01 / problem.L, n_steps=4000, n_replicates=1024, engine="fast",
             record=[0, 4000])  # fmt: skip
    assert seen and max(seen) == 1


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_results_do_not_depend_on_the_thread_limit(restore_limit, optimizer):
    problem = Quadratic(dim=32, n_samples=2000, condition_number=10.0, seed=0)
    lr = 0.01 / problem.L if optimizer == "sgd" else 1e-3
    _fast._WORK_PER_THREAD = 1  # so that limit 2 really runs 2 threads on this small run

    def frame(threads: int) -> pd.DataFrame:
        set_thread_limit(threads)
        out = simulate(problem, optimizer, lr, n_steps=3000, n_replicates=64, seed=3,
                       record="log", n_records=8, engine="fast")  # fmt: skip
        assert out.attrs["engine"] == "fast"
        return out

    one, two = frame(1), frame(2)
    pd.testing.assert_frame_equal(one, two, check_exact=True)
