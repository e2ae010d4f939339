"""Claim 8: SGD's noise escapes poor minima; the step c/sqrt(K) drives E||grad f||^2 down like
1/sqrt(K). Checks: :mod:`convstudy.catalogue.nonconvex_escape`; closed forms (Kramers 1940,
Ghadimi & Lan 2013): :mod:`convstudy.theory.nonconvex`.

``escape``: SGD (b samples with replacement) or GD (b = N: stays put, a sanity check) for K
steps eta from the poor minimum x_l of the noisy tilted double well (gradient noise s.d. s).
SGD is the Euler scheme of Langevin dynamics at T = eta s^2/(2b): Kramers' rate r(b) predicts
the escaped fraction 1 - exp(-eta K r(b)) and so its OLS slope against log2(b), the check.

``ghadimi_lan``: SGD (b = 1) with eta = c/sqrt(K) on two tanh networks. E||grad f(w_R)||^2 (R
uniform on the K iterates) per replicate by the midpoint rule on geometric strata of 0..K-1;
the largest oracle variance and Hessian norm seen (observables) are the sigma^2 and L of the
bound B(K) (Thm 2.1a). Checks: max_K E||grad f(w_R)||^2 / B(K) <= 1, and the slope of
sqrt(K) E||grad f(w_R)||^2 against K <= 0. The course's min over k lies below the average (it
sat in an early dip, k = 89-289, with an estimator biased low), so it is not checked apart.
"""

import functools
import math

import numpy as np
import pandas as pd

from convstudy import figures
from convstudy.catalogue.nonconvex_escape import ESCAPE_TREND, GD_STAYS, GL_BOUND, GL_RATE
from convstudy.claims import Check
from convstudy.stats.curves import curve_matrix, mean_curve
from convstudy.stats.estimate import Estimate, derived_seed
from convstudy.stats.fits import condition_bootstrap, fit_trend, trend_from_bootstrap
from convstudy.stats.means import mean_ci
from convstudy.stats.proportions import proportions_by
from convstudy.study import Analysis, Scale, Study, Variant, build_problem, simulate_cell
from convstudy.theory import nonconvex as theory

WELL = {"problem": "double_well", "problem.tilt": 0.8, "problem.noise": 2.0}
WELL_N, ESCAPE_LR, ESCAPE_STEPS, BATCH_SIZES = 200, 0.1, 2000, (1, 2, 3, 4, 6, 8, 16, 32)
GL_PROBLEMS, GL_C = ("teacher_student", "tanh_network"), 1.0  # eta = c / sqrt(K)
N_RECORDS, N_STRATA, N_BOOT = 40, 100, 2000
LABELS = {"teacher_student": "teacher-student", "tanh_network": "tanh network"}
SGD = {"optimizer": "sgd", "schedule": "constant", "sampler": "replacement"}


def conditions(scale: Scale) -> dict[str, list[dict]]:
    """Grid ``escape`` (SGD for each b, and GD) and grid ``ghadimi_lan`` (each network x K)."""
    well = {**SGD, **WELL, "problem.n_samples": WELL_N, "schedule.eta0": ESCAPE_LR}
    well |= {"n_steps": ESCAPE_STEPS, "record": "log", "n_records": N_RECORDS, "method": "sgd"}
    escape = [{**well, "batch_size": b} for b in BATCH_SIZES]
    escape.append({**well, "method": "gd", "sampler": "full", "batch_size": WELL_N})
    horizons = scale.pick((100, 316, 1000, 3162, 10000), (100, 316, 1000))
    gl = {**SGD, "batch_size": 1, "record": "strata", "n_records": N_STRATA}
    ghadimi_lan = [
        {**gl, "problem": name, "n_steps": k, "schedule.eta0": GL_C / math.sqrt(k)}
        for name in GL_PROBLEMS
        for k in horizons
    ]
    return {"escape": escape, "ghadimi_lan": ghadimi_lan}


def in_good_basin(w: np.ndarray) -> np.ndarray:
    """1.0 where every coordinate of w_r lies left of the double well's local maximum, else 0."""
    return np.all(w < build_problem(WELL).x_max, axis=1).astype(float)


