"""Claim 5: present samples in random order; random reshuffling beats sampling with replacement.

Two strongly convex problems on real data **sorted** so that a fixed order is as bad as it gets
(registered here): ``ridge_sorted`` (ridge, lam = 0.1, diabetes 442 x 10, rows sorted by target)
and ``logistic_sorted`` (L2-logistic, lam = 0.1, breast cancer 569 x 30, sorted by label). SGD
with single samples in three orders (:mod:`convstudy.sampling`): ``cyclic`` (0..N-1 every epoch:
it "chases the latest samples"), ``reshuffle`` (a fresh permutation every epoch) and
``replacement`` (i.i.d. uniform indices). Two grids:

- ``decay``: eta_k = beta / (k0 + k) with beta mu = 2 (eta0 about 0.4 x 2 / max_i L_i, the largest
  per-sample curvature), 20 epochs. Theory: with replacement E[f] - f* ~ 1/k (Bottou, Curtis &
  Nocedal 2018, Thm 4.7); random reshuffling like 1/k^2 (Guerbuezbalaban, Ozdaglar & Parrilo
  2019; Mishchenko, Khaled & Richtarik 2020), and so does the cyclic order at epoch ends (the
  incremental gradient method, Guerbuezbalaban et al. 2015), with a constant that grows with how
  unlike consecutive samples are. Rates: log-log slopes of the mean curve at epoch ends over
  epochs 5..20 (bootstrap CI), next to those of (k0 + k)^-1 and (k0 + k)^-2 over the same steps.
  The **final suboptimality** of a replicate is its time average of f(w_k) - f* over the last
  epoch (33 evenly spaced records): the cyclic iterate at an epoch boundary sits at the fixed
  point of the epoch map but drifts inside the epoch towards the samples just seen, so the
  last-epoch average is what a user stopping at a random time gets. Ratios of means between
  orders have bootstrap CIs (replicates resampled per order); the cyclic order uses no
  randomness (its replicates coincide), so its ratios' CIs come from the random orders.
- ``oscillation``: a constant step (eta0) for 6 epochs, every step of the last two recorded for
  4 replicates: the within-epoch drift of the cyclic order next to reshuffling.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd

from convstudy.claims import Check
from convstudy.engine import record_steps
from convstudy.figures import CI_NOTE, new_figure, plot_estimates, plot_mean_curves, small_legend
from convstudy.problems import LeastSquares, Logistic, load_dataset, register_problem
from convstudy.stats.curves import mean_curve, time_average_estimate
from convstudy.stats.estimate import derived_seed
from convstudy.stats.fits import curve_loglog_slope, fit_loglog_slope, slope_difference
from convstudy.stats.means import ratio_of_means
from convstudy.study import Analysis, Scale, Study, build_problem, simulate_cell
from convstudy.theory.noise_floor import inverse_time_offset

NAME = "sample_order"
SAMPLERS = ("cyclic", "reshuffle", "replacement")
ETA0 = {"ridge_sorted": 0.02, "logistic_sorted": 0.01}  # problem -> base step eta0
LAM = 0.1
BETA_MU = 2.0  # beta mu > 1 for the 1/k rate with replacement (Bottou et al. 2018, Thm 4.7)
LAST_EPOCH_RECORDS = 33
OSCILLATION_REPLICATES = 4
FIT_FIRST_EPOCH = 5
SOURCE = (
    "Guerbuezbalaban, Ozdaglar & Parrilo (2019); Mishchenko, Khaled & Richtarik (2020); "
    "course slides"
)
RATIO_CHECKS = {"cyclic": "5a-cyclic-worse", "replacement": "5b-reshuffle-beats-replacement"}
STATEMENTS = {  # of the ratio checks, numerator order over reshuffling
    "5a-cyclic-worse": "A fixed cyclic order (sorted data) is worse than random reshuffling.",
    "5b-reshuffle-beats-replacement": "Random reshuffling beats sampling with replacement.",
}
check = functools.partial(Check.from_estimate, claim=5, source=SOURCE, study=NAME)


def _sorted_rows(dataset: str) -> tuple[np.ndarray, np.ndarray]:
    X, y = load_dataset(dataset)
    order = np.argsort(y, kind="stable")
    return X[order], y[order]


@register_problem("ridge_sorted")
def ridge_sorted(lam: float = LAM) -> LeastSquares:
    """Ridge regression on diabetes (standardised) with its rows sorted by target."""
    return LeastSquares(*_sorted_rows("diabetes"), lam=lam, name="ridge_sorted")


@register_problem("logistic_sorted")
def logistic_sorted(lam: float = LAM) -> Logistic:
    """L2-logistic regression on breast cancer with its rows sorted by label (-1 first)."""
    X, y = _sorted_rows("breast_cancer")
    problem = Logistic(X=X, y=y, lam=lam)
    problem.name = "logistic_sorted"
    return problem


# ---- the grids -----------------------------------------------------------------------------
def conditions(scale: Scale) -> dict[str, list[dict]]:
    grids = {"decay": [], "oscillation": []}
    for name, eta0 in ETA0.items():
        base = {"problem": name, "problem.lam": LAM, "optimizer": "sgd", "schedule.eta0": eta0}
        problem = build_problem(base)
        k0 = inverse_time_offset(eta0, problem.mu, BETA_MU)  # eta_k = eta0 k0 / (k0 + k)
        decay = {"schedule": "inverse_time", "schedule.k0": k0, "epochs": scale.pick(20, 8)}
        for grid, samplers, extra in (
            ("decay", SAMPLERS, decay),
            ("oscillation", SAMPLERS[:2], {"schedule": "constant", "epochs": scale.pick(6, 4)}),
        ):
            n_steps = extra["epochs"] * problem.n_samples
            grids[grid] += [{**base, **extra, "sampler": s, "n_steps": n_steps} for s in samplers]
    return grids


def decay_records(condition: dict) -> np.ndarray:
    """Epoch ends, log-spaced steps and an evenly spaced last epoch."""
    k, n = condition["n_steps"], condition["n_steps"] // condition["epochs"]
    last = np.linspace(k - n, k, LAST_EPOCH_RECORDS).round().astype(np.int64)
    return np.unique(np.concatenate([np.arange(0, k + 1, n), record_steps(k), last]))


def decay_cell(condition: dict, seed: int, replicates) -> pd.DataFrame:
    return simulate_cell({**condition, "record": decay_records(condition)}, seed, replicates)


def oscillation_cell(condition: dict, seed: int, replicates) -> pd.DataFrame:
    """Every step of the last two epochs, for replicate ids below ``OSCILLATION_REPLICATES``
    only (a chunk of replicates holding none of them gives an empty frame)."""
    k, n = condition["n_steps"], condition["n_steps"] // condition["epochs"]
    ids = [int(r) for r in replicates if r < OSCILLATION_REPLICATES]
    frame = simulate_cell({**condition, "record": np.arange(k - 2 * n, k + 1)}, seed, ids or [0])
    return frame if ids else frame.iloc[:0]


# ---- analysis ------------------------------------------------------------------------------
def by_sampler(runs: pd.DataFrame, problem: str) -> dict[str, pd.DataFrame]:
    return dict(list(runs[runs["problem"] == problem].groupby("sampler", sort=False)))


def measure_problem(frames: dict, cond: dict, run_seed: int) -> tuple[list, list, list, list]:
    """Rows of the ``final_subopt``, ``ratios`` and ``rates`` tables and checks 5a-5c of one
    problem: last-epoch averages, their ratios over reshuffling and epoch-end slopes."""
    problem, k, n = cond["problem"], cond["n_steps"], cond["n_steps"] // cond["epochs"]
    levels = {s: time_average_estimate(frames[s], k - n) for s in SAMPLERS}  # last epoch
    final = [{"problem": problem, "sampler": s, **levels[s].row("final_subopt")} for s in SAMPLERS]
    ratios, checks = [], []
    for num, cid in RATIO_CHECKS.items():
        seed = derived_seed(run_seed, "ratios", problem, num)
        r = ratio_of_means(levels[num].values, levels["reshuffle"].values, seed=seed)
        ratios.append({"problem": problem, "ratio": f"{num} / reshuffle", **r.as_row()})
        checks.append(check(
            r, id=f"{cid}-{problem}", statement=STATEMENTS[cid], expected="> 1", expected_low=1.0,
            quantity=f"ratio of last-epoch mean f - f*, {num} / reshuffle, {problem}",
            expected_high=math.inf, figure="figures/final.png", table="tables/ratios.md",
            notes="eta_k ~ 1/k; bootstrap CI, replicates resampled per order",
        ))  # fmt: skip
    window, rates, fits = (FIT_FIRST_EPOCH * n, k), [], {}
    steps = np.arange(window[0], k + 1, n)
    ref = [curve_loglog_slope(steps, (cond["schedule.k0"] + steps) ** -p) for p in (1.0, 2.0)]
    for s in SAMPLERS:
        seed = derived_seed(run_seed, "rates", problem, s)
        ends = frames[s][frames[s]["step"] % n == 0]
        fit = fits[s] = fit_loglog_slope(ends, window=window, seed=seed)
        rates.append({"problem": problem, "sampler": s, **fit.estimate.as_row(), "se": fit.se,
                      "first_step": window[0], "last_step": k, "reference_1_over_k": ref[0],
                      "reference_1_over_k2": ref[1]})  # fmt: skip
    checks.append(check(
        slope_difference(fits["reshuffle"], fits["replacement"]),
        id=f"5c-reshuffle-faster-rate-{problem}", expected="< 0 (-1 asymptotically)",
        statement="Random reshuffling converges faster (~1/k^2) than with replacement (~1/k) "
        "with 1/k steps.", expected_low=-math.inf, expected_high=0.0,
        quantity=f"slope(reshuffle) - slope(replacement) at epoch ends, {problem}",
        figure="figures/curves.png", table="tables/rates.md", notes="normal CI from the two "
        f"bootstrap SEs; reference for (k0+k)^-2 vs (k0+k)^-1 over the window: {ref[1]-ref[0]:.2f}",
    ))  # fmt: skip
    return final, ratios, rates, checks


def curves_figure(runs: pd.DataFrame, conds: list[dict], rates: pd.DataFrame):
    fig, axes = new_figure(2, 1, width=5.4)
    for ax, cond in zip(axes, conds):
        frames, problem = by_sampler(runs, cond["problem"]), cond["problem"]
        curves = pd.concat([mean_curve(frames[s]).assign(order=s) for s in SAMPLERS])
        title = f"{problem}: SGD, eta_k = {cond['schedule.eta0']:g} k0/(k0 + k)"
        plot_mean_curves(ax, curves, x="step", hue="order", palette="deep", title=title,
                         xlabel="update k", ylabel="E[f(w_k)] - f*")  # fmt: skip
        by = rates[rates["problem"] == problem].set_index("sampler")
        for line, (s, r) in zip(ax.get_lines(), by.iterrows()):
            line.set_label(f"{s}: slope {r.slope:.2f} [{r.ci_low:.2f}, {r.ci_high:.2f}]")
        span = (by["first_step"].iloc[0], by["last_step"].iloc[0])
        ax.axvspan(*span, color="0.92", zorder=0, label="fit window (epoch ends)")
        small_legend(ax, f"order: slope at epoch ends ({CI_NOTE})", loc="lower left")
    return fig


def oscillation_figure(runs: pd.DataFrame, conds: list[dict]):
    fig, axes = new_figure(2, 1, width=5.4)
    for ax, cond in zip(axes, conds[::2]):
        n, frames = cond["n_steps"] // cond["epochs"], by_sampler(runs, cond["problem"])
        start = cond["n_steps"] - 2 * n
        for sampler, color in (("cyclic", "tab:red"), ("reshuffle", "tab:blue")):
            for i, (_, rep) in enumerate(frames[sampler].groupby("replicate")):
                x, label = (rep["step"] - start) / n, sampler if i == 0 else None
                ax.plot(x, rep["subopt"], c=color, lw=0.8, alpha=0.7, label=label)
        twin, pos = ax.twinx(), np.arange(2 * n)
        twin.plot(pos / n, build_problem(cond).y[pos % n], color="0.55", lw=1.0, alpha=0.8)
        twin.set_ylabel("target of the sample seen by cyclic order (grey)", color="0.4")
        twin.grid(False)
        ax.plot([], [], color="0.55", lw=1.0, label="target seen (cyclic), right axis")
        ax.set(yscale="log", xlabel="epochs (last two of the run)", ylabel="f(w_k) - f*")
        ax.set_title(f"{cond['problem']}: constant step {cond['schedule.eta0']:g}")
        small_legend(ax, f"order ({OSCILLATION_REPLICATES} replicates each)", loc="upper left")
    return fig


def findings(final: pd.DataFrame, ratios: pd.DataFrame, rates: pd.DataFrame) -> list[str]:
    out = []
    for problem in ETA0:
        f = final[final["problem"] == problem].set_index("sampler")["final_subopt"]
        r = ratios[ratios["problem"] == problem].set_index("ratio")
        s = rates[rates["problem"] == problem].set_index("sampler")
        ci = {k: f"{v.estimate:.3g} [{v.ci_low:.3g}, {v.ci_high:.3g}]" for k, v in r.iterrows()}
        slopes = ", ".join(
            f"{k} {v.slope:.2f} [{v.ci_low:.2f}, {v.ci_high:.2f}]" for k, v in s.iterrows()
        )
        out.append(
            f"{problem}: last-epoch mean f - f* is {f['cyclic']:.3g} (cyclic), "
            f"{f['reshuffle']:.3g} (reshuffle), {f['replacement']:.3g} (replacement); "
            f"cyclic/reshuffle = {ci['cyclic / reshuffle']}, replacement/reshuffle = "
            f"{ci['replacement / reshuffle']}. Epoch-end slopes: {slopes} (references over the "
            f"same steps: (k0+k)^-1 {s['reference_1_over_k'].iloc[0]:.2f}, (k0+k)^-2 "
            f"{s['reference_1_over_k2'].iloc[0]:.2f})."
        )
    return out


def analyze(runs: dict[str, pd.DataFrame], scale: Scale) -> Analysis:
    grids = conditions(scale)
    decay = grids["decay"][:: len(SAMPLERS)]  # one condition per problem
    parts = [measure_problem(by_sampler(runs["decay"], c["problem"]), c, scale.seed) for c in decay]
    final, ratios, rates = (pd.DataFrame([row for p in parts for row in p[i]]) for i in range(3))
    checks = [c for p in parts for c in p[3]]
    rates = rates.rename(columns={"estimate": "slope"})
    a = Analysis(checks=checks, findings=findings(final, ratios, rates))
    a.tables.update({"final_subopt": final, "ratios": ratios, "rates": rates})
    a.figures["curves"] = curves_figure(runs["decay"], decay, rates)
    a.figures["oscillation"] = oscillation_figure(runs["oscillation"], grids["oscillation"])
    fig, ax = new_figure(1, 1, width=6.0, height=3.8)
    title = f"Final suboptimality after {decay[0]['epochs']} epochs of 1/k steps"
    plot_estimates(ax, final, x="sampler", y="final_subopt", hue="problem", logy=True, title=title,
                   xlabel="sample order", ylabel="last-epoch mean of f(w_k) - f*",
                   note="error bars = 95% t-CI over replicates")  # fmt: skip
    a.figures["final"] = fig
    a.captions.update(CAPTIONS)
    return a


CAPTIONS = {
    "curves": "Mean suboptimality per sample order with 1/k steps on sorted data; slopes fitted "
    "at epoch ends over the shaded window (bootstrap 95% CI).",
    "oscillation": "Every step of the last two epochs with a constant step: the cyclic order "
    "drifts towards the samples just seen (grey, right axis: the target or label of the sample "
    "seen by cyclic order), reshuffling does not.",
    "final": "Last-epoch mean suboptimality per order (95% CI over replicates).",
    "final_subopt": "Last-epoch mean suboptimality per order, 95% t-CI over replicates.",
    "ratios": "Ratios of final suboptimality between orders, bootstrap 95% CI.",
    "rates": "Log-log slopes at epoch ends with bootstrap 95% CI and reference slopes.",
}

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
    compute={"decay": decay_cell, "oscillation": oscillation_cell},
    analyze=analyze,
    claims=(5,),
)
