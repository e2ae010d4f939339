"""Tests for convstudy.optim.

The reference values are computed here, independently of the module, by running each update rule
on one scalar coordinate at a time in a plain Python loop, with the formulas written out step by
step (torch.optim's documented algorithms, t counted from 1).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convstudy import optim
from convstudy.optim import OPTIMIZERS, Optimizer, Rule, get_optimizer, rule, select

# R = 2 replicates, d = 3 coordinates, 5 steps. The gradients are hand-chosen to exercise every
# branch: zeros, sign changes (Rprop), a large gradient followed by much smaller ones (so that
# AMSGrad's running max of v matters), and a NaN-free, non-constant sequence.
W0 = np.array([[0.5, -1.0, 2.0], [-0.3, 0.0, 1.5]])
GRADS = np.array(
    [
        [[1.0, -2.0, 0.5], [0.0, 3.0, -0.25]],
        [[0.5, 1.0, 0.5], [0.2, 3.0, 0.25]],
        [[-0.1, 1.5, 0.0], [-0.4, -0.5, 0.25]],
        [[0.05, -0.5, -0.3], [0.1, 0.01, 0.0]],
        [[0.02, 0.4, -0.1], [0.3, -0.02, 0.5]],
    ]
)
LRS = [0.1, 0.05, 0.2, 0.1, 0.07]
R, D = W0.shape


# ---- scalar references: one coordinate, one step at a time ------------------------------------
def _sign(x):
    return 1.0 if x > 0 else (-1.0 if x < 0 else 0.0)


def ref_sgd(w, gs, lrs, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
    out, b = [], None
    for t, (g, lr) in enumerate(zip(gs, lrs), start=1):
        g = g + weight_decay * w
        if momentum != 0.0:
            if t == 1:
                b = g
            else:
                b = momentum * b + (1.0 - dampening) * g
            direction = g + momentum * b if nesterov else b
        else:
            direction = g
        w = w - lr * direction
        out.append(w)
    return out


def ref_adagrad(
    w, gs, lrs, lr_decay=0.0, initial_accumulator_value=0.0, eps=1e-10, weight_decay=0.0
):
    out, s = [], initial_accumulator_value
    for t, (g, lr) in enumerate(zip(gs, lrs), start=1):
        g = g + weight_decay * w
        clr = lr / (1.0 + (t - 1) * lr_decay)
        s = s + g * g
        w = w - clr * g / (math.sqrt(s) + eps)
        out.append(w)
    return out


def ref_rmsprop(w, gs, lrs, alpha=0.99, eps=1e-8, momentum=0.0, centered=False, weight_decay=0.0):
    out, v, gbar, b = [], 0.0, 0.0, 0.0
    for g, lr in zip(gs, lrs):
        g = g + weight_decay * w
        v = alpha * v + (1.0 - alpha) * g * g
        if centered:
            gbar = alpha * gbar + (1.0 - alpha) * g
            denom = math.sqrt(v - gbar * gbar) + eps
        else:
            denom = math.sqrt(v) + eps
        if momentum > 0:
            b = momentum * b + g / denom
            w = w - lr * b
        else:
            w = w - lr * g / denom
        out.append(w)
    return out


def ref_adam(
    w, gs, lrs, betas=(0.9, 0.999), eps=1e-8, amsgrad=False, weight_decay=0.0, bias_correction=True
):
    b1, b2 = betas
    out, m, v, vmax = [], 0.0, 0.0, 0.0
    for t, (g, lr) in enumerate(zip(gs, lrs), start=1):
        g = g + weight_decay * w
        m = b1 * m + (1.0 - b1) * g
        v = b2 * v + (1.0 - b2) * g * g
        if amsgrad:
            vmax = max(vmax, v)
            u = vmax
        else:
            u = v
        if bias_correction:
            step = lr / (1.0 - b1**t)
            denom = math.sqrt(u) / math.sqrt(1.0 - b2**t) + eps
        else:
            step = lr
            denom = math.sqrt(u) + eps
        w = w - step * m / denom
        out.append(w)
    return out


def ref_rprop(w, gs, lrs, etas=(0.5, 1.2), step_sizes=(1e-6, 50.0)):
    eta_minus, eta_plus = etas
    smin, smax = step_sizes
    out, prev, delta = [], 0.0, None
    for t, (g, lr) in enumerate(zip(gs, lrs), start=1):
        if t == 1:
            delta = lr  # the only time lr is read
        p = g * prev
        if p > 0:
            factor = eta_plus
        elif p < 0:
            factor = eta_minus
            g = 0.0
        else:
            factor = 1.0
        delta = min(max(delta * factor, smin), smax)
        w = w - delta * _sign(g)
        prev = g
        out.append(w)
    return out


def reference(ref, w0=W0, grads=GRADS, lrs=LRS, **hp):
    """Run a scalar reference on every coordinate of every replicate: (steps, R, d)."""
    steps, n_rep, dim = grads.shape
    out = np.empty((steps, n_rep, dim))
    for r in range(n_rep):
        for i in range(dim):
            gs = [float(grads[k, r, i]) for k in range(steps)]
            out[:, r, i] = ref(float(w0[r, i]), gs, lrs, **hp)
    return out


def run(opt: Optimizer, w0=W0, grads=GRADS, lrs=LRS):
    """Run the module's optimizer: trajectory (steps, R, d) and the final state."""
    w, state = w0, opt.init(w0)
    traj = []
    for g, lr in zip(grads, lrs):
        w, state = opt.update(g, w, state, lr)
        traj.append(w)
    return np.array(traj), state


