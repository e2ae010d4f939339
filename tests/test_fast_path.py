"""The compiled fast path runs the numpy path's trajectories from the same seed.

Every registered optimizer on every problem family and sampler is compared in
``tests/test_parity.py``; here: schedules, divergence, chunks of replicates, networks, the index
streams, dispatch, user rules, the kernels' disk cache and memory.

Equality is to 1e-12 relative to each recorded quantity's scale along the run (its largest
magnitude), so that a coordinate crossing zero is not compared relative to ~0: the two paths add
sums over coordinates and samples in different orders, and nothing else differs. The minibatches
themselves are identical (checked index by index against :func:`batch_stream`).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tracemalloc

import numpy as np
import pandas as pd
import pytest

from convstudy import _fast, simulate
from convstudy.engine import fast_path_reason, replicate_generators
from convstudy.optim import Optimizer, get_optimizer, rule, select
from convstudy.problems import LeastSquares, Logistic, Quadratic, get_problem
from convstudy.sampling import batch_stream, get_sampler
from convstudy.schedules import cosine, inverse_time

RTOL = 1e-12


def _data(seed: int, n: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * np.linspace(0.5, 1.5, d)
    return X, X @ rng.standard_normal(d) + 0.5 * rng.standard_normal(n)


def _least_squares() -> LeastSquares:
    X, y = _data(0, 40, 5)
    return LeastSquares(X, y, lam=0.05)  # lam > 0 exercises the ridge term


def _logistic() -> Logistic:
    X, y = _data(1, 60, 4)
    return Logistic(lam=0.02, X=X, y=np.where(y > 0, 1.0, -1.0))


PROBLEMS = {"least_squares": _least_squares(), "logistic": _logistic()}


def assert_same_trajectories(numpy_run: pd.DataFrame, fast_run: pd.DataFrame) -> None:
    """Same rows, same divergence flags, values equal to RTOL of each column's scale."""
    assert numpy_run.attrs["engine"] == "numpy" and fast_run.attrs["engine"] == "fast"
    keys = ["replicate", "step", "samples", "diverged"]
    pd.testing.assert_frame_equal(numpy_run[keys], fast_run[keys])
    values = [c for c in numpy_run.columns if c.startswith("w_")] + ["loss", "grad_norm_sq"]
    for col in values:
        a, f = numpy_run[col].to_numpy(), fast_run[col].to_numpy()
        np.testing.assert_array_equal(np.isnan(a), np.isnan(f), err_msg=col)
        finite = ~np.isnan(a)
        if not finite.any():
            continue
        scale = np.abs(a[finite]).max()
        err = np.abs(a[finite] - f[finite]) / np.maximum(np.abs(a[finite]), scale)
        assert err.max() <= RTOL, f"{col}: relative difference {err.max():.3g}"


def run_both(problem, optimizer, schedule, **kwargs):
    kwargs.setdefault("record_iterates", True)
    return (
        simulate(problem, optimizer, schedule, engine="numpy", **kwargs),
        simulate(problem, optimizer, schedule, engine="fast", **kwargs),
    )


# ---- schedules (every optimizer x problem family x sampler: tests/test_parity.py) -------------
@pytest.mark.parametrize(
    "schedule", [inverse_time(0.2, 10.0), cosine(0.2, total_steps=50)], ids=["1/k", "cosine->0"]
)
def test_schedules_including_zero_steps(schedule):
    problem = PROBLEMS["least_squares"]
    for opt in ("sgd", "adam", "rprop"):
        assert_same_trajectories(
            *run_both(problem, opt, schedule, n_steps=80, batch_size=2, n_replicates=2, seed=1)
        )


