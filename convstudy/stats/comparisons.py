"""Aggregates of method comparisons across problems, each with a stratified-bootstrap CI.

Input: a tidy score frame, one row per problem x method x replicate, with a ``score`` column
(e.g. the ``iterations`` of :func:`convstudy.stats.survival.time_to_target`, or a final
objective). NaN (or, when lower is better, +inf) marks a failure: a censored or diverged
replicate, worse than any finite score.

- :func:`performance_profile`: Dolan-More performance profiles (Dolan & More 2002). With
  t_{p,s} the performance of method s on problem p (the median score over replicates by
  default) and r_{p,s} = t_{p,s} / min_s t_{p,s} its ratio to the best method on p,
  rho_s(tau) = |{p : r_{p,s} <= tau}| / |P| is the share of problems on which s is within a
  factor tau of the best (rho_s(1): the share it wins; a failure has r = inf).
- :func:`probability_of_improvement`: P(A better than B) = (1/|P|) sum_p P(X_{p,A} beats
  X_{p,B}) with X_{p,s} a random replicate of s on p, estimated by the Mann-Whitney statistic
  (1/(n m)) sum_i sum_j [x_i beats y_j] + 1/2 [x_i = y_j] (Agarwal et al. 2021).
- :func:`interquartile_mean`: the interquartile mean (IQM, the 25 % trimmed mean) of the
  normalised scores of all runs of a method pooled over problems (Agarwal et al. 2021), scores
  made comparable across problems by :func:`normalise_scores`.
- :func:`ranking_table`: methods ranked by IQM, methods whose CIs overlap (directly or through
  a chain of overlapping CIs) sharing a rank.

CIs are percentile intervals of a stratified bootstrap (Agarwal et al. 2021, "Deep RL at the
edge of the statistical precipice", NeurIPS): in each resample the replicates of every method
on every problem are resampled with replacement within that (problem, method) cell, the
problems themselves kept fixed. Each cell's resampling is seeded by
``derived_seed(seed, <statistic>, problem, method)``, so it does not depend on which other
problems or methods are present.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._validation import check_array, check_option, check_scalar
from .estimate import Estimate, derived_seed, percentile_interval, resample_weights

__all__ = [
    "iqm",
    "normalise_scores",
    "performance_profile",
    "probability_of_improvement",
    "interquartile_mean",
    "rank_with_ties",
    "ranking_table",
]

NORMALISATIONS = ["ratio", "minmax", "none"]


def _method_text(n_boot: int) -> str:
    return f"stratified percentile bootstrap over replicates within problems, {n_boot} resamples"


def _check_scores(
    frame: pd.DataFrame, score: str, owner: str, *, complete: bool = True
) -> pd.DataFrame:
    """The frame's ``problem, method, score`` columns as floats; errors in one line."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(
            f"The 'frame' parameter of {owner} must be a pandas DataFrame. "
            f"Got {type(frame).__name__} instead."
        )
    missing = [c for c in ("problem", "method", score) if c not in frame.columns]
    if missing:
        raise ValueError(
            f"The 'frame' parameter of {owner} lacks column(s) {missing}; "
            f"it has {list(frame.columns)}."
        )
    if len(frame) == 0:
        raise ValueError(f"The 'frame' parameter of {owner} must not be empty.")
    try:
        values = frame[score].to_numpy(dtype=float)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"The {score!r} column of {owner}'s 'frame' must be numeric. "
            f"Got dtype {frame[score].dtype} instead."
        ) from exc
    out = pd.DataFrame({"problem": frame["problem"].to_numpy(),
                        "method": frame["method"].to_numpy(), "score": values})  # fmt: skip
    if complete:
        cells = out.groupby(["problem", "method"]).size().unstack()
        if cells.isna().any().any():
            absent = [f"{m} on {p}" for p, row in cells.iterrows() for m in row.index[row.isna()]]
            raise ValueError(
                f"The 'frame' parameter of {owner} must hold every method on every problem. "
                f"Missing: {', '.join(map(str, absent[:5]))}{' ...' if len(absent) > 5 else ''}."
            )
    return out


