"""Measures on tidy run frames: mean curves, hitting times, rate fits, variances.

Conventions
- A frame has one row per replicate x recorded step (see :func:`convstudy.simulate`).
- A replicate that diverged is excluded from means and fits and counted in ``n_diverged``;
  for hitting times it is censored. Every statistic reports how many replicates it covers.
- Confidence intervals over replicates are percentile bootstraps with an explicit seed
  (resampling whole replicates, so the dependence along a trajectory is kept); intervals for a
  mean use Student's t.
- A hitting time is the first *recorded* step at which the target is reached (AlgoPerf,
  DeepOBS); a run that never reaches it within the budget is censored, never dropped.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd
from scipy import stats

from ._validation import check_option, check_scalar

__all__ = [
    "curve_matrix",
    "mean_curve",
    "hitting_times",
    "mean_curve_hitting_time",
    "bootstrap_replicates",
    "fit_loglog_slope",
    "fit_linear_rate",
    "ols_slope",
    "log_slope_ci",
    "variance_ci",
    "mean_ci",
    "proportion_ci",
    "proportion_difference_ci",
]


def _check_frame(frame: pd.DataFrame, columns: Iterable[str], owner: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(
            f"The 'frame' parameter of {owner} must be a pandas DataFrame. "
            f"Got {type(frame).__name__} instead."
        )
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"The 'frame' parameter of {owner} lacks column(s) {missing}; "
            f"it has {list(frame.columns)}."
        )


def curve_matrix(
    frame: pd.DataFrame, y: str = "subopt", x: str = "step"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x values (S,), values (R, S), diverged (R,)) of one condition's runs.

    A replicate counts as diverged when any of its recorded rows is marked diverged.
    """
    _check_frame(frame, ["replicate", x, y, "diverged"], "curve_matrix")
    table = frame.pivot(index="replicate", columns=x, values=y)
    diverged = frame.groupby("replicate")["diverged"].any().reindex(table.index).to_numpy()
    return table.columns.to_numpy(), table.to_numpy(dtype=float), diverged


