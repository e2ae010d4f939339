"""Slopes and rates with bootstrap confidence intervals: one fit machinery for every study.

Every fit is a least-squares slope of g(y) against x, with g = ln or the identity, through
point estimates y (S,), and a percentile CI from the same fit refitted on B bootstrap
replicates of y (B, S) (Efron & Tibshirani 1993, ch. 13). The CI reflects replicate noise,
not any misfit of the model. The public fits differ only in where y and its replicates come
from:

- :func:`fit_loglog_slope`, :func:`fit_linear_rate`: the mean curve of one condition over a
  window of recorded steps (ln E[y] against ln x, or against x for a linear rate);
- :func:`fit_hitting_slope`: the mean curve's hitting times against ln(1/eps);
- :func:`fit_trend`, :func:`trend_from_bootstrap`, :func:`fit_power_law`: one statistic per
  condition, against the conditions' x (a trend across conditions).

Each returns a :class:`SlopeFit`: the slope as an :class:`~convstudy.stats.estimate.Estimate`
with the bootstrap standard error, the intercept and the fit's own counts.
:func:`fit_inverse_time_model` fits the two coefficients of SGD's 1/k model to curves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .._validation import check_array, check_option, check_scalar
from .curves import curve_matrix, mean_curve_crossings
from .estimate import Estimate, bootstrap, bootstrap_method, percentile_interval
from .means import finite_values

__all__ = [
    "SlopeFit",
    "ols_slope",
    "bootstrap_slope",
    "fit_loglog_slope",
    "fit_linear_rate",
    "fit_hitting_slope",
    "condition_bootstrap",
    "fit_trend",
    "trend_from_bootstrap",
    "fit_power_law",
    "fit_inverse_time_model",
]


@dataclass(frozen=True)
class SlopeFit:
    """A fitted slope with its CI (``estimate``) and the fit's other numbers.

    ``se`` is the standard deviation of the bootstrap slopes, ``intercept`` the point fit's
    intercept (in the fitted coordinates), ``n_boot_nonfinite`` the bootstrap replicates whose
    slope was not finite, and ``details`` the counts and ranges specific to each fit.
    """

    estimate: Estimate
    se: float
    intercept: float
    n_boot_nonfinite: int
    details: dict = field(default_factory=dict)


def ols_slope(x: np.ndarray, y: np.ndarray, *, skip_nan: bool = False) -> np.ndarray:
    """Least-squares slopes sum (x - xbar)(y - ybar) / sum (x - xbar)^2 of y (..., S) against x.

    ``skip_nan=False``: a NaN in a row gives a NaN slope. ``skip_nan=True``: each row is fitted on
    its finite points alone (xbar per row), NaN when fewer than 2 remain.
    """
    x = np.asarray(x, dtype=float)
    if not skip_nan:
        xc = x - x.mean()
        return (np.asarray(y) - np.mean(y, axis=-1, keepdims=True)) @ xc / (xc @ xc)
    y = np.atleast_2d(np.asarray(y, dtype=float))
    m = np.isfinite(y)
    n = m.sum(axis=1)
    xm = np.where(m, x[None, :], 0.0)
    ym = np.where(m, y, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        xbar = xm.sum(axis=1) / n
        ybar = ym.sum(axis=1) / n
        xc = np.where(m, x[None, :] - xbar[:, None], 0.0)
        sxx = (xc * xc).sum(axis=1)
        slope = (xc * (ym - ybar[:, None] * m)).sum(axis=1) / sxx
    return np.where((n >= 2) & (sxx > 0), slope, np.nan)


def bootstrap_slope(
    x,
    point,
    boots,
    *,
    n: int,
    log_y: bool = True,
    level: float = 0.95,
    skip_nan: bool = False,
    nonfinite: str = "ignore",
    method: str | None = None,
) -> SlopeFit:
    """OLS slope of g(point) (S,) against ``x`` (S,), with the percentile CI of refitted ``boots``.

    g = ln when ``log_y`` (a power law y ~ C x^p against ln x has slope p). A non-finite
    g(value) (a non-positive value under ln, a NaN for a target never reached) is a missing
    point: ``skip_nan=True`` fits each row (and the point estimates) on its finite points
    (:func:`ols_slope`), otherwise the row's slope is NaN. Non-finite bootstrap slopes are left
    out of the CI (``nonfinite="ignore"``) or make the CI and ``se`` NaN (``nonfinite="fail"``).
    ``n`` is the number of replicates behind the
    fit and ``method`` describes the bootstrap (default: a percentile bootstrap over replicates).
    """
    owner = "bootstrap_slope"
    check_option(nonfinite, "nonfinite", owner, ["ignore", "fail"])
    level = check_scalar(level, "level", owner, low=0.0, high=1.0)
    x = np.asarray(x, dtype=float)
    point = np.asarray(point, dtype=float)
    boots = np.asarray(boots, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        gp = np.log(point) if log_y else point
        gb = np.log(boots) if log_y else boots
        gp = np.where(np.isfinite(gp), gp, np.nan)
        gb = np.where(np.isfinite(gb), gb, np.nan)
        slope = float(np.ravel(ols_slope(x, gp, skip_nan=skip_nan))[0])
        slopes = ols_slope(x, gb, skip_nan=skip_nan)
    bad = int(np.sum(~np.isfinite(slopes)))
    if nonfinite == "fail" and bad:
        low = high = se = np.nan
    else:
        low, high = percentile_interval(slopes, level)
        with np.errstate(invalid="ignore", divide="ignore"):
            se = float(np.nanstd(slopes, ddof=1)) if slopes.size - bad > 1 else np.nan
    intercept = float(np.mean(gp) - slope * np.mean(x)) if np.isfinite(slope) else np.nan
    estimate = Estimate(
        slope, float(low), float(high), int(n), method or bootstrap_method(boots.shape[0]), level
    )
    return SlopeFit(estimate, se, intercept, bad)


def _window_fit(frame, y, x, window, log_x, owner, level, n_boot, seed) -> SlopeFit:
    level = check_scalar(level, "level", owner, low=0.0, high=1.0)
    xs, Y, diverged = curve_matrix(frame, y, x)
    Y = Y[~diverged]
    lo, hi = window if window is not None else (xs[xs > 0].min() if log_x else xs.min(), xs.max())
    keep = (xs >= lo) & (xs <= hi) & (xs > 0 if log_x else True)
    if keep.sum() < 3:
        raise ValueError(
            f"The 'window' parameter of {owner} must cover at least 3 recorded "
            f"steps. Got {window!r}, which covers {int(keep.sum())}."
        )
    if Y.shape[0] < 2:
        raise ValueError(f"{owner} needs at least 2 non-diverged replicates; got {Y.shape[0]}.")
    xv = np.log(xs[keep]) if log_x else xs[keep].astype(float)
    Yk = Y[:, keep]
    boots = bootstrap(Yk, lambda curves: curves, n_boot=n_boot, seed=seed)
    fit = bootstrap_slope(xv, Yk.mean(axis=0), boots, n=Y.shape[0], level=level)
    details = {
        "x_min": float(xs[keep].min()),
        "x_max": float(xs[keep].max()),
        "n_points": int(keep.sum()),
        "n_diverged": int(diverged.sum()),
    }
    return SlopeFit(fit.estimate, fit.se, fit.intercept, fit.n_boot_nonfinite, details)


def fit_loglog_slope(
    frame: pd.DataFrame,
    *,
    seed: int,
    y: str = "subopt",
    x: str = "step",
    window: tuple[float, float] | None = None,
    level: float = 0.95,
    n_boot: int = 1000,
) -> SlopeFit:
    """Slope of ln E[y] against ln x over ``window`` = (x_min, x_max), bootstrap CI.

    E[y] is the mean over non-diverged replicates; the CI resamples replicates. A power law
    E[y] ~ C x^p has slope p (e.g. -1 for SGD with eta_k ~ 1/k on a strongly convex problem,
    Bottou, Curtis & Nocedal 2018, Thm 4.7). ``details``: ``x_min, x_max, n_points,
    n_diverged``.
    """
    return _window_fit(frame, y, x, window, True, "fit_loglog_slope", level, n_boot, seed)


def fit_linear_rate(
    frame: pd.DataFrame,
    *,
    seed: int,
    y: str = "subopt",
    x: str = "step",
    window: tuple[float, float] | None = None,
    level: float = 0.95,
    n_boot: int = 1000,
) -> SlopeFit:
    """Linear convergence rate: E[y] ~ C rho^x fitted as the slope of ln E[y] against x.

    As :func:`fit_loglog_slope` on linear x; ``details["rate"]`` is the Estimate of
    rho = exp(slope). Gradient descent with step 1/L on a mu-strongly convex quadratic has
    rho <= 1 - mu/L per step (Nesterov 2004, Thm 2.1.15).
    """
    fit = _window_fit(frame, y, x, window, False, "fit_linear_rate", level, n_boot, seed)
    s = fit.estimate
    rate = Estimate(
        float(np.exp(s.value)),
        float(np.exp(s.ci_low)),
        float(np.exp(s.ci_high)),
        s.n,
        s.method,
        s.level,
    )
    return SlopeFit(fit.estimate, fit.se, fit.intercept, fit.n_boot_nonfinite,
                    {**fit.details, "rate": rate})  # fmt: skip


def fit_hitting_slope(
    frame: pd.DataFrame,
    eps,
    *,
    seed: int,
    scale: str = "linear",
    y: str = "subopt",
    x: str = "step",
    window: tuple[float, float] | None = None,
    level: float = 0.95,
    n_boot: int = 1000,
) -> SlopeFit:
    """Slope of the mean curve's iterations-to-eps against ln(1/eps), with a bootstrap CI.

    K(eps) is where the mean of ``y`` over non-diverged replicates crosses eps, interpolated
    between records (:func:`convstudy.stats.curves.first_crossing`). ``scale="linear"`` fits
    K = a + s ln(1/eps): for linear convergence f - f* ~ C rho^k the slope is s = 1/ln(1/rho)
    (:func:`convstudy.theory.complexity.iterations_per_efold`). ``scale="loglog"`` fits
    ln K = a + s ln(1/eps): for f - f* ~ C / k^p, s = 1/p (s = 1 for SGD with a 1/k step on a
    strongly convex problem, Bottou et al. 2018, Thm 4.7).

    Only the eps whose point-estimate crossing lies in ``window`` = (x_min, x_max) (default:
    all reached) enter the fit; ``details`` reports them as ``eps_low``, ``eps_high`` and
    ``n_eps``. Each bootstrap mean curve gives its own crossings; an eps a bootstrap curve never
    reaches is left out of that bootstrap's fit, and ``details["p_incomplete"]`` is the share of
    bootstraps where that happened. The slope is NaN when fewer than 3 eps are usable (or fewer
    than 2 replicates did not diverge).
    """
    owner = "fit_hitting_slope"
    check_option(scale, "scale", owner, ["linear", "loglog"])
    level = check_scalar(level, "level", owner, low=0.0, high=1.0)
    eps = np.atleast_1d(check_array(eps, "eps", owner, ndim=(0, 1)))
    log_k = scale == "loglog"
    point, boots, n, n_div = mean_curve_crossings(
        frame, eps, y=y, x=x, interpolate="log" if log_k else "linear", n_boot=n_boot, seed=seed
    )
    keep = np.isfinite(point)
    if window is not None:
        keep &= (point >= window[0]) & (point <= window[1])
    if log_k:
        keep &= point > 0
    details = {
        "eps_low": float(eps[keep].min()) if keep.any() else np.nan,
        "eps_high": float(eps[keep].max()) if keep.any() else np.nan,
        "n_eps": int(keep.sum()),
        "p_incomplete": np.nan,
        "n_diverged": n_div,
    }
    if keep.sum() < 3 or n < 2:
        nan = Estimate(np.nan, np.nan, np.nan, n, bootstrap_method(n_boot), level)
        return SlopeFit(nan, np.nan, np.nan, 0, details)
    fit = bootstrap_slope(
        np.log(1.0 / eps[keep]), point[keep], boots[:, keep],
        n=n, log_y=log_k, level=level, skip_nan=True,
    )  # fmt: skip
    with np.errstate(divide="ignore", invalid="ignore"):
        kept = np.log(boots[:, keep]) if log_k else boots[:, keep]
    details["p_incomplete"] = float((~np.isfinite(kept)).any(axis=1).mean())
    return SlopeFit(fit.estimate, fit.se, fit.intercept, fit.n_boot_nonfinite, details)


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
    seed: int,
    n_boot: int = 2000,
    paired: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Statistic of each condition and of B bootstrap resamples of its replicates.

    ``samples`` holds replicate-level values, one 1-D array per condition (lengths may differ
    unless ``paired``); ``statistic(values, axis=-1)`` reduces the last axis (``np.mean``,
    ``np.median``, ...). Condition c is resampled with child c of ``SeedSequence(seed)``; with
    ``paired=True`` (replicate r of every condition belongs together: same start or same random
    stream) the same replicate indices are drawn for every condition from one stream.

    Returns ``point`` (C,), the statistic of each condition, and ``boots`` (B, C).
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
    seed: int,
    statistic: Callable[..., np.ndarray] = np.mean,
    log_x: bool = True,
    log_y: bool = True,
    level: float = 0.95,
    n_boot: int = 2000,
    paired: bool = False,
) -> SlopeFit:
    """Slope of g(statistic) against h(x) across conditions, with a bootstrap CI.

    g and h are ``log`` when ``log_y`` / ``log_x`` (a power law s ~ C x^p has slope p), the
    identity otherwise. The statistic of each condition and its bootstrap values come from
    :func:`condition_bootstrap`; the fit is :func:`trend_from_bootstrap` with ``n`` the
    smallest number of replicates of a condition.
    """
    arrays = _check_samples(samples, "fit_trend", paired)
    point, boots = condition_bootstrap(arrays, statistic, n_boot=n_boot, seed=seed, paired=paired)
    n_min = int(min(a.size for a in arrays))
    return trend_from_bootstrap(x, point, boots, n=n_min, log_x=log_x, log_y=log_y, level=level)


def trend_from_bootstrap(
    x: Sequence[float],
    point: Sequence[float],
    boots: np.ndarray,
    *,
    n: int,
    log_x: bool = True,
    log_y: bool = True,
    level: float = 0.95,
) -> SlopeFit:
    """Least-squares slope of g(point) against h(x), with the percentile CI of refitted boots.

    ``point`` (C,) holds one statistic per condition and ``boots`` (B, C) its bootstrap values
    (from :func:`condition_bootstrap`, or from :func:`convstudy.stats.estimate.bootstrap` run
    per condition); g, h are ``log`` when ``log_y`` / ``log_x``; ``n`` counts the replicates
    behind each statistic. Non-finite bootstrap statistics (e.g. an infinite mean hitting time)
    are never silently dropped: the CI is NaN when any bootstrap slope is not finite.

    ``details``: ``n_conditions`` and the arrays ``x``, ``statistic``, ``statistic_low``,
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
    fit = bootstrap_slope(
        np.log(xv) if log_x else xv, pv, bv, n=n, log_y=log_y, level=level, nonfinite="fail",
        method=bootstrap_method(bv.shape[0]) + " within conditions",
    )  # fmt: skip
    a = (1.0 - level) / 2
    with np.errstate(invalid="ignore"):
        s_lo, s_hi = np.quantile(bv, [a, 1 - a], axis=0)
    details = {
        "n_conditions": int(xv.size),
        "x": xv,
        "statistic": pv,
        "statistic_low": s_lo,
        "statistic_high": s_hi,
    }
    return SlopeFit(fit.estimate, fit.se, fit.intercept, fit.n_boot_nonfinite, details)


