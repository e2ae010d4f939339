"""Time to target per replicate and its survival curve (Kaplan-Meier), with censoring.

- :func:`time_to_target`: per replicate (and group), the first crossing of a target by ``y``
  in iterations, in samples and, given a time per step, in wall-clock seconds. The crossing is
  located between record steps (:func:`convstudy.stats.curves.first_crossing`, by default
  linearly in ln y and in the step, i.e. log-linear interpolation); a replicate that never
  reaches the target within its recorded budget, or diverged before reaching it, is censored at
  its budget (the last recorded step): its time to target T is only known to exceed it.
- :func:`kaplan_meier`: the product-limit estimate of the survival function S(t) = P(T > t)
  of time to target (Kaplan & Meier 1958),

      S(t) = prod_{t_i <= t} (1 - d_i / n_i),

  with d_i targets reached at t_i and n_i replicates at risk just before t_i (censored at
  t_i still count at risk there), with pointwise bands from the exponential Greenwood formula
  (Var ln S(t) = sum_{t_i <= t} d_i / (n_i (n_i - d_i)), interval built on ln(-ln S)); 1 - S(t)
  is the share of replicates that reached the target by t. Computed by ``lifelines``
  (``KaplanMeierFitter``).
- :func:`median_time`: the median time to target, the smallest t with S(t) <= 1/2 (inf when
  fewer than half of the replicates reach the target), with the CI read off the band where it
  crosses 1/2 (Brookmeyer & Crowley 1982; ``lifelines.utils.median_survival_times``).

Every table is tidy, with ``by`` columns first (e.g. ``problem, method``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .._validation import check_array, check_option, check_scalar
from .curves import INTERPOLATIONS, _check_frame, curve_matrix, first_crossing
from .estimate import Estimate

__all__ = ["UNITS", "time_to_target", "kaplan_meier", "median_time", "survival_table"]

UNITS = ["iterations", "samples", "seconds"]
KM_METHOD = "Kaplan-Meier, exponential Greenwood band (lifelines)"


def _by_list(by, frame: pd.DataFrame, owner: str) -> list[str]:
    by = [by] if isinstance(by, str) else list(by or [])
    _check_frame(frame, by, owner)
    return by


def _one_group(
    frame: pd.DataFrame, targets: np.ndarray, y: str, interpolate: str, step_time, owner: str
) -> pd.DataFrame:
    steps, Y, diverged = curve_matrix(frame, y, "step")
    steps = steps.astype(float)
    if np.any(np.diff(steps) <= 0) or steps.size == 0:
        raise ValueError(f"The 'frame' parameter of {owner} must have increasing record steps.")
    crossing = first_crossing(steps, Y, targets, interpolate=interpolate)  # (R, E)
    reps = np.sort(frame["replicate"].unique())
    out = {
        "replicate": np.repeat(reps, targets.size),
        "target": np.tile(targets, reps.size),
        "iterations": crossing.ravel(),
    }
    budget = {"iterations": np.full(crossing.size, steps[-1])}
    if "samples" in frame.columns:
        samples = frame.groupby("step")["samples"].first().reindex(steps).to_numpy(float)
        out["samples"] = np.interp(out["iterations"], steps, samples)
        out["samples"][np.isnan(out["iterations"])] = np.nan
        budget["samples"] = np.full(crossing.size, samples[-1])
    else:
        out["samples"] = budget["samples"] = np.full(crossing.size, np.nan)
    if step_time is None:
        out["seconds"] = budget["seconds"] = np.full(crossing.size, np.nan)
    elif isinstance(step_time, str):
        clock = frame.groupby("step")[step_time].mean().reindex(steps).to_numpy(float)
        out["seconds"] = np.interp(out["iterations"], steps, clock)
        out["seconds"][np.isnan(out["iterations"])] = np.nan
        budget["seconds"] = np.full(crossing.size, clock[-1])
    else:
        out["seconds"] = out["iterations"] * step_time
        budget["seconds"] = budget["iterations"] * step_time
    out["censored"] = np.isnan(crossing).ravel()
    out["diverged"] = np.repeat(diverged, targets.size)
    out.update({f"budget_{unit}": values for unit, values in budget.items()})
    return pd.DataFrame(out)


def time_to_target(
    frame: pd.DataFrame,
    target,
    *,
    y: str = "subopt",
    by: str | Sequence[str] | None = None,
    interpolate: str = "linear",
    step_time: float | str | None = None,
) -> pd.DataFrame:
    """Per replicate, the time for ``y`` to fall to ``target`` or below, with censoring.

    ``frame`` is a tidy run frame (``replicate, step, [samples], y, diverged``; one condition,
    or several told apart by the ``by`` columns). The crossing is
    :func:`convstudy.stats.curves.first_crossing` on the record steps with ``interpolate``
    (``"linear"``: linear in ln y and in the step, exact for linear convergence; ``"log"``: in
    ln y and ln step; ``"none"``: the first recorded step reaching it, AlgoPerf-style).
    ``samples`` (sample gradients) is the ``samples`` column interpolated at that step;
    ``seconds`` is ``step_time`` x iterations for a float ``step_time`` (seconds per step), the
    named cumulative wall-clock column interpolated at the crossing for a str, NaN for None.

    Columns: ``by..., replicate, target, iterations, samples, seconds, censored, diverged,
    budget_iterations, budget_samples, budget_seconds``. A censored replicate (never reached
    the target within its records, or diverged before reaching it) has NaN times and is
    censored at its budget (the last record); :func:`kaplan_meier` uses both.
    """
    owner = "time_to_target"
    check_option(interpolate, "interpolate", owner, INTERPOLATIONS)
    targets = np.atleast_1d(check_array(target, "target", owner, ndim=(0, 1)))
    if targets.size == 0 or np.any(targets <= 0):
        raise ValueError(
            f"The 'target' parameter of {owner} must be positive number(s). "
            f"Got {targets.tolist()} instead."
        )
    if step_time is not None and not isinstance(step_time, str):
        step_time = check_scalar(step_time, "step_time", owner, low=0.0)
    by = _by_list(by, frame, owner)
    needed = ["replicate", "step", y, "diverged"] + (
        [step_time] if isinstance(step_time, str) else []
    )
    _check_frame(frame, needed, owner)
    if len(frame) == 0:
        raise ValueError(f"The 'frame' parameter of {owner} must not be empty.")
    if not by:
        return _one_group(frame, targets, y, interpolate, step_time, owner)
    parts = []
    for key, group in frame.groupby(by, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        part = _one_group(group, targets, y, interpolate, step_time, owner)
        parts.append(part.assign(**dict(zip(by, key))))
    out = pd.concat(parts, ignore_index=True)
    return out[by + [c for c in out.columns if c not in by]]


def _durations(times, censored, owner: str) -> tuple[np.ndarray, np.ndarray]:
    times = check_array(times, "times", owner, ndim=1, finite=False)
    censored = np.asarray(censored)
    if censored.shape != times.shape or censored.dtype.kind not in "bi":
        raise ValueError(
            f"The 'censored' parameter of {owner} must be booleans of the shape of 'times' "
            f"{times.shape}. Got shape {censored.shape} ({censored.dtype}) instead."
        )
    censored = censored.astype(bool)
    if times.size == 0:
        raise ValueError(f"The 'times' parameter of {owner} must not be empty.")
    if not np.all(np.isfinite(times) & (times >= 0)):
        raise ValueError(
            f"The 'times' parameter of {owner} must be finite and >= 0 (censored replicates at "
            f"their budget). Got {int(np.sum(~(np.isfinite(times) & (times >= 0))))} bad value(s)."
        )
    return times, censored


def _fit(times, censored, level: float, owner: str):
    from lifelines import KaplanMeierFitter

    level = check_scalar(level, "level", owner, low=0.0, high=1.0)
    times, censored = _durations(times, censored, owner)
    return KaplanMeierFitter(alpha=1 - level).fit(times, event_observed=~censored), times.size


def kaplan_meier(times, censored, *, level: float = 0.95) -> pd.DataFrame:
    """Kaplan-Meier survival S(t) = P(T > t) of times to target with a pointwise band.

    ``times`` (n,) are the crossings, or the censoring times (budgets) where ``censored``
    (n,) is True. S(t) = prod_{t_i <= t} (1 - d_i / n_i) (Kaplan & Meier 1958); the ``level``
    band is the exponential Greenwood interval (lifelines). One row per distinct time (and t=0).
    Columns: ``time, survival, ci_low, ci_high, reached, reached_ci_low, reached_ci_high,
    at_risk, events, censored`` where ``reached = 1 - survival`` is the share of replicates
    that reached the target by ``time`` and ``events``/``censored`` count the replicates that
    reached it / were censored at ``time``.
    """
    kmf, _ = _fit(times, censored, level, "kaplan_meier")
    sf = kmf.survival_function_.iloc[:, 0].to_numpy()
    band = kmf.confidence_interval_.to_numpy()
    table = kmf.event_table
    return pd.DataFrame(
        {
            "time": kmf.survival_function_.index.to_numpy(float),
            "survival": sf,
            "ci_low": band[:, 0],
            "ci_high": band[:, 1],
            "reached": 1 - sf,
            "reached_ci_low": 1 - band[:, 1],
            "reached_ci_high": 1 - band[:, 0],
            "at_risk": table["at_risk"].to_numpy(int),
            "events": table["observed"].to_numpy(int),
            "censored": table["censored"].to_numpy(int),
        }
    )


def median_time(times, censored, *, level: float = 0.95) -> Estimate:
    """Median time to target from the Kaplan-Meier curve, with its ``level`` CI.

    The median is the smallest t with S(t) <= 1/2 (inf when S stays above 1/2: fewer than half
    of the replicates reach the target within the budget); the CI bounds are where the band
    of :func:`kaplan_meier` crosses 1/2 (Brookmeyer & Crowley 1982), inf when it never does.
    ``n`` counts the replicates, censored included.
    """
    from lifelines.utils import median_survival_times

    kmf, n = _fit(times, censored, level, "median_time")
    ci = median_survival_times(kmf.confidence_interval_).to_numpy(float)[0]
    return Estimate(float(kmf.median_survival_time_), float(ci[0]), float(ci[1]), n,
                    "Kaplan-Meier median, interval from the exponential Greenwood band",
                    level)  # fmt: skip


def survival_table(
    ttt: pd.DataFrame,
    *,
    unit: str = "iterations",
    by: str | Sequence[str] | None = ("method",),
    level: float = 0.95,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Kaplan-Meier curves and median times to target of a :func:`time_to_target` frame.

    Groups are the ``by`` columns and ``target``; times are ``unit`` (one of ``iterations,
    samples, seconds``), censored replicates at ``budget_{unit}``. Returns two tidy frames:
    the curves (``by..., target,`` then the columns of :func:`kaplan_meier`) and the medians
    (``by..., target, median, ci_low, ci_high, n, n_censored``).
    """
    owner = "survival_table"
    check_option(unit, "unit", owner, UNITS)
    by = _by_list(by, ttt, owner)
    _check_frame(ttt, ["target", unit, f"budget_{unit}", "censored"], owner)
    keys = by + ["target"]
    curves, medians = [], []
    for key, group in ttt.groupby(keys, sort=True):
        labels = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        censored = group["censored"].to_numpy(bool)
        times = np.where(censored, group[f"budget_{unit}"], group[unit]).astype(float)
        curves.append(kaplan_meier(times, censored, level=level).assign(**labels))
        m = median_time(times, censored, level=level)
        medians.append({**labels, "median": m.value, "ci_low": m.ci_low, "ci_high": m.ci_high,
                        "n": m.n, "n_censored": int(censored.sum())})  # fmt: skip
    curves = pd.concat(curves, ignore_index=True)
    curves = curves[keys + [c for c in curves.columns if c not in keys]]
    return curves, pd.DataFrame(medians)
