"""Variance of sample means: exact predictions for sampling a finite population.

The empirical risk of a training set, a minibatch loss and a minibatch gradient are all sample
means of per-sample quantities v_i (divergences div_i(w), or gradients grad div_i(w)) over b
indices drawn from a population of N items. With population mean and variance

    vbar = 1/N sum_i v_i,        sigma^2 = 1/N sum_i (v_i - vbar)^2      (ddof = 0),

the mean of b indices drawn uniformly

- with replacement (i.i.d.) has  E = vbar  and  Var = sigma^2 / b;
- without replacement (a simple random sample) has  E = vbar  and
  Var = (N - b)/(N - 1) * sigma^2 / b,

Cochran (1977), "Sampling Techniques", 3rd ed., Thm 2.1 (unbiased) and Thm 2.2 (variance; there
written S^2 (N - n)/(N n) with S^2 = N sigma^2/(N - 1), which is the same number). The factor
(N - b)/(N - 1) is the finite-population correction (FPC): 1 at b = 1, 0 at b = N. For vectors
the same holds coordinate-wise, so the trace of the covariance, tr Cov = E||mean - vbar||^2,
obeys the same two formulas with sigma^2 = 1/N sum_i ||v_i - vbar||^2.

Estimating these variances from Monte Carlo draws is :mod:`convstudy.stats.variance`.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_array, check_scalar

__all__ = [
    "population_variance",
    "population_total_variance",
    "finite_population_correction",
    "variance_of_sample_mean",
    "per_sample_values",
]


def population_variance(values) -> float:
    """sigma^2 = 1/N sum_i (v_i - vbar)^2 of a finite population of N scalars (ddof = 0).

    This is var(div) when the population is a training set: the variance of one uniformly drawn
    sample's divergence.
    """
    v = check_array(values, "values", "population_variance", ndim=1)
    if v.size < 1:
        raise ValueError("The 'values' parameter of population_variance must not be empty.")
    return float(np.var(v))


def population_total_variance(vectors) -> float:
    """tr Sigma = 1/N sum_i ||v_i - vbar||^2 of N vectors (N, d), the trace of the covariance.

    This is the total variance of one uniformly drawn sample's gradient, E||g_i - grad f||^2.
    """
    v = check_array(vectors, "vectors", "population_total_variance", ndim=2)
    if v.shape[0] < 1:
        raise ValueError("The 'vectors' parameter of population_total_variance must not be empty.")
    return float(np.sum(np.var(v, axis=0)))


def _check_sizes(sample_size, owner: str) -> np.ndarray:
    b = check_array(sample_size, "sample_size", owner, ndim=(0, 1))
    if np.any(b < 1) or np.any(b != np.round(b)):
        raise ValueError(
            f"The 'sample_size' parameter of {owner} must be integer(s) >= 1. "
            f"Got {np.atleast_1d(b).tolist()[:10]} instead."
        )
    return b


def finite_population_correction(population_size: int, sample_size) -> np.ndarray | float:
    """(N - b)/(N - 1): the factor by which sampling without replacement shrinks sigma^2/b.

    Cochran (1977), Thm 2.2. ``sample_size`` may be an array; each b must lie in [1, N].
    """
    owner = "finite_population_correction"
    n = check_scalar(population_size, "population_size", owner, kind=int, low=2, closed="left")
    b = _check_sizes(sample_size, owner)
    if np.any(b > n):
        raise ValueError(
            f"The 'sample_size' parameter of {owner} must be at most population_size={n} "
            f"(sampling without replacement). Got {np.atleast_1d(b).tolist()[:10]} instead."
        )
    out = (n - b) / (n - 1)
    return float(out) if out.ndim == 0 else out


def variance_of_sample_mean(
    population_var: float,
    sample_size,
    *,
    population_size: int | None = None,
    replace: bool = True,
) -> np.ndarray | float:
    """Variance of the mean of b uniform draws from a population with variance sigma^2.

    ``replace=True``: sigma^2 / b (i.i.d. draws; also the variance of the empirical risk of N
    i.i.d. samples from any distribution with var(div) = sigma^2). ``replace=False``:
    (N - b)/(N - 1) sigma^2 / b with N = ``population_size`` (Cochran 1977, Thm 2.2).
    ``sample_size`` may be an array of b values.
    """
    owner = "variance_of_sample_mean"
    var = check_scalar(population_var, "population_var", owner, low=0.0, closed="left")
    if not isinstance(replace, (bool, np.bool_)):
        raise TypeError(f"The 'replace' parameter of {owner} must be a bool. Got {replace!r}.")
    b = _check_sizes(sample_size, owner)
    if replace:
        out = var / b
    else:
        if population_size is None:
            raise ValueError(
                f"The 'population_size' parameter of {owner} is required when replace=False."
            )
        out = finite_population_correction(population_size, b) * var / b
    out = np.asarray(out, dtype=float)
    return float(out) if out.ndim == 0 else out


def per_sample_values(problem, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The finite population of a finite-sum problem at w: div_i(w) (N,) and grad div_i(w) (N, d).

    Uniform sampling of an index i makes these the per-sample values whose population variance
    (:func:`population_variance`, :func:`population_total_variance`) the predictions above use:
    var(div) and tr Cov(grad div), the SGD gradient noise of one sample. ``problem`` has
    ``n_samples``, ``sample_losses`` and ``sample_grads`` (a :class:`convstudy.problems.Problem`).
    """
    w = check_array(w, "w", "per_sample_values", ndim=1)
    idx = np.arange(problem.n_samples)[None, :]
    return problem.sample_losses(w[None], idx)[0], problem.sample_grads(w[None], idx)[0]
