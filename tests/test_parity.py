"""Parity of the two engines, generated from the optimizer registry.

For every registered optimizer (and the user rule of ``examples/lion.py``, registered by name as
a user's module would), with its defaults and one variant per hyper-parameter that switches a
code path or a term on (a flag flipped, a zero made 0.1: Nesterov, AMSGrad, centered RMSprop,
weight decay, no bias correction, ...), on every problem family the compiled path covers, with
every sampler: ``simulate(engine="numpy")`` and ``simulate(engine="fast")`` from the same seed
record the same losses, squared gradient norms and iterates, to 1e-12 relative to each
quantity's scale along the run (see :func:`test_fast_path.assert_same_trajectories`).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from test_fast_path import assert_same_trajectories

from convstudy import registry, simulate
from convstudy.optim import OPTIMIZERS, get_optimizer
from convstudy.problems import LeastSquares, Logistic, get_problem

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
USER_RULES = {"lion": EXAMPLES / "lion.py"}  # registered name -> the file that registers it


def _data(seed: int, n: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * np.linspace(0.5, 1.5, d)
    return X, X @ rng.standard_normal(d) + 0.5 * rng.standard_normal(n)


def _families() -> dict:
    X, y = _data(0, 30, 5)
    Xl, yl = _data(1, 40, 4)
    return {
        "least_squares": LeastSquares(X, y, lam=0.05),  # lam > 0: the ridge term too
        "logistic": Logistic(lam=0.02, X=Xl, y=np.where(yl > 0, 1.0, -1.0)),
        "tanh_network": get_problem("tanh_network", n_samples=30),
        # the full training set (1437 samples); 4 hidden units keep d = 310 small
        "digits_mlp": get_problem("digits_mlp", width=4),
        "quartic": get_problem("quartic_regression", n_samples=30, dim=5, seed=1),
    }


FAMILIES = _families()
SAMPLERS = {"full": None, "reshuffle": 1, "replacement": 3, "cyclic": 2}  # batch sizes
NAMES = sorted(set(OPTIMIZERS) | set(USER_RULES))


@pytest.fixture(scope="module")
def user_rules():
    """Import the user rule files (each registers its optimizer) for this module's tests only,
    so that tests enumerating the registry elsewhere see the built-ins alone."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(OPTIMIZERS, "_table", dict(OPTIMIZERS._table))
        mp.setattr(registry, "_USER_MODULES", dict(registry._USER_MODULES))
        for name, path in USER_RULES.items():
            spec = importlib.util.spec_from_file_location(f"example_{name}", path)
            module = importlib.util.module_from_spec(spec)
            mp.setitem(sys.modules, spec.name, module)
            spec.loader.exec_module(module)
        yield


def variants(name: str) -> list[dict]:
    """The defaults, then one variant per hyper-parameter whose default is a flag (flipped) or
    0 (made 0.1), when the factory accepts it."""
    out: list[dict] = [{}]
    for key, value in get_optimizer(name).hyperparams.items():
        if isinstance(value, bool):
            change = {key: not value}
        elif value == 0.0:
            change = {key: 0.1}
        else:
            continue
        try:
            get_optimizer(name, **change)
        except ValueError:  # e.g. Nesterov without momentum
            continue
        out.append(change)
    return out


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("name", NAMES)
def test_both_engines_record_the_same_run(user_rules, name, family, sampler):
    problem = FAMILIES[family]
    # Small steps (relative to 1/L where known): adaptive rules move each coordinate by about
    # lr / sqrt(1 - beta2) at first, and larger steps make the network runs chaotic enough to
    # amplify the two paths' different summation orders beyond 1e-12 within 40 steps.
    lr = 0.01 / problem.L if getattr(problem, "L", None) else 0.002
    b = SAMPLERS[sampler] or problem.n_samples
    for hyperparams in variants(name):
        optimizer = get_optimizer(name, **hyperparams)
        kw = dict(n_steps=40, sampler=sampler, batch_size=b, n_replicates=2, seed=3)
        kw.update(w0="random", n_records=5, record_iterates=True)
        numpy_run = simulate(problem, optimizer, lr, engine="numpy", **kw)
        fast_run = simulate(problem, optimizer, lr, engine="fast", **kw)
        assert not numpy_run["diverged"].any(), hyperparams
        assert_same_trajectories(numpy_run, fast_run)


def test_every_registered_name_is_covered(user_rules):
    assert set(OPTIMIZERS) == set(NAMES)
    assert {"nesterov": True} not in variants("sgd")  # refused without momentum
    assert {"amsgrad": True} in variants("adam") and {"centered": True} in variants("rmsprop")
    assert {"bias_correction": False} in variants("adam")
    assert {"weight_decay": 0.1} in variants("lion")
