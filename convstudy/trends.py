"""Trends across conditions: how a per-replicate statistic changes from one condition to the next.

:mod:`convstudy.measures` fits rates *along* one run (a log-log slope over steps). Many claims
are about how a statistic changes *across* conditions instead: iterations-to-eps against the
condition number, a noise floor against the step size, an escape fraction against the batch
size, a gradient norm against the horizon. Each condition then contributes one sample of
replicate-level values (one value per replicate), and the question is the slope of
g(statistic) against h(x) with a confidence interval.

- :func:`condition_bootstrap` resamples replicates within each condition (independently, or
  with the same indices in every condition when the replicates are paired) and returns the
  statistic of every bootstrap sample in every condition.
- :func:`fit_trend` fits the least-squares slope of (log) statistic against (log) x through the
  conditions' statistics, with a percentile bootstrap CI (Efron & Tibshirani 1993, ch. 13);
  :func:`trend_from_bootstrap` does the fit for statistics bootstrapped some other way.
- :func:`proportion_ci` and :func:`proportion_difference_ci` give score intervals for binary
  outcomes per condition (Wilson 1927; Newcombe 1998), which behave well at 0 and 1 where a
  bootstrap interval collapses.

Every bootstrap takes an explicit ``seed``; non-finite bootstrap statistics (e.g. an infinite
mean hitting time when a replicate is censored) are never silently dropped: the fit reports
how many bootstrap samples gave a non-finite slope and the CI is NaN when any did.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ._validation import check_array, check_option, check_scalar
from .measures import ols_slope

__all__ = [
    "condition_bootstrap",
    "fit_trend",
    "trend_from_bootstrap",
]


def _check_samples(samples, owner: str, paired: bool) -> list[np.ndarray]:
    if isinstance(samples, np.ndarray) or not isinstance(samples, Sequence) or not samples:
        raise TypeError(
            f"The 'samples' parameter of {owner} must be a non-empty list of 1-D arrays "
            f"(one per condition). Got {type(samples).__name__} instead."
        )
    arrays = [
        check_array(s, f"samples[{i}]", owner, ndim=1, finite=False) for i, s in enumerate(samples)
    ]
    for i, a in enumerate(arrays):
        if a.size < 2:
            raise ValueError(
                f"The 'samples[{i}]' parameter of {owner} must hold at least 2 replicate "
                f"values. Got {a.size} instead."
            )
    if paired and len({a.size for a in arrays}) > 1:
        raise ValueError(
            f"The 'samples' parameter of {owner} must hold arrays of one length when "
            f"paired=True. Got lengths {[a.size for a in arrays]} instead."
        )
    return arrays


def condition_bootstrap(
    samples: Sequence[np.ndarray],
    statistic: Callable[..., np.ndarray] = np.mean,
    *,
    n_boot: int = 2000,
    seed: int = 0,
    paired: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Statistic of each condition and of B bootstrap resamples of its replicates.

    Parameters
    ----------
    samples : list of 1-D arrays
        Replicate-level values, one array per condition (lengths may differ unless paired).
    statistic : callable
        ``statistic(values, axis=-1)`` reduces the last axis (``np.mean``, ``np.median``, ...).
    n_boot : int
        B, the number of bootstrap resamples.
    seed : int
        Seed of the resampling (condition c uses child c of ``SeedSequence(seed)``, or one
        stream for all conditions when paired).
    paired : bool
        Replicate r of every condition belongs together (same starting point or same random
        stream): resample the same replicate indices in every condition.

    Returns
    -------
    (point, boots)
        ``point`` (C,) the statistic of each condition; ``boots`` (B, C) its bootstrap values.
    """
    owner = "condition_bootstrap"
    arrays = _check_samples(samples, owner, paired)
    n_boot = check_scalar(n_boot, "n_boot", owner, kind=int, low=1, closed="left")
    seed = check_scalar(seed, "seed", owner, kind=int, low=0, closed="left")
    point = np.array([float(statistic(a, axis=-1)) for a in arrays])
    boots = np.empty((n_boot, len(arrays)))
    if paired:
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, arrays[0].size, size=(n_boot, arrays[0].size))
        for c, a in enumerate(arrays):
            boots[:, c] = statistic(a[idx], axis=-1)
        return point, boots
    for c, (a, child) in enumerate(zip(arrays, np.random.SeedSequence(seed).spawn(len(arrays)))):
        idx = np.random.default_rng(child).integers(0, a.size, size=(n_boot, a.size))
        boots[:, c] = statistic(a[idx], axis=-1)
    return point, boots