# (registry name, factory kwargs, scalar reference, reference kwargs)
CASES = [
    ("sgd", {}, ref_sgd, {}),
    ("sgd", {"weight_decay": 0.1}, ref_sgd, {"weight_decay": 0.1}),
    ("sgd", {"momentum": 0.9}, ref_sgd, {"momentum": 0.9}),
    (
        "sgd",
        {"momentum": 0.9, "dampening": 0.5, "weight_decay": 0.01},
        ref_sgd,
        {"momentum": 0.9, "dampening": 0.5, "weight_decay": 0.01},
    ),
    ("sgd", {"momentum": 0.8, "nesterov": True}, ref_sgd, {"momentum": 0.8, "nesterov": True}),
    ("momentum", {}, ref_sgd, {"momentum": 0.9}),
    ("momentum", {"dampening": 0.3}, ref_sgd, {"momentum": 0.9, "dampening": 0.3}),
    ("nesterov", {}, ref_sgd, {"momentum": 0.9, "nesterov": True}),
    (
        "nesterov",
        {"momentum": 0.5, "weight_decay": 0.1},
        ref_sgd,
        {"momentum": 0.5, "nesterov": True, "weight_decay": 0.1},
    ),
    ("adagrad", {}, ref_adagrad, {}),
    (
        "adagrad",
        {"lr_decay": 0.5, "initial_accumulator_value": 0.1, "eps": 1e-3, "weight_decay": 0.05},
        ref_adagrad,
        {"lr_decay": 0.5, "initial_accumulator_value": 0.1, "eps": 1e-3, "weight_decay": 0.05},
    ),
    ("rmsprop", {}, ref_rmsprop, {}),
    ("rmsprop", {"centered": True}, ref_rmsprop, {"centered": True}),
    ("rmsprop", {"momentum": 0.9}, ref_rmsprop, {"momentum": 0.9}),
    (
        "rmsprop",
        {"alpha": 0.9, "eps": 1e-4, "momentum": 0.5, "centered": True, "weight_decay": 0.1},
        ref_rmsprop,
        {"alpha": 0.9, "eps": 1e-4, "momentum": 0.5, "centered": True, "weight_decay": 0.1},
    ),
    ("adam", {}, ref_adam, {}),
    (
        "adam",
        {"betas": (0.8, 0.9), "eps": 1e-6, "weight_decay": 0.1},
        ref_adam,
        {"betas": (0.8, 0.9), "eps": 1e-6, "weight_decay": 0.1},
    ),
    ("adam", {"bias_correction": False}, ref_adam, {"bias_correction": False}),
    ("adam", {"amsgrad": True}, ref_adam, {"amsgrad": True}),
    ("amsgrad", {}, ref_adam, {"amsgrad": True}),
    (
        "amsgrad",
        {"betas": (0.5, 0.9), "bias_correction": False},
        ref_adam,
        {"betas": (0.5, 0.9), "amsgrad": True, "bias_correction": False},
    ),
    ("rprop", {}, ref_rprop, {}),
    (
        "rprop",  # step sizes clipped from above and below
        {"etas": (0.4, 1.5), "step_sizes": (0.03, 0.13)},
        ref_rprop,
        {"etas": (0.4, 1.5), "step_sizes": (0.03, 0.13)},
    ),
    (
        "rprop",  # first lr (0.1) above the max step: clipped on the first step too
        {"step_sizes": (0.03, 0.08)},
        ref_rprop,
        {"step_sizes": (0.03, 0.08)},
    ),
]
CASE_IDS = [f"{name}-{kw}" for name, kw, _, _ in CASES]


