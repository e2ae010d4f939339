"""Binomial proportions and differences of proportions with score intervals.

Score intervals (Wilson 1927; Newcombe 1998) behave well at 0 and 1, where a bootstrap or Wald
interval collapses to a point.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
from scipy import stats

from .._validation import check_option, check_scalar
from .estimate import Estimate

__all__ = ["proportion_ci", "proportion_difference_ci"]

_METHOD_TEXT = {"wilson": "Wilson score", "exact": "Clopper-Pearson exact"}


def _check_counts(successes, trials, owner: str, suffix: str = "") -> tuple[int, int]:
    n = check_scalar(trials, "trials" + suffix, owner, kind=int, low=1, closed="left")
    k = check_scalar(successes, "successes" + suffix, owner, kind=int, low=0, high=n, closed="both")
    return k, n


def proportion_ci(
    successes: int, trials: int, *, level: float = 0.95, method: str = "wilson"
) -> Estimate:
    """The binomial proportion k/n with its interval (all NaN, n = 0, when nothing was observed).

    ``method`` is ``"wilson"`` (score interval, Wilson 1927) or ``"exact"`` (Clopper & Pearson
    1934), both from ``scipy.stats.binomtest(k, n).proportion_ci``.
    """
    owner = "proportion_ci"
    check_option(method, "method", owner, ["wilson", "exact"])
    level = check_scalar(level, "level", owner, low=0.0, high=1.0)
    if all(isinstance(v, numbers.Integral) and v == 0 for v in (successes, trials)):
        nan = float("nan")
        return Estimate(nan, nan, nan, 0, _METHOD_TEXT[method], level)
    k, n = _check_counts(successes, trials, owner)
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=level, method=method)
    return Estimate(k / n, float(ci.low), float(ci.high), n, _METHOD_TEXT[method], level)


def proportion_difference_ci(
    successes_1: int, trials_1: int, successes_2: int, trials_2: int, *, level: float = 0.95
) -> Estimate:
    """p1 - p2 for two independent proportions, Newcombe's hybrid score interval.

    With Wilson intervals (l_i, u_i) of each p_i (Newcombe 1998, "Interval estimation for the
    difference between independent proportions", Stat. Med. 17, method 10)::

        low  = p1 - p2 - sqrt((p1 - l1)^2 + (u2 - p2)^2),
        high = p1 - p2 + sqrt((u1 - p1)^2 + (p2 - l2)^2).

    Unlike the Wald or bootstrap intervals it stays informative when a proportion is 0 or 1.
    ``n`` is the smaller number of trials.
    """
    owner = "proportion_difference_ci"
    k1, n1 = _check_counts(successes_1, trials_1, owner, "_1")
    k2, n2 = _check_counts(successes_2, trials_2, owner, "_2")
    e1 = proportion_ci(k1, n1, level=level)
    e2 = proportion_ci(k2, n2, level=level)
    p1, l1, u1 = e1.value, e1.ci_low, e1.ci_high
    p2, l2, u2 = e2.value, e2.ci_low, e2.ci_high
    d = p1 - p2
    return Estimate(
        d,
        float(d - np.hypot(p1 - l1, u2 - p2)),
        float(d + np.hypot(u1 - p1, p2 - l2)),
        min(n1, n2),
        "Newcombe hybrid score",
        level,
    )


def proportions_by(
    frame: pd.DataFrame,
    outcome: str,
    by: list[str],
    *,
    reference: dict | None = None,
    level: float = 0.95,
) -> pd.DataFrame:
    """The share of rows whose boolean column ``outcome`` is True, per group of ``by``.

    Columns: ``by..., successes, trials, value, ci_low, ci_high`` with Wilson score intervals
    (:func:`proportion_ci`), groups sorted. With ``reference`` (the ``by`` values of one group,
    e.g. ``{"method": "gd"}``) also ``minus_reference, minus_reference_low,
    minus_reference_high``: each group's share minus the reference's, with Newcombe's interval
    (:func:`proportion_difference_ci`). A missing outcome must be decided by the caller (e.g. a
    diverged replicate counted as a failure) before this is called.
    """
    counts = frame.groupby(list(by), sort=True)[outcome].agg(successes="sum", trials="size")
    table = counts.reset_index().assign(successes=lambda t: t["successes"].astype(int))
    k, n = table["successes"].tolist(), table["trials"].tolist()
    cis = [proportion_ci(k_i, n_i, level=level) for k_i, n_i in zip(k, n)]
    table = table.assign(
        value=[c.value for c in cis],
        ci_low=[c.ci_low for c in cis],
        ci_high=[c.ci_high for c in cis],
    )
    if reference is None:
        return table
    match = np.logical_and.reduce([table[key] == v for key, v in reference.items()])
    if match.sum() != 1:
        raise ValueError(
            f"The 'reference' parameter of proportions_by must name one group of {list(by)}. "
            f"Got {reference!r}, which matches {int(match.sum())}."
        )
    ref = table[match].iloc[0]
    k_ref, n_ref = int(ref["successes"]), int(ref["trials"])
    diffs = [
        proportion_difference_ci(k_i, n_i, k_ref, n_ref, level=level) for k_i, n_i in zip(k, n)
    ]
    return table.assign(
        minus_reference=[d.value for d in diffs],
        minus_reference_low=[d.ci_low for d in diffs],
        minus_reference_high=[d.ci_high for d in diffs],
    )


def diverged_share(frame, *, level: float = 0.95, method: str = "exact") -> Estimate:
    """Share of a condition's replicates that diverged (at any record) with :func:`proportion_ci`.

    ``frame`` is a tidy run frame (columns ``replicate`` and ``diverged``); ``n`` is the number
    of replicates.
    """
    diverged = frame.groupby("replicate")["diverged"].any()
    return proportion_ci(int(diverged.sum()), int(diverged.size), level=level, method=method)


__all__ += ["diverged_share"]
