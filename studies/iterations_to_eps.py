"""Iterations (and samples) to reach f - f* <= eps: batch GD, SGD and minibatch SGD.

DESIGN.md claims 2, 3 and 4 on a strongly convex quadratic (d = 10, N = 1000, Hessian spectrum
log-spaced over [mu, L] = [1, kappa], label noise 3 so that SGD's variance term soon outweighs its
bias term) at kappa = 10, 30, 100; on L2-logistic regression (breast cancer, 569 x 30,
lam = 0.1); and on a realizable teacher-student tanh network (N = 200, d = 25; nonconvex, f* = 0,
so eps bounds f itself). Every replicate starts from its own random point (GD varies by it). Grids:

- ``gd``: batch GD (b = N), fixed steps eta = s/L, s in 0.5 .. 2.1 (1/L and the optimal
  2/(L + mu) included); on logistic L is the global bound lam + lambda_max(X'X)/(4N) and the
  theory uses the Hessian at w* (:mod:`convstudy.theory.complexity`);
- ``sgd``: SGD (b = 1) and minibatch SGD (b = 4 .. 256) with the tuned 1/k schedule
  eta_k = 1/(mu (k + k0_b)), k0_b = L_b/mu (L_b the expected smoothness of a b-sample gradient),
  sampling i.i.d. as the O(1/k) theory assumes; one reshuffled SGD run converges faster than 1/k;
- ``teacher``: constant steps (every sample's gradient vanishes at f* = 0: no noise floor).

Iterations to eps: the first recorded step at which the mean curve (bootstrap CI) and each
replicate (quantiles) reach eps; a replicate that never does is censored and counted. Rate fits
use the mean curve's crossings interpolated between records (:mod:`convstudy.stats`); GD also
records every (n_steps/30)-th step so that a growing record spacing does not round its hitting
times up. Wall-clock cost against b is machine-dependent: ``benchmarks/minibatch_wall_clock.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from convstudy import figures as fg
from convstudy.claims import Check
from convstudy.engine import record_steps
from convstudy.stats import curves as sc
from convstudy.stats import fits as sf
from convstudy.stats.estimate import Estimate, derived_seed
from convstudy.stats.proportions import diverged_share, proportion_ci
from convstudy.study import Analysis, Scale, Study, build_problem, simulate_cell
from convstudy.theory import complexity as cx

NAME, KAPPAS = "iterations_to_eps", (10.0, 30.0, 100.0)
QUADRATIC, LOGISTIC, TEACHER = "quadratic kappa={:g}", "logistic (breast cancer)", "teacher-student"
STOCHASTIC = QUADRATIC.format(10.0)  # the quadratic on which SGD and minibatch SGD run
PROBLEMS = {
    **{QUADRATIC.format(k): {"problem": "quadratic", "problem.dim": 10, "problem.n_samples": 1000,
                             "problem.condition_number": k, "problem.noise": 3.0, "problem.seed": 0}
       for k in KAPPAS},
    LOGISTIC: {"problem": "logistic", "problem.lam": 0.1},
    TEACHER: {"problem": "teacher_student", "problem.n_samples": 200},
}  # fmt: skip
LABELS = ("curve", "problem_label", "method", "method_label", "step_rule", "kappa", "step_times_L")
GD_STEPS = (1.0, "opt")  # eta * L at every kappa and on logistic ("opt" = 2/(1 + 1/kappa))
SWEEP_STEPS, QUICK_SWEEP_STEPS = (0.5, 1.5, 1.7, 1.95), (1.7, 1.95)  # more eta * L at kappa=10
DIVERGING_STEP = 2.1  # eta * L above 2 at every kappa: |1 - eta L|^2 = 1.21 per step
DIVERGING_BUDGET = 200  # steps: the top eigen-direction grows 1.21^200 ~ 4e16 times
GD_RECORDS, SGD_RECORDS = 30, 80  # log-spaced records (GD: plus every (n_steps // 30)-th step)
GD_EFOLDS = 30.0  # GD budget: 30 e-folds of the asymptotic rate (f0 / f_K ~ 1e13)
MINIBATCHES, QUICK_MINIBATCHES, LOGISTIC_MINIBATCHES = (1, 4, 16, 64, 256), (1, 16, 256), (1, 16)
BIAS_STEPS = 50  # minibatch budget: K_1/b + 50 k0_b (the k0^2/k^2 bias term needs ~ k0/sqrt(eps))
TEACHER_STEPS, TEACHER_BATCH = {"GD": 0.5, "SGD": 0.1, "minibatch": 0.5}, 16  # constant steps
EPS = 10.0 ** -np.arange(0.0, 8.01, 0.5)  # tables, convex problems
EPS_TEACHER = 10.0 ** -np.arange(1.0, 4.01, 0.5)
EPS_FIT = 10.0 ** -np.arange(0.0, 8.01, 0.125)  # finer grid for the rate fits
GD_FIT_EPS = (1e-8, 1e-4)  # GD slope window: past the transient of the fast eigen-directions
GD_EPS = EPS_FIT[(EPS_FIT >= GD_FIT_EPS[0]) & (EPS_FIT <= GD_FIT_EPS[1])]
SGD_WINDOW_K0 = 50  # SGD slope window: crossings at k >= 50 k0, where the k^-2 bias is small
TRADEOFF_EPS, CLAIM_EPS = (1e-1, 1e-2, 1e-3), 1e-2  # minibatch table; eps of its claim checks
VARIANCE_FIT_K0 = 5  # variance-coefficient fit uses records with k >= 5 k0_b
N_BOOT = 1000


def _condition(label: str, method: str, name: str, rule: str, n_steps: int, **keys) -> dict:
    """The problem's keys, plain SGD updates from a random start, ``keys``, and the labels."""
    gd, kappa = method == "GD", PROBLEMS[label].get("problem.condition_number")
    return {**PROBLEMS[label], "optimizer": "sgd", "w0": "random", **keys, "n_steps": int(n_steps),
            "n_records": GD_RECORDS if gd and label != TEACHER else SGD_RECORDS,
            "record_every": max(1, n_steps // GD_RECORDS) if gd else 0,
            "curve": f"{label} | {name}", "problem_label": label, "method": method,
            "method_label": name, "step_rule": rule,
            **({"kappa": kappa} if kappa else {})}  # fmt: skip


def _gd(label: str, times_L) -> dict:
    """Batch GD with eta = times_L / L (or 2/(L + mu)); budget from the theoretical rate."""
    p = build_problem(PROBLEMS[label])
    eta = 2.0 / (p.L + p.mu) if times_L == "opt" else times_L / p.L
    slope = cx.gd_rate(p, eta)["slope_theory"]
    n = DIVERGING_BUDGET if math.isinf(slope) else math.ceil(GD_EFOLDS * slope)
    rule = "2/(L+mu)" if times_L == "opt" else "1/L" if times_L == 1.0 else f"{times_L:g}/L"
    return _condition(label, "GD", f"GD eta={rule}", rule, n, step_times_L=float(eta * p.L),
                      batch_size=p.n_samples, sampler="full", schedule="constant",
                      **{"schedule.eta0": float(eta)})  # fmt: skip


def _tuned(label: str, b: int, k1: int, sampler: str = "replacement") -> dict:
    """SGD with eta_k = 1/(mu (k + k0_b)), k0_b = L_b / mu, for K_1/b (variance term ~ 1/(bk))
    + BIAS_STEPS k0_b (bias term ~ (k0/k)^2) steps."""
    p, order = build_problem(PROBLEMS[label]), {"replacement": "i.i.d."}.get(sampler, "reshuffled")
    k0, name = cx.minibatch_k0(p, b), f"SGD b=1 ({order})" if b == 1 else f"minibatch b={b}"
    return _condition(label, "SGD" if b == 1 else "minibatch", name, "1/(mu(k+k0))",
                      k1 if b == 1 else math.ceil(k1 / b + BIAS_STEPS * k0), batch_size=b,
                      sampler=sampler, schedule="inverse_time", **{"schedule.k0": float(k0),
                      "schedule.eta0": float(1.0 / (p.mu * k0))})  # fmt: skip


def conditions(scale: Scale) -> dict[str, list[dict]]:
    """GD at every kappa and step, SGD and minibatch SGD, logistic and teacher-student runs.

    A quick run keeps every figure and check but thins the grid (kappa 10 and 100, two sweep
    steps, b in {1, 16, 256}, no reshuffled run) and shortens the stochastic runs.
    """
    gd = [_gd(QUADRATIC.format(k), s) for k in scale.pick(KAPPAS, KAPPAS[::2])
          for s in (*GD_STEPS, DIVERGING_STEP)]  # fmt: skip
    gd += [_gd(STOCHASTIC, s) for s in scale.pick(SWEEP_STEPS, QUICK_SWEEP_STEPS)]
    k1, k1_log = scale.pick(150_000, 20_000), scale.pick(30_000, 6_000)
    sgd = [_tuned(STOCHASTIC, b, k1) for b in scale.pick(MINIBATCHES, QUICK_MINIBATCHES)]
    sgd += [] if scale.quick else [_tuned(STOCHASTIC, 1, k1 // 3, sampler="reshuffle")]
    teacher = [  # constant steps: GD (b = N = 200), SGD (b = 1), minibatch SGD
        _condition(TEACHER, m, f"{name} eta={TEACHER_STEPS[m]:g}", f"constant {TEACHER_STEPS[m]:g}",
                   n, batch_size=b, sampler="full" if m == "GD" else "replacement",
                   schedule="constant", **{"schedule.eta0": TEACHER_STEPS[m]})
        for m, name, b, n in [("GD", "GD", 200, scale.pick(1500, 600)),
                              ("SGD", "SGD b=1", 1, scale.pick(40_000, 8000)),
                              ("minibatch", f"minibatch b={TEACHER_BATCH}", TEACHER_BATCH,
                               scale.pick(4000, 1200))]]  # fmt: skip
    return {"gd": gd + [_gd(LOGISTIC, s) for s in GD_STEPS], "teacher": teacher,
            "sgd": sgd + [_tuned(LOGISTIC, b, k1_log) for b in LOGISTIC_MINIBATCHES]}  # fmt: skip


def compute(condition: dict, seed: int, replicates) -> pd.DataFrame:
    """:func:`simulate_cell` recording at log-spaced steps and every ``record_every``-th step."""
    n, every = condition["n_steps"], condition["record_every"]
    record = record_steps(n, "log", condition["n_records"])
    record = np.union1d(record, np.arange(0, n + 1, every)) if every > 0 else record
    return simulate_cell({**condition, "record": record}, seed, replicates)


# ---- measures -------------------------------------------------------------------------------
INFO = LABELS + ("schedule.eta0", "schedule.k0", "batch_size", "sampler", "n_steps")
ITERATIONS = ("iterations", "iterations_ci_low", "iterations_ci_high")


def _by_curve(runs: pd.DataFrame) -> dict[str, tuple[dict, pd.DataFrame]]:
    """(labels and design, frame) of each condition of a grid, by ``curve``."""
    groups = runs.groupby("curve", sort=False)
    return {c: ({k: g[k].iloc[0] if k in g else math.nan for k in INFO}, g) for c, g in groups}


def _as_iterations(table: pd.DataFrame, b, **columns) -> pd.DataFrame:
    """Crossings (``hit`` and its CI) as iterations, samples = b x iterations, and ``columns``."""
    t = table.rename(columns=dict(zip(("hit", "ci_low", "ci_high"), ITERATIONS)))
    return t.assign(**{c.replace("iterations", "samples"): b * t[c] for c in ITERATIONS}, **columns)


def hitting_table(curves: dict, *, n_boot: int, seed: int) -> pd.DataFrame:
    """Iterations and samples to each eps: mean curve (bootstrap CI) and replicate quantiles."""
    rename = {"censored": "mean_curve_censored", "p_censored": "p_censored_boot",
              **{q: f"iterations_{q}" for q in ("q10", "q50", "q90")}}  # fmt: skip
    out = pd.concat([_as_iterations(sc.hitting_time_table(
        f, EPS_TEACHER if i["problem_label"] == TEACHER else EPS, n_boot=n_boot,
        seed=derived_seed(seed, "hits", name)).rename(columns=rename), i["batch_size"], **i)
        for name, (i, f) in curves.items()], ignore_index=True)  # fmt: skip
    return out[[*INFO, *out.columns.difference(INFO, sort=False)]]


def rate_tables(gd: dict, sgd: dict, *, n_boot: int, seed: int):
    """GD: iterations per e-fold of eps (fit over GD_FIT_EPS) against the theory 1/ln(1/rho)
    (:func:`convstudy.theory.complexity.gd_rate`) and the share of diverged replicates (exact
    95% CI). SGD: log-log slope of iterations to eps against 1/eps (1 for a 1/k schedule) over
    the eps crossed past SGD_WINDOW_K0 k0_b. Returns the three tables and the fits by curve."""
    rates, shares, rows, fits, gd_seed = [], [], [], {}, derived_seed(seed, "gd_rates")
    for name, (i, f) in gd.items():
        theory = cx.gd_rate(build_problem(PROBLEMS[i["problem_label"]]), i["schedule.eta0"])
        s, ratio = derived_seed(gd_seed, name), 1 / theory["slope_theory"]
        fit = fits[name] = sf.fit_hitting_slope(f, GD_EPS, n_boot=n_boot, seed=s)
        rates.append(sf.slope_fit_row(fit, **i, **theory, ratio=fit.estimate.value * ratio))
        e = diverged_share(f)
        shares.append({**i, "n_diverged": round(e.value * e.n), "n": e.n, "share": e.value,
                       "ci_low": e.ci_low, "ci_high": e.ci_high})  # fmt: skip
    for name, (i, f) in sgd.items():
        window, s = (SGD_WINDOW_K0 * i["schedule.k0"], i["n_steps"]), derived_seed(seed, name)
        fits[name] = sf.fit_hitting_slope(f, EPS_FIT, scale="loglog", window=window, n_boot=n_boot,
                                          seed=s)  # fmt: skip
        rows.append(sf.slope_fit_row(fits[name], **i, k_min=window[0]))
    return pd.DataFrame(rates), pd.DataFrame(shares), pd.DataFrame(rows), fits


def minibatch_tables(sgd: dict, *, n_boot: int, seed: int):
    """On the stochastic quadratic (i.i.d.), per b: iterations and samples to eps (interpolated
    mean-curve crossings, bootstrap CIs independent per b) and the variance coefficient c_b of
    f ~ c_b/(k+k0) + B (k0/(k+k0))^2 (records k >= VARIANCE_FIT_K0 k0_b); log-log slopes against
    b of iterations and samples to CLAIM_EPS, and of c_b over the ``identified`` b, those whose
    variance term is >= half of f at the end of the run (else the bias term leaves c_b loose)."""
    trade, var, k_boots, c_boots = [], [], [], []
    for i, f in sgd.values():
        if not i["curve"].startswith(STOCHASTIC) or i["sampler"] != "replacement":
            continue
        b, k0 = int(i["batch_size"]), i["schedule.k0"]
        t, boots = sc.mean_curve_crossing_table(f, TRADEOFF_EPS, interpolate="log", n_boot=n_boot,
                                                seed=derived_seed(seed, "tradeoff", b))  # fmt: skip
        trade.append(_as_iterations(t, b, batch_size=b))
        k_boots.append(boots[:, TRADEOFF_EPS.index(CLAIM_EPS)])
        s = derived_seed(seed, b)
        c, B, boots = sf.fit_inverse_time_coefficients(f, k0, k_min=VARIANCE_FIT_K0 * k0,
                                                       n_boot=n_boot, seed=s)  # fmt: skip
        c_boots.append(boots)
        share = cx.inverse_time_variance_share(c.value, B, k0, i["n_steps"])
        var.append({"batch_size": b, "k0": k0, "c": c.value, "c_ci_low": c.ci_low,
                    "c_ci_high": c.ci_high, "b_times_c": b * c.value, "bias_B": B,
                    "k_min": VARIANCE_FIT_K0 * k0, "variance_share_end": share,
                    "identified": share >= 0.5, "n": c.n,
                    "n_diverged": t["n_diverged"][0]})  # fmt: skip
    trade, var = pd.concat(trade, ignore_index=True), pd.DataFrame(var)
    at, ok = trade[np.isclose(trade["eps"], CLAIM_EPS)], var["identified"].to_numpy(bool)
    log_b, n, k_boots = np.log(var["batch_size"]), int(at["n"].min()), np.stack(k_boots, axis=1)
    n_ok, c_boots = int(var.loc[ok, "n"].min()) if ok.any() else 0, np.stack(c_boots, axis=1)
    return trade, var, {
        "iterations": sf.bootstrap_slope(log_b, at["iterations"], k_boots, n=n, skip_nan=True),
        "samples": sf.bootstrap_slope(log_b, at["samples"], k_boots * var["batch_size"].values,
                                      n=n, skip_nan=True),
        "variance": sf.bootstrap_slope(log_b[ok], var.loc[ok, "c"], c_boots[:, ok], n=n_ok,
                                       skip_nan=True)}  # fmt: skip


# ---- checks ---------------------------------------------------------------------------------
SOURCES = {2: "Nesterov (2004) Thm 2.1.15; Polyak (1987) Sec. 1.4", 3: "Bottou, Curtis & Nocedal "
           "(2018) Thm 4.7 and Sec. 4.2 (minibatch: variance / b)"}  # fmt: skip
SLOPE_OF_B = "log-log slope of {} to eps=0.01 against b (b in {{b}})"
CP = "exact Clopper-Pearson 95% CI"
# fmt: off
CHECKS = {  # id: statement, quantity, expected, (expected_low, expected_high), figure, table, notes
    "2-gd-slope": ("GD iterations to eps grow linearly in log(1/eps) at the step's contraction "
        "rate ({problem}, eta={step})", "iterations per unit ln(1/eps) (slope of K against "
        "ln(1/eps))", "1/ln(1/rho) = {t:.4g} +- 5%, rho = max_i (1 - eta lambda_i)^2 = {rho:.5g}",
        None, "gd_linear_rate", "gd_rates", "eps in [{lo:.0e}, {hi:.0e}], mean-curve crossings"),
    "2-gd-diverges-above-2overL": ("Gradient descent with a step above 2/L diverges", "share of "
        "GD runs diverged at eta=2.1/L, pooled over kappa {kappas}", ">= 0.9 (theory: all, "
        "|1 - eta L| > 1)", (0.9, 1.0), "gd_step_sweep", "gd_divergence", CP),
    "2-gd-converges-below-2overL": ("Gradient descent with a step below 2/L converges", "share "
        "of GD runs diverged at eta=1.95/L (kappa=10)", "<= 0.1 (theory: none)", (0.0, 0.1),
        "gd_step_sweep", "gd_divergence", CP),
    "2-gd-optimal-step": ("The optimal fixed step for a quadratic is 2/(L+mu)", "min over other "
        "steps (eta L in {steps}) of iterations per e-fold / those of 2/(L+mu), kappa=10",
        "> 1 (theory: {best:.3g})", (1.0, math.inf), "gd_step_sweep", "gd_rates",
        "closest competitor: eta={closest}"),
    "3-sgd-iterations-1overeps": ("SGD with eta_k ~ 1/k on a strongly convex problem needs "
        "O(1/eps) iterations", "log-log slope of iterations to eps against 1/eps (SGD b=1, i.i.d. "
        "sampling)", "1 (accepted: [0.85, 1.15])", (0.85, 1.15), "iterations_to_eps", "sgd_rates",
        "{curve}; eta_k = 1/(mu(k+k0)), k0 = {k0:.4g}; eps in [{lo:.2g}, {hi:.2g}] (crossings at "
        "k >= 50 k0)"),
    "4-minibatch-iterations-fall": ("Larger minibatches need fewer iterations to reach eps",
        SLOPE_OF_B.format("iterations"), "in [-1, 0) (theory: -1 while the 1/(bk) variance term "
        "dominates)", (-1.0, 0.0), "minibatch_tradeoff", "tradeoff_to_eps", ""),
    "4-minibatch-samples-grow": ("Minibatch SGD is worse per sample processed than SGD",
        SLOPE_OF_B.format("samples"), "in (0, 1] (samples grow with b; = 1 + the iterations "
        "slope)", (0.0, 1.0), "minibatch_tradeoff", "tradeoff_to_eps", ""),
    "4-minibatch-variance-1overbk": ("The minibatch variance term scales like 1/(b k)", "log-log "
        "slope of the fitted variance coefficient c_b of f ~ c_b/(k+k0) + B (k0/(k+k0))^2 against "
        "b (b in {b}: those whose variance term is >= half of f at the end of the run)",
        "-1 (accepted: [-1.1, -0.9])", (-1.1, -0.9), "minibatch_tradeoff", "minibatch_variance",
        ""),
}
# fmt: on


def _check(id: str, estimate: Estimate, spec: str = "", interval=None, **values) -> Check:
    """The check ``id`` of ``estimate`` with the texts of CHECKS[spec or id] filled by
    ``values`` (``interval`` for specs without a fixed expected interval)."""
    statement, quantity, expected, fixed, figure, table, notes = CHECKS[spec or id]
    low, high = interval or fixed
    text = dict(
        zip(
            ("statement", "quantity", "expected", "notes"),
            (v.format(**values) for v in (statement, quantity, expected, notes)),
        )
    )
    return Check.from_estimate(estimate, id=id, claim=int(id[0]), **text, study=NAME,
                               source=SOURCES[min(int(id[0]), 3)], expected_low=low,
                               expected_high=high, figure=f"figures/{figure}.png",
                               table=f"tables/{table}.md")  # fmt: skip


def checks(rates, div, sgd, fits, optimal, var, slopes) -> list[Check]:
    """Claim 2: GD slope within 5% of 1/ln(1/rho) (1/L at every kappa and on logistic, 2/(L+mu)
    at the largest kappa), divergence above 2/L and none at 1.95/L, 2/(L+mu) fastest. Claim 3:
    SGD's iterations ~ (1/eps)^1. Claim 4: iterations fall, samples grow, c_b ~ 1/b."""
    out, opt = [], rates["step_rule"].eq("2/(L+mu)") & rates["kappa"].eq(max(KAPPAS))
    for row, r in rates[
        (rates["step_rule"].eq("1/L") | opt) & rates["rho_theory"].lt(1)
    ].iterrows():
        where, t = f"kappa{r['kappa']:g}" if r["kappa"] > 0 else "logistic", r["slope_theory"]
        out.append(_check(f"2-gd-slope-{where}-{'opt' if opt[row] else '1overL'}",
                          fits[r["curve"]].estimate, "2-gd-slope", (0.95 * t, 1.05 * t),
                          problem=r["problem_label"], step=r["step_rule"], t=t,
                          rho=r["rho_theory"], lo=r["eps_low"], hi=r["eps_high"]))  # fmt: skip
    above, below = div[div["step_times_L"] > 2], div[np.isclose(div["step_times_L"], 1.95)]
    shares = [proportion_ci(int(d["n_diverged"].sum()), int(d["n"].sum()), method="exact")
              for d in (above, below)]  # fmt: skip
    sweep = rates[(rates["problem_label"] == STOCHASTIC) & (rates["step_times_L"] < 2)]
    theory = dict(zip(sweep["step_rule"], sweep["slope_theory"]))
    best = min(v for s, v in theory.items() if s != "2/(L+mu)") / theory["2/(L+mu)"]
    r = sgd[sgd["curve"] == f"{STOCHASTIC} | SGD b=1 (i.i.d.)"].iloc[0]
    b_all = ", ".join(map(str, var["batch_size"]))
    return out + [
        _check("2-gd-diverges-above-2overL", shares[0],
               kappas=", ".join(f"{k:g}" for k in sorted(above["kappa"].unique()))),
        _check("2-gd-converges-below-2overL", shares[1]),
        _check("2-gd-optimal-step", optimal[0], closest=optimal[1], best=best,
               steps=sorted(sweep["step_times_L"].round(3).tolist())),
        _check("3-sgd-iterations-1overeps", fits[r["curve"]].estimate, curve=r["curve"],
               k0=r["schedule.k0"], lo=r["eps_low"], hi=r["eps_high"]),
        _check("4-minibatch-iterations-fall", slopes["iterations"].estimate, b=b_all),
        _check("4-minibatch-samples-grow", slopes["samples"].estimate, b=b_all),
        _check("4-minibatch-variance-1overbk", slopes["variance"].estimate,
               b=", ".join(map(str, var.loc[var["identified"], "batch_size"]))),
    ]  # fmt: skip


# ---- figures --------------------------------------------------------------------------------
PANELS, CI = (STOCHASTIC, LOGISTIC, TEACHER), "95% bootstrap CI"


def _method_panels(axes, table: pd.DataFrame, x: str, **labels) -> None:
    """One panel per problem of PANELS: ``mean`` and its band against ``x`` per method (GD with
    1/L and 2/(L+mu) only), in legend order GD, SGD, minibatch by b."""
    shown = table["method"].ne("GD") | table["step_rule"].isin(
        ["1/L", "2/(L+mu)", f"constant {TEACHER_STEPS['GD']:g}"]
    )
    t = table[shown].assign(rank=lambda d: d["method"].map({"GD": 0, "SGD": 1, "minibatch": 2}))
    t = t.sort_values(["rank", "batch_size", "method_label", x], kind="stable")
    for ax, label in zip(axes, PANELS):
        part = t[t["problem_label"] == label]
        fg.plot_mean_curves(
            ax, part, x=x, hue="method_label", palette="tab10", title=label, **labels
        )
        if label != TEACHER and x != "eps":
            ax.set_ylim(bottom=1e-10)  # GD reaches machine precision


def subopt_figure(curves: dict):
    """f - f* against iterations (left) and samples processed (right), per problem and method."""
    fig, axes = fg.new_figure(2, len(PANELS), width=5.6, height=3.8)
    for j, (x, what) in enumerate([("step", "iterations k"), ("samples", "samples processed")]):
        mc = pd.concat([sc.mean_curve(f, "subopt", x).assign(**i) for i, f in curves.values()])
        _method_panels(axes[j::2], mc, x, xlabel=what, ylabel="f(w) - f*", legend_title="method")
    return fig


def iterations_figure(hits: pd.DataFrame, sgd: pd.DataFrame):
    """Iterations (top) and samples (bottom) to eps against eps, per problem and method; K ∝
    1/eps (offset) through the middle of the i.i.d. SGD fit window."""
    fig, axes = fg.new_figure(len(PANELS), 2, width=5.0, height=3.8)
    t = hits[~hits["mean_curve_censored"]]
    for row, y in enumerate(("iterations", "samples")):
        high = t[f"{y}_ci_high"].replace(np.inf, np.nan)
        band = t.assign(mean=t[y], ci_low=t[f"{y}_ci_low"], ci_high=high)
        _method_panels(axes[3 * row : 3 * row + 3], band, "eps", xlabel="target eps on f - f*",
                       ylabel=f"{y} for the mean curve to reach eps")  # fmt: skip
    for ax, (_, r) in zip(axes, sgd[sgd["method_label"].eq("SGD b=1 (i.i.d.)")].iterrows()):
        if math.isfinite(r["slope"]):  # slope 1 through the fit at the middle of its window
            lo, hi, a, s = r[["eps_low", "eps_high", "intercept", "slope"]]
            e, u_mid = np.geomspace(lo, hi, 20), -0.5 * np.log(lo * hi)
            k = np.exp(a + s * u_mid - np.log(e) - u_mid)
            fg.add_reference_line(ax, e * 3, k / 3, "K ∝ 1/eps (SGD theory, offset)", color="0.2")
    n = int((hits["n"] + hits["n_diverged"]).max())
    for ax in axes:
        ax.invert_xaxis()
        fg.small_legend(ax, f"method (R={n}; band = {CI})")
    return fig


def gd_rate_figure(gd: dict, rates: pd.DataFrame, *, n_boot: int, seed: int):
    """GD iterations to eps against log10(1/eps): mean-curve crossings (interpolated, bootstrap
    CI) and the theory slope 1/ln(1/rho) through the fit at the start of its window (shaded)."""
    parts, u = [], np.log(1 / EPS)
    for _, r in rates[rates["step_rule"].isin(["1/L", "2/(L+mu)"])].iterrows():
        s, u_hi = derived_seed(seed, "gd_linear_rate", r["curve"]), np.log(1 / r["eps_high"])
        t, _ = sc.mean_curve_crossing_table(gd[r["curve"]][1], EPS, n_boot=n_boot, seed=s)
        fit = f"fit {_ci(r['slope'], r['ci_low'], r['ci_high'])}, theory {r['slope_theory']:.3g}"
        theory = r["intercept"] + r["slope"] * u_hi + r["slope_theory"] * (u - u_hi)
        parts.append(t.assign(log10_inv_eps=u / np.log(10), label=r["problem_label"], theory=theory,
                              step=f"eta={r['step_rule']}: {fit} per e-fold"))  # fmt: skip
    t, (fig, axes) = pd.concat(parts), fg.new_figure(2, 2, width=5.2, height=3.9)
    for ax, label in zip(axes, dict.fromkeys(t["label"])):
        fg.plot_estimates_and_predictions(ax, t[t["label"] == label], x="log10_inv_eps", y="hit",
                                          predicted="theory", hue="step", palette="tab10",
                                          prediction_label="theory slope")  # fmt: skip
        ax.axvspan(*-np.log10(GD_FIT_EPS), color="0.9", zorder=0)
        ax.set(xlabel="log10(1/eps)", ylabel="iterations to f - f* <= eps", title=label)
        fg.small_legend(ax, f"mean-curve crossing (interpolated), {CI}; shaded: fit window")
    for ax in axes[t["label"].nunique() :]:
        ax.set_visible(False)
    return fig


def step_sweep_figure(rates: pd.DataFrame, div: pd.DataFrame):
    """Iterations per e-fold against eta L at kappa=10, with 1/ln(1/rho(eta)) and divergence."""
    p, (fig, ax) = build_problem(PROBLEMS[STOCHASTIC]), fg.new_figure(1, 1, width=6.0, height=4.0)
    sub = rates[(rates["problem_label"] == STOCHASTIC) & (rates["step_times_L"] < 2)]
    top = div[(div["problem_label"] == STOCHASTIC) & (div["step_times_L"] > 2)].iloc[0]
    fg.plot_estimates(ax, sub.sort_values("step_times_L"), x="step_times_L", y="slope", logy=True,
                      xlabel="step eta x L", note=f"measured: mean curve, {CI}",
                      ylabel="iterations per e-fold of eps (slope of K vs ln(1/eps))",
                      title=f"GD step sweep, {STOCHASTIC}: at eta={top['step_times_L']:g}/L "
                      f"{top['n_diverged']}/{top['n']} runs diverged")  # fmt: skip
    grid = np.linspace(0.3, 1.999, 400)
    theory = [cx.gd_rate(p, s / p.L)["slope_theory"] for s in grid]
    fg.add_reference_line(ax, grid, theory, "theory 1/ln(1/rho), rho = max(1 - eta lambda)^2")
    ax.axvline(2.0 / (1.0 + p.mu / p.L), color="C2", ls=":", label="eta = 2/(L+mu)")
    ax.axvline(2.0, color="C3", ls="-", lw=0.8, label="eta = 2/L")
    ax.legend(fontsize="small")
    return fig


def tradeoff_figure(trade: pd.DataFrame, var: pd.DataFrame, slope: sf.SlopeFit):
    """Iterations and samples to eps against b with the variance term alone (dashed, c_b = C/b);
    the variance coefficient c_b against b."""
    fig, axes = fg.new_figure(3, 1, width=5.4, height=3.9)
    ok, e, bs = var[var["identified"]], slope.estimate, var["batch_size"].to_numpy(float)
    C = float(np.exp(np.mean(np.log(ok["b_times_c"]))))
    t = trade[~trade["censored"]].assign(label=trade["eps"].map(lambda v: f"eps={v:g}"))
    for ax, y, pure in [(axes[0], "iterations", "C/(b eps)"), (axes[1], "samples", "C/eps")]:
        t = t.assign(pure=C / t["eps"] / t["batch_size"] ** (y == "iterations"))
        fg.plot_estimates_and_predictions(
            ax, t, x="batch_size", y=y, low=f"{y}_ci_low", high=f"{y}_ci_high", predicted="pure",
            hue="label", prediction_label=f"variance term only, {pure}", logx=True,
            logy=True)  # fmt: skip
        ax.set(xlabel="minibatch size b", ylabel=f"{y} to eps ({CI})", title=f"{y} to eps vs b")
        fg.small_legend(ax, STOCHASTIC)
    fg.plot_estimates(
        axes[2], var.assign(fit=var["identified"].map({True: "fitted", False: "bias-dominated"})),
        x="batch_size", y="c", low="c_ci_low", high="c_ci_high", hue="fit", logx=True, logy=True,
        note=CI, xlabel="minibatch size b", ylabel="variance coefficient c_b",
        title=f"f ~ c_b/(k+k0) + B(k0/(k+k0))^2; log-log slope over b = "
        f"{', '.join(map(str, ok['batch_size']))}:\n{_ci(e.value, e.ci_low, e.ci_high)} "
        "(theory -1)")  # fmt: skip
    fg.add_reference_line(axes[2], bs, C / bs, "C/b (theory: slope -1)")
    return fig


# ---- analysis -------------------------------------------------------------------------------
def analyze(runs: dict[str, pd.DataFrame], scale: Scale) -> Analysis:
    """Tables, figures, findings and checks of claims 2-4 from the runs."""
    boot = {"n_boot": scale.pick(N_BOOT, N_BOOT // 5), "seed": scale.seed}
    gd, stochastic, teacher = (_by_curve(runs[grid]) for grid in ("gd", "sgd", "teacher"))
    hits = hitting_table({**gd, **stochastic, **teacher}, **boot)
    rates, div, sgd, fits = rate_tables(gd, stochastic, **boot)
    trade, var, slopes = minibatch_tables(stochastic, **boot)
    sweep = rates[(rates["problem_label"] == STOCHASTIC) & (rates["step_times_L"] < 2)]["curve"]
    ratio, closest = sf.min_hitting_slope_ratio(
        {c: gd[c][1] for c in sweep}, f"{STOCHASTIC} | GD eta=2/(L+mu)", GD_EPS,
        n_boot=boot["n_boot"], seed=derived_seed(scale.seed, "gd_rates"))  # fmt: skip
    theory = {"iterations": "-1 (variance-dominated)", "variance": "-1",
              "samples": "0 (variance-dominated), > 0 with bias"}  # fmt: skip
    tables = {"hitting_times": hits, "gd_rates": rates, "gd_divergence": div, "sgd_rates": sgd,
              "tradeoff_to_eps": trade, "minibatch_variance": var, "minibatch_fits": pd.DataFrame(
                  [sf.slope_fit_row(slopes[w], quantity=f"log-log slope of {w} vs b",
                                    theory=theory[w]) for w in slopes])}  # fmt: skip
    figures = {"subopt_curves": subopt_figure({**gd, **stochastic, **teacher}),
               "gd_linear_rate": gd_rate_figure(gd, rates, **boot),
               "gd_step_sweep": step_sweep_figure(rates, div),
               "iterations_to_eps": iterations_figure(hits, sgd),
               "minibatch_tradeoff": tradeoff_figure(trade, var, slopes["variance"])}  # fmt: skip
    for fig in figures.values():
        fg.drop_minor_log_ticks(fig)
    optimal = (ratio, gd[closest][0]["step_rule"])
    return Analysis(tables, figures, CAPTIONS, _findings(rates, div, sgd, slopes, hits),
                    checks(rates, div, sgd, fits, optimal, var, slopes))  # fmt: skip


CAPTIONS = {
    "subopt_curves": f"f - f* against iterations and samples processed ({fg.CI_NOTE}).",
    "gd_linear_rate": "GD: iterations to eps linear in log(1/eps); fitted slope vs 1/ln(1/rho).",
    "gd_step_sweep": "Iterations per e-fold vs eta L, kappa=10: least at 2/(L+mu); > 2/L diverges.",
    "iterations_to_eps": "Iterations, samples to eps (mean curve): GD ~ log(1/eps), SGD ~ 1/eps.",
    "minibatch_tradeoff": "Minibatch (kappa=10): iterations fall, samples grow, c_b falls as 1/b.",
    "hitting_times": "Iterations, samples to eps: mean curve (bootstrap CI), replicate quantiles.",
    "gd_rates": "GD iterations per e-fold of eps against 1/ln(1/rho) from the Hessian at w*.",
    "gd_divergence": "Share of GD runs that diverged, per step, exact 95% CI.",
    "sgd_rates": "SGD, eta_k = 1/(mu(k+k0_b)): log-log slope of iterations to eps vs 1/eps.",
    "tradeoff_to_eps": "Iterations, samples to eps per b (interpolated crossings, bootstrap CI).",
    "minibatch_fits": "Log-log slopes against b: iterations and samples to eps=0.01, and c_b.",
    "minibatch_variance": "Variance coefficient c_b of f ~ c_b/(k+k0) + B (k0/(k+k0))^2 per b.",
}


def _ci(value: float, low: float, high: float) -> str:
    return f"{value:.3g} [{low:.3g}, {high:.3g}]"


# fmt: off
def _findings(rates, div, sgd, slopes, hits) -> list[str]:
    """Sentences whose numbers come from the tables."""
    ci = {r["curve"]: _ci(r["slope"], r["ci_low"], r["ci_high"]) for _, r in rates.iterrows()}
    one = rates[rates["step_rule"].eq("1/L") & rates["kappa"].notna()].sort_values("kappa")
    gd = "; ".join(f"kappa={r['kappa']:g}: {ci[r['curve']]} vs theory {r['slope_theory']:.3g}"
                   for _, r in one.iterrows())
    out = ["Batch GD with eta=1/L needs iterations linear in ln(1/eps); fitted iterations per "
           f"e-fold (95% CI) {gd} (theory 1/ln(1/rho), rho = (1 - 1/kappa)^2)."]
    out += [f"Logistic regression, GD eta={r['step_rule']}: {ci[r['curve']]} iterations per "
            f"e-fold vs {r['slope_theory']:.3g} from the Hessian at w* (eigenvalues in "
            f"[{r['mu_local']:.3g}, {r['L_local']:.3g}]; the step uses the global bound L)."
            for _, r in rates[rates["problem_label"] == LOGISTIC].iterrows()]
    above, top = div[div["step_times_L"] > 2], np.isclose(div["step_times_L"], 1.95)
    out.append(f"Steps above 2/L diverge: {above['n_diverged'].sum()} of {above['n'].sum()} GD "
               f"runs at eta={DIVERGING_STEP:g}/L; at eta=1.95/L "
               f"{div.loc[top, 'n_diverged'].sum()} diverged.")
    out += [f"{r['curve']}: iterations to eps grow like (1/eps)^s with s = "
            f"{_ci(r['slope'], r['ci_low'], r['ci_high'])} over eps in [{r['eps_low']:.2g}, "
            f"{r['eps_high']:.2g}]." if math.isfinite(r["slope"]) else
            f"{r['curve']}: no 1/eps slope fitted: fewer than 3 eps are reached past "
            f"{SGD_WINDOW_K0} k0 = {r['k_min']:.0f} iterations within its {r['n_steps']:.0f}-step "
            f"budget (k0 = {r['schedule.k0']:.0f}), i.e. the run ends in the transient where the "
            "(k0/k)^2 bias term still matters." for _, r in sgd.iterrows()]
    it, sa, va = (_ci(e.value, e.ci_low, e.ci_high) for e in (s.estimate for s in slopes.values()))
    out.append(f"Minibatch (eps={CLAIM_EPS:g}): iterations scale like b^{it}, samples like "
               f"b^{sa}; the variance coefficient like b^{va} (theory -1: the variance term is "
               "c_1/(b k)).")
    ts = hits[(hits["problem_label"] == TEACHER) & np.isclose(hits["eps"], 1e-3)]
    return out + [f"Teacher-student ({r['method_label']}), eps=1e-3: {r['n_censored']} of "
                  f"{r['n']} replicates censored ({100 * r['share_censored']:.0f}%); median "
                  f"{r['iterations_q50']:.4g} iterations." for _, r in ts.iterrows()]
# fmt: on


study = Study(name=NAME, title="Iterations to eps: batch GD, SGD and minibatch SGD",
              description=__doc__.split("\n\n", 1)[1], conditions=conditions, analyze=analyze,
              compute=compute, labels=LABELS, claims=(2, 3, 4), replicates=100,
              quick_replicates=20)  # fmt: skip
