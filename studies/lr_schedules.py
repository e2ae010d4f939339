"""Claim 3: SGD needs a shrinking step; a constant step stalls at a noise floor proportional to eta.

Problem: a noisy strongly convex least-squares problem (``quadratic``: d = 5, mu = 1, L = 10,
N = 1000 samples with target noise 1), SGD with single samples drawn **with replacement** (the
i.i.d. setting of Bottou, Curtis & Nocedal 2018, Thms 4.6-4.7; random reshuffling converges
faster, see the ``sample_order`` study). On least squares the first two moments of SGD obey an
exact linear recursion (:class:`convstudy.theory.noise_floor.LeastSquaresSGDMoments`), so every
curve here is drawn next to its exact expectation, not only next to a bound.

Parts of the grid (the ``part`` column):

- ``noise_floor``: constant steps eta in {1, 2, 4, 8} x 10^-3 (quick: 3 sizes), each run for
  K = 12 / (eta mu) updates. The transient from w0 decays like (1 - eta mu)^(2k), so after K/2
  = 6 / (eta mu) updates its exact remainder is below 1% of the floor (reported per eta in the
  table); the **plateau** of a replicate is its time average of f(w_k) - f* over 48 evenly
  spaced records in [K/2, K], and the noise floor at eta is the mean plateau over replicates.
  Theory: to first order E[f] - f* = eta tr(Sigma) / 4 (Sigma the gradient noise covariance at
  w*), so the log-log slope of the floor against eta is 1 for small eta (Thm 4.6 bounds the
  floor by eta L M / (2 mu), also proportional to eta); the exact stationary value adds
  O(eta^2) and is overlaid.
- ``schedules``: the same budget K for constant, 1/k (eta_k = beta / (k0 + k) with beta mu = 2,
  which satisfies Thm 4.7's beta > 1/mu), 1/sqrt(k), step, exponential and cosine schedules, plus
  1/k with eta0 too small (beta mu = 0.2 < 1/2: the rate degrades to k^(-2 beta mu),
  Nemirovski et al. 2009, Sec. 1) and too large (eta0 above the mean-square stability limit).
  Final suboptimality, iterations to eps (first crossing of the mean curve, bootstrap CI,
  censored when never reached), share of replicates diverged (Wilson CI), and the partial sums
  of eta and eta^2 that decide Robbins-Monro (sum eta = inf, sum eta^2 < inf).
- ``gd_divergence``: full-batch gradient descent at steps c * 2/L around 2/L from random
  starting points (w0 = w* + default offset + N(0, I)): on a quadratic, GD diverges exactly when
  eta > 2/L (the top eigen-direction is multiplied by |1 - eta L| > 1 every step). GD sees only
  the Hessian, so it runs on the same spectrum with N = 100 samples (10x cheaper full gradients).
- ``sgd_divergence``: constant-step SGD at steps around its exact mean-square stability limit
  (the largest eta for which E||w_k - w*||^2 stays bounded), the share of replicates diverged.
- ``convex``: 1/sqrt(k) steps on a noisy convex least-squares problem that is **not** strongly
  convex: rank 5 of d = 10 (mu = 0 exactly: f is flat along a 5-dimensional subspace), nonzero
  Hessian eigenvalues log-spaced in [0.25, 1], targets with noise 1, so f* > 0 and the per-sample
  gradients do not vanish at the optimum (unlike the realizable ``quartic_regression``, which has
  no noise floor). The claim E[f] - f* = O(1/sqrt(k)) is checked as the log-log slope of the mean
  curve over the last decade of steps being <= -1/2; the exact expectation is overlaid. (On this
  problem the O(1/sqrt k) term is the noise floor eta_k tr(Sigma)/4 tracking the step; the bias
  from w0 decays faster, like exp(-c sqrt(k)).)

A replicate counts as diverged when its suboptimality exceeds 10^6 max(f(w0) - f*, 1) or becomes
non-finite (see :func:`convstudy.simulate`).
"""

from __future__ import annotations

import functools
import json
import math

import numpy as np
import pandas as pd

from convstudy.claims import Check
from convstudy.engine import record_steps, simulate
from convstudy.figures import (
    CI_NOTE,
    add_reference_line,
    new_figure,
    plot_estimates,
    plot_mean_curves,
)
from convstudy.optim import get_optimizer
from convstudy.problems import LeastSquares
from convstudy.schedules import get_schedule
from convstudy.stats.curves import mean_curve, mean_curve_hitting_time, time_average
from convstudy.stats.estimate import Estimate
from convstudy.stats.fits import fit_loglog_slope, fit_power_law
from convstudy.stats.means import mean_ci, ratio_of_means
from convstudy.stats.proportions import proportion_ci
from convstudy.study import Analysis, Scale, Study, build_problem, split_condition
from convstudy.theory.noise_floor import LeastSquaresSGDMoments

