"""Property-based tests (hypothesis) of schedules and optimizers over their valid parameters,
and of the errors raised for invalid ones."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from convstudy import schedules as sch
from convstudy.engine import simulate
from convstudy.optim import OPTIMIZERS, get_optimizer
from convstudy.problems import get_problem

SETTINGS = settings(
    deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow], database=None
)
K_MAX = 10_000_000
TINY = 1e-300  # exact step sizes above this must come out > 0 (no underflow to 0)


def floats(low, high, **kw):
    return st.floats(low, high, allow_nan=False, allow_infinity=False, allow_subnormal=False, **kw)


# ---- schedules ---------------------------------------------------------------------------------
eta0s = floats(1e-8, 1e3)


@st.composite
def schedules(draw):
    """(schedule, log of its exact step size as a function of k) over valid parameters."""
    kind = draw(
        st.sampled_from(
            ["constant", "inverse_time", "inverse_sqrt", "polynomial", "step", "exponential"]
            + ["cosine", "warmup"]
        )
    )
    eta0 = draw(eta0s)
    if kind == "constant":
        return sch.constant(eta0), lambda k: math.log(eta0)
    if kind in ("inverse_time", "inverse_sqrt", "polynomial"):
        k0 = draw(floats(1e-3, 1e6))
        power = {"inverse_time": 1.0, "inverse_sqrt": 0.5}.get(kind) or draw(floats(0.01, 3.0))
        schedule = (
            sch.polynomial(eta0, power, k0)
            if kind == "polynomial"
            else getattr(sch, kind)(eta0, k0)
        )
        return schedule, lambda k: math.log(eta0) - power * math.log1p(k / k0)
    if kind == "step":
        step_size = draw(st.integers(1, 10**6))
        gamma = draw(floats(1e-3, 1.0, exclude_max=True))
        return (
            sch.step_decay(eta0, step_size, gamma),
            lambda k: math.log(eta0) + (k // step_size) * math.log(gamma),
        )
    if kind == "exponential":
        gamma = draw(floats(1e-3, 1.0, exclude_max=True))
        return sch.exponential(eta0, gamma), lambda k: math.log(eta0) + k * math.log(gamma)
    if kind == "cosine":
        total = draw(st.integers(1, K_MAX))
        eta_min = draw(st.one_of(st.just(0.0), floats(0.0, eta0, exclude_max=True)))

        def log_cosine(k):
            value = eta_min + (eta0 - eta_min) * 0.5 * (
                1 + math.cos(math.pi * min(k, total) / total)
            )
            return math.log(value) if value > 0 else -math.inf

        return sch.cosine(eta0, total, eta_min), log_cosine
    base, log_base = draw(schedules().filter(lambda s: s[0].name != "warmup"))
    steps = draw(st.integers(1, 10**6))
    return (
        sch.warmup(base, steps),
        lambda k: log_base(k) + math.log(min(1.0, (k + 1) / steps)),
    )


steps_k = st.lists(st.integers(0, K_MAX), min_size=1, max_size=20).map(
    lambda ks: np.array(sorted({0, 1, K_MAX, *ks}))
)


@SETTINGS
@given(schedules(), steps_k)
def test_schedules_are_finite_non_negative_and_positive_unless_underflow(drawn, ks):
    schedule, log_exact = drawn
    eta = schedule(ks)
    assert eta.shape == ks.shape and np.all(np.isfinite(eta)) and np.all(eta >= 0)
    for k, value in zip(ks.tolist(), eta.tolist()):
        exact = log_exact(k)
        if exact > math.log(TINY):
            assert value > 0, f"{schedule.label()} at k={k}"
            assert math.isclose(math.log(value), exact, rel_tol=1e-9, abs_tol=1e-9)


@SETTINGS
@given(schedules(), steps_k)
def test_schedule_values_do_not_depend_on_the_other_ks_asked(drawn, ks):
    schedule, _ = drawn
    together = schedule(ks)
    apart = np.array([schedule(np.array([k]))[0] for k in ks])
    assert np.array_equal(together, apart)
    assert isinstance(schedule.robbins_monro, bool)


@SETTINGS
@given(schedules())
def test_decaying_schedules_never_increase(drawn):
    schedule, _ = drawn
    if schedule.name == "warmup":
        return
    eta = schedule(np.unique(np.geomspace(1, K_MAX, 200).astype(np.int64)))
    assert np.all(np.diff(eta) <= 0)


@pytest.mark.parametrize(
    "schedule",
    [
        sch.cosine(0.1, total_steps=10),  # reaches eta_min = 0 at k = 10
        sch.exponential(0.1, gamma=0.5),  # 0.1 * 0.5**k underflows to 0 near k = 1080
        sch.step_decay(0.1, step_size=1, gamma=0.01),
    ],
    ids=lambda s: s.label(),
)
def test_simulate_accepts_every_schedule_the_library_builds(schedule):
    """A schedule that legitimately reaches 0 (cosine to eta_min = 0) or underflows must not
    stop a run: a zero step is a step that does not move."""
    problem = get_problem("quadratic", dim=2, n_samples=20)
    frame = simulate(problem, "sgd", schedule, n_steps=1200, n_replicates=2, batch_size=5)
    assert not frame["diverged"].any()


# ---- optimizers --------------------------------------------------------------------------------
unit = floats(0.0, 0.99)
decay = floats(0.0, 1.0)
eps = floats(1e-12, 1.0)
beta = floats(0.0, 0.999999)


@st.composite
def optimizer_params(draw):
    """An optimizer name and valid hyper-parameters (momentum-like factors < 1, bounded decay)."""
    name = draw(st.sampled_from(sorted(OPTIMIZERS)))
    wd = draw(st.one_of(st.just(0.0), decay))
    if name == "sgd":
        mu = draw(unit)
        nesterov = mu > 0 and draw(st.booleans())
        damp = 0.0 if nesterov else draw(floats(0.0, 1.0))
        hp = {"momentum": mu, "dampening": damp, "nesterov": nesterov, "weight_decay": wd}
    elif name == "momentum":
        hp = {"momentum": draw(unit), "dampening": draw(floats(0.0, 1.0)), "weight_decay": wd}
    elif name == "nesterov":
        hp = {"momentum": draw(floats(1e-3, 0.99)), "weight_decay": wd}
    elif name == "adagrad":
        hp = {
            "lr_decay": draw(floats(0.0, 10.0)),
            "initial_accumulator_value": draw(floats(0.0, 10.0)),
            "eps": draw(eps),
            "weight_decay": wd,
        }
    elif name == "rmsprop":
        hp = {
            "alpha": draw(beta),
            "eps": draw(eps),
            "momentum": draw(unit),
            "centered": draw(st.booleans()),
            "weight_decay": wd,
        }
    elif name in ("adam", "amsgrad"):
        hp = {
            "betas": (draw(beta), draw(beta)),
            "eps": draw(eps),
            "weight_decay": wd,
            "bias_correction": draw(st.booleans()),
        }
        if name == "adam":
            hp["amsgrad"] = draw(st.booleans())
    else:
        low = draw(floats(1e-8, 1e-2))
        hp = {
            "etas": (draw(floats(0.01, 0.99)), draw(floats(1.01, 5.0))),
            "step_sizes": (low, draw(floats(low, 1e3))),
        }
    return name, hp


@st.composite
def trajectories(draw):
    """Starting point (R, d), a few bounded gradients (R, d) and learning rates in (0, 1]."""
    r, d, n = draw(st.integers(1, 4)), draw(st.integers(1, 5)), draw(st.integers(1, 8))
    values = floats(-1e3, 1e3)
    w0 = draw(hnp.arrays(np.float64, (r, d), elements=values))
    grads = draw(st.lists(hnp.arrays(np.float64, (r, d), elements=values), min_size=n, max_size=n))
    lrs = draw(st.lists(floats(0.0, 1.0, exclude_min=True), min_size=n, max_size=n))
    return w0, grads, lrs


def run(optimizer, w, grads, lrs):
    state = optimizer.init(w)
    for g, lr in zip(grads, lrs):
        w_before, g_before, state_before = w.copy(), g.copy(), [s.copy() for s in state]
        new_w, new_state = optimizer.update(g, w, state, lr)
        # pure: inputs untouched
        assert np.array_equal(w, w_before) and np.array_equal(g, g_before)
        assert all(np.array_equal(a, b) for a, b in zip(state, state_before))
        w, state = new_w, new_state
    return w, state


@SETTINGS
@given(optimizer_params(), trajectories())
def test_optimizers_preserve_shapes_and_stay_finite(params, traj):
    name, hp = params
    w0, grads, lrs = traj
    optimizer = get_optimizer(name, **hp)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow is fine
        w, state = run(optimizer, w0, grads, lrs)
    assert w.shape == w0.shape and w.dtype == np.float64
    for field, value in zip(type(state)._fields, state):
        assert value.shape in {w0.shape, w0.shape[:1]}, field
        assert np.all(np.isfinite(value)), f"{name} {hp}: state {field} not finite"
    assert np.all(np.isfinite(w))
    assert np.array_equal(state.count, np.full(w0.shape[0], len(grads)))


@SETTINGS
@given(optimizer_params(), trajectories())
def test_optimizer_rows_are_independent(params, traj):
    """Row r of the result depends only on row r: updating replicates apart gives the same bits."""
    name, hp = params
    w0, grads, lrs = traj
    optimizer = get_optimizer(name, **hp)
    together, _ = run(optimizer, w0, grads, lrs)
    for r in range(w0.shape[0]):
        alone, _ = run(optimizer, w0[r : r + 1], [g[r : r + 1] for g in grads], lrs)
        assert np.array_equal(alone[0], together[r])


# ---- invalid parameters ------------------------------------------------------------------------
BAD_NUMBERS = [-1.0, float("nan"), float("inf"), "0.1", None, True]

INVALID_OPTIMIZER = [
    ("sgd", {"momentum": -0.1}, "momentum"),
    ("sgd", {"dampening": 1.5}, "dampening"),
    ("sgd", {"nesterov": True}, "nesterov"),
    ("sgd", {"weight_decay": -1.0}, "weight_decay"),
    ("nesterov", {"momentum": 0.0}, "momentum"),
    ("adagrad", {"eps": 0.0}, "eps"),
    ("adagrad", {"lr_decay": -1.0}, "lr_decay"),
    ("adagrad", {"initial_accumulator_value": -1.0}, "initial_accumulator_value"),
    ("rmsprop", {"alpha": 1.0}, "alpha"),
    ("rmsprop", {"centered": "yes"}, "centered"),
    ("adam", {"betas": (1.0, 0.999)}, "betas[0]"),
    ("adam", {"betas": (0.9, -0.1)}, "betas[1]"),
    ("adam", {"betas": 0.9}, "betas"),
    ("adam", {"betas": (0.9, 0.99, 0.999)}, "betas"),
    ("adam", {"eps": -1e-8}, "eps"),
    ("adam", {"amsgrad": 1}, "amsgrad"),
    ("amsgrad", {"bias_correction": "no"}, "bias_correction"),
    ("rprop", {"etas": (1.5, 1.2)}, "etas[0]"),
    ("rprop", {"etas": (0.5, 0.9)}, "etas[1]"),
    ("rprop", {"step_sizes": (0.0, 50.0)}, "step_sizes[0]"),
    ("rprop", {"step_sizes": (1.0, 0.5)}, "step_sizes[1]"),
    ("adam", {"lr": 0.1}, "lr"),  # lr is passed per step, not to the factory
]


@pytest.mark.parametrize(("name", "hp", "param"), INVALID_OPTIMIZER)
def test_invalid_optimizer_parameter_is_named(name, hp, param):
    with pytest.raises((ValueError, TypeError)) as info:
        get_optimizer(name, **hp)
    assert repr(param) in str(info.value) or param in str(info.value)
    assert "\n" not in str(info.value)


@SETTINGS
@given(
    st.sampled_from(
        [
            ("sgd", "momentum"),
            ("sgd", "weight_decay"),
            ("momentum", "momentum"),
            ("nesterov", "momentum"),
            ("adagrad", "eps"),
            ("adagrad", "lr_decay"),
            ("rmsprop", "alpha"),
            ("rmsprop", "eps"),
            ("adam", "eps"),
            ("amsgrad", "weight_decay"),
        ]
    ),
    st.one_of(st.sampled_from(BAD_NUMBERS), st.floats(max_value=-1e-12)),
)
def test_non_numbers_and_negatives_are_refused_with_the_name(target, value):
    name, param = target
    with pytest.raises((ValueError, TypeError), match=f"'{param}'"):
        get_optimizer(name, **{param: value})


def test_unknown_optimizer_lists_the_choices():
    with pytest.raises(ValueError, match="'optimizer'.*'adam'.*Got 'adamw'"):
        get_optimizer("adamw")


@pytest.mark.parametrize("lr", [-0.1, float("nan"), float("inf"), "0.1"])
def test_update_refuses_a_bad_learning_rate(lr):
    optimizer = get_optimizer("adam")
    w = np.zeros((2, 3))
    with pytest.raises((ValueError, TypeError), match="'lr'"):
        optimizer.update(np.ones((2, 3)), w, optimizer.init(w), lr)


def test_update_refuses_a_gradient_of_the_wrong_shape():
    optimizer = get_optimizer("sgd")
    w = np.zeros((2, 3))
    with pytest.raises(ValueError, match="'g'.*shape"):
        optimizer.update(np.ones((2, 4)), w, optimizer.init(w), 0.1)


INVALID_SCHEDULE = [
    (lambda v: sch.constant(v), "eta0", [0.0, *BAD_NUMBERS]),
    (lambda v: sch.inverse_time(0.1, k0=v), "k0", [0.0, *BAD_NUMBERS]),
    (lambda v: sch.polynomial(0.1, power=v), "power", [0.0, *BAD_NUMBERS]),
    (lambda v: sch.step_decay(0.1, step_size=v), "step_size", [0, 2.5, -3, None]),
    (lambda v: sch.step_decay(0.1, gamma=v), "gamma", [0.0, 1.5, *BAD_NUMBERS]),
    (lambda v: sch.exponential(0.1, gamma=v), "gamma", [0.0, 1.0, *BAD_NUMBERS]),
    (lambda v: sch.cosine(0.1, total_steps=v), "total_steps", [0, 10.0, None]),
    (lambda v: sch.cosine(0.1, eta_min=v), "eta_min", [-0.1, 0.2, float("nan")]),
    (lambda v: sch.warmup(sch.constant(0.1), v), "warmup_steps", [0, 1.5, None]),
    (lambda v: sch.warmup(v, 10), "base", [0.1, "constant", None]),
    (lambda v: sch.get_schedule(v, eta0=0.1), "schedule", ["linear", None, 3]),
]


@pytest.mark.parametrize(
    ("make", "param", "value"),
    [(make, param, value) for make, param, values in INVALID_SCHEDULE for value in values],
    ids=lambda x: repr(x) if not callable(x) else "",
)
def test_invalid_schedule_parameter_is_named(make, param, value):
    with pytest.raises((ValueError, TypeError), match=f"'{param}'"):
        make(value)


def test_schedule_refuses_negative_k():
    with pytest.raises(ValueError, match=">= 0"):
        sch.constant(0.1)(np.array([0, -1]))
