"""Step-size schedules eta_k.

A schedule is a small frozen object that maps the update counter to a step size. Convention:
k counts the updates already made, so the first update uses eta_0 (optax counts the same way;
torch's LR schedulers also start at epoch 0). Schedules are vectorised: ``schedule(np.arange(K))``
gives the first K step sizes.

Each schedule states whether it satisfies the Robbins-Monro conditions (Robbins & Monro 1951)
sum_k eta_k = inf and sum_k eta_k^2 < inf, under which SGD converges on strongly convex problems
with a shrinking step (Bottou, Curtis & Nocedal 2018, Thm 4.7).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from ._validation import check_scalar
from .registry import Registry

__all__ = [
    "Schedule",
    "constant",
    "inverse_time",
    "inverse_sqrt",
    "polynomial",
    "step_decay",
    "exponential",
    "cosine",
    "warmup",
    "SCHEDULES",
    "register_schedule",
    "get_schedule",
]


@dataclass(frozen=True)
class Schedule:
    """Base class: ``eta(k)`` for k = 0, 1, 2, ... and the Robbins-Monro verdict."""

    eta0: float

    name = "schedule"

    def __call__(self, k) -> np.ndarray:
        k = np.asarray(k, dtype=float)
        if np.any(k < 0):
            raise ValueError(f"Step counters passed to schedule {self.name!r} must be >= 0.")
        return self._eta(k)

    def _eta(self, k: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @property
    def robbins_monro(self) -> bool:
        """True when sum eta_k = inf and sum eta_k^2 < inf."""
        raise NotImplementedError

    def params(self) -> dict:
        """The schedule's name and parameters (recorded with every run)."""
        return {"schedule": self.name, **asdict(self)}

    def label(self) -> str:
        inner = ", ".join(
            f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in asdict(self).items()
            if not isinstance(v, Schedule)
        )
        return f"{self.name}({inner})"


def _eta0(eta0, owner):
    return check_scalar(eta0, "eta0", owner, low=0.0)


@dataclass(frozen=True)
class _Constant(Schedule):
    name = "constant"

    def _eta(self, k):
        return np.full_like(k, self.eta0)

    @property
    def robbins_monro(self):
        return False  # sum eta^2 diverges


@dataclass(frozen=True)
class _Polynomial(Schedule):
    """eta_k = eta0 / (1 + k/k0)^power."""

    k0: float = 1.0
    power: float = 1.0
    name = "polynomial"

    def _eta(self, k):
        return self.eta0 * (1.0 + k / self.k0) ** (-self.power)

    @property
    def robbins_monro(self):
        return 0.5 < self.power <= 1.0


@dataclass(frozen=True)
class _InverseTime(_Polynomial):
    name = "inverse_time"


@dataclass(frozen=True)
class _InverseSqrt(_Polynomial):
    name = "inverse_sqrt"


@dataclass(frozen=True)
class _StepDecay(Schedule):
    """eta_k = eta0 * gamma^floor(k / step_size)."""

    step_size: int = 100
    gamma: float = 0.1
    name = "step"

    def _eta(self, k):
        return self.eta0 * self.gamma ** np.floor(k / self.step_size)

    @property
    def robbins_monro(self):
        return False  # geometric decay: sum eta converges


@dataclass(frozen=True)
class _Exponential(Schedule):
    """eta_k = eta0 * gamma^k."""

    gamma: float = 0.999
    name = "exponential"

    def _eta(self, k):
        return self.eta0 * self.gamma**k

    @property
    def robbins_monro(self):
        return False  # geometric decay: sum eta converges


@dataclass(frozen=True)
class _Cosine(Schedule):
    """eta_k = eta_min + (eta0 - eta_min) (1 + cos(pi k / T)) / 2 for k <= T, then eta_min."""

    total_steps: int = 1000
    eta_min: float = 0.0
    name = "cosine"

    def _eta(self, k):
        frac = np.minimum(k, self.total_steps) / self.total_steps
        return self.eta_min + (self.eta0 - self.eta_min) * 0.5 * (1.0 + np.cos(math.pi * frac))

    @property
    def robbins_monro(self):
        return False  # eta_min > 0: sum eta^2 diverges; eta_min = 0: sum eta is finite