def first_coordinate(w: np.ndarray) -> np.ndarray:
    """w_0 of every replicate."""
    return w[:, 0]


ESCAPE_OBSERVE = {"good_basin": in_good_basin, "w_0": first_coordinate}
ESCAPE_CELL = functools.partial(simulate_cell, observe=ESCAPE_OBSERVE)


def ghadimi_lan_cell(condition: dict, seed: int, replicates) -> pd.DataFrame:
    """simulate_cell recording at the midpoints of :func:`theory.geometric_strata`, with the
    oracle variance and the Hessian norm as observables."""
    p, K = build_problem(condition), condition["n_steps"]
    observe = {"sigma2": theory.oracle_variance, "hess_norm": theory.hessian_norm}
    observe = {name: functools.partial(fn, p) for name, fn in observe.items()}
    steps = theory.geometric_strata(K, N_STRATA)[0].tolist()
    return simulate_cell({**condition, "record": steps}, seed, replicates, observe=observe)


def kramers_fraction(b: float) -> float:
    """Kramers' escaped fraction 1 - exp(-eta K r) at T = eta s^2 / (2b), from the exact well's
    barrier and curvatures f'' = 12 x^2 - 4 at x_l and x_max."""
    p, T = build_problem(WELL), theory.sgd_temperature(ESCAPE_LR, WELL["problem.noise"], b)
    curvatures = 12 * np.array([p.x_local, p.x_max]) ** 2 - 4
    rate = theory.kramers_rate(p._f1(p.x_max) - p._f1(p.x_local), *curvatures, T)
    return theory.escaped_fraction(rate, ESCAPE_LR, ESCAPE_STEPS)


def escape_table(final: pd.DataFrame) -> pd.DataFrame:
    """Per (method, b): escaped share (Wilson CI), T, Kramers' share, max_drift |w_K - x_l|."""
    by, p = ["method", "batch_size"], build_problem(WELL)
    table = final.groupby(by, as_index=False).agg(
        n_steps=("n_steps", "first"),
        lr=("schedule.eta0", "first"),
        n_diverged=("diverged", "sum"),
        max_drift=("w_0", lambda w: float(np.max(np.abs(w - p.x_local)))),
    )
    table = table.merge(proportions_by(final, "escaped", by))
    sgd = table["method"] == "sgd"
    T = np.where(sgd, ESCAPE_LR * WELL["problem.noise"] ** 2 / (2 * table["batch_size"]), 0)
    kramers = [kramers_fraction(b) if s else 0.0 for b, s in zip(table["batch_size"], sgd)]
    names = {"successes": "escaped", "trials": "n", "value": "fraction_good_basin"}
    table = table.assign(temperature=T, kramers=kramers).rename(columns=names)
    return table.sort_values(by, ascending=[False, True], ignore_index=True)


def bound(fit: dict, K: float) -> float:
    """B(K) for the step c/sqrt(K) with a network's constants (NaN where the step is >= 2/L)."""
    step = GL_C / math.sqrt(K)
    ok = np.isfinite(fit["L"]) and fit["L"] * step < 2
    return theory.ghadimi_lan_bound(K, step, fit["L"], fit["sigma2"], fit["gap"]) if ok else np.nan


