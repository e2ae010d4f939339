"""The softmax MLP classifier on scikit-learn's digits (``digits_mlp``).

Layout, per-sample losses and gradients (against finite differences), the fixed stratified
split, the test metrics and observables, the compiled path (SGD learns: the test accuracy ends
well above the untrained network's) and one-line errors for bad parameters. Parity of the two
engines on this problem, for every optimizer and sampler, is in ``tests/test_parity.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from convstudy import simulate
from convstudy.engine import fast_path_reason
from convstudy.optim import get_optimizer
from convstudy.problems import DigitsMLP, MLPClassifier, get_problem
from convstudy.problems.classification import flatten, n_params, unflatten


@pytest.fixture(scope="module")
def small():
    return DigitsMLP(width=5, seed=1)


def _points(problem, n_rep=3, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([problem.random_initial_point(rng) for _ in range(n_rep)])


def _reference_losses(problem, w, X, labels):
    """Cross-entropy written out sample by sample, from the module docstring's formulas."""
    W1, b1, W2, b2 = problem.unflatten(w)
    out = np.empty((w.shape[0], X.shape[0]))
    for r in range(w.shape[0]):
        for i, (x, k) in enumerate(zip(X, labels)):
            z = W2[r] @ np.tanh(W1[r] @ x + b1[r]) + b2[r]
            out[r, i] = np.log(np.sum(np.exp(z))) - z[k]
    return out


def test_registered_defaults_and_layout():
    p = get_problem("digits_mlp")
    assert isinstance(p, DigitsMLP) and p.name == "digits_mlp" and p.convexity == "nonconvex"
    assert (p.n_samples, p.X_test.shape, p.n_inputs, p.n_classes) == (1437, (360, 64), 64, 10)
    assert p.dim == n_params(64, 32, 10) == 64 * 32 + 32 + 10 * 32 + 10
    assert p.f_star is None and p.w_star is None and p.mu is None and p.L is None
    assert p.params() == {
        "problem": "digits_mlp", "n_samples": 1437, "dim": p.dim, "n_inputs": 64, "width": 32,
        "n_classes": 10, "n_test": 360, "seed": 0, "split_seed": 0,
    }  # fmt: skip
    assert 0.0 <= p.X.min() and p.X.max() <= 1.0
    w = _points(p, 2)
    W1, b1, W2, b2 = unflatten(w, 64, 32, 10)
    assert (W1.shape, b1.shape, W2.shape, b2.shape) == ((2, 32, 64), (2, 32), (2, 10, 32), (2, 10))
    assert W1[1, 3, 5] == w[1, 3 * 64 + 5] and W2[0, 2, 7] == w[0, 32 * 65 + 2 * 32 + 7]
    np.testing.assert_array_equal(flatten(W1, b1, W2, b2), w)


def test_losses_match_the_formula_and_the_shapes(small):
    w = _points(small)
    idx = np.random.default_rng(3).integers(0, small.n_samples, (3, 7))
    losses = small.sample_losses(w, idx)
    assert losses.shape == (3, 7) and small.sample_grads(w, idx).shape == (3, 7, small.dim)
    for r in range(3):
        want = _reference_losses(small, w[r : r + 1], small.X[idx[r]], small.labels[idx[r]])
        np.testing.assert_allclose(losses[r], want[0], rtol=1e-12)
    full = _reference_losses(small, w, small.X, small.labels).mean(axis=1)
    np.testing.assert_allclose(small.loss(w), full, rtol=1e-12)
    test = _reference_losses(small, w, small.X_test, small.labels_test).mean(axis=1)
    np.testing.assert_allclose(small.test_loss(w), test, rtol=1e-12)
    # untrained: close to log 10 (near-uniform softmax)
    assert np.all(np.abs(small.loss(w) - np.log(10)) < 0.5)


def test_gradients_match_finite_differences(small):
    w = _points(small, 2, seed=5)
    idx = np.random.default_rng(4).integers(0, small.n_samples, (2, 6))
    g = small.batch_grad(w, idx)
    np.testing.assert_allclose(small.sample_grads(w, idx).mean(axis=1), g, atol=1e-15)
    eps = 1e-6
    fd = np.empty_like(w)
    for j in range(small.dim):
        e = np.zeros(small.dim)
        e[j] = eps
        fd[:, j] = (
            small.sample_losses(w + e, idx).mean(axis=1)
            - small.sample_losses(w - e, idx).mean(axis=1)
        ) / (2 * eps)
    np.testing.assert_allclose(g, fd, atol=1e-8 * max(1.0, np.abs(g).max()))
    # the full gradient: a random direction
    v = np.random.default_rng(6).standard_normal(small.dim)
    slope = (small.loss(w + eps * v) - small.loss(w - eps * v)) / (2 * eps)
    np.testing.assert_allclose(small.grad(w) @ v, slope, rtol=1e-6, atol=1e-9)
    all_idx = np.broadcast_to(np.arange(small.n_samples), (2, small.n_samples))
    np.testing.assert_allclose(small.grad(w), small.batch_grad(w, all_idx), atol=1e-15)


