"""Claim 8: SGD's noise escapes poor local minima, and a 1/sqrt(K) step drives the expected
squared gradient norm down like 1/sqrt(K) (Ghadimi & Lan 2013). Two grids, generic cells:

``escape``: the noisy tilted double well f(w) = (w^2 - 1)^2 + tilt w (``double_well``, one
coordinate, per-sample gradient noise of s.d. s independent of w). Replicates start at the poor
local minimum x_l and take K constant steps eta: SGD with b samples drawn with replacement (noise
s^2 / b), or full-batch GD (b = N), which cannot leave x_l (zero gradient): any escape is the
noise's doing. Observables record the basin (good: left of the local maximum) and w_0. As
Langevin dynamics the noise is a temperature T = eta s^2 / (2 b) and escape scales like
exp(-Delta F / T) (Kramers 1940; Delta F the barrier from x_l), so it falls with b. Wilson
intervals; SGD - GD with Newcombe's hybrid score interval; trend: OLS slope on log2(b).

``ghadimi_lan``: SGD (b = 1 with replacement: an unbiased gradient oracle) with eta = c / sqrt(K)
over horizons K on two tanh networks (``teacher_student``, realizable, f* = 0; ``tanh_network``,
a noisy regression). Ghadimi & Lan (2013, SIAM J. Optim. 23(4), Cor. 2.2) bound
E||grad f(w_R)||^2, R uniform on the K iterates, i.e. (1/K) sum_k E||grad f(w_k)||^2, by
O(1/sqrt(K)); min_k E||grad f(w_k)||^2 is below it, so it falls at least as fast. Measured per K:
the average over k (trapezoid rule on the log-spaced records, per replicate) and min_k of the
mean curve; log-log slopes against K, bootstrap CIs over replicates. Expected: -1/2 for the
average (accepted [-0.7, -0.3]); at most -0.4 for the minimum (one-sided).
"""

import functools
import math

import numpy as np
import pandas as pd

from convstudy import figures
from convstudy.claims import Check
from convstudy.stats.curves import curve_matrix, mean_curve, mean_curve_minimum, trapezoid_average
from convstudy.stats.estimate import Estimate, derived_seed
from convstudy.stats.fits import condition_bootstrap, fit_trend, trend_from_bootstrap
from convstudy.stats.means import mean_ci
from convstudy.stats.proportions import proportions_by
from convstudy.study import Analysis, Scale, Study, build_problem, simulate_cell

DOUBLE_WELL = {"problem": "double_well", "problem.dim": 1, "problem.tilt": 0.8,
               "problem.noise": 2.0, "problem.n_samples": 200}  # fmt: skip
ESCAPE_LR, ESCAPE_STEPS, BATCH_SIZES = 0.1, 2000, (1, 2, 3, 4, 6, 8, 16, 32)
GL_PROBLEMS, GL_STEP_CONSTANT = ("teacher_student", "tanh_network"), 1.0  # eta = c/sqrt(K)
N_RECORDS, N_BOOT = 40, 2000
ESCAPE_SOURCE = "course slides; Kramers (1940) Physica 7, 284 (escape over a barrier)"
GL_SOURCE = ("Ghadimi & Lan (2013) Stochastic first- and zeroth-order methods for nonconvex "
             "stochastic programming, SIAM J. Optim. 23(4), Cor. 2.2")  # fmt: skip
PROBLEM_LABELS = {"teacher_student": "teacher-student", "tanh_network": "tanh network"}
AVG, MIN = "average over k", "min over k of the mean"
GL_CHECKS = {  # id letter, table column prefix, value column, what is fitted, expected, note
    AVG: ("c", "avg", "avg_grad_norm_sq", "(1/K) sum_k E||grad f(w_k)||^2",
          "-1/2; accept [-0.7, -0.3]", -0.7, -0.3, ""),
    MIN: ("d", "min", "min_mean_grad_norm_sq", "min_k E||grad f(w_k)||^2",
          "at least as fast as K^(-1/2) (min <= average); accept <= -0.4", -math.inf, -0.4,
          "; the minimum of a resampled mean curve is biased low"),
}  # fmt: skip


