"""convstudy: empirical convergence analysis of gradient methods over many seeds.

Data flows one way: problem -> (optimizer, schedule, sampler) -> :func:`simulate` -> tidy frame
-> :mod:`convstudy.stats` (estimates with CIs; closed-form predictions in :mod:`convstudy.theory`)
-> tables, figures, claims.
"""

from importlib.metadata import PackageNotFoundError, version

from .engine import simulate

try:
    __version__ = version("convstudy")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["simulate", "__version__"]
