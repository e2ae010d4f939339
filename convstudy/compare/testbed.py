"""The problems a comparison runs on: registered problems with a budget, a metric and a target.

A :class:`TestbedProblem` fixes everything about a problem except the optimizer: the registered
problem (or import path) and its parameters, the minibatch size and sampler, the step budget
(full and quick), the metric that measures progress (``"subopt"`` = f(w) - f* where f* is
certified, ``"loss"`` = f(w) otherwise) and the target that metric must reach (absolute, or
relative to its value at the problem's initial point).

The built-in testbed (``"testbed"``, :data:`TESTBED`) spans the course's problem classes, all on
the compiled path: strongly convex quadratics with condition
numbers 10 and 1000 (full batch: the ill-conditioning claim), ridge on diabetes and
L2-logistic on breast cancer (minibatch SGD on real data), a convex but not strongly convex
quartic, a realizable teacher-student network, a tanh network on real data, and a softmax MLP
on scikit-learn's digits with test loss and accuracy. The targets sit where a well-tuned method
arrives inside the budget and a badly tuned one does not (checked on seed 0 when the testbed
was set up; they are declared before any comparison runs, never fitted to its results).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .._validation import check_option, check_scalar
from ..problems import PROBLEMS, get_problem
from ..registry import Registry

__all__ = [
    "TestbedProblem",
    "TESTBED_PROBLEMS",
    "register_testbed_problem",
    "TESTBED",
    "METRICS",
    "resolve_problems",
]

METRICS = ["subopt", "loss"]


@dataclass(frozen=True)
class TestbedProblem:
    """One problem of a comparison (see the module docstring).

    Parameters
    ----------
    name : str
        The name in tables and figures.
    problem : str
        Registered problem name or import path ``"module:factory"``.
    params : mapping, default {}
        Keyword arguments of the problem's factory.
    metric : {"subopt", "loss"}, default "subopt"
        What reaching the target means: f(w) - f* <= target, or f(w) <= target.
    target, relative_target : float
        The target, absolute, or as a fraction of the metric at ``problem.initial_point()``;
        exactly one is given.
    n_steps, quick_steps : int
        Updates per run in a full and in a quick comparison.
    batch_size : int or "full"
        Minibatch size b ("full": every sample, i.e. gradient descent).
    sampler : str, default "reshuffle"
        How minibatches are drawn.
    n_records : int, default 40
        Record steps (log-spaced) where the metric is measured.
    w0 : "random" or None, default "random"
        Each replicate starts from its own ``problem.random_initial_point`` (a fresh network
        initialisation, a random point near the default start), so the CIs cover the start as
        well as the minibatches; None starts every replicate at ``problem.initial_point()``.
    """

    __test__ = False  # not a pytest test class despite the name

    name: str
    problem: str
    params: Mapping = field(default_factory=dict)
    metric: str = "subopt"
    target: float | None = None
    relative_target: float | None = None
    n_steps: int = 2000
    quick_steps: int = 500
    batch_size: int | str = 16
    sampler: str = "reshuffle"
    n_records: int = 40
    w0: str | None = "random"
    description: str = ""

    def __post_init__(self) -> None:
        owner = f"TestbedProblem {self.name!r}"
        check_option(self.metric, "metric", owner, METRICS)
        if (self.target is None) == (self.relative_target is None):
            raise ValueError(f"{owner} needs exactly one of 'target' and 'relative_target'.")
        for key in ("target", "relative_target"):
            if getattr(self, key) is not None:
                check_scalar(getattr(self, key), key, owner, low=0.0)
        for key in ("n_steps", "quick_steps", "n_records"):
            check_scalar(getattr(self, key), key, owner, kind=int, low=1, closed="left")
        check_option(self.w0, "w0", owner, ["random", None])
        if self.batch_size != "full":
            check_scalar(self.batch_size, "batch_size", owner, kind=int, low=1, closed="left")

    def build(self):
        """The problem object (cached by the engine's cell builder in workers)."""
        return get_problem(self.problem, **dict(self.params))

    def absolute_target(self) -> float:
        """The target in the metric's units (relative targets scaled at the initial point)."""
        if self.target is not None:
            return float(self.target)
        problem = self.build()
        w0 = np.asarray(problem.initial_point(), dtype=float)[None, :]
        value = float(problem.loss(w0)[0]) - (problem.f_star if self.metric == "subopt" else 0.0)
        if not value > 0:
            raise ValueError(
                f"{self.name}: the {self.metric} at the initial point is {value:g}, so a "
                f"relative target means nothing; give an absolute 'target'."
            )
        return float(f"{self.relative_target * value:.4g}")

    def condition(self, quick: bool) -> dict:
        """The condition keys of :func:`convstudy.study.simulate_cell` for this problem."""
        problem = self.build()
        batch = problem.n_samples if self.batch_size == "full" else int(self.batch_size)
        return {
            "problem": self.problem,
            **{f"problem.{k}": v for k, v in self.params.items()},
            "sampler": self.sampler,
            "batch_size": batch,
            "n_steps": self.quick_steps if quick else self.n_steps,
            "n_records": self.n_records,
            **({"w0": self.w0} if self.w0 is not None else {}),
        }


TESTBED_PROBLEMS: Registry = Registry("testbed problem", "compare")
register_testbed_problem = TESTBED_PROBLEMS.register

_BUILT_IN = [
    TestbedProblem(
        "quadratic_k10", "quadratic",
        {"condition_number": 10.0, "mu": 0.1, "n_samples": 200, "noise": 0.0},
        relative_target=1e-6, n_steps=400, quick_steps=200, batch_size="full",
        description="least squares, spectrum log-spaced on [0.1, 1], gradient descent",
    ),
    TestbedProblem(
        "quadratic_k1000", "quadratic",
        {"condition_number": 1000.0, "mu": 0.001, "n_samples": 200, "noise": 0.0},
        relative_target=1e-4, n_steps=3000, quick_steps=1500, batch_size="full",
        description="least squares, spectrum log-spaced on [0.001, 1], gradient descent",
    ),
    TestbedProblem(
        "ridge", "ridge", {}, relative_target=1e-2, n_steps=2000, quick_steps=600,
        description="ridge regression on diabetes (N = 442, d = 10), b = 16",
    ),
    TestbedProblem(
        "logistic", "logistic", {}, relative_target=1e-2, n_steps=2000, quick_steps=600,
        description="L2-logistic regression on breast cancer (N = 569, d = 30), b = 16",
    ),
    TestbedProblem(
        "quartic", "quartic_regression", {}, relative_target=1e-3, n_steps=2000,
        quick_steps=600,
        description="least-fourth-power regression, convex, not strongly convex, b = 16",
    ),
    TestbedProblem(
        "teacher_student", "teacher_student", {}, target=1e-2, n_steps=2000, quick_steps=600,
        description="realizable tanh teacher-student network (f* = 0), b = 16",
    ),
    TestbedProblem(
        "tanh_network", "tanh_network", {}, metric="loss", target=0.1, n_steps=2000,
        quick_steps=600, description="tanh network regression on diabetes, training loss, b = 16",
    ),
    TestbedProblem(
        "digits_mlp", "digits_mlp", {}, metric="loss", target=0.15, n_steps=1000,
        quick_steps=400, batch_size=32,
        description="softmax MLP (64-32-10) on digits, training loss, test accuracy, b = 32",
    ),
]  # fmt: skip
for _entry in _BUILT_IN:
    register_testbed_problem(_entry.name, _entry)
TESTBED: tuple[str, ...] = tuple(entry.name for entry in _BUILT_IN)


def _default_entry(name: str) -> TestbedProblem:
    """A problem named by registry or import path, with default budget, metric and target."""
    problem = get_problem(name)
    metric = "subopt" if getattr(problem, "f_star", None) is not None else "loss"
    return TestbedProblem(
        name.rpartition(":")[2], name, metric=metric,
        relative_target=1e-3 if metric == "subopt" else 0.1,
        description=f"{name} with default settings",
    )  # fmt: skip


def resolve_problems(spec: str | Sequence) -> list[TestbedProblem]:
    """The problems a ``problems`` argument names, in order, without repeats.

    ``spec`` is a comma-separated string or a sequence whose items are ``"testbed"`` (the
    built-in testbed), testbed problem names, :class:`TestbedProblem` objects, or problem names
    and import paths (run with default settings: 2000 steps, b = 16, target 1e-3 of the
    initial suboptimality, or 0.1 of the initial loss when f* is unknown).
    """
    items = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
    out: dict[str, TestbedProblem] = {}
    for item in items:
        if isinstance(item, TestbedProblem):
            entries = [item]
        elif item == "testbed":
            entries = [TESTBED_PROBLEMS.get(n) for n in TESTBED]
        elif isinstance(item, str) and item in TESTBED_PROBLEMS:
            entries = [TESTBED_PROBLEMS.get(item)]
        elif isinstance(item, str) and (item in PROBLEMS or ":" in item):
            entries = [_default_entry(item)]
        else:
            known = ", ".join(["testbed", *TESTBED_PROBLEMS.names()])
            raise ValueError(
                f"The 'problems' parameter of compare names {item!r}, which is neither a "
                f"testbed problem ({known}), a registered problem ({', '.join(PROBLEMS.names())}) "
                "nor an import path 'module:factory'."
            )
        for entry in entries:
            if entry.name in out and out[entry.name] != entry:
                raise ValueError(f"Two different problems are named {entry.name!r}.")
            out[entry.name] = entry
    if not out:
        raise ValueError("The 'problems' parameter of compare names no problem.")
    return list(out.values())