def conditions(scale: Scale) -> dict[str, list[dict]]:
    """Grid ``escape`` (SGD for each b, and GD) and grid ``ghadimi_lan`` (each network x K)."""
    sgd = {"optimizer": "sgd", "schedule": "constant", "record": "log", "n_records": N_RECORDS}
    well = {**sgd, **DOUBLE_WELL, "schedule.eta0": ESCAPE_LR, "n_steps": ESCAPE_STEPS}
    designs = [("sgd", "replacement", b) for b in BATCH_SIZES]
    designs += [("gd", "full", DOUBLE_WELL["problem.n_samples"])]
    escape = [{**well, "method": m, "sampler": s, "batch_size": b} for m, s, b in designs]
    horizons = scale.pick((100, 316, 1000, 3162, 10000), (100, 316, 1000))
    ghadimi_lan = [{**sgd, "problem": name, "sampler": "replacement", "batch_size": 1, "n_steps": k,
                    "schedule.eta0": GL_STEP_CONSTANT / math.sqrt(k)}
                   for name in GL_PROBLEMS for k in horizons]  # fmt: skip
    return {"escape": escape, "ghadimi_lan": ghadimi_lan}


def in_good_basin(w: np.ndarray) -> np.ndarray:
    """1.0 where every coordinate of w_r lies left of the double well's local maximum, else 0."""
    return np.all(w < build_problem(DOUBLE_WELL).x_max, axis=1).astype(float)


def first_coordinate(w: np.ndarray) -> np.ndarray:
    """w_0 of every replicate."""
    return w[:, 0]


ESCAPE_CELL = functools.partial(simulate_cell, observe={"good_basin": in_good_basin,
                                                      "w_0": first_coordinate})  # fmt: skip


def barrier_height(problem) -> float:
    """Delta F = f1(x_max) - f1(x_l): the barrier from the poor minimum, one coordinate."""
    return float(problem._f1(problem.x_max) - problem._f1(problem.x_local))


def escape_table(final: pd.DataFrame) -> pd.DataFrame:
    """Per (method, b): the good-basin share after K steps, minus GD's, T and Delta F / T."""
    by = ["method", "batch_size"]
    design = final.groupby(by, as_index=False).agg(
        n_steps=("n_steps", "first"), lr=("schedule.eta0", "first"), n_diverged=("diverged", "sum")
    )
    table = design.merge(proportions_by(final, "escaped", by, reference={"method": "gd"}))
    problem, sgd = build_problem(DOUBLE_WELL), table["method"] == "sgd"
    T = np.where(sgd, table["lr"] * problem.noise**2 / (2 * table["batch_size"]), 0.0)
    with np.errstate(divide="ignore"):
        ratio = barrier_height(problem) / T
    names = {"successes": "escaped", "trials": "n", "value": "fraction_good_basin"}
    names |= {f"minus_reference{s}": f"minus_gd{s}" for s in ("", "_low", "_high")}
    table = table.assign(noise_temperature=T, barrier_over_temperature=ratio).rename(columns=names)
    return table.sort_values(by, ascending=[False, True], ignore_index=True)  # SGD first


