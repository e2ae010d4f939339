"""Finite-sum problems f(w) = 1/N sum_i div_i(w), vectorised over replicates.

Built in: strongly convex (``quadratic``, ``ridge`` on diabetes, ``logistic`` on breast cancer),
convex but not strongly convex (``quartic_regression``), nonconvex (``tanh_network``,
``teacher_student``, ``double_well``). A user problem subclasses :class:`Problem`.
"""

from .._validation import check_choice_of_names
from .base import Certificate, Problem
from .convex import QuarticRegression
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
    "load_dataset",
    "PROBLEMS",
    "get_problem",
]

PROBLEMS = {
    "quadratic": Quadratic,
    "ridge": Ridge,
    "logistic": Logistic,
    "quartic_regression": QuarticRegression,
    "tanh_network": TanhNetwork,
    "teacher_student": TeacherStudent,
    "double_well": DoubleWell,
}


def get_problem(name: str, **params) -> Problem:
    """Build a built-in problem by name, e.g. ``get_problem("quadratic", condition_number=100)``."""
    return check_choice_of_names(name, "problem", "get_problem", PROBLEMS)(**params)
