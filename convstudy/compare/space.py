"""What is compared, and how each method is tuned: methods, search spaces and the trial budget.

A :class:`Method` is an optimizer (registered name or import path ``"module:attr"``) under a
step-size schedule, with a declared search space over its hyper-parameters. ``"lr"`` is the
schedule's base step eta0 (``schedule.eta0``: the torch/optax ``lr``); any other key is a
hyper-parameter of the optimizer (``"momentum"``, ``"beta1"``, ...) or, written
``"schedule.<param>"``, of the schedule.

**Equal budget.** A fair comparison gives every method the same number of tuning trials over
spaces of comparable width (AlgoPerf's external-tuning rule; Sivaprasad et al. 2020, "Optimizer
benchmarking needs to account for hyperparameter tuning"). :func:`trial_budgets` refuses a
method whose own ``budget`` differs from the comparison's unless the caller explicitly allows
an unequal comparison, which is then reported as such; :func:`space_caveats` reports methods
whose learning-rate ranges differ in width.

**Trials.** ``search="grid"``: for one searched hyper-parameter, ``budget`` values evenly spaced
on its scale, both ends included; ``search="random"``: ``budget`` draws from the space, seeded
by ``derived_seed(seed, "trials", method)``, so a method's trials do not depend on which other
methods are compared. The same trials are run on every problem.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .._validation import check_option, check_scalar
from ..stats.estimate import derived_seed

__all__ = [
    "LogUniform",
    "Uniform",
    "Method",
    "DEFAULT_LR",
    "BASELINES",
    "SEARCHES",
    "method_of",
    "trials",
    "trial_budgets",
    "space_caveats",
    "hyperparameter_key",
]

SEARCHES = ["grid", "random"]


@dataclass(frozen=True)
class LogUniform:
    """A hyper-parameter between ``low`` and ``high`` (both > 0) on a log scale."""

    low: float
    high: float

    def __post_init__(self) -> None:
        low = check_scalar(self.low, "low", "LogUniform", low=0.0)
        high = check_scalar(self.high, "high", "LogUniform", low=0.0)
        if not high > low:
            raise ValueError(f"LogUniform needs low < high. Got low={low!r}, high={high!r}.")

    @property
    def decades(self) -> float:
        """The width of the range in powers of ten."""
        return math.log10(self.high / self.low)

    def grid(self, n: int) -> np.ndarray:
        """``n`` log-spaced values from ``low`` to ``high`` (the geometric middle for n = 1)."""
        if n == 1:
            return np.array([math.sqrt(self.low * self.high)])
        return np.geomspace(self.low, self.high, n)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` draws with log10 of the value uniform on [log10 low, log10 high]."""
        return np.exp(rng.uniform(math.log(self.low), math.log(self.high), n))

    def __str__(self) -> str:
        return f"log-uniform [{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class Uniform:
    """A hyper-parameter between ``low`` and ``high`` on a linear scale (e.g. a momentum)."""

    low: float
    high: float

    def __post_init__(self) -> None:
        low = check_scalar(self.low, "low", "Uniform")
        high = check_scalar(self.high, "high", "Uniform")
        if not high > low:
            raise ValueError(f"Uniform needs low < high. Got low={low!r}, high={high!r}.")

    def grid(self, n: int) -> np.ndarray:
        """``n`` evenly spaced values from ``low`` to ``high`` (the middle for n = 1)."""
        if n == 1:
            return np.array([(self.low + self.high) / 2])
        return np.linspace(self.low, self.high, n)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` uniform draws."""
        return rng.uniform(self.low, self.high, n)

    def __str__(self) -> str:
        return f"uniform [{self.low:g}, {self.high:g}]"


# the step sizes every method searches by default: six decades, wide enough for the testbed's
# problems (smoothness constants 1 to 4, networks) and every method's natural scale
DEFAULT_LR = LogUniform(1e-5, 10.0)


@dataclass(frozen=True)
class Method:
    """An optimizer to compare: what runs, what is tuned, and what is held fixed.

    Parameters
    ----------
    optimizer : str
        Registered name (``"adam"``) or import path (``"my_rules:lion"``).
    space : mapping, default ``{"lr": DEFAULT_LR}``
        Searched hyper-parameters: ``"lr"`` (the schedule's eta0), optimizer hyper-parameters
        by name, schedule parameters as ``"schedule.<param>"``; values are :class:`LogUniform`
        or :class:`Uniform`.
    fixed : mapping, default {}
        Hyper-parameters held fixed (same naming), e.g. ``{"momentum": 0.9}``.
    schedule : str, default "constant"
        The step-size schedule (registered name or import path).
    name : str, optional
        How tables and figures call the method (default: the optimizer's name, the attribute
        part of an import path).
    budget : int, optional
        This method's own number of trials; leave unset for the comparison's budget (a
        different value makes the comparison unequal, see :func:`trial_budgets`).
    """

    optimizer: str
    space: Mapping[str, LogUniform | Uniform] = field(default_factory=lambda: {"lr": DEFAULT_LR})
    fixed: Mapping[str, float] = field(default_factory=dict)
    schedule: str = "constant"
    name: str | None = None
    budget: int | None = None

    def __post_init__(self) -> None:
        owner = "Method"
        if not isinstance(self.optimizer, str) or not self.optimizer:
            raise TypeError(
                f"The 'optimizer' parameter of {owner} must be a registered name or an import "
                f"path 'module:attr'. Got {self.optimizer!r} instead."
            )
        if not self.space:
            raise ValueError(f"The 'space' parameter of {owner} must search at least 'lr'.")
        for key, dist in self.space.items():
            if not isinstance(dist, LogUniform | Uniform):
                raise TypeError(
                    f"The search space of {self.label} must map names to LogUniform or Uniform. "
                    f"Got {key!r}: {dist!r}."
                )
        both = sorted(set(self.space) & set(self.fixed))
        if both:
            raise ValueError(f"{self.label}: {both} both searched and fixed; choose one.")
        if "lr" not in self.space and "lr" not in self.fixed:
            raise ValueError(f"{self.label}: 'lr' must be searched or fixed.")
        if self.budget is not None:
            check_scalar(self.budget, "budget", owner, kind=int, low=1, closed="left")

    @property
    def label(self) -> str:
        """The name in tables and figures."""
        return self.name or self.optimizer.rpartition(":")[2]


BASELINES: dict[str, Method] = {
    "sgd": Method("sgd"),
    "momentum": Method("momentum", fixed={"momentum": 0.9}),
    "nesterov": Method("nesterov", fixed={"momentum": 0.9}),
    "adam": Method("adam"),
    "rmsprop": Method("rmsprop"),
    "adagrad": Method("adagrad"),
}


def method_of(spec: Method | str) -> Method:
    """A :class:`Method` from itself, a baseline's name, or any optimizer name (default space)."""
    if isinstance(spec, Method):
        return spec
    if not isinstance(spec, str) or not spec:
        raise TypeError(f"A method must be a Method or an optimizer name. Got {spec!r} instead.")
    return BASELINES.get(spec, Method(spec))


def hyperparameter_key(name: str) -> str:
    """The condition key of a hyper-parameter: lr -> schedule.eta0, beta1 -> optimizer.beta1."""
    if name == "lr":
        return "schedule.eta0"
    return name if name.startswith("schedule.") else f"optimizer.{name}"


def trials(method: Method, budget: int, *, search: str = "grid", seed: int = 0) -> list[dict]:
    """The ``budget`` hyper-parameter settings tried for ``method`` (searched and fixed).

    A grid needs one searched hyper-parameter (a grid over k of them would give budget^(1/k)
    values each); use ``search="random"`` for more.
    """
    owner = "trials"
    budget = check_scalar(budget, "budget", owner, kind=int, low=1, closed="left")
    check_option(search, "search", owner, SEARCHES)
    if search == "grid":
        if len(method.space) != 1:
            raise ValueError(
                f"{method.label} searches {sorted(method.space)}: a grid search takes one "
                f"hyper-parameter; use search='random' for several."
            )
        ((key, dist),) = method.space.items()
        values = {key: dist.grid(budget)}
    else:
        rng = np.random.default_rng(derived_seed(seed, "trials", method.label))
        values = {key: dist.sample(rng, budget) for key, dist in sorted(method.space.items())}
    return [
        {**{k: float(f"{v[i]:.4g}") for k, v in values.items()}, **method.fixed}
        for i in range(budget)
    ]


def trial_budgets(
    methods: Sequence[Method], budget: int, *, allow_unequal: bool = False
) -> tuple[dict[str, int], list[str]]:
    """Each method's number of trials, and the sentences that report an unequal comparison.

    A method's own ``budget`` different from ``budget`` is refused (``ValueError``) unless
    ``allow_unequal``; then the comparison runs and the returned sentence says who got what.
    """
    budget = check_scalar(budget, "budget", "compare", kind=int, low=1, closed="left")
    given = {m.label: (m.budget if m.budget is not None else budget) for m in methods}
    if len(set(given.values())) == 1:
        return given, []
    shown = ", ".join(f"{name}: {n}" for name, n in given.items())
    if not allow_unequal:
        raise ValueError(
            f"Unequal tuning budgets ({shown} trials): a comparison gives every method the same "
            f"number of trials. Remove the per-method budget, or pass allow_unequal_budgets=True "
            f"(--allow-unequal-budgets) to run it reported as an unequal comparison."
        )
    return given, [
        f"**Unequal comparison**: the methods had different tuning budgets ({shown} trials); "
        "a method with more trials has more chances to find a good step."
    ]


def space_caveats(methods: Sequence[Method]) -> list[str]:
    """A sentence when the methods' searched learning-rate ranges differ in width."""
    lrs = {m.label: m.space.get("lr") for m in methods}
    widths = {name: lr.decades for name, lr in lrs.items() if isinstance(lr, LogUniform)}
    if len(widths) < 2 or max(widths.values()) - min(widths.values()) < 0.01:
        return []
    shown = ", ".join(f"{name}: {w:.1f}" for name, w in widths.items())
    return [
        f"The learning-rate ranges differ in width (decades: {shown}); with the same budget a "
        "wider range is searched more coarsely."
    ]
