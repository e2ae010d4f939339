"""Variance of sample means: exact predictions for sampling a finite population, and estimators.

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

The estimators here work on Monte Carlo draws stored as a (R, S) array: R replicates (rows) of
S estimates (columns, e.g. one per sample size). Bootstrap intervals resample whole replicates
through :func:`convstudy.measures.bootstrap_replicates`, so the columns' dependence is kept.
"""

from __future__ import annotations

import numpy as np

from ._validation import check_array, check_scalar
from .measures import bootstrap_replicates, log_slope_ci

__all__ = [
    "population_variance",
    "population_total_variance",
    "finite_population_correction",
    "variance_of_sample_mean",
    "bootstrap_dispersion",
    "bootstrap_sample_variances",
    "bootstrap_mean_squares",
    "loglog_slope_ci",
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


def _as_matrix(values, owner: str, name: str = "values") -> np.ndarray:
    v = check_array(values, name, owner, ndim=(1, 2))
    v = v[:, None] if v.ndim == 1 else v
    if v.shape[0] < 2:
        raise ValueError(
            f"The {name!r} parameter of {owner} needs at least 2 replicates (rows). "
            f"Got shape {v.shape} instead."
        )
    return v


def bootstrap_dispersion(
    values, squares, *, n_boot: int = 1000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Joint bootstrap of sample variances of ``values`` and mean squares of ``squares``.

    ``values`` (R, S1) and ``squares`` (R, S2) hold the same R replicates (rows). Each bootstrap
    draw reweights the replicates with multinomial weights w (sum w = 1) and computes, per
    column, the unbiased sample variance s^2 = R/(R - 1) (sum w x^2 - (sum w x)^2) of
    ``values`` and the mean sum w q of ``squares``, all from the same resample (Efron &
    Tibshirani 1993, ch. 6). Columns of ``values`` are centred first (the variance is shift
    invariant), so the difference of moments does not cancel catastrophically.

    The mean square suits an estimator g with known expectation m (an unbiased minibatch
    gradient, E g = grad f): the mean of q = ||g - m||^2 estimates tr Cov(g) without bias and
    needs one number per replicate. Returns ((n_boot, S1), (n_boot, S2)).
    """
    owner = "bootstrap_dispersion"
    v = _as_matrix(values, owner)
    q = _as_matrix(squares, owner, name="squares")
    if q.shape[0] != v.shape[0]:
        raise ValueError(
            f"The 'squares' parameter of {owner} must have as many rows as 'values' "
            f"({v.shape[0]}). Got shape {q.shape} instead."
        )
    if np.any(q < 0):
        raise ValueError(f"The 'squares' parameter of {owner} must be >= 0.")
    r, s1 = v.shape
    c = v - v.mean(axis=0)

    def statistics(means: np.ndarray) -> np.ndarray:
        m1, m2 = means[:, :s1], means[:, s1 : 2 * s1]
        return np.hstack([(m2 - m1**2) * r / (r - 1), means[:, 2 * s1 :]])

    boots = bootstrap_replicates(np.hstack([c, c**2, q]), statistics, n_boot=n_boot, seed=seed)
    return boots[:, :s1], boots[:, s1:]


def bootstrap_sample_variances(values, *, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """Bootstrap replicates (n_boot, S) of the sample variance of each column of (R, S) values.

    See :func:`bootstrap_dispersion`; this is its first half alone.
    """
    v = _as_matrix(values, "bootstrap_sample_variances")
    return bootstrap_dispersion(v, np.zeros((v.shape[0], 0)), n_boot=n_boot, seed=seed)[0]


def bootstrap_mean_squares(squares, *, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """Bootstrap replicates (n_boot, S) of the column means of (R, S) squared deviations.

    See :func:`bootstrap_dispersion`; this is its second half alone.
    """
    q = _as_matrix(squares, "bootstrap_mean_squares", name="squares")
    return bootstrap_dispersion(np.zeros((q.shape[0], 0)), q, n_boot=n_boot, seed=seed)[1]


def loglog_slope_ci(
    sizes,
    variances,
    boot_variances,
    *,
    level: float = 0.95,
    correction=None,
) -> dict:
    """Least-squares slope of log(variance) against log(size), with a percentile CI.

    ``variances`` (S,) are the point estimates, ``boot_variances`` (B, S) their bootstrap
    replicates (e.g. from :func:`bootstrap_sample_variances`). A variance c/size has slope -1.
    ``correction`` (S,) divides every variance before the fit: pass the finite-population
    correction (N - b)/(N - 1) to fit sampling without replacement, whose raw slope bends
    below -1 as b approaches N. Sizes with a non-positive variance or correction are dropped.
    Returns ``slope, ci_low, ci_high, se, n_sizes, size_min, size_max``.
    """
    owner = "loglog_slope_ci"
    check_scalar(level, "level", owner, low=0.0, high=1.0)
    x = check_array(sizes, "sizes", owner, ndim=1)
    y = check_array(variances, "variances", owner, shape=(x.size,))
    boots = check_array(boot_variances, "boot_variances", owner, shape=(None, x.size), finite=False)
    corr = (
        np.ones_like(x)
        if correction is None
        else check_array(correction, "correction", owner, shape=(x.size,))
    )
    keep = (x > 0) & (y > 0) & (corr > 0)
    if keep.sum() < 2:
        raise ValueError(
            f"{owner} needs at least 2 sizes with positive variance and correction; "
            f"got {int(keep.sum())}."
        )
    fit = log_slope_ci(
        np.log(x[keep]), y[keep] / corr[keep], boots[:, keep] / corr[keep], level=level
    )
    return {
        **fit,
        "n_sizes": int(keep.sum()),
        "size_min": float(x[keep].min()),
        "size_max": float(x[keep].max()),
    }