def _check_boot(seed, n_boot, level, owner):
    seed = check_scalar(seed, "seed", owner, kind=int, low=0, closed="left")
    n_boot = check_scalar(n_boot, "n_boot", owner, kind=int, low=1, closed="left")
    level = check_scalar(level, "level", owner, low=0.0, high=1.0)
    return seed, n_boot, level


def _oriented(values: np.ndarray, lower_is_better: bool) -> np.ndarray:
    """Scores as costs (lower is better), a failure (NaN) as +inf."""
    cost = values if lower_is_better else -values
    return np.where(np.isnan(cost), np.inf, cost)


def _cells(scores: pd.DataFrame) -> dict[tuple, np.ndarray]:
    return {key: g["score"].to_numpy() for key, g in scores.groupby(["problem", "method"])}


def _resample(values: np.ndarray, seed: int, n_boot: int) -> np.ndarray:
    """(B, n) bootstrap resamples of one cell's replicates."""
    rng = np.random.default_rng(seed)
    return values[rng.integers(0, values.size, size=(n_boot, values.size))]


def iqm(values, axis: int | None = None) -> float | np.ndarray:
    """Interquartile mean: the mean of the middle 50 % of ``values`` (scipy's
    ``trim_mean(values, 0.25)``: floor(n/4) values cut at each end), as in Agarwal et al. 2021."""
    from scipy.stats import trim_mean

    values = check_array(values, "values", "iqm", finite=False)
    if values.size == 0:
        raise ValueError("The 'values' parameter of iqm must not be empty.")
    return trim_mean(values, 0.25, axis=axis)


def normalise_scores(
    frame: pd.DataFrame,
    *,
    score: str = "score",
    lower_is_better: bool = True,
    how: str = "ratio",
) -> pd.DataFrame:
    """The frame with a ``normalised`` column: scores on a common scale, 1 = best, 0 = failure.

    Per problem, with c = the score as a cost (negated when higher is better):

    - ``how="ratio"`` (positive costs, e.g. times to target): c* / c, with c* the best median
      cost of a method on the problem, the reciprocal of the Dolan-More performance ratio
      (c* the lowest finite cost when every method's median cost is a failure);
    - ``"minmax"``: (c_max - c) / (c_max - c_min) over the finite costs of all runs on the
      problem (1 when they are all equal);
    - ``"none"``: the score itself (already normalised, higher is better).

    A failure (NaN, or +inf cost) normalises to 0.
    """
    owner = "normalise_scores"
    check_option(how, "how", owner, NORMALISATIONS)
    scores = _check_scores(frame, score, owner, complete=False)
    if how == "none":
        return frame.assign(normalised=scores["score"].fillna(0.0).to_numpy())
    cost = _oriented(scores["score"].to_numpy(), lower_is_better)
    out = np.zeros(cost.size)
    for _, index in scores.groupby("problem").indices.items():
        c = cost[index]
        finite = np.isfinite(c)
        if not finite.any():
            continue
        if how == "ratio":
            if np.any(c[finite] <= 0):
                raise ValueError(
                    f"The {score!r} column of {owner}'s 'frame' must be > 0 (as a cost) with "
                    f"how='ratio'. Got {int(np.sum(c[finite] <= 0))} value(s) <= 0."
                )
            methods = scores["method"].to_numpy()[index]
            best = min(np.median(c[methods == m]) for m in np.unique(methods))
            if not np.isfinite(best):  # every method fails in most runs: the best finite run
                best = c[finite].min()
            out[index] = np.where(finite, best / c, 0.0)
        else:
            low, high = c[finite].min(), c[finite].max()
            span = high - low
            out[index] = np.where(finite, (high - c) / span if span > 0 else 1.0, 0.0)
    return frame.assign(normalised=out)