def mean_ci(values: np.ndarray, level: float = 0.95, axis: int = 0) -> tuple:
    """Mean, standard error and Student-t CI of ``values`` along ``axis`` (NaN ignored)."""
    values = np.asarray(values, dtype=float)
    n = np.sum(np.isfinite(values), axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN or single values: NaN out
        mean = np.nanmean(values, axis=axis)
        sem = np.nanstd(values, axis=axis, ddof=1) / np.sqrt(n)
    half = stats.t.ppf(0.5 + level / 2, np.maximum(n - 1, 1)) * sem
    return mean, sem, mean - half, mean + half, n


def mean_curve(
    frame: pd.DataFrame,
    y: str = "subopt",
    x: str = "step",
    *,
    level: float = 0.95,
    by: list[str] | None = None,
) -> pd.DataFrame:
    """Mean of ``y`` across non-diverged replicates at each ``x`` with a t-interval.

    Columns: ``by..., x, mean, sem, ci_low, ci_high, n, n_diverged``.
    """
    if by:
        parts = [
            mean_curve(g, y, x, level=level).assign(
                **dict(zip(by, key if isinstance(key, tuple) else (key,)))
            )
            for key, g in frame.groupby(by, sort=True)
        ]
        out = pd.concat(parts, ignore_index=True)
        return out[list(by) + [c for c in out.columns if c not in by]]
    xs, Y, diverged = curve_matrix(frame, y, x)
    mean, sem, lo, hi, n = mean_ci(Y[~diverged], level)
    return pd.DataFrame(
        {
            x: xs,
            "mean": mean,
            "sem": sem,
            "ci_low": lo,
            "ci_high": hi,
            "n": n,
            "n_diverged": int(diverged.sum()),
        }
    )


def hitting_times(frame: pd.DataFrame, eps, *, y: str = "subopt", x: str = "step") -> pd.DataFrame:
    """Per replicate and target eps, the first recorded ``x`` with ``y <= eps``.

    Columns: ``replicate, eps, hit, censored, diverged``. ``hit`` is NaN when censored
    (never reached within the recorded budget, or diverged before reaching it).
    """
    eps = np.atleast_1d(np.asarray(eps, dtype=float))
    if eps.ndim != 1 or not np.all(np.isfinite(eps) & (eps > 0)):
        raise ValueError(
            f"The 'eps' parameter of hitting_times must be positive finite "
            f"number(s). Got {eps.tolist()} instead."
        )
    xs, Y, diverged = curve_matrix(frame, y, x)
    reached = np.nan_to_num(Y, nan=np.inf)[:, :, None] <= eps[None, None, :]  # (R, S, E)
    any_hit = reached.any(axis=1)
    first = np.where(any_hit, xs[reached.argmax(axis=1)], np.nan)
    reps = np.sort(frame["replicate"].unique())
    return pd.DataFrame(
        {
            "replicate": np.repeat(reps, eps.size),
            "eps": np.tile(eps, reps.size),
            "hit": first.ravel().astype(float),
            "censored": ~any_hit.ravel(),
            "diverged": np.repeat(diverged, eps.size),
        }
    )


def _first_crossing(xs: np.ndarray, curves: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """First x where each curve (B, S) is <= each eps (E,): (B, E), NaN when never."""
    reached = np.nan_to_num(curves, nan=np.inf)[:, :, None] <= eps[None, None, :]
    return np.where(reached.any(axis=1), xs[reached.argmax(axis=1)].astype(float), np.nan)


def bootstrap_replicates(
    values: np.ndarray,
    statistic: Callable[[np.ndarray], np.ndarray],
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> np.ndarray:
    """Statistic of bootstrap means: resample the rows (replicates) of ``values`` (R, S).

    ``statistic`` maps mean curves (B, S) to (B, ...). Resampling uses multinomial weights, so
    B mean curves cost one (B, R) @ (R, S) product. Returns the B statistics.
    """
    n_boot = check_scalar(n_boot, "n_boot", "bootstrap_replicates", kind=int, low=1, closed="left")
    rng = np.random.default_rng(seed)
    n = values.shape[0]
    weights = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot) / n
    return statistic(weights @ values)


def mean_curve_hitting_time(
    frame: pd.DataFrame,
    eps,
    *,
    y: str = "subopt",
    x: str = "step",
    level: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Steps for the mean curve E[y] to reach each eps, with a bootstrap CI over replicates.

    Columns: ``eps, hit, ci_low, ci_high, censored, p_censored, n, n_diverged``; ``p_censored``
    is the share of bootstrap mean curves that never reach eps (the CI's upper end is then inf).
    """
    eps = np.atleast_1d(np.asarray(eps, dtype=float))
    xs, Y, diverged = curve_matrix(frame, y, x)
    Y = Y[~diverged]
    if Y.shape[0] == 0:  # every replicate diverged: nothing reaches eps
        nan = np.full(eps.size, np.nan)
        return pd.DataFrame(
            {
                "eps": eps,
                "hit": nan,
                "ci_low": np.inf,
                "ci_high": np.inf,
                "censored": True,
                "p_censored": 1.0,
                "n": 0,
                "n_diverged": int(diverged.sum()),
            }
        )
    point = _first_crossing(xs, Y.mean(axis=0)[None], eps)[0]
    boots = bootstrap_replicates(Y, lambda c: _first_crossing(xs, c, eps), n_boot=n_boot, seed=seed)
    boots_inf = np.where(np.isnan(boots), np.inf, boots)
    # hitting times are discrete and may be inf: take order statistics, no interpolation
    q_low = np.quantile(boots_inf, 0.5 - level / 2, axis=0, method="lower")
    q_high = np.quantile(boots_inf, 0.5 + level / 2, axis=0, method="higher")
    return pd.DataFrame(
        {
            "eps": eps,
            "hit": point,
            "ci_low": q_low,
            "ci_high": q_high,
            "censored": np.isnan(point),
            "p_censored": np.isnan(boots).mean(axis=0),
            "n": Y.shape[0],
            "n_diverged": int(diverged.sum()),
        }
    )


def ols_slope(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares slopes of y against x along the last axis (y may be (B, S))."""
    xc = x - x.mean()
    return (np.asarray(y) - np.mean(y, axis=-1, keepdims=True)) @ xc / (xc @ xc)


def log_slope_ci(x, point, boots, *, level: float = 0.95) -> dict:
    """OLS slope of log(point) against ``x`` and its percentile CI over bootstrap replicates.

    ``point`` (S,) are the estimates at ``x`` (S,) (pass log x for a log-log slope) and
    ``boots`` (B, S) their bootstrap replicates; each row of ``boots`` gives one bootstrap
    slope. Replicates with a non-positive value give NaN slopes and are ignored. Returns
    ``slope, ci_low, ci_high, se`` (se: standard deviation of the bootstrap slopes).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = float(ols_slope(x, np.log(point)))
        slopes = ols_slope(x, np.log(boots))
    q = np.nanquantile(slopes, [0.5 - level / 2, 0.5 + level / 2])
    return {
        "slope": slope,
        "ci_low": float(q[0]),
        "ci_high": float(q[1]),
        "se": float(np.nanstd(slopes, ddof=1)),
    }


def _window_fit(frame, y, x, window, transform_x, owner, level, n_boot, seed):
    xs, Y, diverged = curve_matrix(frame, y, x)
    Y = Y[~diverged]
    lo, hi = (
        window if window is not None else (xs[xs > 0].min() if transform_x else xs.min(), xs.max())
    )
    keep = (xs >= lo) & (xs <= hi) & (xs > 0 if transform_x else True)
    if keep.sum() < 3:
        raise ValueError(
            f"The 'window' parameter of {owner} must cover at least 3 recorded "
            f"steps. Got {window!r}, which covers {int(keep.sum())}."
        )
    if Y.shape[0] < 2:
        raise ValueError(f"{owner} needs at least 2 non-diverged replicates; got {Y.shape[0]}.")
    xv = np.log(xs[keep]) if transform_x else xs[keep].astype(float)
    Yk = Y[:, keep]
    boots = bootstrap_replicates(Yk, lambda curves: curves, n_boot=n_boot, seed=seed)
    return {
        **log_slope_ci(xv, Yk.mean(axis=0), boots, level=level),
        "x_min": float(xs[keep].min()),
        "x_max": float(xs[keep].max()),
        "n_points": int(keep.sum()),
        "n": int(Y.shape[0]),
        "n_diverged": int(diverged.sum()),
    }


def fit_loglog_slope(
    frame: pd.DataFrame,
    *,
    y: str = "subopt",
    x: str = "step",
    window=None,
    level: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict:
    """Slope of log E[y] against log x over ``window`` = (x_min, x_max), bootstrap CI.

    E[y] is the mean over non-diverged replicates; the CI resamples replicates. A power law
    E[y] ~ C x^p has slope p (e.g. -1 for SGD with eta_k ~ 1/k on a strongly convex problem,
    Bottou, Curtis & Nocedal 2018, Thm 4.7).
    """
    check_scalar(level, "level", "fit_loglog_slope", low=0.0, high=1.0)
    return _window_fit(frame, y, x, window, True, "fit_loglog_slope", level, n_boot, seed)


def fit_linear_rate(
    frame: pd.DataFrame,
    *,
    y: str = "subopt",
    x: str = "step",
    window=None,
    level: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict:
    """Linear convergence rate: E[y] ~ C rho^x fitted as the slope of log E[y] against x.

    Returns the fit of :func:`fit_loglog_slope` on linear x plus ``rate`` = exp(slope) and its CI
    (``rate_low``, ``rate_high``); gradient descent with step 1/L on a mu-strongly convex
    quadratic has rho <= 1 - mu/L per step (Nesterov 2004, Thm 2.1.15).
    """
    check_scalar(level, "level", "fit_linear_rate", low=0.0, high=1.0)
    fit = _window_fit(frame, y, x, window, False, "fit_linear_rate", level, n_boot, seed)
    return {
        **fit,
        "rate": float(np.exp(fit["slope"])),
        "rate_low": float(np.exp(fit["ci_low"])),
        "rate_high": float(np.exp(fit["ci_high"])),
    }


def variance_ci(
    values: np.ndarray, *, axis: int = 0, level: float = 0.95, method: str = "asymptotic"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unbiased sample variance along ``axis`` with a distribution-free CI.

    ``asymptotic``: normal interval with the standard error of the sample variance,
    se^2 = (m4 - s^4 (n - 3)/(n - 1)) / n (e.g. Casella & Berger, Ex. 5.8; m4 the fourth central
    moment), valid without normality. ``chi2``: the exact interval for Gaussian data.
    Returns (variance, ci_low, ci_high).
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


def _check_counts(successes, trials, owner: str, suffix: str = "") -> tuple[int, int]:
    n = check_scalar(trials, "trials" + suffix, owner, kind=int, low=1, closed="left")
    k = check_scalar(successes, "successes" + suffix, owner, kind=int, low=0, high=n, closed="both")
    return k, n


def proportion_ci(
    successes: int, trials: int, *, level: float = 0.95, method: str = "wilson"
) -> tuple[float, float, float]:
    """(p, ci_low, ci_high) of a binomial proportion k/n (all NaN when n = 0).

    ``method`` is ``"wilson"`` (score interval, Wilson 1927) or ``"exact"`` (Clopper & Pearson
    1934), both from ``scipy.stats.binomtest(k, n).proportion_ci``.
    """
    owner = "proportion_ci"
    check_option(method, "method", owner, ["wilson", "exact"])
    level = check_scalar(level, "level", owner, low=0.0, high=1.0)
    if all(isinstance(v, numbers.Integral) and v == 0 for v in (successes, trials)):
        return float("nan"), float("nan"), float("nan")  # nothing observed, nothing to say
    k, n = _check_counts(successes, trials, owner)
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=level, method=method)
    return k / n, float(ci.low), float(ci.high)


def proportion_difference_ci(
    successes_1: int, trials_1: int, successes_2: int, trials_2: int, *, level: float = 0.95
) -> tuple[float, float, float]:
    """(p1 - p2, ci_low, ci_high) for two independent proportions, Newcombe's hybrid score.

    With Wilson intervals (l_i, u_i) of each p_i (Newcombe 1998, "Interval estimation for the
    difference between independent proportions", Stat. Med. 17, method 10)::

        low  = p1 - p2 - sqrt((p1 - l1)^2 + (u2 - p2)^2),
        high = p1 - p2 + sqrt((u1 - p1)^2 + (p2 - l2)^2).

    Unlike the Wald or bootstrap intervals it stays informative when a proportion is 0 or 1.
    """
    owner = "proportion_difference_ci"
    k1, n1 = _check_counts(successes_1, trials_1, owner, "_1")
    k2, n2 = _check_counts(successes_2, trials_2, owner, "_2")
    p1, l1, u1 = proportion_ci(k1, n1, level=level)
    p2, l2, u2 = proportion_ci(k2, n2, level=level)
    d = p1 - p2
    return d, float(d - np.hypot(p1 - l1, u2 - p2)), float(d + np.hypot(u1 - p1, p2 - l2))