def fit_trend(
    x: Sequence[float],
    samples: Sequence[np.ndarray],
    *,
    statistic: Callable[..., np.ndarray] = np.mean,
    log_x: bool = True,
    log_y: bool = True,
    level: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
    paired: bool = False,
) -> dict:
    """Slope of g(statistic) against h(x) across conditions, with a bootstrap CI.

    g and h are ``log`` when ``log_y`` / ``log_x`` (a power law s ~ C x^p has slope p), the
    identity otherwise. The statistic of each condition and its bootstrap values come from
    :func:`condition_bootstrap` (replicates resampled within conditions); the fit is
    :func:`trend_from_bootstrap`.
    """
    owner = "fit_trend"
    arrays = _check_samples(samples, owner, paired)
    point, boots = condition_bootstrap(arrays, statistic, n_boot=n_boot, seed=seed, paired=paired)
    fit = trend_from_bootstrap(x, point, boots, log_x=log_x, log_y=log_y, level=level)
    return {**fit, "n_min": int(min(a.size for a in arrays))}


def trend_from_bootstrap(
    x: Sequence[float],
    point: Sequence[float],
    boots: np.ndarray,
    *,
    log_x: bool = True,
    log_y: bool = True,
    level: float = 0.95,
) -> dict:
    """Least-squares slope of g(point) against h(x), with the percentile CI of refitted boots.

    ``point`` (C,) holds one statistic per condition and ``boots`` (B, C) its bootstrap values
    (for instance from :func:`condition_bootstrap`, or from
    :func:`convstudy.measures.bootstrap_replicates` run per condition); g, h are ``log`` when
    ``log_y`` / ``log_x``. The CI is the percentile interval of the B refitted slopes
    (Efron & Tibshirani 1993, ch. 13); it reflects replicate noise, not any misfit of the model.

    Returns a dict with ``slope, intercept, ci_low, ci_high, se`` (bootstrap standard error),
    ``n_conditions``, ``n_boot_nonfinite`` (bootstrap samples whose slope is not finite; the CI
    is NaN when there are any) and the arrays ``x``, ``statistic``, ``statistic_low``,
    ``statistic_high`` (per-condition percentile CIs).
    """
    owner = "trend_from_bootstrap"
    xv = check_array(x, "x", owner, ndim=1)
    pv = check_array(point, "point", owner, ndim=1, finite=False)
    if xv.size != pv.size or xv.size < 2:
        raise ValueError(
            f"The 'x' parameter of {owner} must give one value per condition (at least 2). "
            f"Got {xv.size} values for {pv.size} conditions."
        )
    bv = check_array(boots, "boots", owner, shape=(None, xv.size), finite=False)
    if log_x and np.any(xv <= 0):
        raise ValueError(f"The 'x' parameter of {owner} must be > 0 with log_x=True. Got {xv}.")
    level = check_scalar(level, "level", owner, low=0.0, high=1.0)
    check_option(log_x, "log_x", owner, [False, True])
    check_option(log_y, "log_y", owner, [False, True])
    h = np.log(xv) if log_x else xv
    with np.errstate(divide="ignore", invalid="ignore"):
        gp = np.log(pv) if log_y else pv
        gb = np.log(bv) if log_y else bv
        slope = float(ols_slope(h, gp)) if np.all(np.isfinite(gp)) else np.nan
        slopes = ols_slope(h, np.where(np.isfinite(gb), gb, np.nan))
    bad = int(np.sum(~np.isfinite(slopes)))
    a = (1.0 - level) / 2
    lo, hi = (np.nan, np.nan) if bad else np.quantile(slopes, [a, 1 - a])
    with np.errstate(invalid="ignore"):
        s_lo, s_hi = np.quantile(bv, [a, 1 - a], axis=0)
    return {
        "slope": slope,
        "intercept": float(np.mean(gp) - slope * np.mean(h)) if np.isfinite(slope) else np.nan,
        "ci_low": float(lo),
        "ci_high": float(hi),
        "se": float(np.std(slopes, ddof=1)) if not bad and slopes.size > 1 else np.nan,
        "n_conditions": int(xv.size),
        "n_boot_nonfinite": bad,
        "x": xv,
        "statistic": pv,
        "statistic_low": s_lo,
        "statistic_high": s_hi,
    }
