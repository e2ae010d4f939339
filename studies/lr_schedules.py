"""Claim 3: SGD needs a shrinking step; a constant step stalls at a noise floor proportional to eta.

Noisy strongly convex least squares (``quadratic``: d = 5, mu = 1, L = 10, N = 1000, noise 1),
SGD with single samples drawn with replacement (Bottou, Curtis & Nocedal 2018, Thms 4.6-4.7),
whose first two moments obey an exact recursion (:mod:`convstudy.theory.noise_floor`): every
curve has an exact expectation, drawn dashed and used as the prediction. Grids: ``noise_floor``
(constant eta, K = 12 / (eta mu); plateau = time average of f - f* over [K/2, K], to first order
eta tr(Sigma)/4 with Sigma the gradient noise covariance at w*); ``schedules`` (K = 16 k0 for
constant, 1/k = beta / (k0 + k) with beta mu = 2, 1/sqrt(k), step, exponential, cosine, and 1/k
with beta mu = 0.2 (rate k^(-2 beta mu), Nemirovski et al. 2009) or eta0 twice the mean-square
stability limit; final level = time average over [3K/4, K]); ``convex`` (eta_k = 0.2 / sqrt(1 + k)
on ``convex_least_squares``, registered here: mu = 0, noisy targets; the noise term eta_k
tr(Sigma)/4 ~ k^-1/2 takes over late). Checks: :mod:`convstudy.catalogue.lr_schedules`.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import seaborn as sns

from convstudy import figures as plots
from convstudy.catalogue.lr_schedules import CONVEX, FLOOR_LEVEL, FLOOR_SLOPE, INVERSE_TIME, STALLS
from convstudy.engine import record_steps
from convstudy.problems import LeastSquares, register_problem
from convstudy.schedules import Schedule, get_schedule
from convstudy.stats.curves import time_average_estimate
from convstudy.stats.estimate import derived_seed
from convstudy.stats.fits import curve_loglog_slope, fit_loglog_slope, fit_power_law
from convstudy.stats.means import ratio_of_means
from convstudy.study import Analysis, Scale, Study, Variant, build_problem, simulate_cell
from convstudy.theory import noise_floor as nf


def problem_keys(name: str, **params) -> dict:
    """The condition keys of problem ``name`` with ``params``."""
    return {"problem": name, **{f"problem.{k}": v for k, v in params.items()}}


NAME, GRIDS = "lr_schedules", ("noise_floor", "schedules", "convex")
PROBLEM = problem_keys(
    "quadratic", dim=5, condition_number=10.0, mu=1.0, noise=1.0, n_samples=1000, seed=0
)
CONVEX_PROBLEM = problem_keys(
    "convex_least_squares", dim=10, rank=5, eig_min=0.25, noise=1.0, n_samples=1000
)
SGD = {"optimizer": "sgd", "sampler": "replacement"}
MU, ETA0 = 1.0, 4e-3  # mu of PROBLEM; the schedules' eta0: floor ~0.02, 4% of the SGD limit
TAIL_RECORDS = 48  # evenly spaced records over [K/2, K]
DECAYING = ("inverse_time", "inverse_sqrt")


@register_problem("convex_least_squares")
def convex_least_squares(
    *,
    dim: int = 10,
    rank: int = 5,
    eig_min: float = 0.25,
    noise: float = 1.0,
    n_samples: int = 1000,
    seed: int = 0,
) -> LeastSquares:
    """Noisy least squares, convex but not strongly convex: X = sqrt(N) Q diag(sqrt(lambda)) V^T
    (Q, V random orthonormal), lambda log-spaced in [eig_min, 1] on ``rank`` directions and 0 on
    the others, so H = X^T X / N has ``dim - rank`` zero eigenvalues (mu = 0); y = X w + noise z,
    so f* (at the minimum-norm solution, see :class:`LeastSquares`) is positive."""
    if not 0 < rank <= dim:
        raise ValueError(f"The 'rank' of convex_least_squares must be in [1, {dim}]. Got {rank}.")
    rng = np.random.default_rng(seed)
    eig = np.concatenate([np.geomspace(eig_min, 1.0, rank), np.zeros(dim - rank)])
    Q, _ = np.linalg.qr(rng.standard_normal((n_samples, dim)))
    V, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    X = np.sqrt(n_samples) * (Q * np.sqrt(eig)) @ V.T
    y = X @ rng.standard_normal(dim) + noise * rng.standard_normal(n_samples)
    return LeastSquares(X, y, lam=0.0, name="convex_least_squares")


def schedule_of(c: dict) -> Schedule:
    return get_schedule(c["schedule"], **{k[9:]: v for k, v in c.items() if k[:9] == "schedule."})


def exact_curve(condition: dict, steps) -> np.ndarray:
    """Exact E[f(w_k)] - f* at ``steps`` for the condition (SGD with replacement, default w0)."""
    etas = schedule_of(condition)(np.arange(condition["n_steps"]))
    return nf.expected_suboptimality_curve(build_problem(condition), etas, steps)


def sgd_limit() -> float:  # the exact mean-square stability limit of SGD (b = 1) on PROBLEM
    return nf.sgd_moments(build_problem(PROBLEM)).mean_square_step_limit()


# ---- the grids and the broken variants ------------------------------------------------------
def sgd(problem: dict, eta0: float, n_steps: int, schedule: str = "constant", **extra) -> dict:
    """A condition: SGD with replacement, ``schedule`` from ``eta0``; ``extra`` keys as given."""
    schedule = {"schedule": schedule, "schedule.eta0": eta0, "n_steps": n_steps}
    return {**problem, **SGD, **schedule, **extra}


def conditions(scale: Scale) -> dict[str, list[dict]]:
    etas, horizon = scale.pick([1e-3, 2e-3, 4e-3, 8e-3], [2e-3, 4e-3, 8e-3]), scale.pick(12, 8)
    k0 = nf.inverse_time_offset(ETA0, MU, 2.0)  # beta mu = eta0 k0 mu = 2
    n_sched, n_convex = round(scale.pick(16, 8) * k0), scale.pick(50_000, 20_000)
    specs = {  # the schedules compared at one budget: label -> (schedule, eta0, parameters)
        "constant": ("constant", ETA0, {}),
        "1/k": ("inverse_time", ETA0, {"schedule.k0": k0}),
        "1/k, eta0 too small": ("inverse_time", ETA0, {"schedule.k0": k0 / 10}),  # beta mu = 0.2
        "1/k, eta0 too large": ("inverse_time", 2.0 * sgd_limit(), {"schedule.k0": k0}),
        "1/sqrt(k)": ("inverse_sqrt", ETA0, {"schedule.k0": k0}),
        "step": ("step", ETA0, {"schedule.step_size": n_sched // 4, "schedule.gamma": 0.3}),
        "exponential": ("exponential", ETA0, {"schedule.gamma": 0.01 ** (1.0 / n_sched)}),
        "cosine": ("cosine", ETA0, {"schedule.total_steps": n_sched}),
    }
    convex = {"n_records": 80, "schedule.k0": 1.0}
    return {
        "noise_floor": [sgd(PROBLEM, e, math.ceil(horizon / (e * MU))) for e in etas],
        "schedules": [
            sgd(PROBLEM, e, n_sched, s, label=lb, **p) for lb, (s, e, p) in specs.items()
        ],
        "convex": [
            sgd(CONVEX_PROBLEM, 0.2, n_convex, "inverse_sqrt", label="1/sqrt(k)", **convex),
            sgd(CONVEX_PROBLEM, 0.02, n_convex, label="constant", n_records=80),
        ],
    }


def tail_cell(condition: dict, seed: int, replicates) -> pd.DataFrame:
    """Records log-spaced up to K/2, then ``TAIL_RECORDS`` evenly spaced over [K/2, K]."""
    k = condition["n_steps"]
    tail = np.linspace(k // 2, k, TAIL_RECORDS).round().astype(np.int64)
    record = np.union1d(record_steps(k // 2, "log", 30), tail)
    return simulate_cell({**condition, "record": record}, seed, replicates)


def full_batch(c: dict) -> dict:
    """Broken: the noise-floor runs (no label) use full-batch gradients: no noise, no floor."""
    return c if "label" in c else {**c, "sampler": "full", "batch_size": c["problem.n_samples"]}


def never_decays(c: dict) -> dict:
    """Broken: 1/k and 1/sqrt(k) with k0 x 10^9, i.e. eta_k = eta0 over the whole budget."""
    return {**c, "schedule.k0": c["schedule.k0"] * 1e9} if c["schedule"] in DECAYING else c


def summable(c: dict) -> dict:
    """Broken: 1/k -> eta0 (1 - 10/k0)^k, summable (sum eta = eta0 k0 / 10): it freezes."""
    if c["schedule"] == "inverse_time":  # (c is the grid's copy of the condition)
        c |= {"schedule": "exponential", "schedule.gamma": 1 - 10 / c.pop("schedule.k0")}
    return c


# ---- analysis ------------------------------------------------------------------------------
def cells(runs: pd.DataFrame, conds: list[dict], key: str) -> dict:
    """{condition[key]: (condition, frame)} of a grid's (unbroken) conditions, in grid order."""
    return {c[key]: (c, runs[runs[key] == c[key]]) for c in conds}


