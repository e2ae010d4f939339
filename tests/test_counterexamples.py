"""Tests for convstudy.problems.counterexamples (Reddi, Kale & Kumar 2018)."""

from __future__ import annotations

import numpy as np
import pytest

from convstudy.engine import replicate_generators
from convstudy.optim import get_optimizer
from convstudy.problems.counterexamples import AdamCounterexample
from convstudy.sampling import batch_stream, get_sampler


def test_theorem3_defaults_mean_slope_and_optimum():
    p = AdamCounterexample()  # C = 100, N = 101, two samples of slope C: delta = 1
    assert (p.n_samples, p.dim, p.C, p.n_large) == (101, 1, 100.0, 2)
    assert p.delta == pytest.approx(1.0, abs=1e-15)
    assert p.p_large == pytest.approx((1 + p.delta) / (p.C + 1))  # the paper's p
    assert p.w_star.tolist() == [-1.0]
    assert p.f_star == pytest.approx(-1.0)
    w = np.array([[-1.0], [0.0], [0.3], [1.0]])
    np.testing.assert_allclose(p.loss(w), p.delta * w[:, 0])
    np.testing.assert_allclose(p.grad(w), np.full_like(w, p.delta))


def test_finite_sum_matches_full_objective():
    p = AdamCounterexample(C=101.0, n_samples=100, n_large=1)  # Sec. 5 example divided by 10
    assert p.delta == pytest.approx(0.02)
    w = np.array([[0.7], [-0.2]])
    idx = np.broadcast_to(np.arange(p.n_samples), (2, p.n_samples))
    np.testing.assert_allclose(p.sample_losses(w, idx).mean(axis=1), p.loss(w))
    np.testing.assert_allclose(p.batch_grad(w, idx), p.grad(w))
    grads = p.sample_grads(w, idx)
    assert grads.shape == (2, p.n_samples, 1)
    assert sorted(set(grads.ravel().tolist())) == [-1.0, 101.0]
    assert (grads[0, :, 0] == 101.0).sum() == 1


def test_sampling_with_replacement_draws_the_large_slope_with_probability_p():
    p = AdamCounterexample()
    rngs, _ = replicate_generators(3, range(4))
    block = next(batch_stream(get_sampler("replacement"), rngs, p.n_samples, 1))  # (T, R, 1)
    g = np.stack([p.batch_grad(np.zeros((4, 1)), block[t]) for t in range(block.shape[0])])
    share = np.mean(g == p.C)
    n = g.size
    se = np.sqrt(p.p_large * (1 - p.p_large) / n)
    assert abs(share - p.p_large) < 4 * se


def test_projection_and_starting_points():
    p = AdamCounterexample()
    np.testing.assert_array_equal(
        p.project(np.array([[-3.0], [0.5], [2.0]])), [[-1.0], [0.5], [1.0]]
    )
    assert p.initial_point().tolist() == [0.0]
    x = p.random_initial_point(np.random.default_rng(0))
    assert x.shape == (1,) and -1.0 <= x[0] <= 1.0
    cert = p.certificate()
    assert cert.gap_bound == 0.0 and cert.grad_norm == pytest.approx(p.delta)


def test_projected_sgd_reaches_the_optimum():
    """SGD with 1/sqrt(t) steps and projection ends near x* = -1 (E g = delta > 0)."""
    p = AdamCounterexample()
    opt = get_optimizer("sgd")
    rngs, _ = replicate_generators(0, range(16))
    stream = batch_stream(get_sampler("replacement"), rngs, p.n_samples, 1)
    w, state = np.zeros((16, 1)), opt.init(np.zeros((16, 1)))
    t = 0
    for _ in range(2):
        for idx in next(stream):
            t += 1
            w, state = opt.update(p.batch_grad(w, idx), w, state, 0.03 / np.sqrt(t))
            w = p.project(w)
    assert w.mean() < -0.8


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"C": 1.0}, "C"),
        ({"C": "big"}, "C"),
        ({"n_samples": 1}, "n_samples"),
        ({"n_large": 0}, "n_large"),
        ({"n_large": 101}, "n_large"),
        ({"C": 10.0, "n_samples": 101, "n_large": 2}, "delta"),  # 2 * 11 < 101: optimum at +1
    ],
)
def test_bad_parameters_are_refused_with_their_name(kwargs, name):
    with pytest.raises((ValueError, TypeError), match=name):
        AdamCounterexample(**kwargs)