def performance_profile(
    frame: pd.DataFrame,
    *,
    seed: int,
    score: str = "score",
    taus=None,
    lower_is_better: bool = True,
    statistic: str = "median",
    level: float = 0.95,
    n_boot: int = 1000,
) -> pd.DataFrame:
    """Dolan-More performance profiles rho_s(tau) with stratified-bootstrap bands.

    t_{p,s} = ``statistic`` (``"median"`` or ``"mean"``) of the replicates' costs of method s
    on problem p (costs: scores, negated when higher is better, must then be positive for the
    ratios to mean anything, so use ``lower_is_better=True`` with times or positive losses);
    r_{p,s} = t_{p,s} / min_s t_{p,s}; rho_s(tau) = |{p : r_{p,s} <= tau}| / |P| (Dolan & More
    2002). A failure is +inf, so a method failing on p never counts for p; a problem that every
    method fails counts for none. ``taus`` (>= 1) default to 50 log-spaced points from 1 to the
    largest finite ratio. The band at each tau is the percentile interval of rho_s(tau) over
    bootstrap resamples of replicates within each (problem, method).

    Columns: ``method, tau, rho, ci_low, ci_high, n_problems``.
    """
    owner = "performance_profile"
    seed, n_boot, level = _check_boot(seed, n_boot, level, owner)
    check_option(statistic, "statistic", owner, ["median", "mean"])
    scores = _check_scores(frame, score, owner)
    scores["score"] = _oriented(scores["score"].to_numpy(), lower_is_better)
    finite = scores["score"][np.isfinite(scores["score"])]
    if np.any(finite <= 0):
        raise ValueError(
            f"The {score!r} column of {owner}'s 'frame' must be > 0 as a cost (performance "
            f"ratios). Got {int(np.sum(finite <= 0))} value(s) <= 0."
        )
    reduce = np.median if statistic == "median" else np.mean
    problems = np.sort(scores["problem"].unique())
    methods = np.sort(scores["method"].unique())
    cells = _cells(scores)
    point = np.empty((problems.size, methods.size))
    boots = np.empty((n_boot, problems.size, methods.size))
    for i, p in enumerate(problems):
        for j, m in enumerate(methods):
            v = cells[(p, m)]
            point[i, j] = reduce(v)
            resampled = _resample(v, derived_seed(seed, owner, str(p), str(m)), n_boot)
            boots[:, i, j] = reduce(resampled, axis=1)

    def ratios(t: np.ndarray) -> np.ndarray:
        best = t.min(axis=-1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = t / best
        return np.where(np.isfinite(best), r, np.inf)  # every method failed: no one counts

    r_point, r_boot = ratios(point), ratios(boots)
    if taus is None:
        top = r_point[np.isfinite(r_point)].max() if np.isfinite(r_point).any() else 1.0
        taus = np.geomspace(1.0, max(top, 1.0 + 1e-9), 50)
    taus = np.atleast_1d(check_array(taus, "taus", owner, ndim=(0, 1)))
    if np.any(taus < 1):
        raise ValueError(f"The 'taus' parameter of {owner} must be >= 1. Got {taus.min()!r}.")
    rho = (r_point[:, :, None] <= taus).mean(axis=0)  # (S, T)
    rho_boot = (r_boot[..., None] <= taus).mean(axis=1)  # (B, S, T)
    low, high = percentile_interval(rho_boot, level)
    return pd.DataFrame(
        {
            "method": np.repeat(methods, taus.size),
            "tau": np.tile(taus, methods.size),
            "rho": rho.ravel(),
            "ci_low": low.ravel(),
            "ci_high": high.ravel(),
            "n_problems": problems.size,
        }
    )


def _win_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[a_i beats b_j] + 1/2 [a_i = b_j] for costs (lower is better, inf = failure)."""
    return (a[:, None] < b[None, :]) + 0.5 * (a[:, None] == b[None, :])


def probability_of_improvement(
    frame: pd.DataFrame,
    *,
    seed: int,
    score: str = "score",
    lower_is_better: bool = True,
    level: float = 0.95,
    n_boot: int = 1000,
) -> pd.DataFrame:
    """P(A better than B) for every ordered pair of methods, averaged over problems, with a CI.

    On problem p, P_p(A > B) = (1/(n m)) sum_i sum_j ([a_i beats b_j] + 1/2 [a_i = b_j]) over
    the n replicates of A and m of B (the Mann-Whitney U / (n m)): the probability that a random
    replicate of A beats a random replicate of B, ties counting one half (two failures tie).
    The estimate is the mean over problems (Agarwal et al. 2021). The CI resamples the
    replicates of A and of B within each problem (stratified bootstrap); a resample's statistic
    is w_A^T M w_B with M the win matrix and w the resampling weights (counts / n).
    P(A > B) + P(B > A) = 1 exactly.

    Columns: ``method_a, method_b, probability, ci_low, ci_high, n_problems``.
    """
    owner = "probability_of_improvement"
    seed, n_boot, level = _check_boot(seed, n_boot, level, owner)
    scores = _check_scores(frame, score, owner)
    scores["score"] = _oriented(scores["score"].to_numpy(), lower_is_better)
    problems = np.sort(scores["problem"].unique())
    methods = np.sort(scores["method"].unique())
    if methods.size < 2:
        raise ValueError(f"The 'frame' parameter of {owner} must hold at least 2 methods.")
    cells = _cells(scores)
    weights = {}
    for p in problems:
        for m in methods:
            n = cells[(p, m)].size
            rng = np.random.default_rng(derived_seed(seed, owner, str(p), str(m)))
            weights[(p, m)] = resample_weights(rng, n, n_boot)
    rows = []
    for a in methods:
        for b in methods:
            if a == b:
                continue
            point, boot = 0.0, np.zeros(n_boot)
            for p in problems:
                M = _win_matrix(cells[(p, a)], cells[(p, b)])
                point += M.mean()
                boot += np.einsum("bi,ij,bj->b", weights[(p, a)], M, weights[(p, b)])
            point, boot = point / problems.size, boot / problems.size
            low, high = percentile_interval(boot, level)
            rows.append({"method_a": a, "method_b": b, "probability": point,
                         "ci_low": float(low), "ci_high": float(high),
                         "n_problems": problems.size})  # fmt: skip
    return pd.DataFrame(rows)


def interquartile_mean(
    frame: pd.DataFrame,
    *,
    seed: int,
    score: str = "normalised",
    level: float = 0.95,
    n_boot: int = 1000,
) -> pd.DataFrame:
    """IQM of each method's normalised scores pooled over problems, with a stratified CI.

    The IQM (:func:`iqm`, the 25 % trimmed mean) of all runs of a method on all problems
    (Agarwal et al. 2021); ``score`` should be comparable across problems and higher-is-better
    (the ``normalised`` column of :func:`normalise_scores`; NaN counts as 0). The CI is the
    percentile interval of the IQM over resamples of the replicates within each problem.

    Columns: ``method, iqm, ci_low, ci_high, n_problems, n_runs``.
    """
    owner = "interquartile_mean"
    seed, n_boot, level = _check_boot(seed, n_boot, level, owner)
    scores = _check_scores(frame, score, owner, complete=False)
    values = scores["score"].to_numpy()
    if np.any(np.isinf(values)):
        raise ValueError(
            f"The {score!r} column of {owner}'s 'frame' must be finite (normalise failures "
            "with normalise_scores)."
        )
    scores["score"] = np.nan_to_num(values, nan=0.0)
    cells = _cells(scores)
    rows = []
    for m in np.sort(scores["method"].unique()):
        keys = [k for k in cells if k[1] == m]
        pooled = np.concatenate([cells[k] for k in keys])
        boot = np.concatenate(
            [_resample(cells[k], derived_seed(seed, owner, str(k[0]), str(m)), n_boot)
             for k in keys], axis=1,
        )  # fmt: skip
        low, high = percentile_interval(iqm(boot, axis=1), level)
        rows.append({"method": m, "iqm": float(iqm(pooled)), "ci_low": float(low),
                     "ci_high": float(high), "n_problems": len(keys),
                     "n_runs": pooled.size})  # fmt: skip
    return pd.DataFrame(rows)


def rank_with_ties(
    table: pd.DataFrame,
    *,
    value: str = "iqm",
    higher_is_better: bool = True,
    method: str = "method",
) -> pd.DataFrame:
    """Rank the rows of ``table`` (``method, value, ci_low, ci_high``) by ``value``, tying
    rows whose CIs overlap.

    Overlap is made transitive: rows whose intervals [ci_low, ci_high] form one connected
    cluster (each overlapping the next when sorted) share a rank, the standard competition rank
    of the cluster (1 + the number of rows in better clusters, e.g. 1, 1, 3). A NaN bound
    counts as an unbounded interval (ties with all its neighbours).

    Returns the table sorted by rank then value, with ``rank`` first and ``tied_with`` (the
    other methods sharing the rank, comma-separated) last.
    """
    owner = "rank_with_ties"
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"The 'table' parameter of {owner} must be a pandas DataFrame.")
    missing = [c for c in (method, value, "ci_low", "ci_high") if c not in table.columns]
    if missing:
        raise ValueError(f"The 'table' parameter of {owner} lacks column(s) {missing}.")
    sign = -1.0 if higher_is_better else 1.0
    t = table.copy()
    t["_key"] = sign * t[value].astype(float)
    t = t.sort_values("_key", kind="stable").reset_index(drop=True)
    # As costs (lower is better): the interval in cost units.
    lo = np.fmin(sign * t["ci_low"].to_numpy(float), sign * t["ci_high"].to_numpy(float))
    hi = np.fmax(sign * t["ci_low"].to_numpy(float), sign * t["ci_high"].to_numpy(float))
    lo = np.where(np.isnan(t["ci_low"]) | np.isnan(t["ci_high"]), -np.inf, lo)
    hi = np.where(np.isnan(t["ci_low"]) | np.isnan(t["ci_high"]), np.inf, hi)
    # Connected components of the overlap graph (ties made transitive).
    n = len(t)
    cluster = np.arange(n)
    for i in range(n):
        for j in range(i + 1, n):
            if lo[j] <= hi[i] and lo[i] <= hi[j]:
                cluster[cluster == cluster[j]] = cluster[i]
    # Clusters in order of their best member; competition rank 1 + rows in better clusters.
    order = {c: k for k, c in enumerate(dict.fromkeys(cluster))}
    sizes = np.bincount([order[c] for c in cluster], minlength=len(order))
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    t["rank"] = [int(starts[order[c]]) + 1 for c in cluster]
    names = t[method].astype(str).to_numpy()
    t["tied_with"] = [
        ", ".join(names[(cluster == c) & (names != n)]) for c, n in zip(cluster, names)
    ]
    t = t.drop(columns="_key").sort_values(["rank", value], ascending=[True, not higher_is_better])
    return t[["rank"] + [c for c in t.columns if c != "rank"]].reset_index(drop=True)


def ranking_table(
    frame: pd.DataFrame,
    *,
    seed: int,
    score: str = "score",
    lower_is_better: bool = True,
    how: str = "ratio",
    level: float = 0.95,
    n_boot: int = 1000,
) -> pd.DataFrame:
    """Methods ranked by the IQM of their normalised scores, overlapping CIs sharing a rank.

    Scores are normalised per problem (:func:`normalise_scores` with ``how``), their IQM and
    stratified-bootstrap CI computed per method (:func:`interquartile_mean`) and ranked with
    :func:`rank_with_ties`. Columns: ``rank, method, iqm, ci_low, ci_high, n_problems, n_runs,
    tied_with``.
    """
    normalised = normalise_scores(frame, score=score, lower_is_better=lower_is_better, how=how)
    table = interquartile_mean(normalised, seed=seed, level=level, n_boot=n_boot)
    return rank_with_ties(table, value="iqm", higher_is_better=True)


def pair_estimate(table: pd.DataFrame, a: str, b: str) -> Estimate:
    """The P(``a`` better than ``b``) row of :func:`probability_of_improvement` as an
    :class:`Estimate` (for a check)."""
    row = table[(table["method_a"] == a) & (table["method_b"] == b)]
    if len(row) != 1:
        raise ValueError(f"The pair ({a!r}, {b!r}) is not in the table of pair_estimate.")
    r = row.iloc[0]
    return Estimate(float(r["probability"]), float(r["ci_low"]), float(r["ci_high"]),
                    int(r["n_problems"]), "stratified percentile bootstrap")  # fmt: skip


__all__ += ["pair_estimate"]