def test_split_is_fixed_stratified_and_seeded():
    a, b = DigitsMLP(width=2), DigitsMLP(width=3, seed=4)  # the init seed does not move it
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.labels_test, b.labels_test)
    assert a.n_samples + a.X_test.shape[0] == 1797
    counts = np.bincount(a.labels_test, minlength=10)
    share = np.bincount(np.concatenate([a.labels, a.labels_test]), minlength=10) / 1797
    assert np.all(np.abs(counts - 360 * share) <= 1)  # stratified
    other = DigitsMLP(width=2, split_seed=1)
    assert not np.array_equal(other.X_test, a.X_test)
    small_test = DigitsMLP(width=2, test_size=100)
    assert (small_test.n_samples, small_test.X_test.shape[0]) == (1697, 100)
    np.testing.assert_array_equal(a.initial_point(), DigitsMLP(width=2).initial_point())
    assert not np.array_equal(a.initial_point(), DigitsMLP(width=2, seed=1).initial_point())


def test_test_metrics_and_observables(small):
    w = _points(small, 4)
    acc = small.test_accuracy(w)
    assert acc.shape == (4,) and np.all((0 <= acc) & (acc <= 1))
    assert small.train_accuracy(w).shape == (4,)
    # a replicate's metrics do not depend on the other replicates
    apart = np.concatenate([small.test_loss(w[r : r + 1]) for r in range(4)])
    np.testing.assert_array_equal(small.test_loss(w), apart)
    assert 0.0 <= small.untrained_test_accuracy <= 0.35  # an untrained net is near chance
    assert small.chance_accuracy == pytest.approx(0.1, abs=0.01)
    obs = small.observables()
    assert set(obs) == {"test_loss", "test_accuracy"}
    w[1, 0] = np.nan
    got = obs["test_accuracy"](w)
    assert np.isnan(got[1]) and np.array_equal(got[[0, 2, 3]], acc[[0, 2, 3]])
    with pytest.raises(ValueError, match="test_accuracy"):
        small.test_accuracy(np.zeros((2, 3)))


def test_sgd_on_the_compiled_path_learns():
    problem = DigitsMLP(width=16)
    assert fast_path_reason(problem, "sgd", "replacement") is None
    n_test = problem.X_test.shape[0]
    # the standard error of an accuracy on n_test samples is at most 0.5 / sqrt(n_test)
    margin = 10 * 0.5 / np.sqrt(n_test)
    run = simulate(
        problem, get_optimizer("sgd"), 0.5, n_steps=400, batch_size=16, sampler="replacement",
        n_replicates=4, seed=2, w0="random", n_records=3, engine="fast",
        observe=problem.observables(),
    )  # fmt: skip
    assert run.attrs["engine"] == "fast" and not run["diverged"].any()
    first = run[run["step"] == 0].set_index("replicate")
    last = run[run["step"] == 400].set_index("replicate")
    assert np.all(last["loss"] < 0.5 * first["loss"])
    assert np.all(last["test_loss"] < first["test_loss"])
    assert np.all(last["test_accuracy"] > first["test_accuracy"] + margin)
    assert np.all(last["test_accuracy"] > problem.untrained_test_accuracy + margin)


def test_a_subclass_overriding_the_loss_runs_on_numpy():
    class Tweaked(DigitsMLP):
        def loss(self, w):
            return super().loss(w) + 1.0

    reason = fast_path_reason(Tweaked(width=2), "sgd", "full")
    assert "MLPClassifier" in reason


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"width": 0}, "width"),
        ({"width": 2.5}, "width"),
        ({"test_size": 5}, "test_size"),
        ({"test_size": 1790}, "test_size"),
        ({"split_seed": -1}, "split_seed"),
        ({"seed": -2}, "seed"),
    ],
)
def test_bad_parameters_give_one_line_errors(kwargs, word):
    with pytest.raises((ValueError, TypeError), match=word) as info:
        DigitsMLP(**kwargs)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "labels, word",
    [
        (np.array([0, 1, -1, 1]), "integers"),
        (np.array([0, 1, 0.5, 1]), "integers"),
        (np.array([0, 1, 1]), "shaped"),
        (np.array([0, 1, 5, 1]), "n_classes"),
    ],
)
def test_bad_labels_give_one_line_errors(labels, word):
    X = np.zeros((4, 3))
    with pytest.raises(ValueError, match=word) as info:
        MLPClassifier(X, labels, X[:2], np.array([0, 1]), width=2, n_classes=3)
    assert "\n" not in str(info.value)