NAME = "lr_schedules"
PROBLEM = {
    "problem": "quadratic",
    "problem.dim": 5,
    "problem.condition_number": 10.0,
    "problem.mu": 1.0,
    "problem.noise": 1.0,
    "problem.n_samples": 1000,
    "problem.seed": 0,
}
# gradient descent needs only the Hessian: the same spectrum (mu = 1, L = 10) on N = 100 samples
GD_PROBLEM = {**PROBLEM, "problem.n_samples": 100}
CONVEX = {
    "problem": "convex_least_squares",
    "problem.dim": 10,
    "problem.rank": 5,
    "problem.eig_min": 0.25,
    "problem.noise": 1.0,
    "problem.n_samples": 1000,
    "problem.seed": 0,
}
ETA0 = 4e-3  # the base step of the schedules part: floor ~0.02, 4% of the stability limit
EPS = (0.1, 0.03, 0.01)  # targets for iterations-to-eps
PLATEAU_RECORDS = 48  # evenly spaced records over [K/2, K] in the noise-floor runs
SOURCE = "Bottou, Curtis & Nocedal (2018), Thms 4.6-4.7; Robbins & Monro (1951)"


# ---- problems ------------------------------------------------------------------------------
@functools.lru_cache(maxsize=8)
def convex_least_squares(
    *,
    dim: int = 10,
    rank: int = 5,
    eig_min: float = 0.25,
    noise: float = 1.0,
    n_samples: int = 1000,
    seed: int = 0,
) -> LeastSquares:
    """Noisy least squares, convex but not strongly convex: Hessian of rank ``rank`` < ``dim``.

    X = sqrt(N) Q diag(sqrt(lambda)) V^T (Q, V random orthonormal) with lambda log-spaced in
    [eig_min, 1] on ``rank`` directions and 0 on the others, so H = X^T X / N has exactly
    ``dim - rank`` zero eigenvalues (mu = 0); y = X w_true + noise z. f* is attained (at the
    minimum-norm solution, computed by :class:`LeastSquares`) and is positive when noise > 0.
    """
    rng = np.random.default_rng(seed)
    eig = np.concatenate([np.geomspace(eig_min, 1.0, rank), np.zeros(dim - rank)])
    Q, _ = np.linalg.qr(rng.standard_normal((n_samples, dim)))
    V, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    X = np.sqrt(n_samples) * (Q * np.sqrt(eig)) @ V.T
    y = X @ rng.standard_normal(dim) + noise * rng.standard_normal(n_samples)
    return LeastSquares(X, y, lam=0.0, name="convex_least_squares")


def make_problem(condition: dict) -> LeastSquares:
    """The condition's problem: ``convex_least_squares`` (above) or a built-in problem."""
    if condition["problem"] == "convex_least_squares":
        return convex_least_squares(**split_condition(condition, "problem"))
    return build_problem(condition)


def make_schedule(condition: dict):
    return get_schedule(condition["schedule"], **split_condition(condition, "schedule"))


@functools.lru_cache(maxsize=8)
def _moments_cached(problem_json: str) -> LeastSquaresSGDMoments:
    return LeastSquaresSGDMoments.from_problem(make_problem(json.loads(problem_json)))


def moments_of(condition: dict) -> LeastSquaresSGDMoments:
    """Exact SGD moments (batch size 1, with replacement) of the condition's problem."""
    keys = {k: v for k, v in condition.items() if k == "problem" or k.startswith("problem.")}
    return _moments_cached(json.dumps(keys, sort_keys=True))


# ---- the grid ------------------------------------------------------------------------------
def _run(part: str, label: str, problem: dict, n_steps: int, schedule: str, **params) -> dict:
    """One condition: SGD on ``problem`` with ``schedule``; ``params`` are the schedule's
    parameters, except ``sampler``, ``batch_size``, ``w0`` and ``step_over_limit`` (a label)."""
    extra = {
        k: params.pop(k) for k in ("sampler", "batch_size", "w0", "step_over_limit") if k in params
    }
    return {
        "part": part,
        "label": label,
        **problem,
        "optimizer": "sgd",
        "schedule": schedule,
        **{f"schedule.{k}": v for k, v in params.items()},
        "sampler": "replacement",
        **extra,
        "n_steps": int(n_steps),
    }


