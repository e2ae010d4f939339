"""Claim 8: on nonconvex problems SGD's noise escapes poor local minima, and a 1/sqrt(K) step
drives the expected squared gradient norm down like 1/sqrt(K) (Ghadimi & Lan 2013).

Two parts (``part`` key):

- ``escape``: the noisy tilted double well f(w) = (w^2 - 1)^2 + tilt w (one coordinate;
  ``get_problem("double_well")``), whose per-sample gradients carry noise of standard deviation
  s independent of w. Every replicate starts exactly at the poor local minimum x_l and runs
  K steps of constant step eta with minibatches of b samples drawn with replacement (gradient
  noise s^2 / b), or of full-batch gradient descent (b = N). The outcome of a replicate is
  whether it ends in the good basin (``in_good_basin``: w left of the local maximum). Gradient
  descent cannot leave x_l (its gradient there is zero), so any escape is the noise's doing. In
  the small-step (Langevin) picture the minibatch noise acts as a temperature
  T = eta s^2 / (2 b) and the escape rate scales like exp(-Delta F / T) (Kramers 1940), with
  Delta F the barrier between x_l and the local maximum: the escape fraction falls with b.
  Fractions have Wilson intervals; the difference SGD - GD has Newcombe's hybrid score interval.
- ``ghadimi_lan``: SGD (one sample per step, drawn with replacement, an unbiased stochastic
  gradient oracle) with the constant step eta = c / sqrt(K) over a horizon of K steps, for
  several K, on two small tanh networks (``teacher_student``, realizable with f* = 0, and
  ``tanh_network``, a noisy regression). Ghadimi & Lan (2013, SIAM J. Optim. 23(4),
  Cor. 2.2) bound E||grad f(w_R)||^2 for R uniform on the K iterates, i.e. the average
  (1/K) sum_k E||grad f(w_k)||^2, by O(1/sqrt(K)); the smallest E||grad f(w_k)||^2 is below the
  average, so it falls at least as fast. Measured: the average over k (trapezoid rule on a
  log-spaced record grid, per replicate) and min_k of the mean curve, against K, with log-log
  slopes and bootstrap CIs over replicates. Expected slope for the average: -1/2 (accepted
  interval [-0.7, -0.3]); for the minimum: at most -0.4 (a one-sided bound).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import seaborn as sns

from convstudy._validation import check_array, check_option
from convstudy.claims import Check
from convstudy.engine import record_steps, simulate
from convstudy.figures import add_reference_line, new_figure, plot_estimates
from convstudy.optim import get_optimizer
from convstudy.stats.curves import curve_matrix
from convstudy.stats.estimate import bootstrap
from convstudy.stats.fits import condition_bootstrap, fit_trend, trend_from_bootstrap
from convstudy.stats.means import mean_ci, mean_sem_ci
from convstudy.stats.proportions import proportion_ci, proportion_difference_ci
from convstudy.study import Analysis, Scale, Study, build_problem

DOUBLE_WELL = {
    "problem": "double_well",
    "problem.dim": 1,
    "problem.tilt": 0.8,
    "problem.noise": 2.0,
    "problem.n_samples": 200,
}
ESCAPE_LR = 0.1
ESCAPE_STEPS = 2000
BATCH_SIZES = (1, 2, 3, 4, 6, 8, 16, 32)
GL_PROBLEMS = ("teacher_student", "tanh_network")
GL_STEP_CONSTANT = 1.0  # eta = c / sqrt(K)
GL_RECORDS = 40
N_BOOT = 2000
GL_AVERAGE_INTERVAL = (-0.7, -0.3)
GL_MIN_HIGH = -0.4
ESCAPE_SOURCE = "course slides; Kramers (1940) Physica 7, 284 (escape over a barrier)"
GL_SOURCE = (
    "Ghadimi & Lan (2013) Stochastic first- and zeroth-order methods for nonconvex stochastic "
    "programming, SIAM J. Optim. 23(4), Cor. 2.2"
)
PROBLEM_LABELS = {"teacher_student": "teacher-student", "tanh_network": "tanh network"}


# ---- conditions ---------------------------------------------------------------------------------
def conditions(scale: Scale) -> list[dict]:
    escape = [
        {
            "part": "escape",
            "method": "sgd",
            "batch_size": b,
            "sampler": "replacement",
            **DOUBLE_WELL,
            "lr": ESCAPE_LR,
            "n_steps": ESCAPE_STEPS,
        }
        for b in BATCH_SIZES
    ]
    escape.append(
        {
            "part": "escape",
            "method": "gd",
            "batch_size": DOUBLE_WELL["problem.n_samples"],
            "sampler": "full",
            **DOUBLE_WELL,
            "lr": ESCAPE_LR,
            "n_steps": ESCAPE_STEPS,
        }
    )
    horizons = scale.pick((100, 316, 1000, 3162, 10000), (100, 316, 1000))
    gl = [
        {
            "part": "ghadimi_lan",
            "method": "sgd",
            "problem": name,
            "batch_size": 1,
            "sampler": "replacement",
            "step_constant": GL_STEP_CONSTANT,
            "lr": GL_STEP_CONSTANT / math.sqrt(k),
            "n_steps": k,
        }
        for name in GL_PROBLEMS
        for k in horizons
    ]
    return escape + gl


# ---- compute ------------------------------------------------------------------------------------
def _escape_cell(condition: dict, seed: int, replicates) -> pd.DataFrame:
    """Trajectories from the poor local minimum, with a ``good_basin`` flag per record."""
    problem = build_problem(condition)
    frame = simulate(
        problem,
        get_optimizer("sgd"),
        condition["lr"],
        n_steps=condition["n_steps"],
        sampler=condition["sampler"],
        batch_size=condition["batch_size"],
        replicates=replicates,
        seed=seed,
        record="log",
        n_records=40,
        record_iterates=True,
    )
    w = frame[[f"w_{j}" for j in range(problem.dim)]].to_numpy()
    good = np.all(w < problem.x_max, axis=1)  # NaN (diverged) compares False
    return frame.assign(good_basin=good)[
        ["replicate", "step", "loss", "grad_norm_sq", "diverged", "good_basin", "w_0"]
    ]


def _ghadimi_lan_cell(condition: dict, seed: int, replicates) -> pd.DataFrame:
    """SGD with eta = c / sqrt(K) for K steps; squared gradient norms on a log grid."""
    problem = build_problem(condition)
    frame = simulate(
        problem,
        get_optimizer("sgd"),
        condition["lr"],
        n_steps=condition["n_steps"],
        sampler=condition["sampler"],
        batch_size=condition["batch_size"],
        replicates=replicates,
        seed=seed,
        record=record_steps(condition["n_steps"], "log", GL_RECORDS),
    )
    return frame[["replicate", "step", "loss", "grad_norm_sq", "diverged"]]


PARTS = {"escape": _escape_cell, "ghadimi_lan": _ghadimi_lan_cell}


def compute(condition: dict, seed: int, replicate_ids) -> pd.DataFrame:
    part = check_option(condition.get("part"), "part", "nonconvex_escape.compute", PARTS)
    return PARTS[part](condition, seed, replicate_ids)


# ---- estimators ---------------------------------------------------------------------------------
def trapezoid_average(steps, values) -> np.ndarray:
    """(1/K) integral_0^K of a curve recorded at ``steps`` (trapezoid rule), per row of ``values``.

    ``steps`` (S,) must start at 0 and be increasing with K = steps[-1] > 0; ``values`` is (S,)
    or (R, S). On a log-spaced grid this estimates the average (1/K) sum_{k<K} v_k of a curve
    that varies smoothly in k with far fewer evaluations than a uniform grid would need to
    resolve its early transient.
    """
    owner = "trapezoid_average"
    k = check_array(steps, "steps", owner, ndim=1)
    v = check_array(values, "values", owner, ndim=(1, 2), finite=False)
    if k.size < 2 or k[0] != 0 or np.any(np.diff(k) <= 0) or v.shape[-1] != k.size:
        raise ValueError(
            f"The 'steps' parameter of {owner} must be increasing from 0 with one entry per "
            f"column of values. Got steps {k[:5].tolist()}... ({k.size}) for values {v.shape}."
        )
    dk = np.diff(k)
    return np.sum(dk * (v[..., 1:] + v[..., :-1]) / 2, axis=-1) / k[-1]


def barrier_height(problem) -> float:
    """Delta F = f1(x_max) - f1(x_l): the barrier from the poor minimum, one coordinate."""
    return float(problem._f1(problem.x_max) - problem._f1(problem.x_local))


# ---- analysis: escape ---------------------------------------------------------------------------
def _final_outcomes(escape_runs: pd.DataFrame) -> pd.DataFrame:
    last = escape_runs[escape_runs["step"] == escape_runs["n_steps"]]
    return last.sort_values(["method", "batch_size", "replicate"])


def _escape_table(escape_runs: pd.DataFrame) -> pd.DataFrame:
    final = _final_outcomes(escape_runs)
    cond = escape_runs.iloc[0]
    problem = build_problem(DOUBLE_WELL)
    barrier = barrier_height(problem)
    gd = final[final["method"] == "gd"]
    k_gd, n_gd = int(gd["good_basin"].sum()), int(len(gd))
    rows = []
    for (method, b), part in final.groupby(["method", "batch_size"], sort=False):
        k, n = int(part["good_basin"].sum()), int(len(part))
        share = proportion_ci(k, n)
        p, lo, hi = share.value, share.ci_low, share.ci_high
        minus_gd = proportion_difference_ci(k, n, k_gd, n_gd)
        d, d_lo, d_hi = minus_gd.value, minus_gd.ci_low, minus_gd.ci_high
        temperature = cond["lr"] * problem.noise**2 / (2 * b) if method == "sgd" else 0.0
        rows.append(
            {
                "method": method,
                "batch_size": int(b),
                "n_steps": int(cond["n_steps"]),
                "lr": float(cond["lr"]),
                "escaped": k,
                "n": n,
                "fraction_good_basin": p,
                "ci_low": lo,
                "ci_high": hi,
                "minus_gd": d,
                "minus_gd_low": d_lo,
                "minus_gd_high": d_hi,
                "noise_temperature": temperature,
                "barrier_over_temperature": barrier / temperature if temperature else np.inf,
                "n_diverged": int(part["diverged"].sum()),
            }
        )
    table = pd.DataFrame(rows)
    order = table["method"].map({"sgd": 0, "gd": 1})
    return table.assign(_o=order).sort_values(["_o", "batch_size"]).drop(columns="_o")


def _escape_trend(escape_runs: pd.DataFrame) -> dict:
    """OLS slope of the good-basin fraction against log2(b) over the SGD batch sizes."""
    final = _final_outcomes(escape_runs)
    sgd = final[final["method"] == "sgd"]
    sizes = np.sort(sgd["batch_size"].unique())
    samples = [sgd.loc[sgd["batch_size"] == b, "good_basin"].to_numpy(dtype=float) for b in sizes]
    fit = fit_trend(np.log2(sizes), samples, log_x=False, log_y=False, n_boot=N_BOOT, seed=11)
    e = fit.estimate
    return {
        "slope": e.value,
        "ci_low": e.ci_low,
        "ci_high": e.ci_high,
        "n_min": e.n,
        "b_min": int(sizes.min()),
        "b_max": int(sizes.max()),
    }


def _basin_curves(escape_runs: pd.DataFrame) -> pd.DataFrame:
    grouped = escape_runs.groupby(["method", "batch_size", "step"], sort=True)["good_basin"]
    counts = grouped.agg(["sum", "count"]).reset_index()
    cis = [proportion_ci(int(k), int(n)) for k, n in zip(counts["sum"], counts["count"])]
    return counts.assign(
        fraction=[c.value for c in cis],
        ci_low=[c.ci_low for c in cis],
        ci_high=[c.ci_high for c in cis],
    )


def _escape_figure(table: pd.DataFrame, curves: pd.DataFrame, escape_runs: pd.DataFrame):
    fig, axes = new_figure(ncols=3, width=4.4, height=3.6)
    problem = build_problem(DOUBLE_WELL)
    # the landscape
    ax = axes[0]
    x = np.linspace(-1.6, 1.6, 400)
    ax.plot(x, problem._f1(x), color="k", lw=1.4)
    for name, xv, color in [
        ("global min", problem.x_global, "C2"),
        ("local max", problem.x_max, "0.5"),
        ("poor local min (start)", problem.x_local, "C3"),
    ]:
        ax.axvline(xv, color=color, ls="--", lw=1, label=f"{name} {xv:.2f}")
    ax.set_xlabel("w")
    ax.set_ylabel("f(w)")
    ax.set_ylim(-1.5, 3)
    ax.set_title(
        f"double well, tilt {problem.tilt:g}, barrier {barrier_height(problem):.2f}",
        fontsize="small",
    )
    ax.legend(fontsize="x-small")
    # final fraction against b
    sgd = table[table["method"] == "sgd"]
    gd = table[table["method"] == "gd"].iloc[0]
    plot_estimates(
        axes[1],
        sgd,
        x="batch_size",
        y="fraction_good_basin",
        logx=True,
        xlabel="minibatch size b (SGD, with replacement)",
        ylabel=f"fraction in the good basin after {int(gd['n_steps'])} steps",
        title=f"Escape from the poor minimum, eta = {gd['lr']:g}",
        note="",
    )
    p_gd = gd["fraction_good_basin"]
    axes[1].errorbar(
        [gd["batch_size"]],
        [p_gd],
        yerr=[[p_gd - gd["ci_low"]], [gd["ci_high"] - p_gd]],
        fmt="s",
        color="k",
        capsize=3,
        label=f"gradient descent (b = N = {int(gd['batch_size'])})",
    )
    axes[1].set_xscale("log", base=2)
    axes[1].set_ylim(-0.03, 1.03)
    axes[1].plot([], [], "o-", color=sns.color_palette("deep")[0], label="SGD")
    axes[1].legend(
        fontsize="x-small",
        loc="upper right",
        title=f"R = {int(gd['n'])}; error bars = 95% Wilson CI",
        title_fontsize="x-small",
    )
    # fraction over time
    ax = axes[2]
    keys = [("sgd", b) for b in sorted(sgd["batch_size"])] + [("gd", int(gd["batch_size"]))]
    colors = list(sns.color_palette("viridis", len(keys) - 1)) + ["k"]
    for (method, b), color in zip(keys, colors):
        c = curves[(curves["method"] == method) & (curves["batch_size"] == b)]
        c = c[c["step"] > 0]
        label = f"b = {b}" if method == "sgd" else "GD"
        ax.plot(c["step"], c["fraction"], color=color, label=label, lw=1.4)
        ax.fill_between(c["step"], c["ci_low"], c["ci_high"], color=color, alpha=0.12, lw=0)
    ax.set_xscale("log")
    ax.set_xlabel("step k")
    ax.set_ylabel("fraction in the good basin")
    ax.set_title("Over time (band = 95% Wilson CI)", fontsize="small")
    ax.legend(fontsize="x-small", ncol=2)
    return fig


# ---- analysis: Ghadimi-Lan ----------------------------------------------------------------------
def _gl_fits(gl_runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows, fits = [], []
    for i, name in enumerate(sorted(gl_runs["problem"].unique())):
        sub = gl_runs[gl_runs["problem"] == name]
        horizons = np.sort(sub["n_steps"].unique())
        avg_samples, min_point, min_boots = [], [], []
        for j, K in enumerate(horizons):
            cell = sub[sub["n_steps"] == K]
            steps, G, diverged = curve_matrix(cell, "grad_norm_sq")
            G = G[~diverged]
            avg = trapezoid_average(steps, G)
            avg_samples.append(avg)
            mean_curve = G.mean(axis=0)
            min_point.append(float(mean_curve.min()))
            # min of resampled mean curves: biased low (the minimum selects noise); see notes
            min_boots.append(
                bootstrap(G, lambda c: c.min(axis=1), n_boot=N_BOOT, seed=1000 * i + j)
            )
            m_ci = mean_ci(avg)
            m, lo, hi, n = m_ci.value, m_ci.ci_low, m_ci.ci_high, m_ci.n
            m_lo, m_hi = np.quantile(min_boots[-1], [0.025, 0.975])
            rows.append(
                {
                    "problem": name,
                    "K": int(K),
                    "lr": float(cell["lr"].iloc[0]),
                    "avg_grad_norm_sq": float(m),
                    "avg_ci_low": float(lo),
                    "avg_ci_high": float(hi),
                    "min_mean_grad_norm_sq": min_point[-1],
                    "min_ci_low": float(m_lo),
                    "min_ci_high": float(m_hi),
                    "argmin_step": int(steps[np.argmin(mean_curve)]),
                    "final_loss": float(np.mean(cell.loc[cell["step"] == K, "loss"])),
                    "n": int(n),
                    "n_diverged": int(diverged.sum()),
                }
            )
        avg_point, avg_boots = condition_bootstrap(avg_samples, n_boot=N_BOOT, seed=50 + i)
        for quantity, point, boots in [
            ("average over k", avg_point, avg_boots),
            ("min over k of the mean", np.array(min_point), np.column_stack(min_boots)),
        ]:
            n_min = int(min(a.size for a in avg_samples))
            fit = trend_from_bootstrap(horizons.astype(float), point, boots, n=n_min).estimate
            fits.append(
                {
                    "problem": name,
                    "quantity": quantity,
                    "slope": fit.value,
                    "ci_low": fit.ci_low,
                    "ci_high": fit.ci_high,
                    "theory": -0.5,
                    "K_min": int(horizons.min()),
                    "K_max": int(horizons.max()),
                    "n": int(min(a.size for a in avg_samples)),
                }
            )
    return pd.DataFrame(rows), pd.DataFrame(fits)


def _gl_figure(gl_runs: pd.DataFrame, table: pd.DataFrame, fits: pd.DataFrame):
    names = sorted(gl_runs["problem"].unique())
    fig, axes = new_figure(ncols=len(names) + 1, width=4.3, height=3.6)
    axes = np.atleast_1d(axes)
    for ax, name in zip(axes[:-1], names):
        sub = gl_runs[gl_runs["problem"] == name]
        horizons = np.sort(sub["n_steps"].unique())
        colors = sns.color_palette("viridis", len(horizons))
        for K, color in zip(horizons, colors):
            cell = sub[sub["n_steps"] == K]
            steps, G, diverged = curve_matrix(cell, "grad_norm_sq")
            m, _, lo, hi, _ = mean_sem_ci(G[~diverged])
            keep = steps > 0
            ax.plot(steps[keep], m[keep], color=color, lw=1.3, label=f"K = {K}")
            ax.fill_between(steps[keep], lo[keep], hi[keep], color=color, alpha=0.2, lw=0)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("step k")
        ax.set_ylabel("E ||grad f(w_k)||^2")
        ax.set_title(
            f"{PROBLEM_LABELS.get(name, name)}: SGD, eta = {GL_STEP_CONSTANT:g}/sqrt(K)",
            fontsize="small",
        )
        ax.legend(fontsize="x-small", title="mean, band = 95% t-CI", title_fontsize="x-small")
    ax = axes[-1]
    long = []
    for name in names:
        t = table[table["problem"] == name]
        f = fits[fits["problem"] == name].set_index("quantity")
        fa, fm = f.loc["average over k"], f.loc["min over k of the mean"]
        long.append(
            pd.DataFrame(
                {
                    "K": t["K"],
                    "value": t["avg_grad_norm_sq"],
                    "low": t["avg_ci_low"],
                    "high": t["avg_ci_high"],
                    "series": f"{PROBLEM_LABELS.get(name, name)}, average over k "
                    f"(slope {fa['slope']:.2f} [{fa['ci_low']:.2f}, {fa['ci_high']:.2f}])",
                }
            )
        )
        long.append(
            pd.DataFrame(
                {
                    "K": t["K"],
                    "value": t["min_mean_grad_norm_sq"],
                    "low": t["min_ci_low"],
                    "high": t["min_ci_high"],
                    "series": f"{PROBLEM_LABELS.get(name, name)}, min over k "
                    f"(slope {fm['slope']:.2f} [{fm['ci_low']:.2f}, {fm['ci_high']:.2f}])",
                }
            )
        )
    plot_estimates(
        ax,
        pd.concat(long, ignore_index=True),
        x="K",
        y="value",
        low="low",
        high="high",
        hue="series",
        logx=True,
        logy=True,
        xlabel="horizon K (eta = c / sqrt(K))",
        ylabel="E ||grad f||^2",
        title="Against the horizon",
    )
    ks = np.array([table["K"].min(), table["K"].max()], dtype=float)
    top = table["avg_grad_norm_sq"].max()
    add_reference_line(ax, ks, top * (ks / ks[0]) ** -0.5, "K^(-1/2)")
    ax.legend(fontsize="xx-small", title="error bars = 95% CI", title_fontsize="xx-small")
    return fig


# ---- checks and findings ------------------------------------------------------------------------
def _checks(escape: pd.DataFrame, trend: dict, fits: pd.DataFrame) -> list[Check]:
    sgd1 = escape[(escape["method"] == "sgd") & (escape["batch_size"] == 1)].iloc[0]
    checks = [
        Check(
            id="8a-sgd-escapes-more-than-gd",
            claim=8,
            statement="SGD's noise escapes a poor local minimum more often than gradient descent",
            source=ESCAPE_SOURCE,
            quantity=(
                f"fraction in the good basin after {int(sgd1['n_steps'])} steps from the poor "
                f"minimum: SGD (b = 1) minus gradient descent, eta = {sgd1['lr']:g}"
            ),
            expected="> 0",
            expected_low=0.0,
            expected_high=1.0,
            estimate=float(sgd1["minus_gd"]),
            ci_low=float(sgd1["minus_gd_low"]),
            ci_high=float(sgd1["minus_gd_high"]),
            n_replicates=int(sgd1["n"]),
            figure="figures/escape.png",
            table="tables/escape_by_batch_size.md",
            notes="Newcombe (1998) hybrid score interval for a difference of proportions",
        ),
        Check(
            id="8b-escape-falls-with-batch-size",
            claim=8,
            statement="the escape fraction falls as the minibatch grows (less gradient noise)",
            source=ESCAPE_SOURCE,
            quantity=(
                f"OLS slope of the good-basin fraction against log2(b), b = {trend['b_min']}.."
                f"{trend['b_max']}"
            ),
            expected="< 0",
            expected_low=-math.inf,
            expected_high=0.0,
            estimate=float(trend["slope"]),
            ci_low=float(trend["ci_low"]),
            ci_high=float(trend["ci_high"]),
            n_replicates=int(trend["n_min"]),
            figure="figures/escape.png",
            table="tables/escape_by_batch_size.md",
            notes="percentile bootstrap over replicates within each b",
        ),
    ]
    for name in sorted(fits["problem"].unique()):
        f = fits[fits["problem"] == name].set_index("quantity")
        label = PROBLEM_LABELS.get(name, name)
        for suffix, quantity, low, high, expected in [
            ("avg", "average over k", *GL_AVERAGE_INTERVAL, "-1/2; accept [-0.7, -0.3]"),
            (
                "min",
                "min over k of the mean",
                -math.inf,
                GL_MIN_HIGH,
                "at least as fast as K^(-1/2) (min <= average); accept <= -0.4",
            ),
        ]:
            row = f.loc[quantity]
            what = (
                "(1/K) sum_k E||grad f(w_k)||^2" if suffix == "avg" else "min_k E||grad f(w_k)||^2"
            )
            checks.append(
                Check(
                    id=f"8{'c' if suffix == 'avg' else 'd'}-ghadimi-lan-{suffix}-{name}",
                    claim=8,
                    statement=(
                        "with a constant step c/sqrt(K) over K steps, the expected squared "
                        "gradient norm falls like 1/sqrt(K)"
                    ),
                    source=GL_SOURCE,
                    quantity=(
                        f"log-log slope of {what} against K in [{row['K_min']}, "
                        f"{row['K_max']}], SGD b = 1, {label}"
                    ),
                    expected=expected,
                    expected_low=float(low),
                    expected_high=float(high),
                    estimate=float(row["slope"]),
                    ci_low=float(row["ci_low"]),
                    ci_high=float(row["ci_high"]),
                    n_replicates=int(row["n"]),
                    figure="figures/ghadimi_lan.png",
                    table="tables/ghadimi_lan_slopes.md",
                    notes=(
                        "percentile bootstrap over replicates within each K"
                        + (
                            ""
                            if suffix == "avg"
                            else "; the minimum of a resampled mean curve is biased low"
                        )
                    ),
                )
            )
    return checks


def _findings(escape: pd.DataFrame, trend: dict, fits: pd.DataFrame) -> list[str]:
    sgd = escape[escape["method"] == "sgd"]
    gd = escape[escape["method"] == "gd"].iloc[0]
    per_b = ", ".join(
        f"b = {int(r.batch_size)}: {r.fraction_good_basin:.2f}" for r in sgd.itertuples()
    )
    out = [
        f"From the poor local minimum, after {int(gd['n_steps'])} steps of size {gd['lr']:g}, "
        f"the fraction of replicates in the good basin is {per_b}; gradient descent: "
        f"{gd['fraction_good_basin']:.2f} [{gd['ci_low']:.3f}, {gd['ci_high']:.3f}] "
        f"(R = {int(gd['n'])} each, 95% Wilson CIs in the table).",
        f"The fraction falls by {-trend['slope']:.3f} [{-trend['ci_high']:.3f}, "
        f"{-trend['ci_low']:.3f}] per doubling of b (OLS over b = {trend['b_min']}.."
        f"{trend['b_max']}); the noise temperature eta s^2/(2b) halves with each doubling.",
    ]
    for r in fits.itertuples():
        out.append(
            f"{PROBLEM_LABELS.get(r.problem, r.problem)}, {r.quantity} of E||grad f(w_k)||^2 "
            f"against K = {r.K_min}..{r.K_max}: slope {r.slope:.2f} [{r.ci_low:.2f}, "
            f"{r.ci_high:.2f}] (Ghadimi-Lan rate -1/2)."
        )
    return out


def analyze(runs: pd.DataFrame, scale: Scale) -> Analysis:
    escape_runs = runs[runs["part"] == "escape"]
    gl_runs = runs[runs["part"] == "ghadimi_lan"]
    escape = _escape_table(escape_runs)
    trend = _escape_trend(escape_runs)
    curves = _basin_curves(escape_runs)
    gl_table, gl_fits = _gl_fits(gl_runs)
    return Analysis(
        tables={
            "escape_by_batch_size": escape,
            "ghadimi_lan": gl_table,
            "ghadimi_lan_slopes": gl_fits,
        },
        figures={
            "escape": _escape_figure(escape, curves, escape_runs),
            "ghadimi_lan": _gl_figure(gl_runs, gl_table, gl_fits),
        },
        captions={
            "escape": "The double well, the fraction of replicates in the good basin after K "
            "steps against the minibatch size, and over time.",
            "ghadimi_lan": "E||grad f(w_k)||^2 along runs with eta = c/sqrt(K), and its average "
            "and minimum over k against K.",
            "escape_by_batch_size": "Good-basin fraction per batch size with Wilson CIs and the "
            "difference to gradient descent (Newcombe CIs).",
            "ghadimi_lan_slopes": "Log-log slopes against K with bootstrap CIs.",
        },
        findings=_findings(escape, trend, gl_fits),
        checks=_checks(escape, trend, gl_fits),
    )


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
    compute=compute,
    analyze=analyze,
    claims=(8,),
    replicates=200,
    quick_replicates=20,
)