# ---- divergence ---------------------------------------------------------------------------------
def test_diverging_replicates_freeze_at_the_same_step():
    """Step 3/L overshoots along the top eigenvector (factor |1 - 3| = 2 per step): starts of
    very different size overflow at different steps. With a bound that never trips and few
    records, replicates blow up between records, inside the kernels."""
    problem = PROBLEMS["least_squares"]
    starts = problem.w_star + np.array([1e-8, 1.0, 1e100, 1e200])[:, None]
    for sampler, b in [("full", problem.n_samples), ("reshuffle", 2)]:
        numpy_run, fast_run = run_both(
            problem, "sgd", 3.0 / problem.L, n_steps=1200, sampler=sampler, batch_size=b,
            n_replicates=4, w0=starts, n_records=40, divergence_bound=1e300,
        )  # fmt: skip
        first = numpy_run[numpy_run.diverged].groupby("replicate")["step"].min()
        assert len(first) == 4 and first.is_monotonic_decreasing and first.nunique() >= 3
        assert_same_trajectories(numpy_run, fast_run)


def test_divergence_bound_marks_the_same_replicates():
    """A replicate whose f - f* exceeds the bound at a record is frozen by both paths."""
    problem = PROBLEMS["logistic"]
    starts = np.array([[0.0] * 4, [3.0] * 4, [300.0] * 4])
    numpy_run, fast_run = run_both(
        problem, "momentum", 0.5 / problem.L, n_steps=200, batch_size=5, n_replicates=3,
        w0=starts, divergence_bound=20.0, n_records=15,
    )  # fmt: skip
    assert numpy_run.groupby("replicate")["diverged"].any().tolist() == [False, False, True]
    assert_same_trajectories(numpy_run, fast_run)


# ---- chunks of replicates -----------------------------------------------------------------------
def test_chunked_fast_runs_match_one_numpy_run():
    problem = PROBLEMS["logistic"]
    kw = dict(n_steps=500, batch_size=2, seed=9, w0="random", record_iterates=True)
    numpy_run = simulate(problem, "adam", 0.01, n_replicates=7, engine="numpy", **kw)
    chunks = [[6, 0], [3], [1, 2, 4, 5]]
    fast_run = pd.concat([simulate(problem, "adam", 0.01, replicates=c, **kw) for c in chunks])
    fast_run = fast_run.sort_values(["replicate", "step"], ignore_index=True)
    fast_run.attrs["engine"] = "fast"
    assert_same_trajectories(numpy_run, fast_run)
    cols = [f"w_{j}" for j in range(problem.dim)]
    alone = simulate(problem, "adam", 0.01, replicates=[3], **kw)
    together = simulate(problem, "adam", 0.01, n_replicates=7, **kw)
    np.testing.assert_array_equal(alone[cols], together[together.replicate == 3][cols])


# ---- networks -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["tanh_network", "teacher_student"])
def test_networks_match(name):
    problem = get_problem(name, n_samples=50)
    for opt, sampler, b in [
        ("sgd", "reshuffle", 1), ("adam", "replacement", 4), ("momentum", "full", 50),
        ("rmsprop", "cyclic", 3),
    ]:  # fmt: skip
        assert_same_trajectories(
            *run_both(problem, opt, 0.01, n_steps=150, sampler=sampler, batch_size=b,
                      n_replicates=3, seed=2, w0="random")
        )  # fmt: skip


# ---- the minibatch streams ----------------------------------------------------------------------
def test_compiled_sampling_reproduces_numpy_generators():
    assert _fast.compiled_sampling_matches_numpy()


@pytest.mark.parametrize("sampler", ["reshuffle", "replacement"])
@pytest.mark.parametrize("n, b", [(1, 1), (7, 3), (40, 1), (40, 40), (2000, 32), (3001, 5)])
def test_kernel_indices_are_batch_streams_indices(sampler, n, b):
    """Replicate by replicate, the compiled draws are batch_stream's indices in order."""
    ids = [0, 5]
    blocks = batch_stream(get_sampler(sampler), replicate_generators(3, ids)[0], n, b)
    want = np.concatenate([next(blocks) for _ in range(3)])  # (steps, R, b)
    for k, rng in enumerate(replicate_generators(3, ids)[0]):
        states = _fast._read_states([rng])
        code = _fast._SAMPLER_CODES[sampler]
        got = _fast._draw_indices(
            code, states, np.empty((1, n), np.int32), np.full(1, n), n, want.shape[0] * b
        )
        np.testing.assert_array_equal(got, want[:, k, :].ravel())