def ghadimi_lan_tables(runs: pd.DataFrame, run_seed: int) -> tuple[pd.DataFrame, list[dict]]:
    """Per (network, K): E||grad f(w_R)||^2 (t-CI), B(K), ratio; per network the constants, the
    max ratio and the slope of sqrt(K) E||grad f(w_R)||^2 (bootstrap; NaN if any diverged)."""
    rows, fits = [], []
    for name, sub in runs.groupby("problem", sort=True):
        problem, horizons = build_problem({"problem": name}), np.sort(sub["n_steps"].unique())
        f_star = problem.f_star if problem.f_star is not None else np.nanmin(sub["loss"])
        fit = {"problem": name, "L": np.nanmax(sub["hess_norm"]), "K_min": horizons[0]}
        fit |= {"sigma2": np.nanmax(sub["sigma2"]), "gap": sub["loss"].iloc[0] - f_star}
        averages = []
        for K in horizons:
            steps, G, diverged = curve_matrix(sub[sub["n_steps"] == K], "grad_norm_sq")
            mids, weights = theory.geometric_strata(K, N_STRATA)
            averages.append(np.where(diverged, np.nan, G[:, np.isin(steps, mids)] @ weights))
            row = {"problem": name, "K": K, **mean_ci(averages[-1]).as_row("avg_")}
            rows.append(row | {"n_diverged": int(diverged.sum()), "bound": bound(fit, K)})
        seed = derived_seed(run_seed, "ghadimi-lan-avg", name)
        point, boots = condition_bootstrap(averages, n_boot=N_BOOT, seed=seed)
        root, n = np.sqrt(horizons.astype(float)), int(min(a.size for a in averages))
        ratios = boots / (bounds := np.array([bound(fit, K) for K in horizons]))
        ok = bool(np.all(np.isfinite(ratios)))
        low, high = np.percentile(ratios.max(axis=1), [2.5, 97.5]) if ok else (np.nan, np.nan)
        value, method = np.max(point / bounds), "percentile bootstrap of the max over K"
        fit["ratio"] = Estimate(value if ok else np.nan, low, high, n, method)
        rate = trend_from_bootstrap(root**2, point * root, boots * root, n=n).estimate
        fit["rate"] = rate if ok else Estimate(np.nan, np.nan, np.nan, n, rate.method)
        fits.append(fit | {"K_max": horizons[-1], "f_star_known": problem.f_star is not None})
    table = pd.DataFrame(rows).rename(columns={"avg_estimate": "avg_grad_norm_sq", "avg_n": "n"})
    table["ratio"] = table["avg_grad_norm_sq"] / table["bound"]
    return table.assign(sqrtK_avg=np.sqrt(table["K"]) * table["avg_grad_norm_sq"]), fits


def escape_figure(table: pd.DataFrame):
    fig, axes = figures.new_figure(ncols=2, width=4.6, height=3.6)
    p, b = build_problem(WELL), np.geomspace(1, max(BATCH_SIZES), 200)
    points = [("global min", p.x_global, "C2"), ("max", p.x_max, "0.5"), ("start", p.x_local, "C3")]
    grid, title = np.linspace(-1.6, 1.6, 400), f"double well, tilt {p.tilt:g}"
    figures.plot_function_1d(axes[0], p._f1, grid, points=points, ylim=(-1.5, 3), title=title)
    sgd, gd = table[table["method"] == "sgd"], table[table["method"] == "gd"].iloc[0]
    figures.plot_estimates(
        axes[1], sgd.assign(m="SGD (b samples)"), x="batch_size", y="fraction_good_basin", hue="m"
    )
    label = "Kramers 1 - exp(-eta K r(b)) (not fitted)"
    axes[1].plot(b, [kramers_fraction(v) for v in b], "k--", lw=1.2, label=label)
    value, low, high = gd[["fraction_good_basin", "ci_low", "ci_high"]]
    label = f"gradient descent (b = N = {gd['batch_size']})"
    figures.add_estimate_point(axes[1], gd["batch_size"], value, low, high, label=label)
    axes[1].set(xscale="log", xlabel="minibatch size b", ylabel="fraction in the good basin")
    axes[1].set_title(f"After {gd['n_steps']} steps of eta = {gd['lr']:g}")
    figures.figure_legend(fig, axes, title=f"R = {gd['n']}; 95% Wilson intervals", ncols=2)
    return fig


