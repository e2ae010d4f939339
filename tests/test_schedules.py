import numpy as np
import pytest

from convstudy import schedules as S


def test_values_follow_their_formulas():
    k = np.arange(6.0)
    np.testing.assert_allclose(S.constant(0.3)(k), 0.3)
    np.testing.assert_allclose(S.inverse_time(0.5, 10)(k), 0.5 / (1 + k / 10))
    np.testing.assert_allclose(S.inverse_sqrt(0.5, 2)(k), 0.5 / np.sqrt(1 + k / 2))
    np.testing.assert_allclose(S.polynomial(1.0, 0.75, 3)(k), (1 + k / 3) ** -0.75)
    np.testing.assert_allclose(S.step_decay(1.0, 2, 0.5)(k), [1, 1, 0.5, 0.5, 0.25, 0.25])
    np.testing.assert_allclose(S.exponential(2.0, 0.9)(k), 2.0 * 0.9**k)
    cos = S.cosine(1.0, total_steps=4, eta_min=0.2)(np.arange(7.0))
    np.testing.assert_allclose(cos[[0, 2, 4, 5, 6]], [1.0, 0.6, 0.2, 0.2, 0.2])


def test_first_update_uses_eta0():
    for sched in (
        S.constant(0.1),
        S.inverse_time(0.1),
        S.inverse_sqrt(0.1),
        S.cosine(0.1),
        S.exponential(0.1),
        S.step_decay(0.1),
    ):
        assert sched(0) == pytest.approx(0.1)


def test_warmup_is_linear_then_base():
    base = S.inverse_time(1.0, 100)
    w = S.warmup(base, 4)
    k = np.arange(8.0)
    np.testing.assert_allclose(w(k), base(k) * np.minimum(1, (k + 1) / 4))
    assert w.robbins_monro == base.robbins_monro


@pytest.mark.parametrize(
    "schedule, expected",
    [
        (S.constant(0.1), False),
        (S.inverse_time(0.1), True),
        (S.inverse_sqrt(0.1), False),
        (S.polynomial(0.1, 0.6), True),
        (S.polynomial(0.1, 1.0), True),
        (S.polynomial(0.1, 0.5), False),
        (S.polynomial(0.1, 1.5), False),
        (S.step_decay(0.1), False),
        (S.exponential(0.1), False),
        (S.cosine(0.1), False),
    ],
)
def test_robbins_monro_verdicts(schedule, expected):
    assert schedule.robbins_monro is expected


def test_robbins_monro_verdict_matches_partial_sums():
    """sum eta grows without bound and sum eta^2 levels off exactly for 1/k-type schedules."""
    k = np.arange(10**6, dtype=float)
    for sched in (S.inverse_time(1.0), S.inverse_sqrt(1.0), S.exponential(1.0, 0.99)):
        eta = sched(k)
        s1_half, s1 = eta[: k.size // 2].sum(), eta.sum()
        s2_half, s2 = (eta[: k.size // 2] ** 2).sum(), (eta**2).sum()
        sum_diverges = s1 - s1_half > 0.3  # doubling k still adds a fixed amount (log k growth)
        sq_converges = s2 - s2_half < 1e-5 * s2  # the second half adds next to nothing
        assert (sum_diverges and sq_converges) == sched.robbins_monro, sched.label()


@pytest.mark.parametrize(
    "factory, kwargs, name",
    [
        (S.constant, {"eta0": 0.0}, "eta0"),
        (S.constant, {"eta0": -1.0}, "eta0"),
        (S.constant, {"eta0": float("nan")}, "eta0"),
        (S.inverse_time, {"eta0": 0.1, "k0": 0}, "k0"),
        (S.step_decay, {"eta0": 0.1, "gamma": 1.5}, "gamma"),
        (S.step_decay, {"eta0": 0.1, "step_size": 0}, "step_size"),
        (S.cosine, {"eta0": 0.1, "eta_min": 0.2}, "eta_min"),
        (S.polynomial, {"eta0": 0.1, "power": -1.0}, "power"),
    ],
)
def test_bad_parameters_name_the_parameter(factory, kwargs, name):
    with pytest.raises(ValueError, match=f"'{name}' parameter of"):
        factory(**kwargs)


def test_get_schedule_by_name_and_unknown_name():
    assert S.get_schedule("inverse_time", eta0=0.2, k0=5)(5) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="'schedule' parameter of get_schedule must be one of"):
        S.get_schedule("linear_decay", eta0=0.1)
    with pytest.raises(TypeError, match="warmup"):
        S.warmup(0.1, 10)


def test_negative_step_counter_is_rejected():
    with pytest.raises(ValueError, match=">= 0"):
        S.constant(0.1)(-1)