def fit_power_law(x, groups, *, seed: int, level: float = 0.95, n_boot: int = 2000) -> SlopeFit:
    """Exponent p of mean(group_j) ~ C x_j^p: OLS slope of ln means against ln x.

    ``groups[j]`` holds independent replicate values (e.g. per-replicate plateau levels) at
    ``x[j] > 0``; NaN values (diverged replicates) are dropped. The CI is a percentile bootstrap
    whose means resample the replicates of each group independently, all groups from one stream
    seeded by ``seed``. ``n`` is the number of replicates used in total.
    """
    owner = "fit_power_law"
    x = check_array(x, "x", owner, ndim=1)
    if x.size < 2 or x.size != len(groups) or np.any(x <= 0):
        raise ValueError(
            f"The 'x' parameter of {owner} must hold at least 2 positive values, one per group. "
            f"Got {x.tolist()} for {len(groups)} groups instead."
        )
    level = check_scalar(level, "level", owner, low=0.0, high=1.0)
    cleaned = [finite_values(g, "groups", owner) for g in groups]
    means = np.array([g.mean() for g in cleaned])
    if np.any(means <= 0):
        raise ValueError(f"{owner} needs positive group means. Got {means.tolist()}.")
    rng = np.random.default_rng(seed)
    boots = np.column_stack([bootstrap(g, np.asarray, n_boot=n_boot, seed=rng) for g in cleaned])
    n = int(sum(g.size for g in cleaned))
    return bootstrap_slope(np.log(x), means, boots, n=n, level=level)