@pytest.mark.parametrize(("name", "kwargs", "ref", "ref_kwargs"), CASES, ids=CASE_IDS)
def test_matches_scalar_reference(name, kwargs, ref, ref_kwargs):
    opt = get_optimizer(name, **kwargs)
    traj, state = run(opt)
    expected = reference(ref, **ref_kwargs)
    np.testing.assert_allclose(traj, expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(state.count, np.full(R, len(LRS)))


def test_factories_equal_registry_calls():
    traj_f, _ = run(optim.adam(betas=(0.8, 0.9)))
    traj_r, _ = run(get_optimizer("adam", betas=(0.8, 0.9)))
    np.testing.assert_array_equal(traj_f, traj_r)


def test_data_exercises_amsgrad_max_and_rprop_branches():
    # Guard against test data too tame to tell the variants apart.
    adam_traj, _ = run(optim.adam())
    ams_traj, _ = run(optim.amsgrad())
    assert not np.allclose(adam_traj, ams_traj, rtol=1e-9, atol=0)
    _, state = run(optim.rprop(etas=(0.4, 1.5), step_sizes=(0.03, 0.13)))
    assert np.any(state.step_size == 0.13) and np.any(state.step_size == 0.03)


# ---- contract: purity, shapes, state layout ----------------------------------------------------
def _states_equal(a, b):
    return type(a) is type(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_update_does_not_mutate_inputs(name):
    opt = get_optimizer(name)
    _, state = run(opt, grads=GRADS[:2], lrs=LRS[:2])  # a state with nonzero fields
    g, w = GRADS[2].copy(), W0.copy() + 0.1
    g0, w0 = g.copy(), w.copy()
    state0 = type(state)(*(f.copy() for f in state))
    new_w, new_state = opt.update(g, w, state, 0.1)
    np.testing.assert_array_equal(g, g0)
    np.testing.assert_array_equal(w, w0)
    assert _states_equal(state, state0)
    assert new_w is not w
    # And init does not alias w either.
    w_init = W0.copy()
    fresh = opt.init(w_init)
    new_w, _ = opt.update(GRADS[0], w_init, fresh, 0.1)
    np.testing.assert_array_equal(w_init, W0)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_shapes_and_state_layout(name):
    opt = get_optimizer(name)
    assert isinstance(opt, Optimizer)
    assert opt.name == name
    state = opt.init(W0)
    assert hasattr(state, "_fields") and state._fields[0] == "count"
    for k in range(3):
        for field, value in zip(state._fields, state):
            assert isinstance(value, np.ndarray), field
            assert value.shape in ((R,), (R, D)), (field, value.shape)
        assert state.count.dtype == np.int64 and state.count.shape == (R,)
        np.testing.assert_array_equal(state.count, np.full(R, k))
        w, state = opt.update(GRADS[k], W0, state, LRS[k])
        assert w.shape == (R, D) and w.dtype == np.float64


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_replicates_are_independent(name):
    opt = get_optimizer(name)
    joint, _ = run(opt)
    for r in range(R):
        alone, _ = run(opt, w0=W0[r : r + 1], grads=GRADS[:, r : r + 1])
        np.testing.assert_allclose(joint[:, r], alone[:, 0], rtol=1e-14, atol=0)
    # A NaN gradient in replicate 0 does not leak into replicate 1.
    bad = GRADS.copy()
    bad[1, 0, :] = np.nan
    with np.errstate(invalid="ignore"):
        joint_bad, _ = run(opt, grads=bad)
    np.testing.assert_array_equal(joint_bad[:, 1], joint[:, 1])


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_frozen_replicate_resumes_like_a_fresh_run(name):
    """Mask the first update of replicate 1 as the engine does; its count must then lag behind
    and it must follow exactly the trajectory of a run started one step later."""
    opt = get_optimizer(name)
    active = np.array([True, False])
    w, state = W0, opt.init(W0)
    new_w, new_state = opt.update(GRADS[0], w, state, LRS[0])
    w = np.where(active[:, None], new_w, w)
    state = type(state)(
        *(
            np.where(active.reshape((R,) + (1,) * (new.ndim - 1)), new, old)
            for new, old in zip(new_state, state)
        )
    )
    np.testing.assert_array_equal(state.count, [1, 0])
    for g, lr in zip(GRADS[1:], LRS[1:]):
        w, state = opt.update(g, w, state, lr)
    lead, _ = run(opt, w0=W0[:1], grads=GRADS[:, :1])
    late, _ = run(opt, w0=W0[1:], grads=GRADS[1:, 1:], lrs=LRS[1:])
    np.testing.assert_allclose(w[0], lead[-1, 0], rtol=1e-14, atol=0)
    np.testing.assert_allclose(w[1], late[-1, 0], rtol=1e-14, atol=0)


# ---- hyper-parameters and the registry ---------------------------------------------------------
def test_registry_names():
    builtins = {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "amsgrad", "rprop"}
    assert builtins <= set(OPTIMIZERS)  # users may register more
    for name in builtins:
        assert OPTIMIZERS[name] is getattr(optim, name)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_hyperparams_are_plain_scalars_and_round_trip(name):
    opt = get_optimizer(name)
    assert opt.hyperparams
    for key, value in opt.hyperparams.items():
        assert type(value) in (bool, float, int), (key, type(value))
    again = get_optimizer(opt.name, **opt.hyperparams)
    assert again.name == opt.name and again.hyperparams == opt.hyperparams


def test_torch_defaults():
    assert optim.sgd().hyperparams == {
        "momentum": 0.0,
        "dampening": 0.0,
        "nesterov": False,
        "weight_decay": 0.0,
    }
    assert optim.adagrad().hyperparams == {
        "lr_decay": 0.0,
        "initial_accumulator_value": 0.0,
        "eps": 1e-10,
        "weight_decay": 0.0,
    }
    assert optim.rmsprop().hyperparams == {
        "alpha": 0.99,
        "eps": 1e-8,
        "momentum": 0.0,
        "centered": False,
        "weight_decay": 0.0,
    }
    assert optim.adam().hyperparams == {
        "beta1": 0.9,
        "beta2": 0.999,
        "eps": 1e-8,
        "amsgrad": False,
        "weight_decay": 0.0,
        "bias_correction": True,
    }
    assert optim.rprop().hyperparams == {
        "eta_minus": 0.5,
        "eta_plus": 1.2,
        "step_size_min": 1e-6,
        "step_size_max": 50.0,
    }
    assert optim.momentum().hyperparams["momentum"] == 0.9
    assert optim.nesterov().hyperparams["momentum"] == 0.9


def test_get_optimizer_accepts_split_names():
    opt = get_optimizer("adam", beta2=0.99)
    assert (opt.hyperparams["beta1"], opt.hyperparams["beta2"]) == (0.9, 0.99)
    opt = get_optimizer("rprop", eta_plus=1.5, step_size_max=1.0)
    assert opt.hyperparams["eta_minus"] == 0.5 and opt.hyperparams["eta_plus"] == 1.5
    assert opt.hyperparams["step_size_max"] == 1.0
    with pytest.raises(ValueError, match="'betas' parameter of get_optimizer"):
        get_optimizer("adam", betas=(0.9, 0.999), beta1=0.8)


def test_get_optimizer_bad_name():
    names = ", ".join(repr(n) for n in sorted(OPTIMIZERS))
    msg = f"The 'optimizer' parameter of get_optimizer must be one of {{{names}}}. Got 'foo'"
    with pytest.raises(ValueError, match=re.escape(msg)):
        get_optimizer("foo")
    with pytest.raises(TypeError, match="'optimizer' parameter of get_optimizer"):
        get_optimizer(3)


BAD = [
    ("sgd", {"momentum": -0.1}, ValueError, "'momentum' parameter of sgd"),
    ("sgd", {"dampening": 1.5}, ValueError, "'dampening' parameter of sgd"),
    ("sgd", {"weight_decay": -1.0}, ValueError, "'weight_decay' parameter of sgd"),
    ("sgd", {"nesterov": 2}, TypeError, "'nesterov' parameter of sgd"),
    ("sgd", {"momentum": "0.9"}, TypeError, "'momentum' parameter of sgd"),
    ("momentum", {"momentum": -1.0}, ValueError, "'momentum' parameter of momentum"),
    ("nesterov", {"momentum": 0.0}, ValueError, "'momentum' parameter of nesterov"),
    ("nesterov", {"weight_decay": -0.1}, ValueError, "'weight_decay' parameter of nesterov"),
    ("adagrad", {"eps": 0.0}, ValueError, "'eps' parameter of adagrad"),
    ("adagrad", {"lr_decay": -1.0}, ValueError, "'lr_decay' parameter of adagrad"),
    (
        "adagrad",
        {"initial_accumulator_value": -1.0},
        ValueError,
        "'initial_accumulator_value' parameter of adagrad",
    ),
    ("rmsprop", {"alpha": 1.0}, ValueError, "'alpha' parameter of rmsprop"),
    ("rmsprop", {"eps": -1e-8}, ValueError, "'eps' parameter of rmsprop"),
    ("rmsprop", {"momentum": -0.5}, ValueError, "'momentum' parameter of rmsprop"),
    ("rmsprop", {"centered": "yes"}, TypeError, "'centered' parameter of rmsprop"),
    ("adam", {"betas": (1.0, 0.999)}, ValueError, r"'betas\[0\]' parameter of adam"),
    ("adam", {"betas": (0.9, -0.1)}, ValueError, r"'betas\[1\]' parameter of adam"),
    ("adam", {"betas": 0.9}, TypeError, "'betas' parameter of adam"),
    ("adam", {"betas": (0.9, 0.99, 0.9)}, ValueError, "'betas' parameter of adam"),
    ("adam", {"eps": 0.0}, ValueError, "'eps' parameter of adam"),
    ("adam", {"eps": float("nan")}, ValueError, "'eps' parameter of adam"),
    ("adam", {"amsgrad": None}, TypeError, "'amsgrad' parameter of adam"),
    ("adam", {"amsgrad": 1}, TypeError, "'amsgrad' parameter of adam"),
    ("adam", {"bias_correction": "no"}, TypeError, "'bias_correction' parameter of adam"),
    ("amsgrad", {"betas": (0.9, 1.0)}, ValueError, r"'betas\[1\]' parameter of amsgrad"),
    ("amsgrad", {"weight_decay": -1.0}, ValueError, "'weight_decay' parameter of amsgrad"),
    ("rprop", {"etas": (1.0, 1.2)}, ValueError, r"'etas\[0\]' parameter of rprop"),
    ("rprop", {"etas": (0.0, 1.2)}, ValueError, r"'etas\[0\]' parameter of rprop"),
    ("rprop", {"etas": (0.5, 1.0)}, ValueError, r"'etas\[1\]' parameter of rprop"),
    ("rprop", {"etas": (0.5, 0.9)}, ValueError, r"'etas\[1\]' parameter of rprop"),
    ("rprop", {"step_sizes": (0.0, 50.0)}, ValueError, r"'step_sizes\[0\]' parameter of rprop"),
    ("rprop", {"step_sizes": (1.0, 0.5)}, ValueError, r"'step_sizes\[1\]' parameter of rprop"),
    ("rprop", {"step_sizes": 50.0}, TypeError, "'step_sizes' parameter of rprop"),
]


@pytest.mark.parametrize(("name", "kwargs", "exc", "match"), BAD, ids=[str(b[:2]) for b in BAD])
def test_bad_hyperparameters(name, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        OPTIMIZERS[name](**kwargs)
    with pytest.raises(exc, match=match):
        get_optimizer(name, **kwargs)


def test_bad_hyperparameter_message_shape():
    msg = "The 'momentum' parameter of sgd must be a float in the range [0, inf). Got -0.1 instead."
    with pytest.raises(ValueError, match=re.escape(msg)):
        optim.sgd(momentum=-0.1)


def test_factories_are_keyword_only():
    with pytest.raises(TypeError):
        optim.adam((0.9, 0.999))


@pytest.mark.parametrize(
    "kwargs", [{"nesterov": True}, {"nesterov": True, "momentum": 0.9, "dampening": 0.1}]
)
def test_nesterov_requires_momentum_and_no_dampening(kwargs):
    with pytest.raises(ValueError, match="'nesterov' parameter of sgd requires momentum > 0"):
        optim.sgd(**kwargs)


def test_update_checks_lr_and_shapes():
    opt = optim.adam()
    state = opt.init(W0)
    with pytest.raises(ValueError, match=r"'lr' parameter of adam\.update"):
        opt.update(GRADS[0], W0, state, -0.1)
    with pytest.raises(TypeError, match=r"'lr' parameter of adam\.update"):
        opt.update(GRADS[0], W0, state, "0.1")
    with pytest.raises(ValueError, match=r"'g' parameter of adam\.update"):
        opt.update(GRADS[0][:, :2], W0, state, 0.1)
    with pytest.raises(ValueError, match=r"'w' parameter of sgd\.init"):
        optim.sgd().init(np.zeros(3))
    opt.update(GRADS[0], W0, state, 0.0)  # lr = 0 is allowed, as in torch


# ---- behaviour worth its own test --------------------------------------------------------------
def test_adam_first_step_is_lr_per_coordinate():
    g = np.array([[1.0, -3.0, 1e-3], [1e-8, -1e-6, 250.0]])
    w = np.zeros_like(g)
    eps, lr = 1e-8, 0.01
    opt = optim.adam()
    new_w, _ = opt.update(g, w, opt.init(w), lr)
    np.testing.assert_allclose(np.abs(new_w - w), lr * np.abs(g) / (np.abs(g) + eps), rtol=1e-12)
    assert np.all(np.sign(new_w - w) == -np.sign(g))
    # |g| >> eps: the first step is lr whatever the scale of the gradient.
    big = np.abs(g) >= 0.5
    np.testing.assert_allclose(np.abs(new_w - w)[big], lr, rtol=1e-7)


@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.9, 0.9), (0.99, 0.999), (0.0, 0.5)])
def test_adam_first_step_without_bias_correction(betas):
    b1, b2 = betas
    g = np.array([[1.0, -3.0, 1e-3], [0.5, -2.0, 250.0]])
    w = np.zeros_like(g)
    eps, lr = 1e-8, 0.01
    opt = optim.adam(betas=betas, bias_correction=False)
    new_w, _ = opt.update(g, w, opt.init(w), lr)
    expected = lr * (1 - b1) * np.abs(g) / (math.sqrt(1 - b2) * np.abs(g) + eps)
    np.testing.assert_allclose(np.abs(new_w - w), expected, rtol=1e-12)
    # Without the correction the first step is lr * (1 - b1) / sqrt(1 - b2), not lr: about
    # 3.16 lr with the default betas (too large), 0.32 lr with betas = (0.9, 0.9) (too small).
    ratio = (1 - b1) / math.sqrt(1 - b2)
    big = np.abs(g) >= 0.5
    np.testing.assert_allclose(np.abs(new_w - w)[big] / lr, ratio, rtol=1e-6)
    assert abs(ratio - 1.0) > 0.25