def ghadimi_lan_figure(runs: pd.DataFrame, table: pd.DataFrame, fits: list[dict]):
    fig, axes = figures.new_figure(ncols=len(fits) + 1, width=4.3, height=3.6)
    for ax, color, fit in zip(axes, ("C0", "C3"), fits):
        curves = mean_curve(runs[runs["problem"] == fit["problem"]], "grad_norm_sq", by=["n_steps"])
        title = f"{LABELS[fit['problem']]}: eta = {GL_C:g}/sqrt(K)"
        curves = curves.assign(K="K = " + curves["n_steps"].astype(str))
        figures.plot_mean_curves(
            ax, curves, x="step", hue="K", xlabel="step k", ylabel="E||grad f(w_k)||^2", title=title
        )
        part, K = (
            table[table["problem"] == fit["problem"]],
            np.geomspace(fit["K_min"], fit["K_max"], 100),
        )
        y, low, high = (part[c] for c in ("avg_grad_norm_sq", "avg_ci_low", "avg_ci_high"))
        label = f"{LABELS[fit['problem']]}: E||grad f(w_R)||^2, 95% t-CI"
        axes[-1].errorbar(part["K"], y, [y - low, high - y], fmt="o", color=color, label=label)
        label = f"{LABELS[fit['problem']]}: B(K), L = {fit['L']:.2f}, sigma^2 = {fit['sigma2']:.2f}"
        axes[-1].plot(K, [bound(fit, k) for k in K], ls="--", color=color, label=label)
    axes[-1].set(xscale="log", yscale="log", xlabel="horizon K", title="Theorem 2.1(a) bound")
    figures.figure_legend(fig, axes, ncols=4)
    return fig


def claim_checks(escape: pd.DataFrame, trend: Estimate, fits: list[dict]) -> list[Check]:
    sgd, gd = escape[escape["method"] == "sgd"], escape[escape["method"] == "gd"].iloc[0]
    where = {"study": "nonconvex_escape", "n_steps": gd["n_steps"], "lr": gd["lr"]}
    where |= {"figure": "figures/escape.png", "table": "tables/escape_by_batch_size.md"}
    sizes, notes = sgd["batch_size"], "percentile bootstrap over replicates within each b"
    predicted = np.polyfit(np.log2(sizes), sgd["kramers"], 1)[0]
    checks = [
        GD_STAYS.check(Estimate(*[gd["max_drift"]] * 3, int(gd["n"]), "exact"), **where),
        ESCAPE_TREND.check(
            trend, prediction=predicted, b_min=sizes.min(), b_max=sizes.max(), notes=notes, **where
        ),
    ]
    for fit in fits:
        where = {"study": "nonconvex_escape", "figure": "figures/ghadimi_lan.png"}
        where |= {"table": "tables/ghadimi_lan_by_horizon.md", "c": GL_C}
        where |= {k: fit[k] for k in ("problem", "K_min", "K_max")}
        notes = "percentile bootstrap over replicates within each K"
        for spec, key in ((GL_BOUND, "ratio"), (GL_RATE, "rate")):
            checks.append(spec.check(fit[key], label=LABELS[fit["problem"]], notes=notes, **where))
    return checks


def caveats(escape: pd.DataFrame, table: pd.DataFrame, fits: list[dict]) -> list[str]:
    sgd = escape[escape["method"] == "sgd"]
    turning = sgd[sgd["fraction_good_basin"].between(0.01, 0.99)]
    out = [
        "Kramers' rate is leading order in T / dF, and SGD with eta = 0.1 is a coarse Euler "
        "scheme of the Langevin dynamics: where the fraction turns it is an approximation ("
        + ", ".join(
            f"b = {r.batch_size}: {r.fraction_good_basin:.3f} measured, {r.kramers:.3f} Kramers"
            for r in turning.itertuples()
        )
        + ").",
        "Gradient descent started at the poor minimum cannot leave it (zero gradient); its row "
        "is a sanity check, not evidence for the claim.",
    ]
    for fit in fits:
        part, rate = table[table["problem"] == fit["problem"]], fit["rate"]
        (k0, k1), (r0, r1), (s0, s1) = (part[c].iloc[[0, -1]] for c in ("K", "ratio", "sqrtK_avg"))
        unknown = "" if fit["f_star_known"] else " (f* unknown: lowest loss seen; a lower bound)"
        out.append(
            f"{LABELS[fit['problem']]}: B(K) uses the largest L = {fit['L']:.3g} and sigma^2 = "
            f"{fit['sigma2']:.3g} seen along the runs and f(w_0) - f* = {fit['gap']:.3g}{unknown}; "
            f"from K = {k0} to {k1}, E||grad f(w_R)||^2 / B(K) goes from {r0:.2f} to {r1:.2f} and "
            f"sqrt(K) E||grad f(w_R)||^2 from {s0:.3g} to {s1:.3g} (slope {rate.value:+.3f} "
            f"[{rate.ci_low:+.3f}, {rate.ci_high:+.3f}]): it falls like K^{rate.value - 0.5:.2f} "
            f"over this range (max_K E||grad f(w_R)||^2 / B(K) = {fit['ratio'].value:.2f})."
        )
    return out


