"""Claim 3: SGD needs a shrinking step; a constant step stalls at a noise floor proportional to eta.

Problem: noisy strongly convex least squares (``quadratic``: d = 5, mu = 1, L = 10, N = 1000,
target noise 1), SGD with single samples drawn **with replacement** (the i.i.d. setting of
Bottou, Curtis & Nocedal 2018, Thms 4.6-4.7; reshuffling is faster, see ``sample_order``). Its
first two moments obey an exact recursion (:mod:`convstudy.theory.noise_floor`): every curve is
drawn next to its exact expectation. Diverged: f - f* above 10^6 max(f(w0) - f*, 1) or not finite.

- ``noise_floor``: constant eta in {1, 2, 4, 8} x 10^-3, K = 12 / (eta mu) updates; the transient
  decays like (1 - eta mu)^(2k), below 1% of the floor after K/2 (reported). A replicate's
  **plateau** is its time average of f(w_k) - f* over 48 evenly spaced records in [K/2, K]. To
  first order E[f] - f* = eta tr(Sigma)/4 (Sigma: gradient noise covariance at w*): log-log slope
  1 against eta (Thm 4.6 bounds the floor by eta L M / (2 mu)); the exact value adds O(eta^2).
- ``schedules``: one budget for constant, 1/k (eta_k = beta / (k0 + k), beta mu = 2 > 1 as in
  Thm 4.7), 1/sqrt(k), step, exponential, cosine, and 1/k with eta0 too small (beta mu = 0.2 < 1/2:
  rate k^(-2 beta mu), Nemirovski et al. 2009, Sec. 1) or too large (above the mean-square
  stability limit): final suboptimality, iterations to eps (first crossing of the mean curve,
  bootstrap CI, censored if never reached), share diverged (Wilson CI), and the partial sums of
  eta and eta^2 that decide Robbins-Monro (sum eta = inf, sum eta^2 < inf).
- ``gd_divergence``: full-batch GD at c * 2/L from random starts diverges exactly when eta > 2/L
  (|1 - eta L| > 1 on the top eigen-direction); it sees only the Hessian: the same spectrum on
  N = 100. ``sgd_divergence``: SGD around its exact mean-square stability limit.
- ``convex``: 1/sqrt(k) steps on ``convex_least_squares`` (registered here: rank 5 of d = 10, mu = 0
  exactly, noisy targets, so f* > 0 and per-sample gradients do not vanish at the optimum, unlike
  ``quartic_regression``): E[f] - f* = O(1/sqrt(k)) as a log-log slope <= -1/2 over the last
  decade (the noise floor eta_k tr(Sigma)/4 tracking the step; the bias decays like exp(-c sqrt k)).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np
import pandas as pd
import seaborn as sns

from convstudy import figures as plots
from convstudy.claims import Check
from convstudy.engine import record_steps
from convstudy.problems import LeastSquares, register_problem
from convstudy.schedules import Schedule, get_schedule
from convstudy.stats.curves import curve_matrix, mean_curve_hitting_time, time_average_estimate
from convstudy.stats.estimate import Estimate, derived_seed
from convstudy.stats.fits import curve_loglog_slope, fit_loglog_slope, fit_power_law
from convstudy.stats.means import ratio_of_means
from convstudy.stats.proportions import proportion_ci
from convstudy.study import Analysis, Scale, Study, build_problem, simulate_cell, split_condition
from convstudy.theory import noise_floor as nf

NAME = "lr_schedules"
PROBLEM = {"problem": "quadratic", "problem.dim": 5, "problem.condition_number": 10.0,
           "problem.mu": 1.0, "problem.noise": 1.0, "problem.n_samples": 1000,
           "problem.seed": 0}  # fmt: skip
GD_PROBLEM = {**PROBLEM, "problem.n_samples": 100}  # GD needs only the Hessian: same spectrum
CONVEX = {"problem": "convex_least_squares", "problem.dim": 10, "problem.rank": 5,
          "problem.eig_min": 0.25, "problem.noise": 1.0, "problem.n_samples": 1000}  # fmt: skip
MU, L = 1.0, 10.0  # of PROBLEM, exact by construction of ``quadratic``
ETA0 = 4e-3  # the base step of the schedules grid: floor ~0.02, 4% of the stability limit
EPS = (0.1, 0.03, 0.01)  # targets for iterations-to-eps
PLATEAU_RECORDS = 48  # evenly spaced records over [K/2, K] in the noise-floor runs
SOURCE = "Bottou, Curtis & Nocedal (2018), Thms 4.6-4.7; Robbins & Monro (1951)"
GRIDS = ("noise_floor", "schedules", "gd_divergence", "sgd_divergence", "convex")
check = functools.partial(Check.from_estimate, claim=3, study=NAME, source=SOURCE)


@register_problem("convex_least_squares")
def convex_least_squares(
    *, dim: int = 10, rank: int = 5, eig_min: float = 0.25, noise: float = 1.0,
    n_samples: int = 1000, seed: int = 0,
) -> LeastSquares:  # fmt: skip
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


def schedule_of(condition: dict) -> Schedule:
    return get_schedule(condition["schedule"], **split_condition(condition, "schedule"))


def exact_curve(condition: dict, steps) -> np.ndarray:
    """Exact E[f(w_k)] - f* at ``steps`` for the condition (SGD with replacement, default w0)."""
    etas = schedule_of(condition)(np.arange(condition["n_steps"]))
    return nf.expected_suboptimality_curve(build_problem(condition), etas, steps)


def sgd_limit() -> float:  # the exact mean-square stability limit of SGD (b = 1) on PROBLEM
    return nf.sgd_moments(build_problem(PROBLEM)).mean_square_step_limit()


# ---- the grids -----------------------------------------------------------------------------
def sgd(problem: dict, eta0: float, n_steps: int, schedule: str = "constant", **extra) -> dict:
    """A condition: SGD with replacement, ``schedule`` from ``eta0``; ``extra`` keys as given."""
    return {**problem, "optimizer": "sgd", "sampler": "replacement", "schedule": schedule,
            "schedule.eta0": eta0, "n_steps": n_steps, **extra}  # fmt: skip


def conditions(scale: Scale) -> dict[str, list[dict]]:
    etas, horizon = scale.pick([1e-3, 2e-3, 4e-3, 8e-3], [2e-3, 4e-3, 8e-3]), scale.pick(12, 8)
    gd = {"sampler": "full", "batch_size": GD_PROBLEM["problem.n_samples"], "w0": "random"}
    gd_c = scale.pick([0.5, 0.9, 0.98, 1.02, 1.1, 1.5], [0.9, 0.98, 1.02, 1.1])
    sgd_c = scale.pick([0.5, 0.8, 1.0, 1.25, 1.6, 2.5], [0.8, 1.25, 2.5])
    n_convex, n_gd, n_sgd, n_sched = (
        scale.pick(*n) for n in ((5000, 2000), (400, 300), (1000, 500), (4000, 1500))
    )
    k0 = nf.inverse_time_offset(ETA0, MU, 2.0)  # beta mu = eta0 k0 mu = 2
    specs = {  # the schedules compared at one budget: label -> (schedule, eta0, parameters)
        "constant": ("constant", ETA0, {}),
        "1/k": ("inverse_time", ETA0, {"k0": k0}),
        "1/k, eta0 too small": ("inverse_time", ETA0, {"k0": k0 / 10}),  # beta mu = 0.2
        "1/k, eta0 too large": ("inverse_time", 2.0 * sgd_limit(), {"k0": k0}),
        "1/sqrt(k)": ("inverse_sqrt", ETA0, {"k0": k0}),
        "step": ("step", ETA0, {"step_size": n_sched // 4, "gamma": 0.3}),
        "exponential": ("exponential", ETA0, {"gamma": 0.01 ** (1.0 / n_sched)}),
        "cosine": ("cosine", ETA0, {"total_steps": n_sched}),
    }
    return {
        "noise_floor": [sgd(PROBLEM, e, math.ceil(horizon / (e * MU))) for e in etas],
        "schedules": [sgd(PROBLEM, eta0, n_sched, name, n_records=80, label=label,
                          **{f"schedule.{k}": v for k, v in params.items()})
                      for label, (name, eta0, params) in specs.items()],
        "gd_divergence": [sgd(GD_PROBLEM, c * 2 / L, n_gd, **gd, n_records=30, step_over_limit=c)
                          for c in gd_c],
        "sgd_divergence": [sgd(PROBLEM, c * sgd_limit(), n_sgd, n_records=80, step_over_limit=c)
                           for c in sgd_c],
        "convex": [sgd(CONVEX, 0.2, n_convex, "inverse_sqrt", n_records=80, label="1/sqrt(k)",
                       **{"schedule.k0": 1.0}),
                   sgd(CONVEX, 0.02, n_convex, n_records=80, label="constant")],
    }  # fmt: skip


def noise_floor_cell(condition: dict, seed: int, replicates) -> pd.DataFrame:
    """Records log-spaced up to K/2, then ``PLATEAU_RECORDS`` evenly spaced over [K/2, K]."""
    k = condition["n_steps"]
    tail = np.linspace(k // 2, k, PLATEAU_RECORDS).round().astype(np.int64)
    record = np.union1d(record_steps(k // 2, "log", 30), tail)
    return simulate_cell({**condition, "record": record}, seed, replicates)


# ---- analysis ------------------------------------------------------------------------------
def cells(runs: pd.DataFrame, conds: list[dict], key: str) -> dict:
    """{condition[key]: (condition, frame)} of a grid's conditions, in grid order."""
    return {c[key]: (c, runs[runs[key] == c[key]]) for c in conds}


