"""Claim 5: present samples in random order; random reshuffling beats sampling with replacement.

Two strongly convex problems on real data **sorted** so that a fixed order is as bad as it gets:

- ``ridge_sorted``: ridge regression (lam = 0.1) on scikit-learn's diabetes data (442 x 10),
  rows sorted by target, so a cyclic pass first sees the lowest targets, then the highest;
- ``logistic_sorted``: L2-logistic regression (lam = 0.1) on breast cancer (569 x 30), rows sorted
  by label: every malignant case, then every benign one.

SGD with single samples and three orders (:mod:`convstudy.sampling`): ``cyclic`` (the fixed order
0..N-1 every epoch: it "chases the latest samples"), ``reshuffle`` (a fresh random permutation
every epoch) and ``replacement`` (i.i.d. uniform indices).

- ``decay``: eta_k = beta / (k0 + k) with beta mu = 2 (eta0 below 2 / max_i ||x_i||^2-type
  per-sample limits) for 20 epochs. Theory: with replacement E[f] - f* ~ 1/k (Bottou, Curtis &
  Nocedal 2018, Thm 4.7); random reshuffling converges like 1/k^2 (Guerbuezbalaban, Ozdaglar &
  Parrilo 2019, "Why random reshuffling beats stochastic gradient descent"; Mishchenko, Khaled &
  Richtarik 2020), and so does the cyclic order at epoch ends (the incremental gradient method,
  Guerbuezbalaban, Ozdaglar & Parrilo 2015), but with a constant that grows with how unlike
  consecutive samples are. Rates are fitted at epoch ends over epochs 5..20 (log-log slope of
  the mean over replicates, bootstrap CI); since eta_k ~ 1/(k0 + k), the reference slopes of
  (k0 + k)^-1 and (k0 + k)^-2 over the same steps are reported next to them.
- The **final suboptimality** of a replicate is its time average of f(w_k) - f* over the last
  epoch (33 evenly spaced records): the cyclic iterate at an epoch boundary sits at the fixed
  point of the epoch map, but inside the epoch it drifts towards the samples just seen, so the
  last-epoch average is what a user stopping at a random time gets. Ratios of means between
  orders have bootstrap CIs (replicates resampled per order). The cyclic order uses no
  randomness, so all its replicates coincide; its ratios' CIs come from the random orders.
- ``oscillation``: a constant step (eta0) for 6 epochs, every step of the last two recorded for
  4 replicates, to show the within-epoch drift of cyclic order next to reshuffling.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd

from convstudy.claims import Check
from convstudy.engine import COLUMNS, record_steps, simulate
from convstudy.figures import CI_NOTE, new_figure, plot_estimates, plot_mean_curves
from convstudy.optim import get_optimizer
from convstudy.problems import LeastSquares, Logistic, load_dataset
from convstudy.schedules import get_schedule
from convstudy.stats.curves import mean_curve, time_average
from convstudy.stats.fits import fit_loglog_slope
from convstudy.stats.means import mean_ci, ratio_of_means
from convstudy.study import Analysis, Scale, Study, split_condition

NAME = "sample_order"
SAMPLERS = ("cyclic", "reshuffle", "replacement")
# problem name -> (dataset, model, base step eta0); eta0 is about 0.4 x 2 / max_i L_i (the
# largest per-sample curvature: ||x_i||^2 + lam for ridge, ||x_i||^2 / 4 + lam for logistic)
PROBLEMS = {
    "ridge_sorted": ("diabetes", "ridge", 0.02),
    "logistic_sorted": ("breast_cancer", "logistic", 0.01),
}
LAM = 0.1
BETA_MU = 2.0  # beta mu > 1 for the 1/k rate with replacement (Bottou et al. 2018, Thm 4.7)
LAST_EPOCH_RECORDS = 33
OSCILLATION_REPLICATES = 4
FIT_FIRST_EPOCH = 5
SOURCE = (
    "Guerbuezbalaban, Ozdaglar & Parrilo (2019); Mishchenko, Khaled & Richtarik (2020); "
    "course slides"
)


# ---- problems ------------------------------------------------------------------------------
@functools.lru_cache(maxsize=8)
def sorted_problem(name: str, lam: float = LAM):
    """``ridge_sorted`` (diabetes, rows sorted by target) or ``logistic_sorted`` (breast
    cancer, rows sorted by label), built with :class:`LeastSquares` / :class:`Logistic`."""
    if name not in PROBLEMS:
        raise ValueError(
            f"The 'problem' parameter of sorted_problem must be one of {sorted(PROBLEMS)}. "
            f"Got {name!r} instead."
        )
    dataset, model, _ = PROBLEMS[name]
    X, y = load_dataset(dataset)
    order = np.argsort(y, kind="stable")
    if model == "ridge":
        return LeastSquares(X[order], y[order], lam=lam, name=name)
    problem = Logistic(X=X[order], y=y[order], lam=lam)
    problem.name = name
    return problem


def make_problem(condition: dict):
    return sorted_problem(condition["problem"], **split_condition(condition, "problem"))


# ---- the grid ------------------------------------------------------------------------------
def conditions(scale: Scale) -> list[dict]:
    conds = []
    for name, (_, _, eta0) in PROBLEMS.items():
        problem = sorted_problem(name, LAM)
        base = {"problem": name, "problem.lam": LAM, "optimizer": "sgd"}
        k0 = BETA_MU / (problem.mu * eta0)  # eta_k = eta0 k0 / (k0 + k), beta = eta0 k0
        epochs = scale.pick(20, 8)
        for sampler in SAMPLERS:
            conds.append(
                {
                    "part": "decay",
                    **base,
                    "schedule": "inverse_time",
                    "schedule.eta0": eta0,
                    "schedule.k0": k0,
                    "sampler": sampler,
                    "epochs": epochs,
                    "n_steps": epochs * problem.n_samples,
                }
            )
        for sampler in ("cyclic", "reshuffle"):
            epochs = scale.pick(6, 4)
            conds.append(
                {
                    "part": "oscillation",
                    **base,
                    "schedule": "constant",
                    "schedule.eta0": eta0,
                    "sampler": sampler,
                    "epochs": epochs,
                    "n_steps": epochs * problem.n_samples,
                }
            )
    return conds


def record_plan(condition: dict) -> np.ndarray:
    """Epoch ends + log-spaced steps + an evenly spaced last epoch; or every step of the last
    two epochs for the oscillation runs."""
    n_steps = condition["n_steps"]
    n = n_steps // condition["epochs"]
    if condition["part"] == "oscillation":
        return np.arange(n_steps - 2 * n, n_steps + 1)
    last = np.linspace(n_steps - n, n_steps, LAST_EPOCH_RECORDS).round().astype(np.int64)
    return np.unique(np.concatenate([np.arange(0, n_steps + 1, n), record_steps(n_steps), last]))


def compute(condition: dict, seed: int, replicates) -> pd.DataFrame:
    """One cell: SGD with the condition's order on a sorted problem (oscillation runs keep only
    replicate ids below ``OSCILLATION_REPLICATES``)."""
    replicates = np.asarray(replicates)
    if condition["part"] == "oscillation":
        replicates = replicates[replicates < OSCILLATION_REPLICATES]
        if replicates.size == 0:
            dtypes = {"replicate": int, "step": int, "samples": int, "diverged": bool}
            return pd.DataFrame({c: pd.Series(dtype=dtypes.get(c, float)) for c in COLUMNS})
    return simulate(
        make_problem(condition),
        get_optimizer(condition["optimizer"]),
        get_schedule(condition["schedule"], **split_condition(condition, "schedule")),
        n_steps=condition["n_steps"],
        sampler=condition["sampler"],
        replicates=replicates,
        seed=seed,
        record=record_plan(condition),
    )


# ---- analysis ------------------------------------------------------------------------------
def _cell(runs: pd.DataFrame, part: str, problem: str, sampler: str) -> pd.DataFrame:
    return runs[
        (runs["part"] == part) & (runs["problem"] == problem) & (runs["sampler"] == sampler)
    ]


def _decay_condition(conds: list[dict], problem: str) -> dict:
    return next(c for c in conds if c["part"] == "decay" and c["problem"] == problem)


def last_epoch_levels(frame: pd.DataFrame, condition: dict) -> np.ndarray:
    """Per replicate: mean f(w_k) - f* over the last epoch (NaN when diverged)."""
    n = condition["n_steps"] // condition["epochs"]
    return time_average(frame, condition["n_steps"] - n)["value"].to_numpy()


def epoch_ends(frame: pd.DataFrame, condition: dict) -> pd.DataFrame:
    n = condition["n_steps"] // condition["epochs"]
    return frame[frame["step"] % n == 0]


def final_table(runs, conds) -> pd.DataFrame:
    rows = []
    for problem in PROBLEMS:
        cond = _decay_condition(conds, problem)
        for sampler in SAMPLERS:
            levels = last_epoch_levels(_cell(runs, "decay", problem, sampler), cond)
            finite = levels[np.isfinite(levels)]
            estimate = mean_ci(finite)
            mean, lo, hi, n = estimate.value, estimate.ci_low, estimate.ci_high, estimate.n
            if finite.size and np.ptp(finite) == 0:  # cyclic: deterministic, no spread
                lo = hi = mean
            rows.append(
                {
                    "problem": problem,
                    "sampler": sampler,
                    "final_subopt": mean,
                    "ci_low": lo,
                    "ci_high": hi,
                    "n": int(n),
                    "n_diverged": int(np.isnan(levels).sum()),
                }
            )
    return pd.DataFrame(rows)


def ratio_table(runs, conds) -> pd.DataFrame:
    rows = []
    for problem in PROBLEMS:
        cond = _decay_condition(conds, problem)
        level = {s: last_epoch_levels(_cell(runs, "decay", problem, s), cond) for s in SAMPLERS}
        for i, (num, den) in enumerate((("cyclic", "reshuffle"), ("replacement", "reshuffle"))):
            r = ratio_of_means(level[num], level[den], seed=10 + i)
            rows.append(
                {
                    "problem": problem,
                    "ratio": f"{num} / {den}",
                    **r.as_row(),
                }
            )
    return pd.DataFrame(rows)


def reference_slope(steps: np.ndarray, k0: float, power: float) -> float:
    """OLS slope of log (k0 + k)^-power against log k over ``steps`` (the eta ~ 1/(k0+k) offset)."""
    return float(np.polyfit(np.log(steps), -power * np.log(k0 + steps), 1)[0])


def rate_table(runs, conds) -> pd.DataFrame:
    rows = []
    for problem in PROBLEMS:
        cond = _decay_condition(conds, problem)
        n = cond["n_steps"] // cond["epochs"]
        window = (FIT_FIRST_EPOCH * n, cond["n_steps"])
        steps = np.arange(window[0], window[1] + 1, n)
        for j, sampler in enumerate(SAMPLERS):
            fit = fit_loglog_slope(
                epoch_ends(_cell(runs, "decay", problem, sampler), cond), window=window, seed=20 + j
            )
            slope = fit.estimate
            rows.append(
                {
                    "problem": problem,
                    "sampler": sampler,
                    "slope": slope.value,
                    "ci_low": slope.ci_low,
                    "ci_high": slope.ci_high,
                    "se": fit.se,
                    "first_step": window[0],
                    "last_step": window[1],
                    "n": slope.n,
                    "reference_1_over_k": reference_slope(steps, cond["schedule.k0"], 1.0),
                    "reference_1_over_k2": reference_slope(steps, cond["schedule.k0"], 2.0),
                }
            )
    return pd.DataFrame(rows)


def slope_difference(rates: pd.DataFrame, problem: str) -> dict:
    """slope(reshuffle) - slope(replacement), normal CI from the two bootstrap SEs."""
    by = rates[rates["problem"] == problem].set_index("sampler")
    diff = by.loc["reshuffle", "slope"] - by.loc["replacement", "slope"]
    half = 1.959964 * math.hypot(by.loc["reshuffle", "se"], by.loc["replacement", "se"])
    ref = by.loc["reshuffle", "reference_1_over_k2"] - by.loc["reshuffle", "reference_1_over_k"]
    return {
        "estimate": float(diff),
        "ci_low": float(diff - half),
        "ci_high": float(diff + half),
        "reference": float(ref),
        "n": int(by["n"].min()),
    }


def curves_figure(runs, conds, rates):
    fig, axes = new_figure(2, 1, width=5.4)
    for ax, problem in zip(axes, PROBLEMS):
        cond = _decay_condition(conds, problem)
        curves = pd.concat(
            [mean_curve(_cell(runs, "decay", problem, s)).assign(order=s) for s in SAMPLERS],
            ignore_index=True,
        )
        plot_mean_curves(
            ax,
            curves,
            x="step",
            hue="order",
            palette="deep",
            xlabel="update k",
            ylabel="E[f(w_k)] - f*",
            legend_title="order",
            title=f"{problem}: SGD, eta_k = {cond['schedule.eta0']:g} k0/(k0 + k)",
        )
        by = rates[rates["problem"] == problem].set_index("sampler")
        for line, sampler in zip(ax.get_lines(), SAMPLERS):
            r = by.loc[sampler]
            line.set_label(
                f"{sampler}: slope {r['slope']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]"
            )
        ax.axvspan(
            by["first_step"].iloc[0],
            by["last_step"].iloc[0],
            color="0.92",
            zorder=0,
            label="fit window (epoch ends)",
        )
        ax.legend(
            fontsize="x-small",
            title=f"order: slope at epoch ends ({CI_NOTE})",
            title_fontsize="x-small",
            loc="lower left",
        )
    return fig


def oscillation_figure(runs, conds):
    fig, axes = new_figure(2, 1, width=5.4)
    colors = {"cyclic": "tab:red", "reshuffle": "tab:blue"}
    for ax, problem in zip(axes, PROBLEMS):
        cond = next(c for c in conds if c["part"] == "oscillation" and c["problem"] == problem)
        n = cond["n_steps"] // cond["epochs"]
        start = cond["n_steps"] - 2 * n
        for sampler, color in colors.items():
            frame = _cell(runs, "oscillation", problem, sampler)
            for i, (_, rep) in enumerate(frame.groupby("replicate")):
                ax.plot(
                    (rep["step"] - start) / n,
                    rep["subopt"],
                    color=color,
                    lw=0.8,
                    alpha=0.7,
                    label=sampler if i == 0 else None,
                )
        problem_obj = make_problem(cond)
        twin = ax.twinx()
        pos = np.arange(2 * n)
        twin.plot(pos / n, problem_obj.y[pos % n], color="0.55", lw=1.0, alpha=0.8)
        twin.set_ylabel("target of the sample seen by cyclic order (grey)", color="0.4")
        twin.grid(False)
        ax.plot([], [], color="0.55", lw=1.0, label="target seen (cyclic), right axis")
        ax.set(
            yscale="log",
            xlabel="epochs (last two of the run)",
            ylabel="f(w_k) - f*",
            title=f"{problem}: constant step {cond['schedule.eta0']:g}",
        )
        ax.legend(
            fontsize="x-small",
            title=f"order ({OSCILLATION_REPLICATES} replicates each)",
            title_fontsize="x-small",
            loc="upper left",
        )
    return fig


def final_figure(final: pd.DataFrame, epochs: int):
    fig, ax = new_figure(1, 1, width=6.0, height=3.8)
    plot_estimates(
        ax,
        final,
        x="sampler",
        y="final_subopt",
        hue="problem",
        logy=True,
        xlabel="sample order",
        ylabel="last-epoch mean of f(w_k) - f*",
        title=f"Final suboptimality after {epochs} epochs of 1/k steps",
        note="error bars = 95% t-CI over replicates",
    )
    return fig


def checks(ratios: pd.DataFrame, rates: pd.DataFrame) -> list[Check]:
    out = []
    for problem in PROBLEMS:
        by = ratios[ratios["problem"] == problem].set_index("ratio")
        for key, cid, statement in (
            (
                "cyclic / reshuffle",
                "5a-cyclic-worse",
                "A fixed cyclic order (sorted data) is worse than random reshuffling.",
            ),
            (
                "replacement / reshuffle",
                "5b-reshuffle-beats-replacement",
                "Random reshuffling beats sampling with replacement.",
            ),
        ):
            r = by.loc[key]
            out.append(
                Check(
                    id=f"{cid}-{problem}",
                    claim=5,
                    statement=statement,
                    source=SOURCE,
                    quantity=f"ratio of last-epoch mean f - f*, {key}, {problem}",
                    expected="> 1",
                    expected_low=1.0,
                    expected_high=math.inf,
                    estimate=float(r["estimate"]),
                    ci_low=float(r["ci_low"]),
                    ci_high=float(r["ci_high"]),
                    n_replicates=int(r["n"]),
                    study=NAME,
                    figure="figures/final.png",
                    table="tables/ratios.md",
                    notes="eta_k ~ 1/k; bootstrap CI, replicates resampled per order",
                )
            )
        d = slope_difference(rates, problem)
        out.append(
            Check(
                id=f"5c-reshuffle-faster-rate-{problem}",
                claim=5,
                statement="Random reshuffling converges faster (~1/k^2) than with "
                "replacement (~1/k) with 1/k steps.",
                source=SOURCE,
                quantity=f"slope(reshuffle) - slope(replacement) at epoch ends, {problem}",
                expected="< 0 (-1 asymptotically)",
                expected_low=-math.inf,
                expected_high=0.0,
                estimate=d["estimate"],
                ci_low=d["ci_low"],
                ci_high=d["ci_high"],
                n_replicates=d["n"],
                study=NAME,
                figure="figures/curves.png",
                table="tables/rates.md",
                notes=f"normal CI from the two bootstrap SEs; reference for (k0+k)^-2 vs "
                f"(k0+k)^-1 over the window: {d['reference']:.2f}",
            )
        )
    return out


def findings(final, ratios, rates) -> list[str]:
    out = []
    for problem in PROBLEMS:
        f = final[final["problem"] == problem].set_index("sampler")["final_subopt"]
        r = ratios[ratios["problem"] == problem].set_index("ratio")
        s = rates[rates["problem"] == problem].set_index("sampler")
        out.append(
            f"{problem}: last-epoch mean f - f* is {f['cyclic']:.3g} (cyclic), "
            f"{f['reshuffle']:.3g} (reshuffle), {f['replacement']:.3g} (replacement); "
            f"cyclic/reshuffle = {r.loc['cyclic / reshuffle', 'estimate']:.3g} "
            f"[{r.loc['cyclic / reshuffle', 'ci_low']:.3g}, "
            f"{r.loc['cyclic / reshuffle', 'ci_high']:.3g}], replacement/reshuffle = "
            f"{r.loc['replacement / reshuffle', 'estimate']:.3g} "
            f"[{r.loc['replacement / reshuffle', 'ci_low']:.3g}, "
            f"{r.loc['replacement / reshuffle', 'ci_high']:.3g}]. Epoch-end slopes: "
            + ", ".join(
                f"{k} {v.slope:.2f} [{v.ci_low:.2f}, {v.ci_high:.2f}]" for k, v in s.iterrows()
            )
            + f" (references over the same steps: (k0+k)^-1 "
            f"{s['reference_1_over_k'].iloc[0]:.2f}, (k0+k)^-2 "
            f"{s['reference_1_over_k2'].iloc[0]:.2f})."
        )
    return out


def analyze(runs: pd.DataFrame, scale: Scale) -> Analysis:
    conds = conditions(scale)
    final, ratios, rates = (
        final_table(runs, conds),
        ratio_table(runs, conds),
        rate_table(runs, conds),
    )
    a = Analysis(checks=checks(ratios, rates), findings=findings(final, ratios, rates))
    a.tables.update({"final_subopt": final, "ratios": ratios, "rates": rates})
    a.figures["curves"] = curves_figure(runs, conds, rates)
    a.captions["curves"] = (
        "Mean suboptimality per sample order with 1/k steps on sorted data; slopes fitted at "
        "epoch ends over the shaded window (bootstrap 95% CI)."
    )
    a.figures["oscillation"] = oscillation_figure(runs, conds)
    a.captions["oscillation"] = (
        "Every step of the last two epochs with a constant step: the cyclic order drifts towards "
        "the samples just seen (grey, right axis: the target or label of the sample seen by "
        "cyclic order), reshuffling does not."
    )
    a.figures["final"] = final_figure(final, _decay_condition(conds, "ridge_sorted")["epochs"])
    a.captions["final"] = "Last-epoch mean suboptimality per order (95% CI over replicates)."
    a.captions.update(
        {
            "final_subopt": "Last-epoch mean suboptimality per order, 95% t-CI over replicates.",
            "ratios": "Ratios of final suboptimality between orders, bootstrap 95% CI.",
            "rates": "Log-log slopes at epoch ends with bootstrap 95% CI and reference slopes.",
        }
    )
    return a


study = Study(
    name=NAME,
    title="Sample order: cyclic vs random reshuffling vs with replacement",
    description=(
        "SGD on ridge (diabetes sorted by target) and logistic regression (breast cancer sorted "
        "by label) with a fixed cyclic order, random reshuffling and sampling with replacement: "
        "suboptimality curves, the within-epoch drift of the cyclic order, final suboptimality "
        "ratios and the 1/k^2 vs 1/k rates with 1/k steps."
    ),
    conditions=conditions,
    compute=compute,
    analyze=analyze,
    claims=(5,),
    replicates=200,
    quick_replicates=20,
)