def analyze(runs: dict[str, pd.DataFrame], scale: Scale) -> Analysis:
    escape_runs = runs["escape"].assign(escaped=runs["escape"]["good_basin"] == 1)  # NaN: no
    final = escape_runs[escape_runs["step"] == escape_runs["n_steps"]]
    by_size = final[final["method"] == "sgd"].groupby("batch_size")["escaped"]
    sizes, samples = zip(*[(b, group.to_numpy(float)) for b, group in by_size])
    seed = derived_seed(scale.seed, "escape-trend")
    trend = fit_trend(np.log2(sizes), samples, log_x=False, log_y=False, n_boot=N_BOOT, seed=seed)
    escape = escape_table(final)
    table, fits = ghadimi_lan_tables(runs["ghadimi_lan"], scale.seed)
    checks = claim_checks(escape, trend.estimate, fits)
    return Analysis(
        tables={"escape_by_batch_size": escape, "ghadimi_lan_by_horizon": table},
        figures={
            "escape": escape_figure(escape),
            "ghadimi_lan": ghadimi_lan_figure(runs["ghadimi_lan"], table, fits),
        },
        captions={
            "escape": "The double well; the escaped fraction against b, with Kramers' prediction.",
            "ghadimi_lan": "E||grad f(w_k)||^2 along runs; E||grad f(w_R)||^2 and B(K) against K.",
            "escape_by_batch_size": "Escaped fraction (Wilson CI), T, Kramers, max |w_K - x_l|.",
            "ghadimi_lan_by_horizon": "E||grad f(w_R)||^2 per K (t-CI), B(K), ratio, sqrt(K) x it.",
        },
        findings=[f"{c.id}: {c.estimate:.4g} [{c.ci_low:.4g}, {c.ci_high:.4g}]." for c in checks],
        checks=checks,
        caveats=caveats(escape, table, fits),
    )


def _step(rule):
    """A variant replacing the Ghadimi-Lan step c/sqrt(K) by rule(K) (escape grid unchanged)."""
    return lambda c: (
        c if c["problem"] == "double_well" else c | {"schedule.eta0": rule(c["n_steps"])}
    )


study = Study(
    name="nonconvex_escape",
    title="Nonconvex problems: SGD escapes poor minima; the 1/sqrt(K) rate of Ghadimi & Lan",
    description="SGD against GD from the poor minimum of a noisy double well (escape against b, "
    "Kramers' rate); SGD with eta = c/sqrt(K) on two tanh networks (Ghadimi & Lan's bound).",
    conditions=conditions,
    compute={"escape": ESCAPE_CELL, "ghadimi_lan": ghadimi_lan_cell},
    analyze=analyze,
    labels=("method",),
    variants={
        "gd": Variant(
            "no gradient noise (s = 0) on the double well: every SGD step is a GD step",
            lambda c: c | {"problem.noise": 0.0} if c["problem"] == "double_well" else c,
        ),
        "step-1/K": Variant("Ghadimi-Lan step c/K instead of c/sqrt(K)", _step(lambda K: GL_C / K)),
        "step-too-large": Variant(
            "Ghadimi-Lan step 10 c/sqrt(K), above 2/L at small K",
            _step(lambda K: 10 * GL_C / math.sqrt(K)),
        ),
    },
    claims=(8,),
)