@dataclass(frozen=True)
class _Warmup(Schedule):
    """eta_k = base(k) * min(1, (k + 1) / warmup_steps): linear warm-up, then the base schedule."""

    base: Schedule = None  # type: ignore[assignment]
    warmup_steps: int = 100
    name = "warmup"

    def _eta(self, k):
        return self.base(k) * np.minimum(1.0, (k + 1.0) / self.warmup_steps)

    @property
    def robbins_monro(self):
        return self.base.robbins_monro  # a finite prefix changes neither sum's convergence

    def params(self):
        return {
            "schedule": f"warmup+{self.base.name}",
            "warmup_steps": self.warmup_steps,
            **{k: v for k, v in self.base.params().items() if k != "schedule"},
        }

    def label(self):
        return f"warmup({self.warmup_steps})+{self.base.label()}"


def constant(eta0: float) -> Schedule:
    """eta_k = eta0. Not Robbins-Monro: SGD stalls at a noise floor proportional to eta0."""
    return _Constant(_eta0(eta0, "constant"))


def inverse_time(eta0: float, k0: float = 1.0) -> Schedule:
    """eta_k = eta0 / (1 + k/k0). Robbins-Monro. With eta0 = 1/(mu k0) this is the
    eta_k = 1/(mu (k + k0)) schedule of Bottou, Curtis & Nocedal (2018), Thm 4.7."""
    return _InverseTime(
        _eta0(eta0, "inverse_time"), check_scalar(k0, "k0", "inverse_time", low=0.0), 1.0
    )


def inverse_sqrt(eta0: float, k0: float = 1.0) -> Schedule:
    """eta_k = eta0 / sqrt(1 + k/k0). Not Robbins-Monro (sum eta^2 diverges like log k), but
    the standard step for convex and nonconvex SGD (Nemirovski et al. 2009; Ghadimi & Lan 2013)."""
    return _InverseSqrt(
        _eta0(eta0, "inverse_sqrt"), check_scalar(k0, "k0", "inverse_sqrt", low=0.0), 0.5
    )


def polynomial(eta0: float, power: float, k0: float = 1.0) -> Schedule:
    """eta_k = eta0 / (1 + k/k0)^power; Robbins-Monro exactly when 1/2 < power <= 1."""
    return _Polynomial(
        _eta0(eta0, "polynomial"),
        check_scalar(k0, "k0", "polynomial", low=0.0),
        check_scalar(power, "power", "polynomial", low=0.0),
    )


def step_decay(eta0: float, step_size: int = 100, gamma: float = 0.1) -> Schedule:
    """eta_k = eta0 * gamma^floor(k / step_size) (torch's StepLR). Not Robbins-Monro."""
    return _StepDecay(
        _eta0(eta0, "step_decay"),
        check_scalar(step_size, "step_size", "step_decay", kind=int, low=1, closed="left"),
        check_scalar(gamma, "gamma", "step_decay", low=0.0, high=1.0),
    )


def exponential(eta0: float, gamma: float = 0.999) -> Schedule:
    """eta_k = eta0 * gamma^k (torch's ExponentialLR). Not Robbins-Monro."""
    return _Exponential(
        _eta0(eta0, "exponential"), check_scalar(gamma, "gamma", "exponential", low=0.0, high=1.0)
    )


def cosine(eta0: float, total_steps: int = 1000, eta_min: float = 0.0) -> Schedule:
    """Cosine annealing from eta0 to eta_min over total_steps (Loshchilov & Hutter 2017).
    Not Robbins-Monro."""
    eta0 = _eta0(eta0, "cosine")
    return _Cosine(
        eta0,
        check_scalar(total_steps, "total_steps", "cosine", kind=int, low=1, closed="left"),
        check_scalar(eta_min, "eta_min", "cosine", low=0.0, high=eta0, closed="left"),
    )


def warmup(base: Schedule, warmup_steps: int = 100) -> Schedule:
    """Linear warm-up over ``warmup_steps`` updates, multiplying ``base``; keeps base's verdict."""
    if not isinstance(base, Schedule):
        raise TypeError(f"The 'base' parameter of warmup must be a Schedule. Got {base!r} instead.")
    steps = check_scalar(warmup_steps, "warmup_steps", "warmup", kind=int, low=1, closed="left")
    return _Warmup(base.eta0, base, steps)


SCHEDULES: Registry[Callable[..., Schedule]] = Registry("schedule", "get_schedule")
register_schedule = SCHEDULES.register
for _name, _factory in {
    "constant": constant,
    "inverse_time": inverse_time,
    "inverse_sqrt": inverse_sqrt,
    "polynomial": polynomial,
    "step": step_decay,
    "exponential": exponential,
    "cosine": cosine,
}.items():
    register_schedule(_name, _factory)


def get_schedule(name: str, **params) -> Schedule:
    """Build a schedule by registered name or import path ``"module:factory"``, e.g.
    ``get_schedule("inverse_time", eta0=0.1, k0=100)``."""
    return SCHEDULES.get(name)(**params)