def recorded(frame: pd.DataFrame, start: float = 1) -> np.ndarray:
    return np.unique(frame["step"][frame["step"] >= start])


def with_exact(pairs: dict) -> dict:
    """{name: (recorded steps k > 0, exact E[f(w_k)] - f*)} of {name: (condition, frame)}."""
    return {k: (recorded(f), exact_curve(c, recorded(f))) for k, (c, f) in pairs.items()}


def draw_curves(ax, pairs: dict, exact: dict | None = None, **kwargs) -> None:
    """Mean curves of {name: (condition, frame)} with their exact expectations dashed."""
    frames = {name: frame for name, (_, frame) in pairs.items()}
    plots.plot_condition_curves(ax, frames, theory=exact or with_exact(pairs), **kwargs)


def at(stem: str, table: bool = True) -> dict:
    return {"study": NAME, "figure": f"figures/{stem}.png", "table": f"tables/{stem}.md" * table}


def ci(e, fmt: str = ".3f") -> str:
    return f"{e.value:{fmt}} [{e.ci_low:{fmt}}, {e.ci_high:{fmt}}]"


def noise_floor(a: Analysis, pairs: dict, run_seed: int) -> None:
    """Plateau per eta (time average over [K/2, K]) against the exact theory: checks 3a-3b."""
    rows, plateaus = [], {}
    for eta, (cond, frame) in pairs.items():
        k = cond["n_steps"]
        plateaus[eta] = time_average_estimate(frame, k // 2)
        exact = nf.plateau_prediction(build_problem(cond), eta, recorded(frame, k // 2))
        rows.append({"eta": eta, "n_steps": k, **plateaus[eta].row("plateau"), **exact})
    table = a.tables["noise_floor"] = pd.DataFrame(rows)
    table["ratio_to_exact"] = table["plateau"] / table["exact_window_mean"]
    etas, top = table["eta"].to_numpy(), table.iloc[-1]
    groups = [p.values for p in plateaus.values()]
    fit = fit_power_law(etas, groups, seed=derived_seed(run_seed, "noise-floor")).estimate
    fit, exact = dataclasses.replace(fit, n=int(table["n"].min())), table["exact_window_mean"]
    slope = curve_loglog_slope(etas, exact.to_numpy())
    a.figures["noise_floor"], (ax, ax_floor) = plots.new_figure(2, 1, width=5.2)
    ax.hlines(table["plateau"], table["n_steps"] // 2, table["n_steps"], color="k", lw=1.2)
    ax.plot([], [], color="k", lw=1.2, label="plateau: mean over [K/2, K]")
    title = "Constant step: the curve stalls at a floor"
    draw_curves(ax, {f"eta = {e:g}": p for e, p in pairs.items()}, title=title)
    bars = (table["plateau"] - table["ci_low"], table["ci_high"] - table["plateau"])
    ax_floor.errorbar(etas, table["plateau"], bars, fmt="o", capsize=3, label="plateau (95% t-CI)")
    ax_floor.plot(etas, exact, "k--", label="exact expected plateau (theory)")
    ax_floor.plot(etas, table["first_order"], "r:", label="first order: eta tr(Sigma)/4")
    ax_floor.set(xscale="log", yscale="log", xlabel="constant step eta", ylabel="plateau")
    ax_floor.set_title(f"Floor vs eta: slope {ci(fit)}")
    ax_floor.set_xticks(etas, [f"{e:g}" for e in etas], minor=False)
    ax_floor.set_xticks([], minor=True)
    plots.figure_legend(a.figures["noise_floor"], (ax, ax_floor), title=plots.CI_NOTE, ncols=4)
    stationary = curve_loglog_slope(etas, table["exact_stationary"].to_numpy())
    notes = f"first-order slope 1; exact stationary floors give {stationary:.3f}"
    where, etas_text = at("noise_floor"), ", ".join(f"{e:g}" for e in etas)
    a.checks.append(FLOOR_SLOPE.check(fit, prediction=slope, etas=etas_text, notes=notes, **where))
    notes, level = f"first order {top['first_order']:.4g}", plateaus[top["eta"]].mean
    a.checks.append(
        FLOOR_LEVEL.check(level, prediction=exact.iloc[-1], eta=top["eta"], notes=notes, **where)
    )
    ratios = ", ".join(f"{r.eta:g}: {r.ratio_to_exact:.3f}" for r in table.itertuples())
    a.findings.append(
        f"Constant-step noise floor against eta: log-log slope {ci(fit)}; the exact expected "
        f"plateaus give {slope:.3f} (1 to first order). Measured/exact plateau ratios: {ratios};"
        f" the exact transient left at the window start is at most "
        f"{table['transient_share_at_window_start'].max():.2%} of the floor."
    )


def schedules(a: Analysis, pairs: dict, run_seed: int) -> None:
    """Schedules at one budget, their step sizes and partial sums: checks 3c-3d."""
    rows, finals, (inv, inv_frame), exact = [], {}, pairs["1/k"], with_exact(pairs)
    n_steps, k0, last = inv["n_steps"], inv["schedule.k0"], 3 * inv["n_steps"] // 4
    for label, (cond, frame) in pairs.items():
        schedule, finals[label] = schedule_of(cond), time_average_estimate(frame, last)
        sums, (steps, values) = nf.step_size_sums(schedule(np.arange(n_steps))), exact[label]
        row = {"schedule": label, "definition": schedule.label(), "sum_eta": sums[0][-1]}
        row |= {"sum_eta_sq": sums[1][-1], "robbins_monro": schedule.robbins_monro}
        row |= {**finals[label].row("final_subopt"), "exact_final": values[steps >= last].mean()}
        rows.append(row)
    by = (table := pd.DataFrame(rows)).set_index("schedule")
    colors = dict(zip(pairs, sns.color_palette("tab10", len(pairs))))
    stable = {k: p for k, p in pairs.items() if not p[1]["diverged"].any()}
    fig, (ax, ax_eta) = plots.new_figure(2, 1, width=5.4)
    draw_curves(ax, stable, exact, palette=[colors[k] for k in stable], title="One budget")
    (fig_sums, axes), a.tables["schedules"] = plots.new_figure(2, 1), table
    a.figures.update(schedules=fig, partial_sums=fig_sums)
    named = {label: schedule_of(cond) for label, (cond, _) in pairs.items()}
    plots.plot_schedules(ax_eta, axes, named, n_steps, colors=colors)
    ax_eta.axhline(sgd_limit(), color="k", ls=":", lw=1, label="SGD mean-square stability limit")
    ax_eta.set(title="The step sizes", ylim=(1e-5, 0.5))
    plots.figure_legend(fig, (ax, ax_eta), title=plots.CI_NOTE, ncols=4)
    top = 2.5 * by.loc["1/k", "sum_eta"] * math.log(10**5 / k0) / math.log(n_steps / k0)
    axes[0].set(yscale="linear", ylim=(0, top), title="sum eta = inf: 1/k grows like log k")
    plots.figure_legend(fig_sums, axes, title="schedule (RM = Robbins-Monro)", ncols=4)
    seed = derived_seed(run_seed, "3c")
    ratio = ratio_of_means(finals["constant"].values, finals["1/k"].values, seed=seed)
    shifted = inv_frame.assign(step=inv_frame["step"] + k0)  # the clock k0 + k of Thm 4.7
    window, seed = (n_steps / 4 + k0, n_steps + k0), derived_seed(run_seed, "3d-inverse-time-rate")
    slope = fit_loglog_slope(shifted, window=window, seed=seed).estimate
    in_k0 = curve_loglog_slope(exact["1/k"][0] + k0, exact["1/k"][1], x_min=window[0])
    in_k = curve_loglog_slope(*exact["1/k"], x_min=n_steps / 4)
    notes = f"k0 = {k0:g}; exact slope over the window {in_k0:.3f} against k0 + k, {in_k:.3f} in k"
    prediction = by.loc["constant", "exact_final"] / by.loc["1/k", "exact_final"]
    where = {**at("schedules"), "notes": "bootstrap CI, replicates resampled per schedule"}
    a.checks.append(STALLS.check(ratio, prediction=prediction, eta0=ETA0, n_steps=n_steps, **where))
    where["notes"] = notes
    window = {"k_min": n_steps // 4, "k_max": n_steps}
    a.checks.append(INVERSE_TIME.check(slope, prediction=-1.0, **window, **where))
    level = {s: f"{by.loc[s, 'final_subopt']:.3g}" for s in by.index}
    a.findings.append(
        f"After {n_steps} updates (final level: mean over [3K/4, K]) the constant step ends at "
        f"{level['constant']} and 1/k at {level['1/k']} (exact {by.loc['1/k', 'exact_final']:.3g}"
        f"); 1/k falls with slope {ci(slope)} against k0 + k (exact {in_k0:.3f}); 1/k with beta "
        f"mu = 0.2 ends at {level['1/k, eta0 too small']}."
    )
    low = by.loc["1/k", "ci_low"]
    beat = [s for s in ("step", "exponential", "cosine", "1/sqrt(k)") if by.loc[s, "ci_high"] < low]
    a.caveats += [
        f"At this budget ({n_steps} updates) {', '.join(beat) or 'no schedule'} end below 1/k "
        f"({level['1/k']}): {', '.join(f'{s} {level[s]}' for s in beat)}. They are not "
        "Robbins-Monro but tuned to the budget; Robbins-Monro is a statement about k -> inf "
        "(their sums of eta are bounded, so run longer they stall), not about a fixed budget.",
        f"The 1/k rate is measured against k0 + k (the clock of Thm 4.7); against k the exact "
        f"expectation's slope over the same window is {in_k:.3f}, since k0 = {k0:g} is not "
        "small against the window.",
        f"1/k with eta0 twice the mean-square stability limit diverged in "
        f"{by.loc['1/k, eta0 too large', 'share_diverged']:.0%} of replicates; its final level "
        "is over the survivors only.",
    ]


def convex(a: Analysis, pairs: dict, run_seed: int) -> None:
    """1/sqrt(k) steps on a convex, not strongly convex problem: check 3g."""
    cond, frame = pairs["1/sqrt(k)"]
    k, problem, seed = cond["n_steps"], build_problem(cond), derived_seed(run_seed, "3g-convex")
    slope = fit_loglog_slope(frame, window=(k / 10, k), seed=seed).estimate
    named = {f"{n} (eta0 = {c['schedule.eta0']:g})": (c, f) for n, (c, f) in pairs.items()}
    steps, values = (exact_curves := with_exact(named))[next(iter(named))]  # 1/sqrt(k) first
    exact, noise = curve_loglog_slope(steps, values, x_min=k / 10), nf.sgd_moments(problem)
    a.figures["convex"], ax = plots.new_figure(1, 1, width=6.0, height=4.4)
    floor = [noise.first_order_floor(e) for e in schedule_of(cond)(steps)]
    ax.plot(steps, floor, color="0.4", ls="-.", label="noise term eta_k tr(Sigma)/4 (theory)")
    title, kw = f"Convex (mu = 0) least squares: slope {ci(slope)}", {"window": (k / 10, k)}
    draw_curves(ax, named, exact_curves, palette="deep", title=title, **kw)
    plots.figure_legend(a.figures["convex"], ax, title=plots.CI_NOTE)
    rank = np.linalg.matrix_rank(problem.X)
    notes = f"rank {rank} in d = {problem.dim}; exact slope over the window {exact:.3f}"
    where = {"k_min": k // 10, "k_max": k, **at("convex", table=False)}
    a.checks.append(CONVEX.check(slope, prediction=-0.5, notes=notes, **where))
    a.findings.append(
        f"Convex (mu = 0) noisy least squares with eta_k ~ 1/sqrt(k): log-log slope over the "
        f"last decade {ci(slope)}; exact expectation {exact:.3f}."
    )
    a.caveats.append(
        f"convex_least_squares has mu = 0 only along the {problem.dim - rank} directions that "
        "carry neither curvature nor noise, so f never sees them; on the range of H the "
        "smallest eigenvalue is 0.25 and the 1/sqrt(k) rate is that of the noise term eta_k "
        "tr(Sigma)/4. The worst-case O(1/sqrt(k)) of a general convex problem is not tested."
    )


def analyze(runs: dict[str, pd.DataFrame], scale: Scale) -> Analysis:
    grids, a = conditions(scale), Analysis(captions=dict(CAPTIONS))
    noise_floor(a, cells(runs["noise_floor"], grids["noise_floor"], "schedule.eta0"), scale.seed)
    schedules(a, cells(runs["schedules"], grids["schedules"], "label"), scale.seed)
    convex(a, cells(runs["convex"], grids["convex"], "label"), scale.seed)
    return a


CAPTIONS = {
    "noise_floor": "Constant-step SGD (with replacement): mean curves with the exact expectation "
    "(dashed) and the plateau; right: plateau vs eta with the exact expected plateau and the "
    "first-order floor eta tr(Sigma)/4.",
    "schedules": "Schedules at one budget: mean E[f] - f* with the exact expectation dashed "
    "(schedules below the stability limit), and the steps eta_k.",
    "partial_sums": "Partial sums of eta_k (linear sum: 1/k grows like log k without bound, step, "
    "exponential and cosine level off) and of eta_k^2 (only 1/k's stay bounded).",
    "convex": "Convex noisy least squares (mu = 0): eta_k = eta0/sqrt(1+k) against a constant "
    "step, the exact expectation (dashed) and the noise term eta_k tr(Sigma)/4.",
}

study = Study(
    name=NAME,
    title="Learning-rate schedules: noise floor, Robbins-Monro, 1/k and 1/sqrt(k) rates",
    description=(
        "SGD on noisy least squares: the constant-step noise floor, schedules at one budget "
        "with the Robbins-Monro sums, the 1/k rate, and 1/sqrt(k) on a convex problem."
    ),
    conditions=conditions,
    compute={"noise_floor": tail_cell, "schedules": tail_cell, "convex": simulate_cell},
    analyze=analyze,
    labels=("label",),
    variants={
        "full-batch": Variant("noise-floor runs with full-batch gradients", full_batch),
        "constant-step": Variant("1/k and 1/sqrt(k) never decay (k0 x 1e9)", never_decays),
        "summable": Variant("1/k -> eta0 (1 - 10/k0)^k (sum eta = eta0 k0/10)", summable),
    },
    replicates=800,
    claims=(3,),
)
