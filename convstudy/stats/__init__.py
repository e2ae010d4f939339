"""Statistics organised by operation, each measure returning an :class:`Estimate`.

- :mod:`~convstudy.stats.estimate`: the :class:`Estimate` type, seeds derived from the run
  seed, the bootstrap over replicates and its percentile interval;
- :mod:`~convstudy.stats.means`: means (Student t) and ratios of means;
- :mod:`~convstudy.stats.curves`: curve matrices, mean curves, hitting times with censoring;
- :mod:`~convstudy.stats.fits`: slopes and rates (along a curve, of hitting times, across
  conditions);
- :mod:`~convstudy.stats.proportions`: binomial proportions and their differences;
- :mod:`~convstudy.stats.variance`: statistics of variance estimates.
"""

from .estimate import Estimate, bootstrap, derived_seed, percentile_interval

__all__ = ["Estimate", "bootstrap", "derived_seed", "percentile_interval"]
