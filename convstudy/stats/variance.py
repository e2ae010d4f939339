"""Statistics of variance estimates: intervals for a sample variance, bootstrap dispersion, and
the slope of a variance against the sample size.

The estimators work on Monte Carlo draws stored as a (R, S) array: R replicates (rows) of S
estimates (columns, e.g. one per sample size). Bootstrap intervals resample whole replicates
through :func:`convstudy.stats.estimate.bootstrap`, so the columns' dependence is kept. The
exact predictions they are compared with are in :mod:`convstudy.theory.sampling_variance`.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from .._validation import check_array, check_option, check_scalar
from .estimate import bootstrap
from .fits import SlopeFit, bootstrap_slope

__all__ = [
    "variance_ci",
    "bootstrap_dispersion",
    "bootstrap_sample_variances",
    "bootstrap_mean_squares",
    "fit_variance_slope",
]


def variance_ci(
    values: np.ndarray, *, axis: int = 0, level: float = 0.95, method: str = "asymptotic"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unbiased sample variance along ``axis`` with a distribution-free CI.

    ``asymptotic``: normal interval with the standard error of the sample variance,
    se^2 = (m4 - s^4 (n - 3)/(n - 1)) / n (e.g. Casella & Berger, Ex. 5.8; m4 the fourth central
    moment), valid without normality. ``chi2``: the exact interval for Gaussian data.
    Returns (variance, ci_low, ci_high), arrays over the other axes.
    """
    check_option(method, "method", "variance_ci", ["asymptotic", "chi2"])
    x = np.moveaxis(np.asarray(values, dtype=float), axis, 0)
    n = x.shape[0]
    if n < 4:
        raise ValueError(f"variance_ci needs at least 4 values along axis {axis}; got {n}.")
    s2 = x.var(axis=0, ddof=1)
    if method == "chi2":
        a = (1 - level) / 2
        return (
            s2,
            (n - 1) * s2 / stats.chi2.ppf(1 - a, n - 1),
            (n - 1) * s2 / stats.chi2.ppf(a, n - 1),
        )
    m4 = np.mean((x - x.mean(axis=0)) ** 4, axis=0)
    se = np.sqrt(np.maximum(m4 - s2**2 * (n - 3) / (n - 1), 0.0) / n)
    z = stats.norm.ppf(0.5 + level / 2)
    return s2, s2 - z * se, s2 + z * se


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
    values, squares, *, seed: int, n_boot: int = 1000
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

    boots = bootstrap(np.hstack([c, c**2, q]), statistics, n_boot=n_boot, seed=seed)
    return boots[:, :s1], boots[:, s1:]


def bootstrap_sample_variances(values, *, seed: int, n_boot: int = 1000) -> np.ndarray:
    """Bootstrap replicates (n_boot, S) of the sample variance of each column of (R, S) values.

    See :func:`bootstrap_dispersion`; this is its first half alone.
    """
    v = _as_matrix(values, "bootstrap_sample_variances")
    return bootstrap_dispersion(v, np.zeros((v.shape[0], 0)), n_boot=n_boot, seed=seed)[0]


def bootstrap_mean_squares(squares, *, seed: int, n_boot: int = 1000) -> np.ndarray:
    """Bootstrap replicates (n_boot, S) of the column means of (R, S) squared deviations.

    See :func:`bootstrap_dispersion`; this is its second half alone.
    """
    q = _as_matrix(squares, "bootstrap_mean_squares", name="squares")
    return bootstrap_dispersion(np.zeros((q.shape[0], 0)), q, n_boot=n_boot, seed=seed)[1]


def fit_variance_slope(
    sizes,
    variances,
    boot_variances,
    *,
    n: int,
    level: float = 0.95,
    correction=None,
) -> SlopeFit:
    """Least-squares slope of ln(variance) against ln(size), with a percentile CI.

    ``variances`` (S,) are the point estimates, ``boot_variances`` (B, S) their bootstrap
    replicates (e.g. from :func:`bootstrap_sample_variances`) over ``n`` replicates. A variance
    c/size has slope -1. ``correction`` (S,) divides every variance before the fit: pass the
    finite-population correction (N - b)/(N - 1) to fit sampling without replacement, whose raw
    slope bends below -1 as b approaches N. Sizes with a non-positive variance or correction are
    dropped. ``details``: ``n_sizes, size_min, size_max``.
    """
    owner = "fit_variance_slope"
    level = check_scalar(level, "level", owner, low=0.0, high=1.0)
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
    fit = bootstrap_slope(
        np.log(x[keep]), y[keep] / corr[keep], boots[:, keep] / corr[keep], n=n, level=level
    )
    details = {
        "n_sizes": int(keep.sum()),
        "size_min": float(x[keep].min()),
        "size_max": float(x[keep].max()),
    }
    return SlopeFit(fit.estimate, fit.se, fit.intercept, fit.n_boot_nonfinite, details)


def variance_against_size(
    draws,
    sizes,
    predicted,
    *,
    seed: int,
    kind: str = "variance",
    correction=None,
    n_boot: int = 1000,
    level: float = 0.95,
) -> tuple[dict, dict[str, SlopeFit], np.ndarray]:
    """Measured dispersion of an estimator's Monte Carlo draws (R, S) at S sample sizes, against
    a predicted variance (S,), with the log-log slope of the measure against the size.

    ``kind="variance"``: each column's unbiased sample variance with the asymptotic CI of
    :func:`variance_ci`; ``kind="mean_square"``: the draws are squared deviations from the known
    mean (e.g. ||g - E g||^2), whose mean with a Student-t CI estimates tr Cov (the estimator is
    unbiased). The slopes (``"raw"``, and ``"corrected"`` after dividing by ``correction`` (S,),
    e.g. the finite-population correction) are :func:`fit_variance_slope` over the replicate
    bootstrap (:func:`bootstrap_dispersion`, seeded by ``seed``). Returns the columns
    ``size, measured, ci_low, ci_high, predicted, ratio, ratio_low, ratio_high, n``, the fits
    and the bootstrap values (n_boot, S) of the measure.
    """
    check_option(kind, "kind", "variance_against_size", ["variance", "mean_square"])
    v = _as_matrix(draws, "variance_against_size", "draws")
    x = check_array(sizes, "sizes", "variance_against_size", shape=(v.shape[1],))
    pred = check_array(predicted, "predicted", "variance_against_size", shape=(v.shape[1],))
    if kind == "variance":
        measured, low, high = variance_ci(v, level=level)
        boots = bootstrap_sample_variances(v, seed=seed, n_boot=n_boot)
    else:
        measured = v.mean(axis=0)
        half = stats.t.ppf(0.5 + level / 2, v.shape[0] - 1) * v.std(axis=0, ddof=1)
        low, high = measured - half / np.sqrt(v.shape[0]), measured + half / np.sqrt(v.shape[0])
        boots = bootstrap_mean_squares(v, seed=seed, n_boot=n_boot)
    fits = {"raw": fit_variance_slope(x, measured, boots, n=v.shape[0], level=level)}
    if correction is not None:
        fits["corrected"] = fit_variance_slope(
            x, measured, boots, n=v.shape[0], level=level, correction=correction
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        columns = {"size": x, "measured": measured, "ci_low": low, "ci_high": high,
                   "predicted": pred, "ratio": measured / pred, "ratio_low": low / pred,
                   "ratio_high": high / pred, "n": v.shape[0]}  # fmt: skip
    return columns, fits, boots


__all__ += ["variance_against_size"]
