"""Curves of tidy run frames: curve matrices, mean curves, hitting times, plateau levels.

Conventions
- A frame has one row per replicate x recorded step (see :func:`convstudy.simulate`).
- A replicate that diverged is excluded from means and counted in ``n_diverged``; for hitting
  times it is censored. Every statistic reports how many replicates it covers.
- A hitting time is the first *recorded* step at which the target is reached (AlgoPerf,
  DeepOBS), or optionally the crossing interpolated between records; a run that never reaches
  the target within the budget is censored (NaN), never dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._validation import check_array, check_option
from .estimate import Estimate, bootstrap, percentile_interval
from .means import mean_sem_ci

__all__ = [
    "curve_matrix",
    "mean_curve",
    "first_crossing",
    "hitting_times",
    "mean_curve_crossings",
    "mean_curve_hitting_time",
    "time_average",
    "mean_curve_crossing_table",
]

INTERPOLATIONS = ["none", "linear", "log"]


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


def mean_curve(
    frame: pd.DataFrame,
    y: str = "subopt",
    x: str = "step",
    *,
    level: float = 0.95,
    by: list[str] | None = None,
) -> pd.DataFrame:
    """Mean of ``y`` across non-diverged replicates at each ``x`` with a t-interval.

    Columns: ``by..., x, mean, sem, ci_low, ci_high, n, n_diverged`` (see
    :func:`convstudy.stats.means.mean_sem_ci`).
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
    mean, sem, lo, hi, n = mean_sem_ci(Y[~diverged], level)
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


def first_crossing(xs, curves, eps, *, interpolate: str = "none") -> np.ndarray:
    """First x at which each curve falls to eps or below: (B, E), NaN when never (censored).

    ``xs`` (S,) strictly increasing record positions, ``curves`` (B, S) values (NaN = diverged,
    never reaches), ``eps`` (E,) targets. With j the first record where y_j <= eps:

    - ``interpolate="none"``: x_j, the first recorded crossing (rounds up to the record grid);
    - ``"linear"``: the crossing interpolated between records j-1 and j linearly in ln y and in
      x (suits linear convergence, ln y linear in x);
    - ``"log"``: linearly in ln y and in ln x (suits power laws y ~ C x^-p).

    A curve at or below eps at its first record crosses there.
    """
    owner = "first_crossing"
    check_option(interpolate, "interpolate", owner, INTERPOLATIONS)
    xs = check_array(xs, "xs", owner, ndim=1)
    curves = check_array(curves, "curves", owner, ndim=2, finite=False)
    eps = np.atleast_1d(check_array(eps, "eps", owner, ndim=(0, 1)))
    if curves.shape[1] != xs.size:
        raise ValueError(
            f"The 'curves' parameter of {owner} must have {xs.size} columns (one per x). "
            f"Got shape {curves.shape} instead."
        )
    if np.any(eps <= 0):
        raise ValueError(f"The 'eps' parameter of {owner} must be > 0. Got {eps.tolist()}.")
    if np.any(np.diff(xs) <= 0):
        raise ValueError(f"The 'xs' parameter of {owner} must be strictly increasing.")
    if interpolate == "log" and xs[0] < 0:
        raise ValueError(f"The 'xs' parameter of {owner} must be >= 0 with interpolate='log'.")
    y = np.nan_to_num(curves, nan=np.inf)
    reached = y[:, :, None] <= eps[None, None, :]  # (B, S, E)
    hit = reached.any(axis=1)
    j = reached.argmax(axis=1)  # (B, E)
    if interpolate == "none":
        return np.where(hit, xs[j], np.nan)
    jp = np.maximum(j - 1, 0)
    rows = np.arange(y.shape[0])[:, None]
    tiny = np.finfo(float).tiny
    with np.errstate(divide="ignore", invalid="ignore"):
        ly0 = np.log(np.maximum(y[rows, jp], tiny))
        ly1 = np.log(np.maximum(y[rows, j], tiny))
        t = np.clip((ly0 - np.log(eps)[None, :]) / (ly0 - ly1), 0.0, 1.0)
    t = np.where(np.isfinite(t), t, 1.0)
    x0, x1 = xs[jp], xs[j]
    if interpolate == "log":
        positive = x0 > 0
        with np.errstate(divide="ignore"):
            lx = np.exp(np.log(np.where(positive, x0, 1.0)) * (1 - t) + np.log(x1) * t)
        x = np.where(positive, lx, x0 + t * (x1 - x0))
    else:
        x = x0 + t * (x1 - x0)
    x = np.where(j == 0, xs[0], x)
    return np.where(hit, x, np.nan)


def _check_eps(eps, owner: str) -> np.ndarray:
    eps = np.atleast_1d(np.asarray(eps, dtype=float))
    if eps.ndim != 1 or not np.all(np.isfinite(eps) & (eps > 0)):
        raise ValueError(
            f"The 'eps' parameter of {owner} must be positive finite "
            f"number(s). Got {eps.tolist()} instead."
        )
    return eps