def test_adam_bias_correction_is_per_replicate_step():
    # Replicates at different counts get different corrections (the count is per replicate).
    opt = optim.adam()
    state = opt.init(W0)._replace(count=np.array([0, 9], dtype=np.int64))
    g = np.ones_like(W0)
    new_w, new_state = opt.update(g, W0, state, 0.1)
    np.testing.assert_array_equal(new_state.count, [1, 10])
    step = W0 - new_w
    np.testing.assert_allclose(step[0], 0.1, rtol=1e-6)  # t = 1: exactly corrected
    b1, b2 = 0.9, 0.999
    expected = 0.1 / (1 - b1**10) * 0.1 / (math.sqrt(0.001) / math.sqrt(1 - b2**10) + 1e-8)
    np.testing.assert_allclose(step[1], expected, rtol=1e-12)


def test_rprop_ignores_lr_after_first_step():
    opt = optim.rprop()
    traj, _ = run(opt)
    other_lrs = [LRS[0], 1000.0, 0.0, 3.0, 1e-9]
    traj_other, _ = run(opt, lrs=other_lrs)
    np.testing.assert_array_equal(traj, traj_other)
    traj_first, _ = run(opt, lrs=[0.5] + LRS[1:])
    assert not np.allclose(traj, traj_first)


def test_sgd_first_momentum_step_is_not_dampened():
    opt = optim.sgd(momentum=0.9, dampening=0.5)
    g = np.ones_like(W0)
    new_w, state = opt.update(g, W0, opt.init(W0), 0.1)
    np.testing.assert_allclose(state.momentum_buffer, g)
    np.testing.assert_allclose(W0 - new_w, 0.1)
    _, state = opt.update(g, new_w, state, 0.1)
    np.testing.assert_allclose(state.momentum_buffer, 0.9 + 0.5)