def recorded(frame: pd.DataFrame, start: float = 1) -> np.ndarray:
    return np.unique(frame["step"][frame["step"] >= start])


def with_exact(pairs: dict) -> dict:
    """{name: (recorded steps k > 0, exact E[f(w_k)] - f*)} of {name: (condition, frame)}."""
    return {k: (recorded(f), exact_curve(c, recorded(f))) for k, (c, f) in pairs.items()}


def draw_curves(ax, pairs: dict, **kwargs) -> None:
    """Mean curves of {name: (condition, frame)} with their exact expectations dashed."""
    frames = {name: frame for name, (_, frame) in pairs.items()}
    plots.plot_condition_curves(ax, frames, theory=with_exact(pairs), **kwargs)


def evidence(stem: str, table: bool = True) -> dict:
    return {"figure": f"figures/{stem}.png", "table": f"tables/{stem}.md" if table else ""}


def noise_floor(a: Analysis, pairs: dict, run_seed: int) -> None:
    """Plateau per eta (time average over [K/2, K]) against exact theory: checks 3a-3b."""
    rows, groups = [], []
    for eta, (cond, frame) in pairs.items():
        k = cond["n_steps"]
        plateau, window = time_average_estimate(frame, k // 2), recorded(frame, k // 2)
        groups.append(plateau.values)
        exact = nf.plateau_prediction(build_problem(cond), eta, window)
        rows.append({"eta": eta, "n_steps": k, "window_start": k // 2, **plateau.row("plateau"),
                     **exact})  # fmt: skip
    table = a.tables["noise_floor"] = pd.DataFrame(rows)
    for column, measured in (("to_exact", "plateau"), ("ci_low", "ci_low"), ("ci_high", "ci_high")):
        table[f"ratio_{column}"] = table[measured] / table["exact_window_mean"]
    etas, top = table["eta"].to_numpy(), table.iloc[-1]
    fit = fit_power_law(etas, groups, seed=derived_seed(run_seed, "noise-floor")).estimate
    theory = curve_loglog_slope(etas, table["exact_stationary"].to_numpy())
    a.figures["noise_floor"], (ax, ax_floor) = plots.new_figure(2, 1, width=5.2)
    ax.hlines(table["plateau"], table["window_start"], table["n_steps"], color="k", lw=1.2,
              label="plateau: mean over [K/2, K]")  # fmt: skip
    title = "Constant step: the curve stalls at a floor"
    draw_curves(ax, {f"{e:g}": p for e, p in pairs.items()}, legend_title="eta", title=title,
                legend_loc="upper right")  # fmt: skip
    plots.plot_estimates(ax_floor, table, x="eta", y="plateau", logx=True, logy=True, note="",
                         xlabel="constant step eta", ylabel="noise floor E[f] - f* (plateau)",
                         title=f"Floor vs eta: slope {fit.value:.3f} [{fit.ci_low:.3f}, "
                         f"{fit.ci_high:.3f}]")  # fmt: skip
    ax_floor.get_lines()[0].set_label("measured plateau (95% CI)")
    ax_floor.plot(etas, table["exact_stationary"], "k--", label="exact stationary floor")
    ax_floor.plot(etas, table["first_order"], "r:", label="first order: eta tr(Sigma)/4 (slope 1)")
    ax_floor.set_xticks(etas, [f"{e:g}" for e in etas], minor=False)
    plots.small_legend(ax_floor).axes.set_xticks([], minor=True)
    a.checks += [
        check(dataclasses.replace(fit, n=int(table["n"].min())), id="3a-noise-floor-slope",
              statement="With a constant step SGD stalls at a noise floor proportional to eta.",
              source="Bottou, Curtis & Nocedal (2018), Thm 4.6", expected_low=0.85,
              quantity="log-log slope of the plateau E[f] - f* against eta", expected_high=1.15,
              expected="1 (first order in eta), within [0.85, 1.15]", **evidence("noise_floor"),
              notes=f"etas {', '.join(f'{e:g}' for e in etas)}; exact-theory slope over the same"
              f" etas {theory:.3f} (O(eta^2) term); bootstrap over replicates."),
        check(Estimate(top["ratio_to_exact"], top["ratio_ci_low"], top["ratio_ci_high"],
                       int(top["n"]), "Student t / exact window mean"), id="3b-noise-floor-exact",
              statement="The plateau equals the exact stationary second moment of SGD.",
              source="exact moment recursion of SGD on least squares "
              "(convstudy.theory.noise_floor)", expected_low=0.95, expected_high=1.05,
              quantity=f"measured plateau / exact expected window mean at eta = {top['eta']:g}",
              expected="1, within +-5%", **evidence("noise_floor"),
              notes="the largest eta, where the first-order formula is least accurate"),
    ]  # fmt: skip
    ratios = ", ".join(f"{r.eta:g}: {r.ratio_to_exact:.3f} [{r.ratio_ci_low:.3f}, "
                       f"{r.ratio_ci_high:.3f}]" for r in table.itertuples())  # fmt: skip
    a.findings.append(
        f"Constant-step noise floor against eta: log-log slope {fit.value:.3f} (95% CI "
        f"[{fit.ci_low:.3f}, {fit.ci_high:.3f}]) over eta in [{etas.min():g}, {etas.max():g}]; "
        f"the exact stationary floor gives {theory:.3f} over the same etas (1 to first order). "
        f"Measured/exact plateau ratios: {ratios}; the exact transient left at the window start "
        f"is at most {table['transient_share_at_window_start'].max():.2%} of the floor."
    )


def schedules(a: Analysis, pairs: dict, run_seed: int) -> None:
    """Schedules at one budget, their step sizes and partial sums: checks 3c-3d."""
    rows, finals, n_steps = [], {}, pairs["1/k"][0]["n_steps"]
    for label, (cond, frame) in pairs.items():
        schedule, final = schedule_of(cond), time_average_estimate(frame, n_steps)
        sums, finals[label] = nf.step_size_sums(schedule(np.arange(n_steps))), final.values
        rows.append({"schedule": label, "definition": schedule.label(), "sum_eta": sums[0][-1],
                     "robbins_monro": schedule.robbins_monro, "sum_eta_sq": sums[1][-1],
                     **final.row("final_subopt")})  # fmt: skip
        if final.mean.n > 1:
            seed = derived_seed(run_seed, "steps-to-eps", label)
            for h in mean_curve_hitting_time(frame, list(EPS), seed=seed).itertuples():
                tag = f"{h.eps:g}"
                rows[-1] |= {f"steps_to_{tag}": h.hit, f"p_censored_{tag}": h.p_censored,
                             f"steps_to_{tag}_ci": f"[{h.ci_low:g}, {h.ci_high:g}]"}  # fmt: skip
    by = (table := pd.DataFrame(rows)).set_index("schedule")
    colors = dict(zip(pairs, sns.color_palette("tab10", len(pairs))))
    stable = {k: p for k, p in pairs.items() if not p[1]["diverged"].any()}
    a.figures["schedules"], (ax, ax_eta) = plots.new_figure(2, 1, width=5.4)
    draw_curves(ax, stable, legend_title="schedule", palette=[colors[k] for k in stable],
                title="Schedules at one budget (dashed: exact E[f] - f*)")  # fmt: skip
    a.tables["schedules"], (a.figures["partial_sums"], axes) = table, plots.new_figure(2, 1)
    named = {label: schedule_of(cond) for label, (cond, _) in pairs.items()}
    plots.plot_schedules(ax_eta, axes, named, n_steps, colors=colors)
    ax_eta.axhline(sgd_limit(), color="k", ls=":", lw=1, label="SGD mean-square stability limit")
    ax_eta.set(title="The step sizes", ylim=(1e-5, 0.5))
    plots.small_legend(ax_eta)
    ratio = ratio_of_means(finals["constant"], finals["1/k"], seed=derived_seed(run_seed, "3c"))
    seed = derived_seed(run_seed, "3d-inverse-time-keeps-decreasing")
    slope = fit_loglog_slope(pairs["1/k"][1], window=(n_steps / 4, n_steps), seed=seed).estimate
    exact = curve_loglog_slope(*with_exact(pairs)["1/k"], x_min=n_steps / 4)
    a.checks += [
        check(ratio, id="3c-constant-step-stalls", expected="> 1", expected_low=1.0,
              statement="A constant step stalls: after the same budget it is worse than 1/k.",
              quantity=f"final E[f] - f* of constant eta={ETA0:g} / that of 1/k, k = {n_steps}",
              expected_high=math.inf, **evidence("schedules"),
              notes="bootstrap CI of a ratio of means, replicates resampled per schedule"),
        check(slope, id="3d-inverse-time-keeps-decreasing", expected_high=-0.5,
              statement="With eta_k ~ 1/k (Robbins-Monro) E[f] - f* keeps decreasing, like 1/k.",
              source="Bottou, Curtis & Nocedal (2018), Thm 4.7", expected_low=-math.inf,
              quantity=f"log-log slope of E[f] - f* over k in [{n_steps // 4}, {n_steps}], 1/k",
              expected="< -0.5 (-1 asymptotically)", **evidence("schedules"),
              notes="eta_k = beta/(k0 + k), beta mu = 2: the curve ~ 1/(k0 + k) is shallower than "
              f"k^-1 at k ~ k0; exact-theory slope over the window {exact:.3f}"),
    ]  # fmt: skip
    a.findings.append(
        f"After the same budget of {n_steps} updates, the constant step ends at "
        f"{by.loc['constant', 'final_subopt']:.3g} and 1/k at {by.loc['1/k', 'final_subopt']:.3g};"
        f" 1/k with eta0 too small (beta mu = 0.2) ends at "
        f"{by.loc['1/k, eta0 too small', 'final_subopt']:.3g}; 1/k with eta0 too large diverged "
        f"in {by.loc['1/k, eta0 too large', 'share_diverged']:.0%} of replicates."
    )


def divergence(a: Analysis, runs: dict, grids: dict) -> None:
    """Share of replicates diverged around 2/L (GD) and the mean-square limit (SGD): 3e-3f."""
    rows, gd = [], {}
    for grid, method in (("gd_divergence", "GD (full batch)"), ("sgd_divergence", "SGD (b=1)")):
        for c, (cond, frame) in cells(runs[grid], grids[grid], "step_over_limit").items():
            diverged = curve_matrix(frame)[2]
            share = proportion_ci(int(diverged.sum()), diverged.size)
            if grid == "gd_divergence":
                gd[c] = share
            rows.append({"method": method, "eta": cond["schedule.eta0"], "step_over_limit": c,
                         "limit": "2/L" if grid == "gd_divergence" else "mean-square limit",
                         "n_steps": cond["n_steps"], "share_diverged": share.value,
                         "ci_low": share.ci_low, "ci_high": share.ci_high,
                         "n_diverged": int(diverged.sum()), "n": share.n})  # fmt: skip
    table = a.tables["divergence"] = pd.DataFrame(rows)
    a.figures["divergence"], ax = plots.new_figure(1, 1, width=6.0, height=3.8)
    plots.plot_estimates(ax, table, x="eta", y="share_diverged", hue="method", logx=True,
                         xlabel="step size eta (constant)", ylabel="share of replicates diverged",
                         title="Too large a step diverges", note="Wilson 95% CI")  # fmt: skip
    ax.axvline(2.0 / L, color="tab:blue", ls="--", lw=1.2, label=f"2/L = {2 / L:g} (GD)")
    ax.axvline(sgd_limit(), color="tab:orange", ls=":", lw=1.4,
               label=f"SGD mean-square limit = {sgd_limit():.3g}")  # fmt: skip
    plots.small_legend(ax, "method (Wilson 95% CI)").axes.set_ylim(-0.05, 1.05)
    for cid, c, expected, low, high in (
        ("3e-gd-diverges-above-2-over-L", min(c for c in gd if c > 1), "1", 0.95, 1.0),
        ("3f-gd-converges-below-2-over-L", max(c for c in gd if c < 1), "0", 0.0, 0.05),
    ):
        side = "above 2/L diverges" if c > 1 else "below 2/L does not diverge"
        a.checks.append(check(
            gd[c], id=cid, statement=f"Gradient descent with a step {side}.",
            source="Nesterov (2004), Sec. 1.2.3 (quadratic: |1 - eta L| > 1 iff eta > 2/L)",
            quantity=f"share of replicates diverged, eta = {c:g} x 2/L", expected_low=low,
            expected=f"{expected} (CI within [{low:g}, {high:g}])", expected_high=high,
            notes="full-batch GD from random w0; Wilson 95% CI", **evidence("divergence"),
        ))  # fmt: skip
    sgd = table[table["limit"] != "2/L"]
    a.findings += [
        "Gradient descent: share diverged "
        + ", ".join(f"{c:g} x 2/L: {s.value:.0%}" for c, s in gd.items()) + ".",
        "SGD (b = 1, constant step): share diverged " + ", ".join(
            f"{r.step_over_limit:g} x mean-square limit: {r.share_diverged:.0%}" for r in
            sgd.itertuples()) + " (the mean-square limit bounds E||w - w*||^2; single runs can "
        "survive above it).",
    ]  # fmt: skip


def convex(a: Analysis, pairs: dict, run_seed: int) -> None:
    """1/sqrt(k) steps on a convex, not strongly convex problem: check 3g."""
    cond, frame = pairs["1/sqrt(k)"]
    k, problem, seed = cond["n_steps"], build_problem(cond), derived_seed(run_seed, "3g-convex")
    slope = fit_loglog_slope(frame, window=(k / 10, k), seed=seed).estimate
    steps, values = with_exact({0: pairs["1/sqrt(k)"]})[0]
    late, exact = steps >= k / 10, curve_loglog_slope(steps, values, x_min=k / 10)
    a.figures["convex"], ax = plots.new_figure(1, 1, width=6.0, height=4.0)
    ax.plot(steps, list(map(nf.sgd_moments(problem).first_order_floor, schedule_of(cond)(steps))),
            color="0.5", ls="-.", lw=0.9, label="eta_k tr(Sigma)/4 (noise term)")  # fmt: skip
    ax.plot(steps[late], values[late][0] * np.sqrt(steps[late][0] / steps[late]), color="tab:red",
            ls=":", lw=1.2, label="C / sqrt(k)")  # fmt: skip
    named = {f"{n} (eta0 = {c['schedule.eta0']:g})": (c, f) for n, (c, f) in pairs.items()}
    draw_curves(ax, named, legend_title="schedule", palette="deep", window=(k / 10, k),
                window_label="slope window", title=f"Convex (mu = 0), noisy least squares: slope "
                f"{slope.value:.2f} [{slope.ci_low:.2f}, {slope.ci_high:.2f}]")  # fmt: skip
    a.checks.append(check(
        slope, id="3g-convex-inverse-sqrt", expected="<= -0.5 (O(1/sqrt k) or faster)",
        statement="With eta ~ 1/sqrt(k) on a convex problem E[f] - f* = O(1/sqrt(k)).",
        source="Nemirovski, Juditsky, Lan & Shapiro (2009); course slides",
        quantity=f"log-log slope of E[f] - f* over k in [{k // 10}, {k}]", expected_low=-math.inf,
        expected_high=-0.5, **evidence("convex", table=False),
        notes=f"noisy least squares of rank {np.linalg.matrix_rank(problem.X)} in d = "
        f"{problem.dim} (mu = 0); exact-theory slope over the window {exact:.3f}",
    ))  # fmt: skip
    a.findings.append(
        f"Convex (mu = 0) noisy least squares with eta_k ~ 1/sqrt(k): late log-log slope "
        f"{slope.value:.3f} (95% CI [{slope.ci_low:.3f}, {slope.ci_high:.3f}]); exact theory "
        f"{exact:.3f}."
    )


def analyze(runs: dict[str, pd.DataFrame], scale: Scale) -> Analysis:
    grids, a = conditions(scale), Analysis(captions=dict(CAPTIONS))
    noise_floor(a, cells(runs["noise_floor"], grids["noise_floor"], "schedule.eta0"), scale.seed)
    schedules(a, cells(runs["schedules"], grids["schedules"], "label"), scale.seed)
    divergence(a, runs, grids)
    convex(a, cells(runs["convex"], grids["convex"], "label"), scale.seed)
    return a


CAPTIONS = {
    "noise_floor": "Constant-step SGD (with replacement): mean suboptimality curves with the exact "
    "expectation (dashed) and the plateau (time average over [K/2, K]); right: plateau vs eta "
    "with the exact stationary floor and its first-order approximation eta tr(Sigma)/4.",
    "schedules": "Step-size schedules at one budget: mean E[f] - f* (95% CI band) with the exact "
    "expectation dashed (schedules that stay below the stability limit), and the steps eta_k.",
    "partial_sums": "Partial sums of eta_k and eta_k^2 to 10^5 updates: only 1/k has an "
    "unbounded sum and a bounded sum of squares (Robbins-Monro); constant and 1/sqrt(k) have "
    "unbounded sums of squares (noise floor), step, exponential and cosine a bounded sum.",
    "divergence": "Share of replicates diverged against the step: full-batch GD from random "
    "starts (2/L marked) and SGD (its exact mean-square stability limit); Wilson 95% CIs.",
    "convex": "Convex, not strongly convex noisy least squares (mu = 0): SGD with eta_k = "
    "eta0/sqrt(1+k) against a constant step, the exact expectation, a C/sqrt(k) reference and "
    "the noise term.",
}

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
    compute={"noise_floor": noise_floor_cell} | dict.fromkeys(GRIDS[1:], simulate_cell),
    analyze=analyze,
    labels=("label", "step_over_limit"),
    claims=(3,),
)
