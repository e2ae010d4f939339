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
- **Disjoint seeds** (:func:`tune_and_evaluate`): every grid value is run twice, once per
  ``phase`` ("tune", "eval"). ``phase`` is a parameter of the condition, so the two cells draw
  from different seeds (other starting points, other minibatches). The value is *selected* on
  the tuning cells and everything reported (hitting times, ratios, CIs) comes from the
  evaluation cells at that value: the selection's own luck (the winner's curse of picking the
  fastest of six noisy cells) does not enter the reported numbers. The evaluation table keeps
  what the evaluation cells alone would have selected (``eval_best``) so a reader sees where
  the two disagree.
- **Grid edge** (:func:`grid_edge_choices`): a value chosen at either end of a grid of three or
  more values is warned about (``UserWarning``): the optimum may lie outside the grid.

A tuning frame is a tidy run frame with columns ``problem, method, eta0, replicate, step,
samples, subopt, diverged`` (and ``phase`` for :func:`tune_and_evaluate`).
"""

from __future__ import annotations

import warnings
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
    "tune_and_evaluate",
    "at_range_edge",
    "grid_edge_choices",
    "tuning_caveats",
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
PHASES = ("tune", "eval")
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
    table["at_grid_edge"] = at_range_edge(table, "eta0")
    return table, boots


def tune_and_evaluate(
    runs: pd.DataFrame, eps: Mapping[str, float], *, run_seed: int, tag: str, n_boot: int = N_BOOT
) -> tuple[pd.DataFrame, dict]:
    """Select eta0 on the ``phase == "tune"`` cells, report the ``phase == "eval"`` cells.

    Returns :func:`tuning_table` of the evaluation cells (bootstrap tag ``<tag>-eval``) whose
    ``best`` is the tuning cells' selection, with ``eval_best`` (the evaluation cells' own
    selection, for comparison) and ``tune_hit`` (the tuning cell's hitting time), and the
    evaluation cells' bootstrap hits. Warns about choices at a grid edge
    (:func:`grid_edge_choices`).
    """
    if "phase" not in runs or set(runs["phase"].unique()) != set(PHASES):
        got = sorted(runs["phase"].unique()) if "phase" in runs else "no 'phase' column"
        raise ValueError(f"tune_and_evaluate needs runs of both phases {PHASES}; got {got}.")
    tune, _ = tuning_table(
        runs[runs["phase"] == "tune"], eps, run_seed=run_seed, tag=f"{tag}-tune", n_boot=n_boot
    )
    table, boots = tuning_table(
        runs[runs["phase"] == "eval"], eps, run_seed=run_seed, tag=f"{tag}-eval", n_boot=n_boot
    )
    chosen = table[KEYS].merge(tune[KEYS + ["best", "hit"]], on=KEYS, how="left")
    if chosen["best"].isna().any():
        raise ValueError("tune_and_evaluate: the tune and eval phases have different grids.")
    table = table.assign(
        eval_best=table["best"],
        best=chosen["best"].to_numpy(bool),
        tune_hit=chosen["hit"].to_numpy(float),
    )
    for message in grid_edge_choices(table):
        warnings.warn(message, UserWarning, stacklevel=2)
    return table, boots


def at_range_edge(table: pd.DataFrame, column: str, by=("problem", "method")) -> pd.Series:
    """True where ``column`` is the smallest or largest value tried in its ``by`` group (a
    tuning table's step sizes: a choice there may have its optimum outside the range)."""
    groups = table.groupby(list(by), sort=False)[column]
    return (table[column] == groups.transform("min")) | (table[column] == groups.transform("max"))


def grid_edge_choices(table: pd.DataFrame, min_size: int = 3) -> list[str]:
    """One sentence per selected value at an end of its grid (grids of >= ``min_size`` values:
    in a smaller grid every value is an edge)."""
    out = []
    for (problem, method), group in table.groupby(["problem", "method"], sort=False):
        best = group[group["best"]]
        if len(group) >= min_size and len(best) and best["at_grid_edge"].iloc[0]:
            eta0, low = best["eta0"].iloc[0], group["eta0"].min()
            out.append(
                f"{method} on {problem}: the chosen eta0 = {eta0:g} is the "
                f"{'smallest' if eta0 == low else 'largest'} value of its grid "
                f"({low:g} to {group['eta0'].max():g}); the best step may lie outside it."
            )
    return out


def tuning_caveats(
    table: pd.DataFrame, best: pd.DataFrame, labels: Mapping | None = None, reference: str = "sgd"
) -> list[str]:
    """Sentences a reader of a tuned comparison must know, with numbers from the tables: choices
    at a grid edge (:func:`grid_edge_choices`), pairs where the evaluation seeds alone would
    have chosen another eta0 (``table`` of :func:`tune_and_evaluate`), best cells whose mean
    curve is censored in > 5% of bootstrap resamples, and methods that process more samples per
    iteration than ``reference`` with their samples to eps (``best`` of
    :func:`ratio_to_reference`)."""
    name = (labels or {}).get
    out = grid_edge_choices(table)
    chosen = table[table["best"]].set_index(["problem", "method"])["eta0"]
    moved = table[table["eval_best"] & ~table["best"]]
    if len(moved):
        pairs = "; ".join(
            f"{name(r.method, r.method)} on {r.problem}: {r.eta0:g} instead of "
            f"{chosen[r.problem, r.method]:g}"
            for r in moved.itertuples()
        )
        out.append(
            f"The evaluation seeds alone would have chosen another eta0 in {len(moved)} "
            f"of {len(chosen)} (problem, method) pairs ({pairs}); the rule picks the fewest "
            "iterations among steps whose mean curve ends below eps without divergence."
        )
    censored = best[best["p_censored"] > 0.05]
    if len(censored):
        cells = ", ".join(
            f"{name(r.method, r.method)} on {r.problem} {r.p_censored:.2f}"
            for r in censored.itertuples()
        )
        out.append(
            "At the chosen eta0 the mean curve misses eps within the budget in part of "
            f"the bootstrap resamples (share censored: {cells})."
        )
    ref = best[best["method"] == reference].set_index("problem")
    costly = best[best["samples_per_step"] > best["problem"].map(ref["samples_per_step"])]
    if len(costly):
        costs = "; ".join(
            f"{name(r.method, r.method)} on {r.problem}: {r.hit:g} iterations = "
            f"{r.hit_samples:g} samples against {ref.loc[r.problem, 'hit_samples']:g}"
            for r in costly.itertuples()
        )
        out.append(
            f"Some methods process more samples per iteration than {name(reference, reference)}, "
            f"so fewer iterations need not mean less work ({costs})."
        )
    return out


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


def best_curves(
    runs: pd.DataFrame, best: pd.DataFrame, labels: Mapping | None = None, x: str = "step"
) -> pd.DataFrame:
    """Mean suboptimality curves against ``x`` (:func:`convstudy.stats.curves.mean_curve`) of
    each best cell with a surviving replicate, with columns problem and label (method, eta0).
    ``x="samples"`` puts methods with different batch sizes on one axis."""
    parts = []
    for _, r in best[best["n"] > 0].iterrows():
        cell = runs[(runs["problem"] == r["problem"]) & (runs["method"] == r["method"])
                    & (runs["eta0"] == r["eta0"])]  # fmt: skip
        label = f"{(labels or {}).get(r['method'], r['method'])}, eta0={r['eta0']:g}"
        parts.append(mean_curve(cell, x=x).assign(problem=r["problem"], label=label))
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