@settings(max_examples=60, deadline=None)
@given(
    signs=st.lists(
        st.lists(st.sampled_from([-1.0, 0.0, 1.0]), min_size=6, max_size=6),
        min_size=3,
        max_size=8,
    ),
    scale=st.floats(1e-3, 1e3),
)
def test_rprop_sign_cases_match_reference(signs, scale):
    grads = scale * np.array(signs).reshape(len(signs), 2, 3)
    lrs = [0.1] * len(signs)
    opt = optim.rprop(step_sizes=(0.02, 0.3))
    traj, _ = run(opt, grads=grads, lrs=lrs)
    expected = reference(ref_rprop, grads=grads, lrs=lrs, step_sizes=(0.02, 0.3))
    np.testing.assert_allclose(traj, expected, rtol=1e-13, atol=1e-15)


# ---- rules: one definition, hyper-parameters by name -------------------------------------------
@rule(state=("avg",), hyperparams=("beta", "start", "wd"), initial={"avg": "start"})
def averaged(g, w, t, lr, avg, beta, wd):
    """A toy rule: avg = beta avg + (1 - beta) g, except g at t = 1 when beta > 0.5."""
    a = select(t == 1, g, beta * avg + (1.0 - beta) * g) if beta > 0.5 else beta * avg + g
    return w - lr * (a + wd * w), a


