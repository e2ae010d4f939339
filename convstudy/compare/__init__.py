"""Research comparisons: a user's optimizer against baselines under an equal tuning budget.

- :mod:`~convstudy.compare.space`: methods, search spaces, trials and the budget rule;
- :mod:`~convstudy.compare.testbed`: the problems (built-in testbed and user problems);
- :mod:`~convstudy.compare.protocol`: :func:`compare` (tune on some seeds, evaluate on others);
- :mod:`~convstudy.compare.measures`: times to target, survival, profiles, rankings with CIs;
- :mod:`~convstudy.compare.output`: Parquet with provenance, tables, figures, the page.
"""

from .measures import measure
from .protocol import DEFAULT_BASELINES, SELECTIONS, Comparison, compare
from .space import BASELINES, DEFAULT_LR, LogUniform, Method, Uniform, method_of
from .testbed import TESTBED, TESTBED_PROBLEMS, TestbedProblem, register_testbed_problem

__all__ = [
    "compare",
    "Comparison",
    "measure",
    "Method",
    "method_of",
    "LogUniform",
    "Uniform",
    "DEFAULT_LR",
    "BASELINES",
    "DEFAULT_BASELINES",
    "SELECTIONS",
    "TestbedProblem",
    "TESTBED",
    "TESTBED_PROBLEMS",
    "register_testbed_problem",
]
