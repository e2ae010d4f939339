"""Step-size tuning: a learning-rate grid per method, a stated selection rule, and its summary.

The protocol (used by the ``adaptive`` study, claim 7) compares optimizers each at its *best*
constant step size eta0, tuned on a grid:

- **Grid** (:func:`eta_grid`): log-spaced values around each method's natural scale, in
  half-decades (six values), except RPROP, whose ``lr`` only sets the initial step size (three
  decades). A best value at the edge of its grid is flagged (``at_grid_edge``).
- **Summary** (:func:`tuning_table`): per (problem, method, eta0) cell, the final suboptimality
  (mean over non-diverged replicates, Student-t CI) and the iterations for the *mean* curve to
  reach eps (first recorded crossing, :func:`convstudy.stats.curves.mean_curve_crossings`), with
  a percentile-bootstrap CI over replicates and the share of bootstrap mean curves that never
  reach eps (censored).
- **Selection rule** (:func:`select_best_eta`): the fewest iterations to eps, ties broken by the
  lower final suboptimality, among grid values where no replicate diverged and the mean curve
  *ends* at or below eps (a constant step whose noise floor sits above eps only dips below it by
  chance); fallbacks when none qualifies: drop the end condition, then the divergence condition.
- **Comparison** (:func:`ratio_to_reference`): T_eps(method) / T_eps(reference) at the best
  values, with a CI from the two cells' independent bootstrap replicates.

Tuned and reported on the same runs (as in DeepOBS-style tuning; disjoint tuning seeds are a
later refinement). A tuning frame is a tidy run frame with columns ``problem, method, eta0,
replicate, step, samples, subopt, diverged``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ._validation import check_option
from .stats.curves import mean_curve, mean_curve_crossings
from .stats.estimate import Estimate, bootstrap_method, derived_seed, percentile_interval
from .stats.means import mean_ci

__all__ = [
    "LR_GRIDS",
    "eta_grid",
    "tuning_table",
    "select_best_eta",
    "ratio_to_reference",
    "hitting_time_boots",
    "ratio_estimate",
    "contrast_estimate",
    "best_curves",
    "describe_hits",
    "describe_best",
]

# method: (log10 of the first eta0, log10 spacing, number of values), placed around each
# method's natural scale
LR_GRIDS = {
    "sgd": (-2.0, 0.5, 6),
    "momentum": (-3.0, 0.5, 6),
    "adagrad": (-2.5, 0.5, 6),
    "rmsprop": (-3.5, 0.5, 6),
    "adam": (-3.0, 0.5, 6),
    "amsgrad": (-3.0, 0.5, 6),
    "rprop": (-3.0, 1.0, 3),
}
QUICK_INDEX = {"rprop": (1,)}  # quick runs keep these grid positions (default: 3 and 4)
KEYS = ["problem", "method", "eta0"]
N_BOOT = 1000
_RATIO_METHOD = "ratio of independent " + bootstrap_method(N_BOOT)


def eta_grid(method: str, quick: bool = False) -> tuple[float, ...]:
    """The constant step sizes eta0 tried for ``method``, rounded to 3 significant digits."""
    check_option(method, "method", "eta_grid", LR_GRIDS)
    start, spacing, size = LR_GRIDS[method]
    exps = start + spacing * np.arange(size)
    if quick:
        exps = exps[list(QUICK_INDEX.get(method, (3, 4)))]
    return tuple(float(f"{10.0**e:.3g}") for e in exps)


def hitting_time_boots(
    frame: pd.DataFrame, eps: float, *, seed: int, n_boot: int = N_BOOT
) -> tuple[float, np.ndarray, int, int]:
    """(hit, boots (B,), n, n_diverged): steps for the mean curve to reach eps, and the same for
    ``n_boot`` bootstrap mean curves; inf where never reached (censored) or nothing survived."""
    point, boots, n, n_div = mean_curve_crossings(frame, eps, n_boot=n_boot, seed=seed)
    hit = float(point[0]) if n and np.isfinite(point[0]) else np.inf
    return hit, np.where(np.isnan(boots[:, 0]), np.inf, boots[:, 0]), n, n_div


def _cell_row(cell: pd.DataFrame, eps: float, seed: int, n_boot: int) -> tuple[dict, np.ndarray]:
    hit, boots, n, n_div = hitting_time_boots(cell, eps, seed=seed, n_boot=n_boot)
    last = cell[cell["step"] == cell["step"].max()]
    final = last.loc[~last["diverged"].astype(bool), "subopt"].to_numpy(float)
    final = mean_ci(final if final.size > 1 else [])
    lo, hi = percentile_interval(boots, discrete=True)
    n_steps = int(cell["step"].max())
    row = {
        "eps": eps, "n_steps": n_steps,
        "samples_per_step": int(cell["samples"].max()) // max(n_steps, 1),
        "n": n, "n_diverged": n_div, "final_subopt": final.value,
        "final_ci_low": final.ci_low, "final_ci_high": final.ci_high,
        "hit": hit, "hit_ci_low": float(lo), "hit_ci_high": float(hi),
        "p_censored": float(np.mean(np.isinf(boots))),
    }  # fmt: skip
    return row, boots


def tuning_table(
    runs: pd.DataFrame, eps: Mapping[str, float], *, run_seed: int, tag: str, n_boot: int = N_BOOT
) -> tuple[pd.DataFrame, dict]:
    """One row per (problem, method, eta0) cell of a tuning frame, and its bootstrap hits.

    ``eps[problem]`` is the target of each problem. Bootstrap seeds are
    ``derived_seed(run_seed, tag, problem, method, eta0)``. Columns: problem, method, eta0, eps,
    n_steps, samples_per_step, n, n_diverged, final_subopt (+ CI), hit (+ CI), p_censored, best
    (:func:`select_best_eta`), at_grid_edge. The dict maps (problem, method, eta0) to the
    ``n_boot`` bootstrap hitting times (inf = censored).
    """
    rows, boots = [], {}
    for (problem, method, eta0), cell in runs.groupby(KEYS, sort=False):
        seed = derived_seed(run_seed, tag, problem, method, f"{eta0:g}")
        row, boots[problem, method, eta0] = _cell_row(cell, eps[problem], seed, n_boot)
        rows.append({"problem": problem, "method": method, "eta0": eta0, **row})
    table = pd.DataFrame(rows)
    table["best"] = select_best_eta(table)
    ends = table.groupby(["problem", "method"])["eta0"].agg(["min", "max"])
    edge = table.join(ends, on=["problem", "method"])
    table["at_grid_edge"] = (edge["eta0"] == edge["min"]) | (edge["eta0"] == edge["max"])
    return table, boots


def select_best_eta(table: pd.DataFrame) -> pd.Series:
    """Boolean mask of the best eta0 per (problem, method) of a tuning table (rule: module doc).

    Among grid values with a surviving replicate (``n > 0``): those with no divergence
    (``n_diverged == 0``) whose mean curve ends at or below eps (``final_subopt <= eps``); if
    none, those with no divergence; if none, all. Then the fewest iterations to eps (``hit``,
    censored = inf), ties broken by the lowest final suboptimality.
    """
    best = pd.Series(False, index=table.index)
    for _, group in table.groupby(["problem", "method"], sort=False):
        alive = group[group["n"] > 0]
        stable = alive[alive["n_diverged"] == 0]
        held = stable[stable["final_subopt"] <= stable["eps"]]
        pool = next((p for p in (held, stable, alive) if len(p)), None)
        if pool is None:
            continue
        key = pool.assign(_final=pool["final_subopt"].fillna(np.inf))
        best[key.sort_values(["hit", "_final"], kind="stable").index[0]] = True
    return best


def ratio_to_reference(table: pd.DataFrame, boots: dict, reference: str = "sgd") -> pd.DataFrame:
    """The best rows of a tuning table with T_eps / T_eps(reference) and its bootstrap CI.

    Columns added: ``ratio_to_<reference>``, ``ratio_ci_low``, ``ratio_ci_high`` (percentile
    interval of the ratio of independent bootstrap hits; NaN ratios, both censored, ignored) and
    ``hit_samples`` = hit x samples per step.
    """
    out = []
    for problem, group in table[table["best"]].groupby("problem", sort=False):
        ref = group[group["method"] == reference].iloc[0]
        b_ref = boots[problem, reference, ref["eta0"]]
        for _, row in group.iterrows():
            with np.errstate(invalid="ignore", divide="ignore"):
                ratio = boots[problem, row["method"], row["eta0"]] / b_ref
                point = row["hit"] / ref["hit"]
            lo, hi = percentile_interval(ratio, discrete=True)
            out.append(
                {**row.to_dict(), f"ratio_to_{reference}": point, "ratio_ci_low": float(lo),
                 "ratio_ci_high": float(hi), "hit_samples": row["hit"] * row["samples_per_step"]}
            )  # fmt: skip
    return pd.DataFrame(out)


def ratio_estimate(best: pd.DataFrame, problem: str, method: str, reference: str = "sgd"):
    """T_eps(method) / T_eps(reference) on ``problem`` from :func:`ratio_to_reference`'s table,
    as an :class:`~convstudy.stats.estimate.Estimate` (n: replicates of the method's cell)."""
    row = best.set_index(["problem", "method"]).loc[(problem, method)]
    return Estimate(float(row[f"ratio_to_{reference}"]), float(row["ratio_ci_low"]),
                    float(row["ratio_ci_high"]), int(row["n"]), _RATIO_METHOD)  # fmt: skip


def contrast_estimate(
    best: pd.DataFrame, boots: dict, method: str, problems: tuple[str, str], reference: str = "sgd"
) -> Estimate:
    """How a problem change alters a method's hitting-time ratio to the reference:
    [T(method)/T(reference)] on problems[1] / [T(method)/T(reference)] on problems[0], with the
    percentile interval of the same ratio of the four cells' independent bootstrap hits."""
    at = best.set_index(["problem", "method"])
    b = {(p, m): boots[p, m, at.loc[(p, m), "eta0"]] for p in problems for m in (method, reference)}
    point = [at.loc[(p, method), "hit"] / at.loc[(p, reference), "hit"] for p in problems]
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = [b[p, method] / b[p, reference] for p in problems]
        lo, hi = percentile_interval(boot[1] / boot[0], discrete=True)
        value = float(point[1] / point[0])
    return Estimate(value, float(lo), float(hi), int(at.loc[(problems[1], method), "n"]),
                    _RATIO_METHOD)  # fmt: skip


def best_curves(runs: pd.DataFrame, best: pd.DataFrame, labels: Mapping | None = None):
    """Mean suboptimality curves (:func:`convstudy.stats.curves.mean_curve`) of each best cell
    with a surviving replicate, with columns problem and label (method label, eta0)."""
    parts = []
    for _, r in best[best["n"] > 0].iterrows():
        cell = runs[(runs["problem"] == r["problem"]) & (runs["method"] == r["method"])
                    & (runs["eta0"] == r["eta0"])]  # fmt: skip
        label = f"{(labels or {}).get(r['method'], r['method'])}, eta0={r['eta0']:g}"
        parts.append(mean_curve(cell).assign(problem=r["problem"], label=label))
    return pd.concat(parts, ignore_index=True)


def describe_hits(best: pd.DataFrame, labels: Mapping | None = None) -> str:
    """'label T [lo, hi] (eta0 e); ...' for best rows (a grid edge flagged; censored: 'not
    reached in K')."""
    out = []
    for _, r in best.iterrows():
        eta = f"eta0 {r['eta0']:g}" + (", edge of its grid" if r["at_grid_edge"] else "")
        hit = (f"{r['hit']:g} [{r['hit_ci_low']:g}, {r['hit_ci_high']:g}]"
               if np.isfinite(r["hit"]) else f"not reached in {r['n_steps']}")  # fmt: skip
        out.append(f"{(labels or {}).get(r['method'], r['method'])} {hit} ({eta})")
    return "; ".join(out)


def describe_best(part: pd.DataFrame, labels: Mapping, compared: tuple[str, ...]) -> str:
    """One finding for one problem's best rows (:func:`ratio_to_reference` table, reference
    SGD): iterations to eps of every method (:func:`describe_hits`), the ratio to SGD with its
    bootstrap CI of the ``compared`` methods, and the cost in samples of every method whose
    iterations process more samples than SGD's (e.g. full-batch RPROP)."""
    p = part.set_index("method")
    ratios = ", ".join(
        f"{labels.get(m, m)} {p.loc[m, 'ratio_to_sgd']:.2f} [{p.loc[m, 'ratio_ci_low']:.2f}, "
        f"{p.loc[m, 'ratio_ci_high']:.2f}]" for m in compared
    )  # fmt: skip
    sgd = p.loc["sgd"]
    costly = p[(p["samples_per_step"] > sgd["samples_per_step"]) & np.isfinite(p["hit"])]
    costs = "".join(
        f" {labels.get(m, m)}: {r['hit']:g} iterations are {r['hit_samples']:g} samples, "
        f"against {sgd['hit_samples']:g} for SGD (b = {sgd['samples_per_step']})."
        for m, r in costly.iterrows()
    )  # fmt: skip
    return (
        f"iterations for the mean curve to reach eps = {part['eps'].iloc[0]:.2g} at each "
        f"method's best eta0 (95% bootstrap CI): {describe_hits(part, labels)}. Ratio to SGD: "
        f"{ratios}.{costs}"
    )