def test_a_rule_runs_on_arrays_with_each_replicates_step_number():
    opt = averaged.optimizer("averaged", {"beta": 0.9, "start": 0.25, "wd": 0.0})
    state = opt.init(W0)
    assert type(state).__name__ == "AveragedState" and state._fields == ("count", "avg")
    np.testing.assert_array_equal(state.avg, np.full_like(W0, 0.25))  # initial from "start"
    state = state._replace(count=np.array([0, 4]))
    g = np.ones_like(W0)
    new_w, new_state = opt.update(g, W0, state, 0.1)
    np.testing.assert_array_equal(new_state.count, [1, 5])
    np.testing.assert_allclose(new_state.avg[0], 1.0)  # t = 1: the gradient itself
    np.testing.assert_allclose(new_state.avg[1], 0.9 * 0.25 + 0.1)
    np.testing.assert_allclose(new_w, W0 - 0.1 * new_state.avg)


def test_builtin_rules_declare_what_they_consume():
    for name in ("sgd", "adagrad", "rmsprop", "adam", "amsgrad", "rprop"):
        opt = get_optimizer(name)
        assert isinstance(opt.update.rule, Rule) and opt.update.rule.name == name
        shown = set(opt.update.rule.hyperparams) | set(opt.update.selected)
        assert set(opt.hyperparams) <= shown
    # "adam" shows amsgrad, which chose its rule: AMSGrad's keeps the third buffer, Adam's not
    for flag, rule_name, fields in [(False, "adam", ("count", "exp_avg", "exp_avg_sq")),
                                    (True, "amsgrad", ("count", "exp_avg", "exp_avg_sq",
                                                       "max_exp_avg_sq"))]:  # fmt: skip
        opt = optim.adam(amsgrad=flag)
        assert opt.update.rule.name == rule_name and opt.update.selected == {"amsgrad": flag}
        assert opt.hyperparams["amsgrad"] is flag and "amsgrad" not in opt.update.params
        assert opt.init(W0)._fields == fields
        assert get_optimizer("adam", **opt.hyperparams).update.rule is opt.update.rule
    # "nesterov" fixes two of the SGD rule's hyper-parameters and shows the others
    assert optim.nesterov().update.params == {
        "momentum": 0.9, "dampening": 0.0, "nesterov": True, "weight_decay": 0.0
    }  # fmt: skip