def fit_inverse_time_model(steps, curves, k0: float, *, k_min: float = 0.0) -> np.ndarray:
    """Variance and bias coefficients (c, B) of SGD curves under eta_k = 1/(mu (k + k0)).

    Model (quadratic, minibatch of b i.i.d. samples; Bottou et al. 2018, Sec. 4.2; see
    :func:`convstudy.theory.complexity.inverse_time_model_iterations`)::

        E f(w_k) - f* ~ c / (k + k0) + B (k0 / (k + k0))^2.

    Each eigen-component lambda of the error is multiplied by 1 - (lambda/mu)/(j + k0) at step j,
    so its noise-free part decays like (k0/(k + k0))^(lambda/mu): the slowest one (lambda = mu)
    leaves the bias term B (k0/(k+k0))^2 in f, the others decay faster. Its noise part settles
    at sigma_lambda^2 / (b mu^2 (2 lambda/mu - 1)(k + k0)), so c = c_1 / b: the variance term of
    a minibatch of b samples is 1/b that of one sample (it scales like 1/(b k)).

    Fitted by least squares on relative residuals, sum_k ((model_k - f_k) / f_k)^2 (every
    decade weighs the same), over records with k >= ``k_min`` and f_k > 0. ``curves`` (R, S)
    may be bootstrap mean curves; returns (R, 2) rows (c, B), NaN where < 2 points are usable.
    """
    owner = "fit_inverse_time_model"
    steps = check_array(steps, "steps", owner, ndim=1)
    curves = np.atleast_2d(check_array(curves, "curves", owner, ndim=(1, 2), finite=False))
    k0 = check_scalar(k0, "k0", owner, low=0.0)
    sel = steps >= k_min
    k, f = steps[sel], curves[:, sel]
    ok = np.isfinite(f) & (f > 0)
    features = np.stack([1.0 / (k + k0), (k0 / (k + k0)) ** 2], axis=-1)  # (S, 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        A = np.where(ok[:, :, None], features[None] / f[:, :, None], 0.0)  # (R, S, 2)
    AtA = np.einsum("rsi,rsj->rij", A, A)
    Atb = A.sum(axis=1)
    out = np.full((curves.shape[0], 2), np.nan)
    good = (ok.sum(axis=1) >= 2) & (np.abs(np.linalg.det(AtA)) > 0)
    if good.any():
        out[good] = np.linalg.solve(AtA[good], Atb[good][:, :, None])[:, :, 0]
    return out