def test_numpy_block_fallback_matches(monkeypatch):
    """If numpy's generators ever stopped matching the compiled copy, the kernels take index
    blocks drawn by numpy itself; that path gives the same trajectories too."""
    monkeypatch.setattr(_fast, "compiled_sampling_matches_numpy", lambda: False)
    problem = PROBLEMS["least_squares"]
    for sampler, b in [("reshuffle", 1), ("replacement", 3)]:
        n_steps = 2 * 2048 + 17  # crosses block boundaries (2048 updates per block at b = 1)
        numpy_run, fast_run = run_both(
            problem, "sgd", 0.01, n_steps=n_steps, sampler=sampler, batch_size=b,
            n_replicates=2, seed=4,
        )  # fmt: skip
        assert_same_trajectories(numpy_run, fast_run)
    stepper = _fast.FastStepper(
        problem, get_optimizer("sgd"), get_sampler("reshuffle"), 1, np.zeros((2, 5)),
        get_optimizer("sgd").init(np.zeros((2, 5))), np.full(5, 0.1),
        replicate_generators(0, [0, 1])[0],
    )  # fmt: skip
    assert stepper.sampling == "numpy blocks"


# ---- dispatch -----------------------------------------------------------------------------------
class Subclassed(LeastSquares):
    def batch_grad(self, w, idx):  # a user override: the kernels would not run it
        return super().batch_grad(w, idx)


def test_auto_takes_the_fast_path_only_when_it_can():
    problem = PROBLEMS["least_squares"]
    assert simulate(problem, "adam", 0.01, n_steps=5).attrs["engine"] == "fast"
    user = Subclassed(problem.X, problem.y)
    assert simulate(user, "adam", 0.01, n_steps=5).attrs["engine"] == "numpy"
    sgd = get_optimizer("sgd")
    custom = Optimizer(
        "sgd", sgd.hyperparams, sgd.init, lambda g, w, s, lr: sgd.update(g, w, s, lr)
    )
    assert simulate(problem, custom, 0.01, n_steps=5).attrs["engine"] == "numpy"
    assert simulate(problem, "sgd", 0.01, n_steps=5, engine="numpy").attrs["engine"] == "numpy"
    with pytest.raises(ValueError, match="'engine'.*Subclassed"):
        simulate(user, "sgd", 0.01, n_steps=5, engine="fast")
    with pytest.raises(ValueError, match="'engine'.*optimizer 'sgd'"):
        simulate(problem, custom, 0.01, n_steps=5, engine="fast")
    assert "DoubleWell" in fast_path_reason(get_problem("double_well"), "sgd", "full")
    assert fast_path_reason(Quadratic(dim=3), "rprop", "cyclic") is None


# ---- user rules ---------------------------------------------------------------------------------
@rule(state=("velocity",), hyperparams=("beta", "clip"))
def clipped_sign_momentum(g, w, t, lr, velocity, beta, clip):
    """A rule outside convstudy: v = beta v + g (v = g at t = 1); w -= lr sign(v) min(|v|, clip)."""
    v = select(t == 1, g, beta * velocity + g)
    return w - lr * np.sign(v) * np.minimum(np.abs(v), clip), v


def test_a_user_rule_runs_compiled_with_the_same_trajectories():
    problem = PROBLEMS["logistic"]
    opt = clipped_sign_momentum.optimizer("clipped", {"beta": 0.8, "clip": 0.3})
    assert fast_path_reason(problem, opt, "reshuffle") is None
    numpy_run, fast_run = run_both(problem, opt, 0.05, n_steps=120, batch_size=3, seed=2)
    assert_same_trajectories(numpy_run, fast_run)
    assert simulate(problem, opt, 0.05, n_steps=5).attrs["engine"] == "fast"