def test_a_hyperparameter_the_rule_does_not_declare_is_an_error():
    msg = (
        "The hyper-parameter 'gamma' of optimizer 'averaged' is not one that its rule "
        "'averaged' consumes; the rule takes 'beta', 'start', 'wd'."
    )
    with pytest.raises(ValueError, match=re.escape(msg)):
        averaged.optimizer("averaged", {"beta": 0.9, "start": 0.0, "wd": 0.0, "gamma": 1.0})
    with pytest.raises(ValueError, match="does not set hyper-parameter 'wd'.*takes 'beta'"):
        averaged.optimizer("averaged", {"beta": 0.9, "start": 0.0})
    with pytest.raises(ValueError, match="'wd' of optimizer 'averaged' is both given and fixed"):
        averaged.optimizer("averaged", {"beta": 0.9, "start": 0.0, "wd": 0}, fixed={"wd": 1.0})
    with pytest.raises(TypeError, match="'beta' of optimizer 'averaged' must be a float or a"):
        averaged.optimizer("averaged", {"beta": "0.9", "start": 0.0, "wd": 0.0})
    # selected_by names shown hyper-parameters that the rule does not take
    opt = averaged.optimizer(
        "averaged", {"beta": 0.9, "start": 0.0, "wd": 0.0, "fancy": True}, selected_by=("fancy",)
    )
    assert opt.hyperparams["fancy"] is True and "fancy" not in opt.update.params
    for hp, selected in [({"beta": 0.9, "start": 0.0, "wd": 0.0}, ("fancy",)),
                         ({"beta": 0.9, "start": 0.0, "wd": 0.0}, ("beta",))]:  # fmt: skip
        with pytest.raises(ValueError, match="'selected_by' entry '(fancy|beta)' of optimizer"):
            averaged.optimizer("averaged", hp, selected_by=selected)