def slope_difference(first: SlopeFit, second: SlopeFit, *, level: float = 0.95) -> Estimate:
    """slope(first) - slope(second) of two independent fits, with a normal interval.

    The half-width is z_{(1+level)/2} sqrt(se_1^2 + se_2^2) from the two bootstrap standard
    errors (independent replicates, so the variances add); ``n`` is the smaller of the two n.
    E.g. the rate of random reshuffling against sampling with replacement at epoch ends.
    """
    from scipy import stats

    level = check_scalar(level, "level", "slope_difference", low=0.0, high=1.0)
    diff = first.estimate.value - second.estimate.value
    half = float(stats.norm.ppf(0.5 + level / 2)) * float(np.hypot(first.se, second.se))
    n = min(first.estimate.n, second.estimate.n)
    return Estimate(float(diff), diff - half, diff + half, n, "normal, from bootstrap SEs", level)


__all__ += ["slope_difference"]


def fit_trends(
    frame: pd.DataFrame,
    *,
    x: str,
    y: str,
    by: Sequence[str],
    seed: int,
    name: str = "trend",
    statistic: Callable[..., np.ndarray] = np.mean,
    log_x: bool = True,
    log_y: bool = True,
    n_boot: int = 2000,
) -> pd.DataFrame:
    """:func:`fit_trend` for every group of ``by`` in a tidy frame of replicate values.

    Within a group, the rows of each ``x`` value are one condition's replicate values of ``y``
    (e.g. hitting times, +inf when censored); the slope of g(statistic) against h(x) gets a
    percentile bootstrap CI, seeded by ``derived_seed(seed, name, *group key as text)``. Columns:
    ``by..., slope, ci_low, ci_high, n`` (fewest replicates of a condition), ``{x}_min``,
    ``{x}_max`` and ``n_nonfinite`` (values of ``y`` that are not finite), in group order.
    """
    from .estimate import derived_seed

    rows = []
    for key, part in frame.groupby(list(by), sort=False):
        key = key if isinstance(key, tuple) else (key,)
        xs, samples = zip(*((v, g[y].to_numpy(float)) for v, g in part.groupby(x)))
        tags = [f"{k:g}" if isinstance(k, float) else str(k) for k in key]
        fit = fit_trend(
            xs, list(samples), seed=derived_seed(seed, name, *tags), statistic=statistic,
            log_x=log_x, log_y=log_y, n_boot=n_boot,
        ).estimate  # fmt: skip
        rows.append({
            **dict(zip(by, key)), "slope": fit.value, "ci_low": fit.ci_low, "ci_high": fit.ci_high,
            "n": fit.n, f"{x}_min": min(xs), f"{x}_max": max(xs),
            "n_nonfinite": int((~np.isfinite(part[y].to_numpy(float))).sum()),
        })  # fmt: skip
    return pd.DataFrame(rows)