def escape_figure(table: pd.DataFrame, curves: pd.DataFrame):
    fig, axes = figures.new_figure(ncols=3, width=4.4, height=3.6)
    p = build_problem(DOUBLE_WELL)
    points = [("global min", p.x_global, "C2"), ("local max", p.x_max, "0.5"),
              ("poor local min (start)", p.x_local, "C3")]  # fmt: skip
    figures.plot_function_1d(axes[0], p._f1, np.linspace(-1.6, 1.6, 400), points=points,
                             ylim=(-1.5, 3), title=f"double well, tilt {p.tilt:g}, "
                             f"barrier {barrier_height(p):.2f}")  # fmt: skip
    sgd, gd = table[table["method"] == "sgd"], table[table["method"] == "gd"].iloc[0]
    figures.plot_estimates(
        axes[1], sgd.assign(method="SGD"), x="batch_size", y="fraction_good_basin", hue="method",
        xlabel="minibatch size b (SGD, with replacement)", title="Escape from the poor minimum, "
        f"eta = {gd['lr']:g}", ylabel=f"fraction in the good basin after {gd['n_steps']} steps",
    )  # fmt: skip
    figures.add_estimate_point(
        axes[1], gd["batch_size"], gd["fraction_good_basin"], gd["ci_low"], gd["ci_high"],
        label=f"gradient descent (b = N = {gd['batch_size']})",
    )  # fmt: skip
    axes[1].set_xscale("log", base=2)
    axes[1].set_ylim(-0.03, 1.03)
    axes[1].legend(fontsize="x-small", loc="upper right", title_fontsize="x-small",
                   title=f"R = {gd['n']}; error bars = 95% Wilson CI")  # fmt: skip
    label = np.where(curves["method"] == "gd", "GD", "b = " + curves["batch_size"].astype(str))
    figures.plot_mean_curves(
        axes[2], curves.rename(columns={"value": "mean", "trials": "n"}).assign(b=label),
        x="step", hue="b", logy=False, xlabel="step k", ylabel="fraction in the good basin",
        title="Over time (band = 95% Wilson CI)",
    ).legend(fontsize="x-small", ncol=2)  # fmt: skip
    return fig