def _step(g, w, t, lr, m, beta):
    return w - lr * m, beta * m + g


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"state": ("m",), "hyperparams": ("beta", "unused")}, "'unused' of rule '_step' is read"),
        ({"state": ("x",), "hyperparams": ("beta",)}, "must take \\(g, w, t, <factors>, x,"),
        ({"state": ("m",), "hyperparams": ()}, "with hyper-parameters among \\(\\)"),
        ({"state": ("m",), "hyperparams": ("m",)}, "must have distinct names"),
        ({"state": ("count",), "hyperparams": ("beta",)}, "identifiers other than"),
        ({"state": ("m",), "hyperparams": ("beta",), "initial": {"m": "zero"}}, "'initial'"),
        (
            {"state": ("m",), "hyperparams": ("beta",), "step_factors": lambda t, x: (x,)},
            "step_factors of rule '_step' must take \\(t, lr",
        ),
    ],
)
def test_bad_rule_definitions(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Rule(_step, **kwargs)


def test_an_update_returning_the_wrong_values_is_an_error():
    bad = Rule(lambda g, w, t, lr, m: (w - lr * g,), state=("m",), name="forgets_m")
    opt = bad.optimizer("forgets_m", {})
    with pytest.raises(ValueError, match="rule 'forgets_m' must return a tuple \\(new_w, m\\)"):
        opt.update(GRADS[0], W0, opt.init(W0), 0.1)


# ---- optional cross-check against torch.optim (skipped unless torch is importable) -------------
_TORCH = {
    "sgd": ("SGD", {}),
    "momentum": ("SGD", {"momentum": 0.9}),
    "nesterov": ("SGD", {"momentum": 0.9, "nesterov": True}),
    "adagrad": ("Adagrad", {}),
    "rmsprop": ("RMSprop", {}),
    "adam": ("Adam", {}),
    "amsgrad": ("Adam", {"amsgrad": True}),
    "rprop": ("Rprop", {}),
}


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [(n, kw) for n, kw, _, _ in CASES if kw.get("bias_correction", True)],
    ids=[i for i, c in zip(CASE_IDS, CASES) if c[1].get("bias_correction", True)],
)
def test_matches_torch(name, kwargs):
    torch = pytest.importorskip("torch")
    cls_name, base = _TORCH[name]
    p = torch.tensor(W0.copy(), dtype=torch.float64, requires_grad=True)
    opt_t = getattr(torch.optim, cls_name)([p], lr=LRS[0], **{**base, **kwargs})
    expected = []
    for g, lr in zip(GRADS, LRS):
        for group in opt_t.param_groups:
            group["lr"] = lr
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt_t.step()
        expected.append(p.detach().numpy().copy())
    traj, _ = run(get_optimizer(name, **kwargs))
    np.testing.assert_allclose(traj, np.array(expected), rtol=1e-10, atol=1e-12)