__all__ += ["fit_trends"]


def fit_inverse_time_coefficients(
    frame: pd.DataFrame,
    k0: float,
    *,
    seed: int,
    k_min: float = 0.0,
    y: str = "subopt",
    level: float = 0.95,
    n_boot: int = 1000,
) -> tuple[Estimate, float, np.ndarray]:
    """The variance coefficient c of one condition's mean curve, with a bootstrap CI.

    :func:`fit_inverse_time_model` (f ~ c/(k + k0) + B (k0/(k + k0))^2, Bottou et al. 2018,
    Sec. 4.2) fitted to the mean of ``y`` over the non-diverged replicates, records k >= k_min;
    the CI is the percentile interval of c refitted to bootstrap mean curves (Efron &
    Tibshirani 1993, ch. 13; failed fits left out). Returns the Estimate of c, the bias
    coefficient B of the mean curve and the B bootstrap values of c (for fits across conditions).
    """
    level = check_scalar(level, "level", "fit_inverse_time_coefficients", low=0.0, high=1.0)
    xs, Y, diverged = curve_matrix(frame, y)
    Y = Y[~diverged]

    def variance_coefficient(curves: np.ndarray) -> np.ndarray:
        return fit_inverse_time_model(xs, curves, k0, k_min=k_min)[:, 0]

    c, B = fit_inverse_time_model(xs, Y.mean(axis=0), k0, k_min=k_min)[0]
    boots = bootstrap(Y, variance_coefficient, n_boot=n_boot, seed=seed)
    low, high = percentile_interval(boots, level)
    estimate = Estimate(float(c), float(low), float(high), Y.shape[0], bootstrap_method(n_boot))
    return estimate, float(B), boots