def ghadimi_lan_tables(runs: pd.DataFrame, run_seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per (network, K): average and min over k of E||grad f(w_k)||^2; their slopes against K."""
    rows, slopes = [], []
    for name, sub in runs.groupby("problem", sort=True):
        horizons, averages, minima = np.sort(sub["n_steps"].unique()), [], []
        for K in horizons:
            cell = sub[sub["n_steps"] == K]
            steps, G, diverged = curve_matrix(cell, "grad_norm_sq")
            seed = derived_seed(run_seed, "ghadimi-lan-min", name, int(K))
            minima.append(mean_curve_minimum(steps, G[~diverged], seed=seed, n_boot=N_BOOT))
            averages.append(trapezoid_average(steps, G[~diverged]))
            rows.append({
                "problem": name, "K": K, "lr": cell["schedule.eta0"].iloc[0],
                **mean_ci(averages[-1]).as_row("avg_"), **minima[-1][0].as_row("min_"),
                "argmin_step": int(minima[-1][2]), "n_diverged": int(diverged.sum()),
                "final_loss": float(cell.loc[cell["step"] == K, "loss"].mean()),
            })  # fmt: skip
        seed = derived_seed(run_seed, "ghadimi-lan-avg", name)
        avg_fit = condition_bootstrap(averages, n_boot=N_BOOT, seed=seed)
        min_fit = ([m[0].value for m in minima], np.column_stack([m[1] for m in minima]))
        n = int(min(a.size for a in averages))
        for quantity, (point, boots) in ((AVG, avg_fit), (MIN, min_fit)):
            e = trend_from_bootstrap(horizons.astype(float), point, boots, n=n).estimate
            slopes.append({"problem": name, "quantity": quantity, **e.as_row(), "theory": -0.5,
                           "K_min": horizons.min(), "K_max": horizons.max()})  # fmt: skip
    names = {"avg_estimate": GL_CHECKS[AVG][2], "min_estimate": GL_CHECKS[MIN][2], "avg_n": "n"}
    table = pd.DataFrame(rows).rename(columns=names).drop(columns="min_n")
    return table, pd.DataFrame(slopes).rename(columns={"estimate": "slope"})


def ghadimi_lan_figure(runs: pd.DataFrame, table: pd.DataFrame, slopes: pd.DataFrame):
    names = sorted(runs["problem"].unique())
    fig, axes = figures.new_figure(ncols=len(names) + 1, width=4.3, height=3.6)
    for ax, name in zip(axes[:-1], names):
        curves = mean_curve(runs[runs["problem"] == name], "grad_norm_sq", by=["n_steps"])
        figures.plot_mean_curves(
            ax, curves.assign(K="K = " + curves["n_steps"].astype(str)), x="step", hue="K",
            xlabel="step k", ylabel="E ||grad f(w_k)||^2",
            title=f"{PROBLEM_LABELS.get(name, name)}: SGD, eta = {GL_STEP_CONSTANT:g}/sqrt(K)",
        ).legend(fontsize="x-small", title="mean, band = 95% t-CI")  # fmt: skip
    long = pd.concat(table.rename(columns={value: "value", f"{pre}_ci_low": "low",
                     f"{pre}_ci_high": "high"}).assign(quantity=q)
                     for q, (_, pre, value, *_) in GL_CHECKS.items())  # fmt: skip
    series = [f"{PROBLEM_LABELS.get(r.problem, r.problem)}, {r.quantity.split(' of')[0]} "
              f"(slope {r.slope:.2f} [{r.ci_low:.2f}, {r.ci_high:.2f}])"
              for r in slopes.itertuples()]  # fmt: skip
    ax = figures.plot_estimates(
        axes[-1], slopes[["problem", "quantity"]].assign(series=series).merge(long), x="K",
        y="value", low="low", high="high", hue="series", logx=True, logy=True,
        xlabel="horizon K (eta = c / sqrt(K))", ylabel="E ||grad f||^2",
        title="Against the horizon",
    )  # fmt: skip
    ks = np.array([table["K"].min(), table["K"].max()], dtype=float)
    top = table[GL_CHECKS[AVG][2]].max()  # the reference line starts at the largest average
    figures.add_reference_line(ax, ks, top * (ks / ks[0]) ** -0.5, "K^(-1/2)")
    ax.legend(fontsize="xx-small", title="error bars = 95% CI", title_fontsize="xx-small")
    return fig


def claim_checks(escape: pd.DataFrame, trend: Estimate, slopes: pd.DataFrame) -> list[Check]:
    sgd1 = escape[(escape["method"] == "sgd") & (escape["batch_size"] == 1)].iloc[0]
    sizes = escape.loc[escape["method"] == "sgd", "batch_size"]
    on_escape = dict(claim=8, source=ESCAPE_SOURCE, figure="figures/escape.png",
                     table="tables/escape_by_batch_size.md")  # fmt: skip
    gap = Estimate(*sgd1[["minus_gd", "minus_gd_low", "minus_gd_high", "n"]], "Newcombe")
    checks = [
        Check.from_estimate(
            gap, id="8a-sgd-escapes-more-than-gd",
            statement="SGD's noise escapes a poor local minimum more often than gradient descent",
            quantity=f"fraction in the good basin after {sgd1['n_steps']} steps from the "
            f"poor minimum: SGD (b = 1) minus gradient descent, eta = {sgd1['lr']:g}",
            expected="> 0", expected_low=0.0, expected_high=1.0,
            notes="Newcombe (1998) hybrid score interval for a difference of proportions",
            **on_escape,
        ),
        Check.from_estimate(
            trend, id="8b-escape-falls-with-batch-size",
            statement="the escape fraction falls as the minibatch grows (less gradient noise)",
            quantity="OLS slope of the good-basin fraction against log2(b), "
            f"b = {sizes.min()}..{sizes.max()}",
            expected="< 0", expected_low=-math.inf, expected_high=0.0,
            notes="percentile bootstrap over replicates within each b", **on_escape,
        ),
    ]  # fmt: skip
    for fit in slopes.itertuples():
        letter, short, _, what, expected, low, high, note = GL_CHECKS[fit.quantity]
        checks.append(Check.from_estimate(
            Estimate(fit.slope, fit.ci_low, fit.ci_high, fit.n, "percentile bootstrap"),
            id=f"8{letter}-ghadimi-lan-{short}-{fit.problem}", claim=8, source=GL_SOURCE,
            statement="with a constant step c/sqrt(K) over K steps, the expected squared "
            "gradient norm falls like 1/sqrt(K)",
            quantity=f"log-log slope of {what} against K in [{fit.K_min}, {fit.K_max}], "
            f"SGD b = 1, {PROBLEM_LABELS.get(fit.problem, fit.problem)}",
            expected=expected, expected_low=low, expected_high=high,
            figure="figures/ghadimi_lan.png", table="tables/ghadimi_lan_slopes.md",
            notes="percentile bootstrap over replicates within each K" + note,
        ))  # fmt: skip
    return checks


def findings(escape: pd.DataFrame, trend: Estimate, slopes: pd.DataFrame) -> list[str]:
    sgd, gd = escape[escape["method"] == "sgd"], escape[escape["method"] == "gd"].iloc[0]
    per_b = ", ".join(f"b = {r.batch_size}: {r.fraction_good_basin:.2f}" for r in sgd.itertuples())
    return [
        f"From the poor local minimum, after {gd['n_steps']} steps of size {gd['lr']:g}, "
        f"the fraction of replicates in the good basin is {per_b}; gradient descent: "
        f"{gd['fraction_good_basin']:.2f} [{gd['ci_low']:.3f}, {gd['ci_high']:.3f}] "
        f"(R = {gd['n']} each, 95% Wilson CIs in the table).",
        f"The fraction falls by {-trend.value:.3f} [{-trend.ci_high:.3f}, {-trend.ci_low:.3f}] "
        f"per doubling of b (OLS over b = {sgd['batch_size'].min()}..{sgd['batch_size'].max()}); "
        "the noise temperature eta s^2/(2b) halves with each doubling.",
    ] + [
        f"{PROBLEM_LABELS.get(r.problem, r.problem)}, {r.quantity} of E||grad f(w_k)||^2 "
        f"against K = {r.K_min}..{r.K_max}: slope {r.slope:.2f} [{r.ci_low:.2f}, "
        f"{r.ci_high:.2f}] (Ghadimi-Lan rate -1/2)."
        for r in slopes.itertuples()
    ]


def analyze(runs: dict[str, pd.DataFrame], scale: Scale) -> Analysis:
    escape_runs = runs["escape"].assign(escaped=runs["escape"]["good_basin"] == 1)  # NaN: no
    final = escape_runs[escape_runs["step"] == escape_runs["n_steps"]]
    by_size = final[final["method"] == "sgd"].groupby("batch_size")["escaped"]  # OLS on log2(b)
    sizes, samples = zip(*[(b, group.to_numpy(float)) for b, group in by_size])
    seed = derived_seed(scale.seed, "escape-trend")
    trend = fit_trend(np.log2(sizes), samples, log_x=False, log_y=False, n_boot=N_BOOT, seed=seed)
    escape = escape_table(final)
    gl_table, slopes = ghadimi_lan_tables(runs["ghadimi_lan"], scale.seed)
    curves = proportions_by(escape_runs, "escaped", ["method", "batch_size", "step"])
    return Analysis(
        tables={"escape_by_batch_size": escape, "ghadimi_lan": gl_table,
                "ghadimi_lan_slopes": slopes},
        figures={"escape": escape_figure(escape, curves),
                 "ghadimi_lan": ghadimi_lan_figure(runs["ghadimi_lan"], gl_table, slopes)},
        captions={
            "escape": "The double well, the fraction of replicates in the good basin after K "
            "steps against the minibatch size, and over time.",
            "ghadimi_lan": "E||grad f(w_k)||^2 along runs with eta = c/sqrt(K), and its average "
            "and minimum over k against K.",
            "escape_by_batch_size": "Good-basin fraction per batch size with Wilson CIs and the "
            "difference to gradient descent (Newcombe CIs).",
            "ghadimi_lan_slopes": "Log-log slopes against K with bootstrap CIs.",
        },
        findings=findings(escape, trend.estimate, slopes),
        checks=claim_checks(escape, trend.estimate, slopes),
    )  # fmt: skip


study = Study(
    name="nonconvex_escape",
    title="Nonconvex problems: SGD escapes poor minima; the 1/sqrt(K) rate of Ghadimi & Lan",
    description=(
        "SGD with minibatches of b samples against gradient descent, started at the poor local "
        "minimum of a noisy double well (fraction reaching the good basin against b), and SGD "
        "with the step c/sqrt(K) over horizons K on two tanh networks (the expected squared "
        "gradient norm against K) (DESIGN.md claim 8)."
    ),
    conditions=conditions,
    compute={"escape": ESCAPE_CELL, "ghadimi_lan": simulate_cell},
    analyze=analyze,
    labels=("method",),
    claims=(8,),
)
