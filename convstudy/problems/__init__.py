"""Finite-sum problems f(w) = 1/N sum_i div_i(w), vectorised over replicates.

Built in: strongly convex (``quadratic``, ``ridge`` on diabetes, ``logistic`` on breast cancer),
convex but not strongly convex (``quartic_regression``), nonconvex (``tanh_network``,
``teacher_student``, ``double_well``, ``digits_mlp``: a softmax MLP on scikit-learn's digits with
test loss and accuracy as observables), and Reddi, Kale & Kumar's constrained online problem on
which Adam fails (``adam_counterexample``, projected onto [-1, 1]: ``simulate(...,
project=problem.project)``). A user problem subclasses :class:`Problem` (or builds one of these
on its own data) and is registered with :func:`register_problem`, or named by an import path.
"""

from ..registry import Registry
from .base import Certificate, Problem
from .classification import DigitsMLP, MLPClassifier
from .convex import QuarticRegression
from .counterexamples import AdamCounterexample
from .linear import LeastSquares, Logistic, Quadratic, Ridge, load_dataset
from .networks import DoubleWell, TanhNetwork, TeacherStudent

__all__ = [
    "Problem",
    "Certificate",
    "LeastSquares",
    "Quadratic",
    "Ridge",
    "Logistic",
    "QuarticRegression",
    "TanhNetwork",
    "TeacherStudent",
    "DoubleWell",
    "MLPClassifier",
    "DigitsMLP",
    "AdamCounterexample",
    "load_dataset",
    "PROBLEMS",
    "register_problem",
    "get_problem",
]

PROBLEMS: Registry = Registry("problem", "get_problem")
register_problem = PROBLEMS.register
for _name, _factory in {
    "quadratic": Quadratic,
    "ridge": Ridge,
    "logistic": Logistic,
    "quartic_regression": QuarticRegression,
    "tanh_network": TanhNetwork,
    "teacher_student": TeacherStudent,
    "double_well": DoubleWell,
    "digits_mlp": DigitsMLP,
    "adam_counterexample": AdamCounterexample,
}.items():
    register_problem(_name, _factory)


def get_problem(name: str, **params) -> Problem:
    """Build a problem by registered name or import path ``"module:factory"``, e.g.
    ``get_problem("quadratic", condition_number=100)``."""
    return PROBLEMS.get(name)(**params)