__all__ += ["fit_inverse_time_coefficients"]


def curve_loglog_slope(x, y, *, x_min: float = 0.0) -> float:
    """Least-squares slope of ln y against ln x over the points with x >= ``x_min`` (x > 0).

    For a deterministic curve (an exact expectation, a reference power law): a curve y ~ C x^p
    has slope p; no interval (compare :func:`fit_loglog_slope` for the mean curve of runs).
    """
    x = check_array(x, "x", "curve_loglog_slope", ndim=1)
    y = check_array(y, "y", "curve_loglog_slope", shape=x.shape)
    keep = (x >= x_min) & (x > 0)
    if keep.sum() < 2 or np.any(y[keep] <= 0):
        raise ValueError(
            f"curve_loglog_slope needs at least 2 points with x >= {x_min} and y > 0. "
            f"Got {int(keep.sum())} points, min y {y[keep].min() if keep.any() else None}."
        )
    return float(ols_slope(np.log(x[keep]), np.log(y[keep])))


__all__ += ["curve_loglog_slope"]


def min_hitting_slope_ratio(
    frames: dict[str, pd.DataFrame],
    reference: str,
    eps,
    *,
    seed: int,
    y: str = "subopt",
    x: str = "step",
    level: float = 0.95,
    n_boot: int = 1000,
) -> tuple[Estimate, str]:
    """min_j s_j / s_ref over the conditions j != ``reference`` of ``frames``, with a bootstrap CI.

    s is the least-squares slope of a condition's mean-curve hitting times (interpolated linearly
    between records, :func:`convstudy.stats.curves.mean_curve_crossings`) against ln(1/eps),
    over the eps its mean curve reaches: for linear convergence the iterations per e-fold of eps,
    1/ln(1/rho) (as in :func:`fit_hitting_slope`). A ratio > 1 says that the reference converges
    fastest, e.g. the step 2/(L + mu) among fixed steps on a quadratic (Nesterov 2004, Thm
    2.1.15). Condition j is resampled independently, seeded by ``derived_seed(seed, j)``; the CI
    is the percentile interval of the bootstrap ratios and ``n`` the smallest number of
    non-diverged replicates. Returns the estimate and the condition attaining the minimum.
    """
    from .estimate import derived_seed

    owner = "min_hitting_slope_ratio"
    if reference not in frames or len(frames) < 2:
        raise ValueError(
            f"The 'reference' parameter of {owner} must name one of at least 2 frames. "
            f"Got {reference!r} for {sorted(frames)}."
        )
    level = check_scalar(level, "level", owner, low=0.0, high=1.0)
    eps = np.atleast_1d(check_array(eps, "eps", owner, ndim=(0, 1)))
    u, slopes, boots, n = np.log(1.0 / eps), {}, {}, []
    for name, frame in frames.items():
        point, b, n_j, _ = mean_curve_crossings(
            frame, eps, y=y, x=x, interpolate="linear", n_boot=n_boot, seed=derived_seed(seed, name)
        )
        slopes[name], boots[name] = (
            ols_slope(u, point, skip_nan=True)[0],
            ols_slope(u, b, skip_nan=True),
        )
        n.append(n_j)
    others = [name for name in frames if name != reference]
    closest = min(others, key=slopes.get)
    ratios = np.min([boots[name] for name in others], axis=0) / boots[reference]
    low, high = percentile_interval(ratios, level)
    ratio = float(slopes[closest] / slopes[reference])
    return Estimate(
        ratio, float(low), float(high), min(n), bootstrap_method(n_boot), level
    ), closest


__all__ += ["min_hitting_slope_ratio"]


def slope_fit_row(fit: SlopeFit, **columns) -> dict:
    """A table row of a fit: ``columns``, then ``slope, ci_low, ci_high, se, intercept``, the
    fit's ``details`` and ``n``."""
    e = fit.estimate
    return {**columns, "slope": e.value, "ci_low": e.ci_low, "ci_high": e.ci_high, "se": fit.se,
            "intercept": fit.intercept, **fit.details, "n": e.n}  # fmt: skip


__all__ += ["slope_fit_row"]