def test_hyperparameters_the_rule_does_not_run_with_are_refused():
    problem = PROBLEMS["least_squares"]
    adam = get_optimizer("adam")
    extra = adam._replace(hyperparams={**adam.hyperparams, "maximize": True})
    with pytest.raises(ValueError, match="'maximize' of optimizer 'adam'.*takes 'beta1', 'beta2'"):
        simulate(problem, extra, 0.01, n_steps=5)
    other = adam._replace(hyperparams={**adam.hyperparams, "beta1": 0.5})
    with pytest.raises(ValueError, match="beta1=0.5"):
        simulate(problem, other, 0.01, n_steps=5, engine="fast")
    # a hyper-parameter that chose the rule is held to its value too: plain Adam's rule
    # shown as AMSGrad would run without the max buffer
    ams = adam._replace(hyperparams={**adam.hyperparams, "amsgrad": True})
    with pytest.raises(ValueError, match="amsgrad=True of optimizer 'adam' differs"):
        simulate(problem, ams, 0.01, n_steps=5, engine="fast")


@rule(hyperparams=("scale",))
def uses_len(g, w, t, lr, scale):
    """Valid on arrays, not on the scalars of the compiled kernel (len of a float)."""
    return (w - lr * scale * g * len(g) / len(g),)


def test_a_rule_numba_cannot_compile_gives_one_clear_error():
    problem = PROBLEMS["least_squares"]
    opt = uses_len.optimizer("uses_len", {"scale": 1.0})
    assert simulate(problem, opt, 0.01, n_steps=3, engine="numpy").attrs["engine"] == "numpy"
    with pytest.raises(ValueError, match="rule 'uses_len'.*cannot be compiled by numba"):
        simulate(problem, opt, 0.01, n_steps=3, engine="fast")


_USER_MODULE = """
import numpy as np
from convstudy.optim import rule

SCALE = {scale}

@rule(hyperparams=("beta",))
def scaled_sign(g, w, t, lr, beta):
    return (w - SCALE * lr * np.sign(g + beta * w),)
"""


def _import_file(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_an_edit_to_a_rules_module_compiles_a_new_kernel(tmp_path):
    """The kernel's file name carries a digest of the rule and of its module: after an edit
    (here a global constant the rule reads) the compiled path runs the new code, as the numpy
    path does, and never the kernel compiled from the old one."""
    problem = PROBLEMS["least_squares"]
    path = tmp_path / "user_rule.py"
    files, finals = [], []
    for k, scale in enumerate((1.0, 2.0)):
        path.write_text(_USER_MODULE.format(scale=scale))
        module = _import_file(path, f"user_rule_v{k}")
        kernel = _fast.step_kernel(module.scaled_sign)
        files.append(kernel.py_func.__code__.co_filename)
        opt = module.scaled_sign.optimizer("scaled_sign", {"beta": 0.1})
        numpy_run, fast_run = run_both(problem, opt, 0.01, n_steps=30, batch_size=2)
        assert_same_trajectories(numpy_run, fast_run)
        finals.append(fast_run["loss"].iloc[-1])
    assert files[0] != files[1] and finals[0] != finals[1]
    path.write_text(_USER_MODULE.format(scale=1.0))  # back to the first version: its kernel
    module = _import_file(path, "user_rule_v2")
    assert _fast.step_kernel(module.scaled_sign).py_func.__code__.co_filename == files[0]


# ---- compilation is cached ----------------------------------------------------------------------
def test_a_second_process_loads_the_kernels_from_the_cache():
    _fast.warm_up()  # compiles here if the cache is cold
    code = (
        "from convstudy import _fast; from convstudy.optim.rules import SGD; _fast.warm_up(); "
        "s = _fast.step_kernel(SGD).stats; "
        "print(sum(s.cache_hits.values()), sum(s.cache_misses.values()), "
        "_fast.kernel_cache_misses())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout.split()
    assert [int(v) for v in out] == [1, 0, 0]


# ---- memory -------------------------------------------------------------------------------------
def test_memory_does_not_grow_with_the_number_of_steps():
    """Beyond the step-size array (8 bytes per step, plus 16 per step of the longest stretch
    between two records), ten times more steps take no more memory: no index blocks are
    stored and records follow the grid."""
    problem = Quadratic(dim=8, n_samples=500, seed=0)
    peaks = []
    for n_steps in (10_000, 100_000):
        tracemalloc.start()
        simulate(problem, "sgd", 1e-3, n_steps=n_steps, n_replicates=64, engine="fast")
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] - peaks[0] <= 24 * 90_000 + 2**20