def schedule_conditions(n_steps: int) -> list[dict]:
    """The schedules compared at one budget; all but one start from eta0 = ETA0."""
    mu = PROBLEM["problem.mu"]
    k0 = 2.0 / (mu * ETA0)  # beta = eta0 * k0 = 2 / mu
    too_large = 2.0 * moments_of(PROBLEM).mean_square_step_limit()
    specs = {
        "constant": ("constant", {"eta0": ETA0}),
        "1/k": ("inverse_time", {"eta0": ETA0, "k0": k0}),
        "1/k, eta0 too small": ("inverse_time", {"eta0": ETA0, "k0": k0 / 10}),  # beta mu = 0.2
        "1/k, eta0 too large": ("inverse_time", {"eta0": too_large, "k0": k0}),
        "1/sqrt(k)": ("inverse_sqrt", {"eta0": ETA0, "k0": k0}),
        "step": ("step", {"eta0": ETA0, "step_size": n_steps // 4, "gamma": 0.3}),
        "exponential": ("exponential", {"eta0": ETA0, "gamma": 0.01 ** (1.0 / n_steps)}),
        "cosine": ("cosine", {"eta0": ETA0, "total_steps": n_steps}),
    }
    return [
        _run("schedules", label, PROBLEM, n_steps, name, **params)
        for label, (name, params) in specs.items()
    ]


def conditions(scale: Scale) -> list[dict]:
    mu = PROBLEM["problem.mu"]
    L = mu * PROBLEM["problem.condition_number"]  # exact by construction of ``quadratic``
    horizon = scale.pick(12.0, 8.0)  # noise-floor runs: K = horizon / (eta mu)
    conds = [
        _run(
            "noise_floor",
            f"eta={eta:g}",
            PROBLEM,
            math.ceil(horizon / (eta * mu)),
            "constant",
            eta0=eta,
        )
        for eta in scale.pick([1e-3, 2e-3, 4e-3, 8e-3], [2e-3, 4e-3, 8e-3])
    ]
    conds += schedule_conditions(scale.pick(4000, 1500))
    n = GD_PROBLEM["problem.n_samples"]
    conds += [
        _run(
            "gd_divergence",
            f"GD {c:g} x 2/L",
            GD_PROBLEM,
            scale.pick(400, 300),
            "constant",
            eta0=c * 2.0 / L,
            step_over_limit=c,
            sampler="full",
            batch_size=n,
            w0="random",
        )
        for c in scale.pick([0.5, 0.9, 0.98, 1.02, 1.1, 1.5], [0.9, 0.98, 1.02, 1.1])
    ]
    limit = moments_of(PROBLEM).mean_square_step_limit()
    conds += [
        _run(
            "sgd_divergence",
            f"SGD {c:g} x limit",
            PROBLEM,
            scale.pick(1000, 500),
            "constant",
            eta0=c * limit,
            step_over_limit=c,
        )
        for c in scale.pick([0.5, 0.8, 1.0, 1.25, 1.6, 2.5], [0.8, 1.25, 2.5])
    ]
    n_convex = scale.pick(5000, 2000)
    conds.append(_run("convex", "1/sqrt(k)", CONVEX, n_convex, "inverse_sqrt", eta0=0.2, k0=1.0))
    conds.append(_run("convex", "constant", CONVEX, n_convex, "constant", eta0=0.02))
    return conds


def record_plan(condition: dict) -> np.ndarray:
    """Recorded steps: log-spaced, plus an evenly spaced stationary tail for noise floors."""
    n_steps = condition["n_steps"]
    if condition["part"] != "noise_floor":
        return record_steps(n_steps, "log", 80 if condition["part"] != "gd_divergence" else 30)
    head = record_steps(n_steps // 2, "log", 30)
    tail = np.linspace(n_steps // 2, n_steps, PLATEAU_RECORDS).round().astype(np.int64)
    return np.unique(np.concatenate([head, tail]))


def compute(condition: dict, seed: int, replicates) -> pd.DataFrame:
    """One cell: SGD (or full-batch GD) with the condition's schedule, sampler and start."""
    return simulate(
        make_problem(condition),
        get_optimizer(condition["optimizer"]),
        make_schedule(condition),
        n_steps=condition["n_steps"],
        sampler=condition["sampler"],
        batch_size=condition.get("batch_size", 1),
        replicates=replicates,
        seed=seed,
        record=record_plan(condition),
        w0=condition.get("w0"),
    )


# ---- analysis helpers ----------------------------------------------------------------------
def _cells(runs: pd.DataFrame, conds: list[dict], part: str):
    """(condition, frame) of each condition of ``part``, in grid order."""
    for cond in conds:
        if cond["part"] == part:
            yield cond, runs[(runs["part"] == part) & (runs["label"] == cond["label"])]


def _diverged_per_replicate(frame: pd.DataFrame) -> np.ndarray:
    return frame.groupby("replicate")["diverged"].any().to_numpy()


def _final_values(frame: pd.DataFrame) -> np.ndarray:
    """f(w_K) - f* per replicate at the last recorded step (NaN when diverged)."""
    last = frame[frame["step"] == frame["step"].max()].sort_values("replicate")
    return last["subopt"].to_numpy(float)


@functools.lru_cache(maxsize=64)
def _exact_cached(cond_json: str, steps: tuple[int, ...]) -> np.ndarray:
    cond = json.loads(cond_json)
    problem = make_problem(cond)
    etas = make_schedule(cond)(np.arange(cond["n_steps"]))
    e0 = problem.initial_point() - problem.w_star
    return moments_of(cond).expected_suboptimality(etas, e0, np.asarray(steps))


def _exact_curve(cond: dict, steps) -> np.ndarray:
    """Exact E[f(w_k)] - f* at ``steps`` for the condition's schedule from the default w0.

    Computed once per condition over all its recorded steps (cached) and indexed."""
    every = tuple(int(k) for k in record_plan(cond))
    values = dict(zip(every, _exact_cached(json.dumps(cond, sort_keys=True), every)))
    missing = tuple(int(k) for k in steps if int(k) not in values)
    if missing:
        values.update(zip(missing, _exact_cached(json.dumps(cond, sort_keys=True), missing)))
    return np.array([values[int(k)] for k in steps])


def _check(**kw) -> Check:
    return Check(claim=3, study=NAME, source=kw.pop("source", SOURCE), **kw)


# ---- noise floor ---------------------------------------------------------------------------
def noise_floor_table(runs: pd.DataFrame, conds: list[dict]) -> tuple[pd.DataFrame, list]:
    """Plateau level per eta (time average over [K/2, K]) next to exact theory."""
    rows, groups = [], []
    for cond, frame in _cells(runs, conds, "noise_floor"):
        eta, n_steps = cond["schedule.eta0"], cond["n_steps"]
        levels = time_average(frame, n_steps // 2)
        values = levels["value"].to_numpy()
        groups.append(values)
        plateau = mean_ci(values[np.isfinite(values)])
        mean, lo, hi, n = plateau.value, plateau.ci_low, plateau.ci_high, plateau.n
        window = np.unique(frame["step"][frame["step"] >= n_steps // 2])
        moments = moments_of(cond)
        exact_window = float(np.mean(_exact_curve(cond, window)))
        stationary = moments.stationary_suboptimality(eta)
        rows.append(
            {
                "eta": eta,
                "n_steps": n_steps,
                "window_start": n_steps // 2,
                "plateau": mean,
                "ci_low": lo,
                "ci_high": hi,
                "exact_window_mean": exact_window,
                "exact_stationary": stationary,
                "first_order": moments.first_order_floor(eta),
                "ratio_to_exact": mean / exact_window,
                "ratio_ci_low": lo / exact_window,
                "ratio_ci_high": hi / exact_window,
                "transient_share_at_window_start": float(
                    _exact_curve(cond, [n_steps // 2])[0] / stationary - 1.0
                ),
                "n": int(n),
                "n_diverged": int(levels["diverged"].sum()),
            }
        )
    return pd.DataFrame(rows), groups


def noise_floor_figure(runs, conds, table, fit):
    fig, (ax_curve, ax_floor) = new_figure(2, 1, width=5.2)
    frames = [(c, f) for c, f in _cells(runs, conds, "noise_floor")]
    curves = pd.concat(
        [mean_curve(f).assign(eta=f"{c['schedule.eta0']:g}") for c, f in frames], ignore_index=True
    )
    plot_mean_curves(
        ax_curve,
        curves,
        x="step",
        hue="eta",
        xlabel="update k",
        ylabel="E[f(w_k)] - f*",
        title="Constant step: the curve stalls at a floor",
        legend_title="eta",
    )
    for (cond, frame), color in zip(frames, _palette(len(frames))):
        steps = np.unique(frame["step"])
        steps = steps[steps > 0]
        ax_curve.plot(steps, _exact_curve(cond, steps), color=color, ls="--", lw=0.9)
        row = table[table["eta"] == cond["schedule.eta0"]].iloc[0]
        ax_curve.hlines(row["plateau"], row["window_start"], row["n_steps"], color="k", lw=1.2)
    ax_curve.plot([], [], color="0.3", ls="--", lw=0.9, label="exact E[f] - f* (theory)")
    ax_curve.plot([], [], color="k", lw=1.2, label="plateau: mean over [K/2, K]")
    ax_curve.legend(
        fontsize="x-small", title=f"eta ({CI_NOTE})", title_fontsize="x-small", loc="upper right"
    )

    plot_estimates(
        ax_floor,
        table,
        x="eta",
        y="plateau",
        logx=True,
        logy=True,
        xlabel="constant step eta",
        ylabel="noise floor E[f] - f* (plateau)",
        title=f"Floor vs eta: slope {fit.value:.3f} [{fit.ci_low:.3f}, {fit.ci_high:.3f}]",
        note="",
    )
    ax_floor.get_lines()[0].set_label("measured plateau (95% CI)")
    etas = table["eta"].to_numpy()
    ax_floor.plot(etas, table["exact_stationary"], "k--", lw=1.1, label="exact stationary floor")
    ax_floor.plot(
        etas,
        table["first_order"],
        color="tab:red",
        ls=":",
        lw=1.3,
        label="first order: eta tr(Sigma)/4 (slope 1)",
    )
    ax_floor.set_xticks(etas, [f"{e:g}" for e in etas], minor=False)
    ax_floor.set_xticks([], minor=True)
    ax_floor.legend(fontsize="x-small")
    return fig


def _palette(n: int):
    import seaborn as sns

    return sns.color_palette("viridis", n)


def noise_floor_checks(table: pd.DataFrame, fit: Estimate, theory_slope: float) -> list[Check]:
    top = table.iloc[-1]
    return [
        _check(
            id="3a-noise-floor-slope",
            statement="With a constant step SGD stalls at a noise floor proportional to eta.",
            source="Bottou, Curtis & Nocedal (2018), Thm 4.6",
            quantity="log-log slope of the plateau E[f] - f* against eta",
            expected="1 (first order in eta), within [0.85, 1.15]",
            expected_low=0.85,
            expected_high=1.15,
            estimate=fit.value,
            ci_low=fit.ci_low,
            ci_high=fit.ci_high,
            n_replicates=int(table["n"].min()),
            figure="figures/noise_floor.png",
            table="tables/noise_floor.md",
            notes=f"etas {', '.join(f'{e:g}' for e in table['eta'])}; exact-theory slope over "
            f"the same etas {theory_slope:.3f} (O(eta^2) term); bootstrap over replicates.",
        ),
        _check(
            id="3b-noise-floor-exact",
            statement="The plateau equals the exact stationary second moment of SGD.",
            source="exact moment recursion of SGD on least squares (convstudy.theory.noise_floor)",
            quantity=f"measured plateau / exact expected window mean at eta = {top['eta']:g}",
            expected="1, within +-5%",
            expected_low=0.95,
            expected_high=1.05,
            estimate=float(top["ratio_to_exact"]),
            ci_low=float(top["ratio_ci_low"]),
            ci_high=float(top["ratio_ci_high"]),
            n_replicates=int(top["n"]),
            figure="figures/noise_floor.png",
            table="tables/noise_floor.md",
            notes="the largest eta, where the first-order formula is least accurate",
        ),
    ]


# ---- schedules -----------------------------------------------------------------------------
def schedule_table(runs: pd.DataFrame, conds: list[dict]) -> pd.DataFrame:
    rows = []
    for cond, frame in _cells(runs, conds, "schedules"):
        schedule = make_schedule(cond)
        etas = schedule(np.arange(cond["n_steps"]))
        final = _final_values(frame)
        diverged = _diverged_per_replicate(frame)
        shared = proportion_ci(int(diverged.sum()), diverged.size)
        share, share_lo, share_hi = shared.value, shared.ci_low, shared.ci_high
        final_ci = mean_ci(final[np.isfinite(final)] if (~diverged).sum() > 1 else [])
        mean, lo, hi = final_ci.value, final_ci.ci_low, final_ci.ci_high
        row = {
            "schedule": cond["label"],
            "definition": schedule.label(),
            "robbins_monro": schedule.robbins_monro,
            "sum_eta": float(etas.sum()),
            "sum_eta_sq": float((etas**2).sum()),
            "final_subopt": mean,
            "ci_low": lo,
            "ci_high": hi,
            "share_diverged": share,
            "diverged_ci_low": share_lo,
            "diverged_ci_high": share_hi,
            "n": int(diverged.size),
        }
        if (~diverged).sum() > 1:
            hits = mean_curve_hitting_time(frame, list(EPS), seed=1)
            for _, h in hits.iterrows():
                tag = f"{h['eps']:g}"
                row[f"steps_to_{tag}"] = h["hit"]
                row[f"steps_to_{tag}_ci"] = f"[{h['ci_low']:g}, {h['ci_high']:g}]"
                row[f"p_censored_{tag}"] = h["p_censored"]
        rows.append(row)
    return pd.DataFrame(rows)


def schedules_figure(runs, conds, n_steps):
    fig, (ax, ax_eta) = new_figure(2, 1, width=5.4)
    cells = list(_cells(runs, conds, "schedules"))
    colors = dict(zip([c["label"] for c, _ in cells], _tab10(len(cells))))
    stable = [(c, f) for c, f in cells if not _diverged_per_replicate(f).any()]
    dropped = [c["label"] for c, f in cells if _diverged_per_replicate(f).any()]
    curves = pd.concat(
        [mean_curve(f).assign(schedule=c["label"]) for c, f in stable], ignore_index=True
    )
    plot_mean_curves(
        ax,
        curves,
        x="step",
        hue="schedule",
        palette="tab10",
        xlabel="update k",
        ylabel="E[f(w_k)] - f*",
        legend_title="schedule",
        title="Schedules at one budget (dashed: exact E[f] - f*)",
    )
    for line, (cond, _) in zip(ax.get_lines(), stable):
        line.set_color(colors[cond["label"]])
    for coll, (cond, _) in zip(ax.collections, stable):
        coll.set_color(colors[cond["label"]])
    limit = moments_of(PROBLEM).mean_square_step_limit()
    for cond, frame in stable:
        steps = np.unique(frame["step"])
        steps = steps[steps > 0]
        ax.plot(steps, _exact_curve(cond, steps), color="k", ls="--", lw=0.6)
    if dropped:
        ax.text(
            0.98,
            0.98,
            "not drawn (replicates diverged):\n" + ", ".join(dropped),
            transform=ax.transAxes,
            fontsize="x-small",
            color="0.3",
            ha="right",
            va="top",
        )
    ax.legend(fontsize="x-small", title=f"schedule ({CI_NOTE})", title_fontsize="x-small")
    ks = np.arange(n_steps)
    for cond, color in zip([c for c in conds if c["part"] == "schedules"], _tab10(10)):
        ax_eta.plot(ks[1:], make_schedule(cond)(ks)[1:], color=color, label=cond["label"])
    ax_eta.axhline(limit, color="k", ls=":", lw=1, label="SGD mean-square stability limit")
    ax_eta.set(
        xscale="log",
        yscale="log",
        xlabel="update k",
        ylabel="step size eta_k",
        title="The step sizes",
        ylim=(1e-5, 0.5),
    )
    ax_eta.legend(fontsize="x-small")
    return fig


def _tab10(n: int):
    import seaborn as sns

    return sns.color_palette("tab10", n)


def partial_sums_figure(conds: list[dict], horizon: int = 10**5):
    """sum_{j<k} eta_j and sum_{j<k} eta_j^2 for each schedule up to ``horizon`` updates."""
    fig, (ax_sum, ax_sq) = new_figure(2, 1, width=5.0)
    ks = np.arange(horizon)
    at = np.unique(np.geomspace(1, horizon, 200).astype(int)) - 1
    for cond, color in zip([c for c in conds if c["part"] == "schedules"], _tab10(10)):
        schedule = make_schedule(cond)
        etas = schedule(ks)
        label = f"{cond['label']} ({'RM' if schedule.robbins_monro else 'not RM'})"
        ax_sum.plot(at + 1, np.cumsum(etas)[at], color=color, label=label)
        ax_sq.plot(at + 1, np.cumsum(etas**2)[at], color=color, label=label)
    ax_sum.set(
        xscale="log",
        yscale="log",
        xlabel="updates k",
        ylabel="sum_{j<k} eta_j",
        title="Robbins-Monro needs sum eta = inf ...",
    )
    ax_sq.set(
        xscale="log",
        yscale="log",
        xlabel="updates k",
        ylabel="sum_{j<k} eta_j^2",
        title="... and sum eta^2 < inf",
    )
    ax_sum.legend(
        fontsize="x-small", title="schedule (RM = Robbins-Monro)", title_fontsize="x-small"
    )
    return fig


def schedule_checks(runs, conds, table) -> list[Check]:
    frames = {c["label"]: f for c, f in _cells(runs, conds, "schedules")}
    ratio = ratio_of_means(_final_values(frames["constant"]), _final_values(frames["1/k"]), seed=2)
    n_steps = int(frames["1/k"]["step"].max())
    slope = fit_loglog_slope(frames["1/k"], window=(n_steps / 4, n_steps), seed=3).estimate
    cond_1k = next(c for c in conds if c.get("label") == "1/k" and c["part"] == "schedules")
    steps = np.unique(frames["1/k"]["step"])
    steps = steps[steps >= n_steps / 4]
    exact = _exact_curve(cond_1k, steps)
    exact_slope = float(np.polyfit(np.log(steps), np.log(exact), 1)[0])
    return [
        _check(
            id="3c-constant-step-stalls",
            statement="A constant step stalls: after the same budget it is worse than 1/k.",
            quantity=f"final E[f] - f* of constant eta={ETA0:g} / that of 1/k, k = {n_steps}",
            expected="> 1",
            expected_low=1.0,
            expected_high=math.inf,
            estimate=ratio.value,
            ci_low=ratio.ci_low,
            ci_high=ratio.ci_high,
            n_replicates=ratio.n,
            figure="figures/schedules.png",
            table="tables/schedules.md",
            notes="bootstrap CI of a ratio of means, replicates resampled per schedule",
        ),
        _check(
            id="3d-inverse-time-keeps-decreasing",
            statement="With eta_k ~ 1/k (Robbins-Monro) E[f] - f* keeps decreasing, like 1/k.",
            source="Bottou, Curtis & Nocedal (2018), Thm 4.7",
            quantity=f"log-log slope of E[f] - f* over k in [{n_steps // 4}, {n_steps}], 1/k",
            expected="< -0.5 (-1 asymptotically)",
            expected_low=-math.inf,
            expected_high=-0.5,
            estimate=slope.value,
            ci_low=slope.ci_low,
            ci_high=slope.ci_high,
            n_replicates=slope.n,
            figure="figures/schedules.png",
            table="tables/schedules.md",
            notes=f"eta_k = beta/(k0 + k), beta mu = 2: the curve ~ 1/(k0 + k) is shallower "
            f"than k^-1 at k ~ k0; exact-theory slope over the window {exact_slope:.3f}",
        ),
    ]


# ---- divergence ----------------------------------------------------------------------------
def divergence_table(runs: pd.DataFrame, conds: list[dict]) -> pd.DataFrame:
    rows = []
    for part, method in (("gd_divergence", "GD (full batch)"), ("sgd_divergence", "SGD (b=1)")):
        for cond, frame in _cells(runs, conds, part):
            diverged = _diverged_per_replicate(frame)
            shared = proportion_ci(int(diverged.sum()), diverged.size)
            share, lo, hi = shared.value, shared.ci_low, shared.ci_high
            rows.append(
                {
                    "method": method,
                    "eta": cond["schedule.eta0"],
                    "step_over_limit": cond["step_over_limit"],
                    "limit": "2/L" if part == "gd_divergence" else "mean-square limit",
                    "n_steps": cond["n_steps"],
                    "share_diverged": share,
                    "ci_low": lo,
                    "ci_high": hi,
                    "n_diverged": int(diverged.sum()),
                    "n": int(diverged.size),
                }
            )
    return pd.DataFrame(rows)


def divergence_figure(table: pd.DataFrame):
    fig, ax = new_figure(1, 1, width=6.0, height=3.8)
    plot_estimates(
        ax,
        table,
        x="eta",
        y="share_diverged",
        hue="method",
        logx=True,
        xlabel="step size eta (constant)",
        ylabel="share of replicates diverged",
        title="Too large a step diverges",
        note="Wilson 95% CI",
    )
    L = PROBLEM["problem.mu"] * PROBLEM["problem.condition_number"]
    limit = moments_of(PROBLEM).mean_square_step_limit()
    ax.axvline(2.0 / L, color="tab:blue", ls="--", lw=1.2, label=f"2/L = {2 / L:g} (GD)")
    ax.axvline(
        limit, color="tab:orange", ls=":", lw=1.4, label=f"SGD mean-square limit = {limit:.3g}"
    )
    ax.legend(fontsize="x-small", title="method (Wilson 95% CI)", title_fontsize="x-small")
    ax.set_ylim(-0.05, 1.05)
    return fig


def divergence_checks(table: pd.DataFrame) -> list[Check]:
    gd = table[table["method"].str.startswith("GD")]
    above = gd[gd["step_over_limit"] > 1].sort_values("step_over_limit").iloc[0]
    below = gd[gd["step_over_limit"] < 1].sort_values("step_over_limit").iloc[-1]
    common = {
        "source": "Nesterov (2004), Sec. 1.2.3 (quadratic: |1 - eta L| > 1 iff eta > 2/L)",
        "figure": "figures/divergence.png",
        "table": "tables/divergence.md",
        "notes": "full-batch GD from random w0; Wilson 95% CI",
    }
    return [
        _check(
            id="3e-gd-diverges-above-2-over-L",
            statement="Gradient descent with a step above 2/L diverges.",
            quantity=f"share of replicates diverged, eta = {above['step_over_limit']:g} x 2/L",
            expected="1 (CI within [0.95, 1])",
            expected_low=0.95,
            expected_high=1.0,
            estimate=float(above["share_diverged"]),
            ci_low=float(above["ci_low"]),
            ci_high=float(above["ci_high"]),
            n_replicates=int(above["n"]),
            **common,
        ),
        _check(
            id="3f-gd-converges-below-2-over-L",
            statement="Gradient descent with a step below 2/L does not diverge.",
            quantity=f"share of replicates diverged, eta = {below['step_over_limit']:g} x 2/L",
            expected="0 (CI within [0, 0.05])",
            expected_low=0.0,
            expected_high=0.05,
            estimate=float(below["share_diverged"]),
            ci_low=float(below["ci_low"]),
            ci_high=float(below["ci_high"]),
            n_replicates=int(below["n"]),
            **common,
        ),
    ]


# ---- convex, not strongly convex -----------------------------------------------------------
def convex_analysis(runs, conds):
    cells = list(_cells(runs, conds, "convex"))
    cond, frame = next((c, f) for c, f in cells if c["schedule"] == "inverse_sqrt")
    n_steps = cond["n_steps"]
    slope = fit_loglog_slope(frame, window=(n_steps / 10, n_steps), seed=4).estimate
    steps = np.unique(frame["step"])
    steps = steps[steps > 0]
    exact = _exact_curve(cond, steps)
    late = steps >= n_steps / 10
    exact_slope = float(np.polyfit(np.log(steps[late]), np.log(exact[late]), 1)[0])
    problem = make_problem(cond)

    fig, ax = new_figure(1, 1, width=6.0, height=4.0)
    curves = pd.concat(
        [
            mean_curve(f).assign(schedule=f"{c['label']} (eta0 = {c['schedule.eta0']:g})")
            for c, f in cells
        ],
        ignore_index=True,
    )
    plot_mean_curves(
        ax,
        curves,
        x="step",
        hue="schedule",
        palette="deep",
        xlabel="update k",
        ylabel="E[f(w_k)] - f*",
        legend_title="schedule",
    )
    ax.set_title(
        f"Convex (mu = 0), noisy least squares: slope {slope.value:.2f} "
        f"[{slope.ci_low:.2f}, {slope.ci_high:.2f}]"
    )
    ax.plot(steps, exact, "k--", lw=0.9, label="exact E[f] - f*, 1/sqrt(k)")
    ref = exact[late][0] * np.sqrt(steps[late][0] / steps[late])
    add_reference_line(ax, steps[late], ref, "C / sqrt(k)", color="tab:red", ls=":")
    moments = moments_of(cond)
    etas = make_schedule(cond)(steps)
    ax.plot(
        steps,
        [moments.first_order_floor(e) for e in etas],
        color="0.5",
        ls="-.",
        lw=0.9,
        label="eta_k tr(Sigma)/4 (noise term)",
    )
    ax.axvspan(n_steps / 10, n_steps, color="0.9", zorder=0, label="slope window")
    ax.legend(fontsize="x-small", title=f"schedule ({CI_NOTE})", title_fontsize="x-small")
    check = _check(
        id="3g-convex-inverse-sqrt",
        statement="With eta ~ 1/sqrt(k) on a convex problem E[f] - f* = O(1/sqrt(k)).",
        source="Nemirovski, Juditsky, Lan & Shapiro (2009); course slides",
        quantity=f"log-log slope of E[f] - f* over k in [{n_steps // 10}, {n_steps}]",
        expected="<= -0.5 (O(1/sqrt k) or faster)",
        expected_low=-math.inf,
        expected_high=-0.5,
        estimate=slope.value,
        ci_low=slope.ci_low,
        ci_high=slope.ci_high,
        n_replicates=slope.n,
        figure="figures/convex.png",
        notes=f"noisy least squares of rank {np.linalg.matrix_rank(problem.X)} in d = "
        f"{problem.dim} (mu = 0); exact-theory slope over the window {exact_slope:.3f}",
    )
    return fig, slope, exact_slope, check


# ---- analysis ------------------------------------------------------------------------------
def analyze(runs: pd.DataFrame, scale: Scale) -> Analysis:
    conds = conditions(scale)
    a = Analysis()

    floor, groups = noise_floor_table(runs, conds)
    fit = fit_power_law(floor["eta"].to_numpy(), groups, seed=0).estimate
    theory_slope = float(np.polyfit(np.log(floor["eta"]), np.log(floor["exact_stationary"]), 1)[0])
    a.tables["noise_floor"] = floor
    a.figures["noise_floor"] = noise_floor_figure(runs, conds, floor, fit)
    a.captions["noise_floor"] = (
        "Constant-step SGD (with replacement): mean suboptimality curves with the exact "
        "expectation (dashed) and the plateau (time average over [K/2, K]); right: plateau vs "
        "eta with the exact stationary floor and its first-order approximation eta tr(Sigma)/4."
    )
    a.checks += noise_floor_checks(floor, fit, theory_slope)

    sched = schedule_table(runs, conds)
    n_steps = next(c["n_steps"] for c in conds if c["part"] == "schedules")
    a.tables["schedules"] = sched
    a.figures["schedules"] = schedules_figure(runs, conds, n_steps)
    a.captions["schedules"] = (
        "Step-size schedules at one budget: mean E[f] - f* (95% CI band) with the exact "
        "expectation dashed (schedules that stay below the stability limit), and the steps eta_k."
    )
    a.figures["partial_sums"] = partial_sums_figure(conds)
    a.captions["partial_sums"] = (
        "Partial sums of eta_k and eta_k^2 to 10^5 updates: only 1/k has an unbounded sum and a "
        "bounded sum of squares (Robbins-Monro); constant and 1/sqrt(k) have unbounded sums of "
        "squares (noise floor), step, exponential and cosine a bounded sum (they stop moving)."
    )
    a.checks += schedule_checks(runs, conds, sched)

    div = divergence_table(runs, conds)
    a.tables["divergence"] = div
    a.figures["divergence"] = divergence_figure(div)
    a.captions["divergence"] = (
        "Share of replicates diverged against the step: full-batch GD from random starts (2/L "
        "marked) and SGD (its exact mean-square stability limit marked); Wilson 95% CIs."
    )
    a.checks += divergence_checks(div)

    fig, cslope, exact_slope, check = convex_analysis(runs, conds)
    a.figures["convex"] = fig
    a.captions["convex"] = (
        "Convex, not strongly convex noisy least squares (mu = 0): SGD with eta_k = eta0/sqrt(1+k) "
        "against a constant step, the exact expectation, a C/sqrt(k) reference and the noise term."
    )
    a.checks.append(check)

    a.findings += findings(floor, fit, theory_slope, sched, n_steps, div, cslope, exact_slope)
    return a


def findings(floor, fit, theory_slope, sched, n_steps, div, cslope, exact_slope) -> list[str]:
    by = sched.set_index("schedule")
    out = [
        f"Constant-step noise floor against eta: log-log slope {fit.value:.3f} "
        f"(95% CI [{fit.ci_low:.3f}, {fit.ci_high:.3f}]) over eta in "
        f"[{floor['eta'].min():g}, {floor['eta'].max():g}]; the exact stationary floor gives "
        f"{theory_slope:.3f} over the same etas (1 to first order). Measured/exact plateau ratios: "
        + ", ".join(
            f"{r.eta:g}: {r.ratio_to_exact:.3f} [{r.ratio_ci_low:.3f}, {r.ratio_ci_high:.3f}]"
            for r in floor.itertuples()
        )
        + f"; the exact transient left at the window start is at most "
        f"{floor['transient_share_at_window_start'].max():.2%} of the floor.",
        f"After the same budget of {n_steps} updates, the constant step ends at "
        f"{by.loc['constant', 'final_subopt']:.3g} and 1/k at "
        f"{by.loc['1/k', 'final_subopt']:.3g}; 1/k with eta0 too small (beta mu = 0.2) ends at "
        f"{by.loc['1/k, eta0 too small', 'final_subopt']:.3g}; 1/k with eta0 too large diverged "
        f"in {by.loc['1/k, eta0 too large', 'share_diverged']:.0%} of replicates.",
    ]
    gd = div[div["method"].str.startswith("GD")]
    out.append(
        "Gradient descent: share diverged "
        + ", ".join(f"{r.step_over_limit:g} x 2/L: {r.share_diverged:.0%}" for r in gd.itertuples())
        + "."
    )
    sgd = div[div["method"].str.startswith("SGD")]
    out.append(
        "SGD (b = 1, constant step): share diverged "
        + ", ".join(
            f"{r.step_over_limit:g} x mean-square limit: {r.share_diverged:.0%}"
            for r in sgd.itertuples()
        )
        + " (the mean-square limit bounds E||w - w*||^2; single runs can survive above it)."
    )
    out.append(
        f"Convex (mu = 0) noisy least squares with eta_k ~ 1/sqrt(k): late log-log slope "
        f"{cslope.value:.3f} (95% CI [{cslope.ci_low:.3f}, {cslope.ci_high:.3f}]); "
        f"exact theory {exact_slope:.3f}."
    )
    return out


study = Study(
    name=NAME,
    title="Learning-rate schedules: noise floor, Robbins-Monro, divergence",
    description=(
        "SGD on a noisy strongly convex least-squares problem: the constant-step noise floor "
        "against eta (slope 1, exact theory overlaid), 1/k, 1/sqrt(k), step, exponential and "
        "cosine schedules at one budget with the Robbins-Monro partial sums, divergence above "
        "2/L for gradient descent and above the mean-square limit for SGD, and 1/sqrt(k) on a "
        "convex problem that is not strongly convex."
    ),
    conditions=conditions,
    compute=compute,
    analyze=analyze,
    claims=(3,),
    replicates=200,
    quick_replicates=20,
)
