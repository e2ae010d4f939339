"""Means and ratios of means of replicate-level values, with confidence intervals.

- :func:`mean_ci`: the mean of replicate values with a Student-t interval, as an
  :class:`~convstudy.stats.estimate.Estimate`; :func:`mean_sem_ci` is its array form (along an
  axis: one interval per recorded step of a curve).
- :func:`ratio_of_means`: mean(a) / mean(b) of two independent samples, percentile bootstrap.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats

from .._validation import check_scalar
from .estimate import Estimate, bootstrap, bootstrap_method, percentile_interval

__all__ = ["mean_sem_ci", "mean_ci", "ratio_of_means", "finite_values"]


def mean_sem_ci(values: np.ndarray, level: float = 0.95, axis: int = 0) -> tuple:
    """(mean, sem, ci_low, ci_high, n) of ``values`` along ``axis``, NaN ignored.

    sem = s / sqrt(n) with the unbiased standard deviation s, and the interval is
    mean -+ t_{(1+level)/2, n-1} sem (Student 1908). All NaN where fewer than 2 values.
    """
    values = np.asarray(values, dtype=float)
    n = np.sum(np.isfinite(values), axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN or single values: NaN out
        mean = np.nanmean(values, axis=axis)
        sem = np.nanstd(values, axis=axis, ddof=1) / np.sqrt(n)
    half = stats.t.ppf(0.5 + level / 2, np.maximum(n - 1, 1)) * sem
    return mean, sem, mean - half, mean + half, n


def mean_ci(values, level: float = 0.95) -> Estimate:
    """Mean of replicate ``values`` (1-D, NaN ignored) with its Student-t interval.

    See :func:`mean_sem_ci`; the interval is NaN with fewer than 2 finite values.
    """
    mean, _, low, high, n = mean_sem_ci(np.ravel(values), level)
    return Estimate(float(mean), float(low), float(high), int(n), "Student t", level)


def finite_values(values, name: str, owner: str, minimum: int = 2) -> np.ndarray:
    """The finite entries of ``values`` as a 1-D array; an error when fewer than ``minimum``."""
    arr = np.asarray(values, dtype=float).ravel()
    arr = arr[np.isfinite(arr)]
    if arr.size < minimum:
        raise ValueError(
            f"The {name!r} parameter of {owner} needs at least {minimum} finite values. "
            f"Got {arr.size} instead."
        )
    return arr


def ratio_of_means(
    numerator, denominator, *, seed: int, level: float = 0.95, n_boot: int = 2000
) -> Estimate:
    """mean(numerator) / mean(denominator) of two independent samples, bootstrap CI.

    Each sample is resampled independently (percentile interval, Efron & Tibshirani 1993,
    ch. 13), both from one stream seeded by ``seed``; NaN values (diverged replicates) are
    dropped. ``n`` is the smaller of the two sample sizes.
    """
    owner = "ratio_of_means"
    check_scalar(level, "level", owner, low=0.0, high=1.0)
    a = finite_values(numerator, "numerator", owner)
    b = finite_values(denominator, "denominator", owner)
    if b.mean() <= 0:
        raise ValueError(f"The 'denominator' of {owner} must have a positive mean.")
    rng = np.random.default_rng(seed)
    identity = np.asarray
    with np.errstate(divide="ignore", invalid="ignore"):
        boots = bootstrap(a, identity, seed=rng, n_boot=n_boot) / bootstrap(
            b, identity, seed=rng, n_boot=n_boot
        )
    low, high = percentile_interval(boots, level)
    return Estimate(
        float(a.mean() / b.mean()),
        float(low),
        float(high),
        int(min(a.size, b.size)),
        bootstrap_method(n_boot) + ", each sample resampled apart",
        level,
    )


def paired_ratio_of_means(
    numerator, denominator, *, seed: int, level: float = 0.95, n_boot: int = 1000
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """mean_r a_r / mean_r b_r of paired samples, per column, with a percentile bootstrap CI.

    ``numerator`` and ``denominator`` are (R,) or (R, S) arrays whose row r comes from the same
    replicate (common random numbers, e.g. two variants run on the same start and minibatches),
    so rows are resampled jointly for both (Efron & Tibshirani 1993, ch. 13). Returns (value,
    ci_low, ci_high), each of shape (S,) (or scalars for 1-D input).
    """
    owner = "paired_ratio_of_means"
    check_scalar(level, "level", owner, low=0.0, high=1.0)
    a, b = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    if a.shape != b.shape or a.ndim not in (1, 2) or a.shape[0] < 2:
        raise ValueError(
            f"The 'numerator' and 'denominator' of {owner} must be paired (R,) or (R, S) arrays "
            f"with R >= 2. Got shapes {a.shape} and {b.shape} instead."
        )
    width = 1 if a.ndim == 1 else a.shape[1]
    paired = np.hstack([a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)])

    def ratio(means: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return means[..., :width] / means[..., width:]

    value = ratio(paired.mean(axis=0))
    low, high = percentile_interval(bootstrap(paired, ratio, seed=seed, n_boot=n_boot), level)
    if a.ndim == 1:
        return value[0], low[0], high[0]
    return value, low, high


__all__ += ["paired_ratio_of_means"]