def hitting_times(frame: pd.DataFrame, eps, *, y: str = "subopt", x: str = "step") -> pd.DataFrame:
    """Per replicate and target eps, the first recorded ``x`` with ``y <= eps``.

    Columns: ``replicate, eps, hit, censored, diverged``. ``hit`` is NaN when censored
    (never reached within the recorded budget, or diverged before reaching it).
    """
    eps = _check_eps(eps, "hitting_times")
    xs, Y, diverged = curve_matrix(frame, y, x)
    first = first_crossing(xs, Y, eps)
    reps = np.sort(frame["replicate"].unique())
    return pd.DataFrame(
        {
            "replicate": np.repeat(reps, eps.size),
            "eps": np.tile(eps, reps.size),
            "hit": first.ravel(),
            "censored": np.isnan(first).ravel(),
            "diverged": np.repeat(diverged, eps.size),
        }
    )


def mean_curve_crossings(
    frame: pd.DataFrame,
    eps,
    *,
    seed: int,
    y: str = "subopt",
    x: str = "step",
    interpolate: str = "none",
    n_boot: int = 1000,
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Crossings of the mean curve and of bootstrap mean curves: (point (E,), boots (B, E), n,
    n_diverged).

    The mean is over the n non-diverged replicates; bootstrap mean curves resample them
    (:func:`convstudy.stats.estimate.bootstrap`); crossings are :func:`first_crossing` with
    ``interpolate``. NaN marks an eps never reached; with no non-diverged replicate everything
    is NaN.
    """
    eps = np.atleast_1d(check_array(eps, "eps", "mean_curve_crossings", ndim=(0, 1)))
    xs, Y, diverged = curve_matrix(frame, y, x)
    Y = Y[~diverged]
    if Y.shape[0] == 0:
        nan = np.full(eps.size, np.nan)
        return nan, np.full((n_boot, eps.size), np.nan), 0, int(diverged.sum())

    def crossings(curves: np.ndarray) -> np.ndarray:
        return first_crossing(xs, curves, eps, interpolate=interpolate)

    point = crossings(Y.mean(axis=0)[None])[0]
    boots = bootstrap(Y, crossings, n_boot=n_boot, seed=seed)
    return point, boots, int(Y.shape[0]), int(diverged.sum())


def mean_curve_hitting_time(
    frame: pd.DataFrame,
    eps,
    *,
    seed: int,
    y: str = "subopt",
    x: str = "step",
    level: float = 0.95,
    n_boot: int = 1000,
) -> pd.DataFrame:
    """Steps for the mean curve E[y] to reach each eps, with a bootstrap CI over replicates.

    Columns: ``eps, hit, ci_low, ci_high, censored, p_censored, n, n_diverged``; ``p_censored``
    is the share of bootstrap mean curves that never reach eps (the CI's upper end is then
    inf). Hitting times are record steps and may be inf, so the CI takes order statistics
    (:func:`convstudy.stats.estimate.percentile_interval` with ``discrete=True``). With every
    replicate diverged nothing reaches eps: ``hit`` NaN, the CI [inf, inf], ``p_censored`` 1.
    """
    table, _ = _mean_curve_hits(
        frame, eps, "mean_curve_hitting_time", "none", seed, y, x, level, n_boot
    )
    return table


def _mean_curve_hits(frame, eps, owner, interpolate, seed, y, x, level, n_boot):
    """The hitting-time table of the mean curve and the bootstrap crossings (B, E) behind it."""
    eps = _check_eps(eps, owner)
    point, boots, n, n_diverged = mean_curve_crossings(
        frame, eps, seed=seed, y=y, x=x, interpolate=interpolate, n_boot=n_boot
    )
    never = np.isnan(boots)
    low, high = percentile_interval(np.where(never, np.inf, boots), level, discrete=True)
    table = pd.DataFrame(
        {
            "eps": eps,
            "hit": point,
            "ci_low": low,
            "ci_high": high,
            "censored": np.isnan(point),
            "p_censored": never.mean(axis=0),
            "n": n,
            "n_diverged": n_diverged,
        }
    )
    return table, boots


def time_average(
    frame: pd.DataFrame, start: float, *, y: str = "subopt", x: str = "step"
) -> pd.DataFrame:
    """Per replicate, the mean of ``y`` over the recorded rows with ``x >= start``.

    With evenly spaced records over a stationary tail this is the time average that estimates
    a plateau (the noise floor): averaging along the trajectory, then across replicates,
    reduces the variance of the estimate. Columns: ``replicate, value, n_points, diverged``
    (``value`` is NaN for a replicate that diverged).
    """
    xs, values, diverged = curve_matrix(frame, y, x)
    keep = xs >= start
    if not keep.any():
        raise ValueError(
            f"The 'start' parameter of time_average must not exceed the last recorded {x} "
            f"({xs.max()}). Got {start!r} instead."
        )
    reps = np.sort(frame["replicate"].unique())
    with np.errstate(invalid="ignore"):
        level = np.where(diverged, np.nan, values[:, keep].mean(axis=1))
    return pd.DataFrame(
        {"replicate": reps, "value": level, "n_points": int(keep.sum()), "diverged": diverged}
    )


def paired_curve_ratio(
    numerator: pd.DataFrame,
    denominator: pd.DataFrame,
    y: str,
    *,
    seed: int,
    x: str = "step",
    level: float = 0.95,
    n_boot: int = 1000,
) -> pd.DataFrame:
    """mean_r a_r(x) / mean_r b_r(x) of two paired sets of runs, per recorded x, with a CI.

    Replicate r of both frames shares its random numbers (e.g. two variants of an optimizer run
    from one seed: same starts and minibatches), so replicates are resampled jointly
    (:func:`convstudy.stats.means.paired_ratio_of_means`, percentile bootstrap). Both frames
    must hold the same replicates and x values. Columns: ``x, value, ci_low, ci_high, n``.
    """
    from .means import paired_ratio_of_means

    xs, a, _ = curve_matrix(numerator, y, x)
    xs_b, b, _ = curve_matrix(denominator, y, x)
    reps = [np.sort(f["replicate"].unique()) for f in (numerator, denominator)]
    if not (np.array_equal(xs, xs_b) and np.array_equal(*reps)):
        raise ValueError(
            "The 'numerator' and 'denominator' parameters of paired_curve_ratio must hold the "
            f"same replicates and {x} values. Got {reps[0].size} and {reps[1].size} replicates, "
            f"{xs.size} and {xs_b.size} {x} values."
        )
    value, low, high = paired_ratio_of_means(a, b, seed=seed, level=level, n_boot=n_boot)
    return pd.DataFrame({x: xs, "value": value, "ci_low": low, "ci_high": high, "n": a.shape[0]})


def log_reduction(
    frame: pd.DataFrame, y: str = "subopt", *, floor: float = 0.0, level: float = 0.95
) -> Estimate:
    """Mean over replicates of log10(y_K / y_0), first to last record, with a Student-t CI.

    The number of decades a run gains (e.g. -12: f - f* shrank 10^12-fold). y_K is floored at
    ``floor`` (e.g. machine precision of f*, below which suboptimality is rounding); diverged
    replicates (NaN) and non-finite ratios are left out.
    """
    from .means import mean_ci

    _, values, _ = curve_matrix(frame, y)
    with np.errstate(divide="ignore", invalid="ignore"):
        decades = np.log10(np.maximum(values[:, -1], floor) / values[:, 0])
    return mean_ci(decades[np.isfinite(decades)], level)


def mean_curve_crossing_table(
    frame: pd.DataFrame,
    eps,
    *,
    seed: int,
    interpolate: str = "linear",
    y: str = "subopt",
    x: str = "step",
    level: float = 0.95,
    n_boot: int = 1000,
) -> tuple[pd.DataFrame, np.ndarray]:
    """:func:`mean_curve_hitting_time` with crossings interpolated between records.

    The table has the same columns (``eps, hit, ci_low, ci_high, censored, p_censored, n,
    n_diverged``); ``hit`` is :func:`mean_curve_crossings` with ``interpolate`` ("linear" suits
    linear convergence, "log" power laws) and the CI takes the order statistics of the bootstrap
    crossings, a bootstrap curve that never reaches eps counting as +inf. Also returns those
    bootstrap crossings (B, E), NaN where never reached, for fits across eps or conditions.
    """
    return _mean_curve_hits(
        frame, eps, "mean_curve_crossing_table", interpolate, seed, y, x, level, n_boot
    )


@dataclass(frozen=True)
class TimeAverage:
    """Per-replicate time averages of one condition (``values``, NaN for a diverged replicate),
    their mean with a Student-t interval (``mean``) and the share of replicates diverged with a
    Wilson interval (``diverged``)."""

    values: np.ndarray
    mean: Estimate
    diverged: Estimate

    def row(self, name: str) -> dict:
        """Table columns: ``name`` (the mean), ``ci_low, ci_high, n``, ``share_diverged`` with
        ``diverged_ci_low, diverged_ci_high``, and ``n_diverged``."""
        d = self.diverged
        return {name: self.mean.value, "ci_low": self.mean.ci_low, "ci_high": self.mean.ci_high,
                "n": self.mean.n, "share_diverged": d.value, "diverged_ci_low": d.ci_low,
                "diverged_ci_high": d.ci_high, "n_diverged": round(d.value * d.n)}  # fmt: skip


def time_average_estimate(
    frame: pd.DataFrame, start: float, *, y: str = "subopt", x: str = "step", level: float = 0.95
) -> TimeAverage:
    """The time average of ``y`` over the records with ``x >= start`` per replicate
    (:func:`time_average`; ``start`` = the last step gives the final value), their mean over the
    non-diverged replicates (Student t, :func:`convstudy.stats.means.mean_ci`) and the share of
    replicates diverged (Wilson, :func:`convstudy.stats.proportions.proportion_ci`)."""
    from .means import mean_ci
    from .proportions import proportion_ci

    levels = time_average(frame, start, y=y, x=x)
    diverged = levels["diverged"].to_numpy()
    share = proportion_ci(int(diverged.sum()), diverged.size, level=level)
    return TimeAverage(levels["value"].to_numpy(), mean_ci(levels["value"], level), share)


__all__ += ["TimeAverage", "time_average_estimate"]
