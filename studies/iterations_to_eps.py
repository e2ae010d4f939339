"""Iterations (and samples) to reach f - f* <= eps: batch GD, SGD and minibatch SGD.

DESIGN.md claims 2, 3 and 4, measured on three problems:

- a strongly convex quadratic (d = 10, N = 1000, Hessian spectrum log-spaced from mu = 1 to
  L = kappa, label noise 3 so that SGD's variance term soon outweighs its bias term) at
  kappa = 10, 30, 100;
- L2-regularised logistic regression on the breast-cancer data (569 x 30, lam = 0.1);
- a realizable teacher-student tanh network (N = 200, d = 25), nonconvex with f* = 0: eps is
  a target on f - f* = f itself.

Every replicate starts from its own random point (``w0="random"``), so gradient descent, which
is otherwise deterministic, is measured over random initialisations, and the stochastic methods
over initialisations and sampling. Methods:

- batch gradient descent (``sampler="full"``, b = N) with fixed steps eta = s/L, s from 0.5 to
  2.1 (including 1/L and the optimal 2/(L + mu)); on logistic L is the global bound
  lam + lambda_max(X'X)/(4N) and the theory uses the Hessian at w*
  (:mod:`convstudy.theory.complexity`);
- SGD (b = 1) and minibatch SGD (b = 4 .. 256) with the tuned 1/k schedule
  eta_k = 1/(mu (k + k0_b)), k0_b = L_b/mu (L_b the expected smoothness of a b-sample gradient),
  drawing samples i.i.d. with replacement as the O(1/k) theory assumes; one SGD run with random
  reshuffling shows that reshuffling converges faster than 1/k;
- on the nonconvex problem, constant steps (every sample's gradient vanishes at f* = 0, so
  constant-step SGD has no noise floor there).

Iterations to eps: the first recorded step at which the mean curve (bootstrap CI) and each
replicate (quantiles) reach eps (:mod:`convstudy.stats.curves`); a replicate that never gets
there is censored and counted. Rate fits use the mean curve's crossing interpolated between records.
Wall-clock time to eps is seconds per iteration of one run, timed at analysis time on the numpy
and the compiled engine (machine-dependent, kept out of runs.parquet), times iterations to eps.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import pandas as pd
from matplotlib.ticker import NullLocator
from scipy import stats

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
from convstudy.schedules import get_schedule
from convstudy.stats.curves import (
    curve_matrix,
    hitting_times,
    mean_curve,
    mean_curve_crossings,
    mean_curve_hitting_time,
)
from convstudy.stats.estimate import bootstrap
from convstudy.stats.fits import (
    SlopeFit,
    bootstrap_slope,
    fit_hitting_slope,
    fit_inverse_time_model,
    ols_slope,
)
from convstudy.study import Analysis, Scale, Study, build_problem, split_condition
from convstudy.theory.complexity import (
    expected_smoothness,
    gd_contraction,
    iterations_per_efold,
    local_hessian,
    max_sample_smoothness,
    tuned_inverse_time_k0,
)

NAME = "iterations_to_eps"

# ---- the grid -------------------------------------------------------------------------------
KAPPAS = (10.0, 30.0, 100.0)
QUADRATIC = "quadratic kappa={:g}"
LOGISTIC = "logistic (breast cancer)"
TEACHER = "teacher-student"
STOCHASTIC_KAPPA = 10.0  # the quadratic on which SGD and minibatch SGD run

PROBLEMS = {
    **{
        QUADRATIC.format(k): {
            "problem": "quadratic",
            "problem.dim": 10,
            "problem.condition_number": k,
            "problem.n_samples": 1000,
            "problem.noise": 3.0,
            "problem.seed": 0,
        }
        for k in KAPPAS
    },
    LOGISTIC: {"problem": "logistic", "problem.lam": 0.1},
    TEACHER: {"problem": "teacher_student", "problem.n_samples": 200},
}

GD_STEPS = (1.0, "opt")  # eta * L at every kappa and on logistic ("opt" = 2/(1 + 1/kappa))
SWEEP_STEPS = (0.5, 1.5, 1.7, 1.95)  # extra eta * L at kappa = 10
DIVERGING_STEP = 2.1  # eta * L above 2: every kappa; |1 - eta L|^2 = 1.21 per step
DIVERGING_BUDGET = 200  # steps: the top eigen-direction grows 1.21^200 ~ 4e16 times
GD_RECORDS = 30  # log-spaced records, plus every (n_steps // GD_RECORDS)-th step
SGD_RECORDS = 80  # log-spaced records of the stochastic runs
GD_EFOLDS = 30.0  # GD budget: 30 e-folds of the asymptotic rate (f0 / f_K ~ 1e13)
MINIBATCHES = (1, 4, 16, 64, 256)
QUICK_SWEEP_STEPS = (1.7, 1.95)
QUICK_MINIBATCHES = (1, 16, 256)
LOGISTIC_MINIBATCHES = (1, 16)
BIAS_STEPS = 50  # minibatch budget: K_1 / b + 50 k0_b (the k0^2/k^2 bias term needs ~ k0/sqrt(eps))
TEACHER_STEPS = {"GD": 0.5, "SGD": 0.1, "minibatch": 0.5}  # constant steps, teacher-student
TEACHER_BATCH = 16

# ---- targets and fit windows ----------------------------------------------------------------
EPS = 10.0 ** -np.arange(0.0, 8.01, 0.5)  # tables, convex problems
EPS_TEACHER = 10.0 ** -np.arange(1.0, 4.01, 0.5)
EPS_FIT = 10.0 ** -np.arange(0.0, 8.01, 0.125)  # finer grid for the rate fits
GD_FIT_EPS = (1e-8, 1e-4)  # GD slope window: past the transient of the fast eigen-directions
SGD_WINDOW_K0 = 50  # SGD slope window: crossings at k >= 50 k0, where the k^-2 bias is small
TRADEOFF_EPS = (1e-1, 1e-2, 1e-3)
CLAIM_EPS = 1e-2  # eps of the minibatch claim checks
VARIANCE_FIT_K0 = 5  # variance-coefficient fit uses records with k >= 5 k0_b
TIMING_STEPS = 2000  # wall-clock probe: updates per timing, best of TIMING_REPEATS
TIMING_SAMPLES = 500_000  # compiled engine: at least this many sample gradients per timing
TIMING_REPEATS = 3
N_BOOT = 1000


def _step_label(times_L) -> str:
    if times_L == "opt":
        return "2/(L+mu)"
    return "1/L" if times_L == 1.0 else f"{times_L:g}/L"


def _base(label: str) -> dict:
    """Problem keys and labels shared by a problem's conditions (``kappa`` for quadratics)."""
    base = {**PROBLEMS[label], "problem_label": label, "optimizer": "sgd", "w0": "random"}
    if "problem.condition_number" in base:
        base["kappa"] = base["problem.condition_number"]
    return base


def _gd_condition(label: str, times_L) -> dict:
    """Batch GD with eta = times_L / L (or 2/(L + mu)); budget from the theoretical rate."""
    problem = build_problem(PROBLEMS[label])
    eta = 2.0 / (problem.L + problem.mu) if times_L == "opt" else times_L / problem.L
    rho = gd_contraction(np.linalg.eigvalsh(local_hessian(problem)), eta)
    converging_steps = int(math.ceil(GD_EFOLDS * iterations_per_efold(min(rho, 0.999))))
    n_steps = DIVERGING_BUDGET if rho >= 1 else converging_steps
    step_rule = _step_label(times_L)
    return {
        **_base(label),
        "curve": f"{label} | GD eta={step_rule}",
        "method": "GD",
        "method_label": f"GD eta={step_rule}",
        "step_rule": step_rule,
        "step_times_L": float(eta * problem.L),
        "batch_size": problem.n_samples,
        "sampler": "full",
        "schedule": "constant",
        "schedule.eta0": float(eta),
        "n_steps": n_steps,
        "n_records": GD_RECORDS,
        "record_every": max(1, n_steps // GD_RECORDS),
        # full-batch GD on a linear model is a few BLAS calls per step: the numpy path beats
        # the compiled one, whose per-record launch overhead dominates such short runs
        "engine": "numpy",
    }


def _tuned_condition(label: str, b: int, n_steps: int, sampler: str = "replacement") -> dict:
    """SGD / minibatch SGD with eta_k = 1/(mu (k + k0_b)), k0_b = L_b / mu."""
    problem = build_problem(PROBLEMS[label])
    L_b = expected_smoothness(problem.L, max_sample_smoothness(problem), b)
    k0 = tuned_inverse_time_k0(problem.mu, L_b)
    method = "SGD" if b == 1 else "minibatch"
    order = "i.i.d." if sampler == "replacement" else "reshuffled"
    name = f"SGD b=1 ({order})" if b == 1 else f"minibatch b={b}"
    return {
        **_base(label),
        "curve": f"{label} | {name}",
        "method": method,
        "method_label": name,
        "step_rule": "1/(mu(k+k0))",
        "batch_size": b,
        "sampler": sampler,
        "schedule": "inverse_time",
        "schedule.eta0": float(1.0 / (problem.mu * k0)),
        "schedule.k0": float(k0),
        "n_steps": int(n_steps),
        "n_records": SGD_RECORDS,
        "record_every": 0,
    }


def _minibatch_steps(label: str, b: int, k1: int) -> int:
    """Budget of b: K_1/b (variance term ~ 1/(b k)) + 50 k0_b (bias term ~ (k0/k)^2)."""
    if b == 1:
        return k1
    problem = build_problem(PROBLEMS[label])
    k0 = tuned_inverse_time_k0(
        problem.mu, expected_smoothness(problem.L, max_sample_smoothness(problem), b)
    )
    return int(math.ceil(k1 / b + BIAS_STEPS * k0))


def _teacher_condition(method: str, n_steps: int) -> dict:
    problem = build_problem(PROBLEMS[TEACHER])
    b = {"GD": problem.n_samples, "SGD": 1, "minibatch": TEACHER_BATCH}[method]
    eta = TEACHER_STEPS[method]
    name = {"GD": "GD", "SGD": "SGD b=1", "minibatch": f"minibatch b={b}"}[method]
    return {
        **_base(TEACHER),
        "curve": f"{TEACHER} | {name} eta={eta:g}",
        "method": method,
        "method_label": f"{name} eta={eta:g}",
        "step_rule": f"constant {eta:g}",
        "batch_size": b,
        "sampler": "full" if method == "GD" else "replacement",
        "schedule": "constant",
        "schedule.eta0": eta,
        "n_steps": n_steps,
        "n_records": SGD_RECORDS,
        "record_every": max(1, n_steps // GD_RECORDS) if method == "GD" else 0,
    }


def conditions(scale: Scale) -> list[dict]:
    """GD at every kappa and step, SGD and minibatch SGD, logistic and teacher-student runs.

    A quick run keeps every figure and check but thins the grid (kappa 10 and 100, two sweep
    steps, b in {1, 16, 256}, no reshuffled run) and shortens the stochastic runs.
    """
    kappas = scale.pick(KAPPAS, (KAPPAS[0], KAPPAS[-1]))
    sweep = scale.pick(SWEEP_STEPS, QUICK_SWEEP_STEPS)
    batches = scale.pick(MINIBATCHES, QUICK_MINIBATCHES)
    conds = []
    for kappa in kappas:
        label = QUADRATIC.format(kappa)
        for s in GD_STEPS + (DIVERGING_STEP,):
            conds.append(_gd_condition(label, s))
    low = QUADRATIC.format(STOCHASTIC_KAPPA)
    conds += [_gd_condition(low, s) for s in sweep]
    k1 = scale.pick(150_000, 20_000)
    conds += [_tuned_condition(low, b, _minibatch_steps(low, b, k1)) for b in batches]
    if not scale.quick:
        conds.append(_tuned_condition(low, 1, k1 // 3, sampler="reshuffle"))
    conds += [_gd_condition(LOGISTIC, s) for s in GD_STEPS]
    k1_log = scale.pick(30_000, 6_000)
    conds += [
        _tuned_condition(LOGISTIC, b, _minibatch_steps(LOGISTIC, b, k1_log))
        for b in LOGISTIC_MINIBATCHES
    ]
    conds += [
        _teacher_condition("GD", scale.pick(1500, 600)),
        _teacher_condition("SGD", scale.pick(40_000, 8000)),
        _teacher_condition("minibatch", scale.pick(4000, 1200)),
    ]
    return conds


def record_grid(n_steps: int, n_records: int, every: int) -> np.ndarray:
    """Log-spaced records (for log-log plots) plus every ``every``-th step when every > 0.

    The linear part keeps GD hitting times from being rounded up by a growing grid spacing.
    """
    grid = record_steps(n_steps, "log", n_records)
    if every > 0:
        grid = np.union1d(grid, np.arange(0, n_steps + 1, every))
    return grid


def compute(condition: dict, seed: int, replicate_ids) -> pd.DataFrame:
    """One cell: :func:`convstudy.simulate` with the condition's problem, schedule and grid."""
    schedule = get_schedule(condition["schedule"], **split_condition(condition, "schedule"))
    return simulate(
        build_problem(condition),
        get_optimizer(condition["optimizer"]),
        schedule,
        n_steps=condition["n_steps"],
        sampler=condition["sampler"],
        batch_size=condition["batch_size"],
        replicates=replicate_ids,
        seed=seed,
        record=record_grid(condition["n_steps"], condition["n_records"], condition["record_every"]),
        w0=condition["w0"],
        engine=condition.get("engine", "auto"),
    )


# ---- analysis helpers -----------------------------------------------------------------------
def _censored_ci(boots: np.ndarray, level: float = 0.95) -> np.ndarray:
    """Percentile CI over axis 0 of bootstrap hitting times, NaN (never reached) as +inf."""
    finite = np.where(np.isnan(boots), np.inf, boots)
    return np.quantile(finite, [0.5 - level / 2, 0.5 + level / 2], axis=0, method="inverted_cdf")


def _nan_ci(boots: np.ndarray, level: float = 0.95) -> np.ndarray:
    """Percentile CI of bootstrap estimates ignoring failed (NaN) fits; NaN if all failed."""
    if not np.isfinite(boots).any():
        return np.array([np.nan, np.nan])
    return np.nanquantile(boots, [0.5 - level / 2, 0.5 + level / 2])


def _seed(name: str) -> int:
    """A fixed bootstrap seed per curve (independent resamples for independent conditions)."""
    return zlib.crc32(name.encode())


CURVE_COLUMNS = ["replicate", "step", "samples", "subopt", "diverged"]


def _condition_info(frame: pd.DataFrame) -> dict:
    """The condition labels of one curve (first row); absent numeric labels are NaN."""
    row = frame.iloc[0]
    info = {k: row[k] for k in ("curve", "problem_label", "method", "method_label", "step_rule")}
    for k in ("kappa", "step_times_L", "schedule.eta0", "schedule.k0", "batch_size", "n_steps"):
        v = row[k] if k in frame.columns else None
        info[k] = float(v) if v is not None and pd.notna(v) else math.nan
    info["sampler"] = row["sampler"]
    return info


def _curves(runs: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """One slim frame per condition (the columns the measures need); its labels in attrs."""
    out = {}
    for name, g in runs.groupby("curve", sort=False):
        slim = g[CURVE_COLUMNS].reset_index(drop=True)
        slim.attrs["info"] = _condition_info(g)
        out[name] = slim
    return out


def _info(frame: pd.DataFrame) -> dict:
    return frame.attrs["info"]


def _eps_grid(label: str) -> np.ndarray:
    return EPS_TEACHER if label == TEACHER else EPS


def _censored_quantiles(hits: pd.DataFrame, qs=(0.1, 0.5, 0.9)) -> pd.DataFrame:
    """Per-eps replicate quantiles of hitting times, a censored replicate counting as +inf."""
    rows = []
    for eps, g in hits.groupby("eps", sort=False):
        h = np.where(g["censored"], np.inf, g["hit"])
        q = np.quantile(h, qs, method="inverted_cdf")
        rows.append(
            {
                "eps": eps,
                **{f"q{int(100 * p)}": v for p, v in zip(qs, q)},
                "n_censored": int(g["censored"].sum()),
                "share_censored": float(g["censored"].mean()),
            }
        )
    return pd.DataFrame(rows)


def _mean_hits(
    frame: pd.DataFrame, eps: np.ndarray, x: str, seed: int, n_boot: int
) -> pd.DataFrame:
    """:func:`mean_curve_hitting_time`, or all-censored NaN rows when every replicate diverged
    (there is no mean curve then)."""
    diverged = frame.groupby("replicate")["diverged"].any()
    if diverged.all():
        nan = np.full(eps.size, np.nan)
        return pd.DataFrame(
            {
                "eps": eps,
                "hit": nan,
                "ci_low": nan,
                "ci_high": nan,
                "censored": True,
                "p_censored": 1.0,
                "n": 0,
                "n_diverged": int(diverged.size),
            }
        )
    return mean_curve_hitting_time(frame, eps, x=x, n_boot=n_boot, seed=seed)


def hitting_table(curves: dict[str, pd.DataFrame], n_boot: int = N_BOOT) -> pd.DataFrame:
    """Iterations and samples to each eps: mean curve (bootstrap CI) and replicate quantiles."""
    parts = []
    for name, frame in curves.items():
        info = _info(frame)
        eps = _eps_grid(info["problem_label"])
        it = _mean_hits(frame, eps, "step", _seed(name), n_boot)
        b = info["batch_size"]  # samples = b x iterations at every record
        qs = _censored_quantiles(hitting_times(frame, eps))
        table = pd.DataFrame(
            {
                "eps": eps,
                "iterations": it["hit"],
                "iterations_ci_low": it["ci_low"],
                "iterations_ci_high": it["ci_high"],
                "samples": b * it["hit"],
                "samples_ci_low": b * it["ci_low"],
                "samples_ci_high": b * it["ci_high"],
                "mean_curve_censored": it["censored"],
                "p_censored_boot": it["p_censored"],
            }
        ).merge(qs.rename(columns=lambda c: f"iterations_{c}" if c[0] == "q" else c), on="eps")
        table["n"] = it["n"].iloc[0]
        table["n_diverged"] = it["n_diverged"].iloc[0]
        parts.append(table.assign(**{k: v for k, v in info.items()}))
    out = pd.concat(parts, ignore_index=True)
    front = list(_info(next(iter(curves.values()))).keys())
    return out[front + [c for c in out.columns if c not in front]]


def gd_rate_table(curves: dict[str, pd.DataFrame], n_boot: int = N_BOOT) -> pd.DataFrame:
    """GD: iterations per e-fold of eps (fit over GD_FIT_EPS) against 1/ln(1/rho)."""
    lo, hi = GD_FIT_EPS
    eps = EPS_FIT[(EPS_FIT >= lo) & (EPS_FIT <= hi)]
    rows = []
    for name, frame in curves.items():
        info = _info(frame)
        if info["method"] != "GD" or info["problem_label"] == TEACHER:
            continue
        problem = build_problem(PROBLEMS[info["problem_label"]])
        eig = np.linalg.eigvalsh(local_hessian(problem))
        eta = info["step_times_L"] / problem.L
        rho = gd_contraction(eig, eta)
        fit = fit_hitting_slope(frame, eps, scale="linear", n_boot=n_boot, seed=_seed(name))
        theory = iterations_per_efold(rho)
        rows.append(
            {
                **info,
                "mu_local": float(eig[0]),
                "L_local": float(eig[-1]),
                "rho_theory": rho,
                "slope_theory": theory,
                "slope": fit.estimate.value,
                "ci_low": fit.estimate.ci_low,
                "ci_high": fit.estimate.ci_high,
                "ratio": fit.estimate.value / theory if math.isfinite(theory) else math.nan,
                "intercept": fit.intercept,
                "eps_low": fit.details["eps_low"],
                "eps_high": fit.details["eps_high"],
                "n_eps": fit.details["n_eps"],
                "n": fit.estimate.n,
                "n_diverged": fit.details["n_diverged"],
            }
        )
    return pd.DataFrame(rows)


def divergence_table(curves: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Share of GD replicates that diverged per step, with an exact (Clopper-Pearson) 95% CI."""
    rows = []
    for frame in curves.values():
        info = _info(frame)
        if info["method"] != "GD" or info["problem_label"] == TEACHER:
            continue
        diverged = frame.groupby("replicate")["diverged"].any()
        k, n = int(diverged.sum()), int(diverged.size)
        ci = stats.binomtest(k, n).proportion_ci(0.95, method="exact")
        rows.append(
            {
                **info,
                "n_diverged": k,
                "n": n,
                "share": k / n,
                "ci_low": ci.low,
                "ci_high": ci.high,
            }
        )
    return pd.DataFrame(rows)


def sgd_rate_table(curves: dict[str, pd.DataFrame], n_boot: int = N_BOOT) -> pd.DataFrame:
    """SGD / minibatch: log-log slope of iterations-to-eps against 1/eps (expected 1 for 1/k)."""
    rows = []
    for name, frame in curves.items():
        info = _info(frame)
        if info.get("step_rule") != "1/(mu(k+k0))":
            continue
        k0 = float(info["schedule.k0"])
        window = (SGD_WINDOW_K0 * k0, float(info["n_steps"]))
        fit = fit_hitting_slope(
            frame, EPS_FIT, scale="loglog", window=window, n_boot=n_boot, seed=_seed(name)
        )
        columns = _hitting_fit_columns(fit)
        rows.append({**info, **{f"fit_{k}": v for k, v in columns.items()}, "k_min": window[0]})
    return pd.DataFrame(rows).rename(columns={"fit_slope": "slope"})


def _hitting_fit_columns(fit: SlopeFit) -> dict:
    """The table columns of a :func:`fit_hitting_slope` fit."""
    e, d = fit.estimate, fit.details
    return {
        "slope": e.value,
        "ci_low": e.ci_low,
        "ci_high": e.ci_high,
        "se": fit.se,
        "intercept": fit.intercept,
        "eps_low": d["eps_low"],
        "eps_high": d["eps_high"],
        "n_eps": d["n_eps"],
        "p_incomplete": d["p_incomplete"],
        "n": e.n,
        "n_diverged": d["n_diverged"],
    }


def _stochastic_quadratic(curves) -> dict[int, pd.DataFrame]:
    """The i.i.d.-sampled tuned-schedule curves on the stochastic quadratic, by batch size."""
    label = QUADRATIC.format(STOCHASTIC_KAPPA)
    out = {}
    for frame in curves.values():
        info = _info(frame)
        if (
            info["problem_label"] == label
            and info["step_rule"] == "1/(mu(k+k0))"
            and info["sampler"] == "replacement"
        ):
            out[int(info["batch_size"])] = frame
    return dict(sorted(out.items()))


def variance_share(c: float, B: float, k0: float, k: float) -> float:
    """Share of the variance term in the model f ~ c/(k+k0) + B (k0/(k+k0))^2 at step k."""
    var = c / (k + k0)
    return float(var / (var + max(B, 0.0) * (k0 / (k + k0)) ** 2))


def variance_coefficients(
    by_b: dict[int, pd.DataFrame], n_boot: int = N_BOOT
) -> tuple[pd.DataFrame, np.ndarray]:
    """Per b: the fitted variance coefficient c_b of f ~ c_b/(k+k0) + B (k0/(k+k0))^2, with
    bootstrap CIs. Returns the table and the (n_boot, n_b) bootstrap matrix of c_b.

    ``identified`` says whether the fitted variance term is at least half of f at the end of
    the run (``variance_share_end`` >= 0.5): only then does the run pin c_b down (a large b
    ends its budget while the (k0/k)^2 bias term still dominates).
    """
    rows, boots = [], []
    for b, frame in by_b.items():
        k0, n_steps = _info(frame)["schedule.k0"], _info(frame)["n_steps"]
        xs, Y, diverged = curve_matrix(frame)
        Y = Y[~diverged]

        def fit(c, xs=xs, k0=k0):
            return fit_inverse_time_model(xs, c, k0, k_min=VARIANCE_FIT_K0 * k0)

        point = fit(Y.mean(axis=0)[None])[0]
        boot = bootstrap(
            Y, lambda c, fit=fit: fit(c)[:, 0], n_boot=n_boot, seed=_seed(f"variance b={b}")
        )
        boots.append(boot)
        q = _nan_ci(boot)
        rows.append(
            {
                "batch_size": b,
                "k0": k0,
                "c": point[0],
                "c_ci_low": q[0],
                "c_ci_high": q[1],
                "b_times_c": b * point[0],
                "bias_B": point[1],
                "k_min": VARIANCE_FIT_K0 * k0,
                "variance_share_end": variance_share(point[0], point[1], k0, n_steps),
                "identified": variance_share(point[0], point[1], k0, n_steps) >= 0.5,
                "n": int(Y.shape[0]),
                "n_diverged": int(diverged.sum()),
            }
        )
    return pd.DataFrame(rows), np.stack(boots, axis=1)


def _slope_ci(x: np.ndarray, point: np.ndarray, boots: np.ndarray, n: int) -> dict:
    """OLS slope of point (n,) against x with a CI from independent bootstraps (B, n)."""
    e = bootstrap_slope(x, point, boots, n=n, log_y=False, skip_nan=True).estimate
    return {"slope": e.value, "ci_low": e.ci_low, "ci_high": e.ci_high}


def tradeoff_table(
    by_b: dict[int, pd.DataFrame], n_boot: int = N_BOOT
) -> tuple[pd.DataFrame, dict]:
    """Iterations and samples to eps against b, and the log-log slopes against b at CLAIM_EPS.

    Uses interpolated mean-curve crossings (bootstrap CIs, independent per b). Samples = b K.
    """
    eps = np.array(TRADEOFF_EPS)
    rows, point_k, boot_k, n_min = [], [], [], math.inf
    for b, frame in by_b.items():
        point, boots, n, n_div = mean_curve_crossings(
            frame, eps, interpolate="log", n_boot=n_boot, seed=_seed(f"tradeoff b={b}")
        )
        n_min = min(n_min, n)
        q = _censored_ci(boots)
        for j, e in enumerate(eps):
            rows.append(
                {
                    "batch_size": b,
                    "eps": e,
                    "iterations": point[j],
                    "iterations_ci_low": q[0, j],
                    "iterations_ci_high": q[1, j],
                    "samples": b * point[j],
                    "samples_ci_low": b * q[0, j],
                    "samples_ci_high": b * q[1, j],
                    "censored": bool(np.isnan(point[j])),
                    "p_censored_boot": float(np.isnan(boots[:, j]).mean()),
                    "n": n,
                    "n_diverged": n_div,
                }
            )
        j = int(np.flatnonzero(eps == CLAIM_EPS)[0])
        point_k.append(point[j])
        boot_k.append(boots[:, j])
    log_b = np.log(np.array(list(by_b), dtype=float))
    log_k = np.log(np.array(point_k))
    log_kb = np.log(np.stack(boot_k, axis=1))
    fits = {
        "iterations": _slope_ci(log_b, log_k, log_kb, n_min),
        "samples": _slope_ci(log_b, log_k + log_b, log_kb + log_b, n_min),
        "batch_sizes": ", ".join(str(b) for b in by_b),
    }
    return pd.DataFrame(rows), fits


TIMING_ENGINES = {
    "numpy": "numpy (one vectorised update per step)",
    "fast": "compiled (numba, loop over samples)",
}


def _timing_steps(engine: str, b: int, scale: Scale) -> int:
    """Updates per timing: enough that the work, not the call overhead, is timed (the compiled
    kernel costs ~b d operations per update, so it needs ~TIMING_SAMPLES / b updates)."""
    steps = TIMING_STEPS if engine == "numpy" else max(TIMING_STEPS, TIMING_SAMPLES // b)
    return scale.pick(steps, max(100, steps // 5))


def _seconds_per_iteration(frame: pd.DataFrame, n_steps: int, engine: str) -> float:
    """Wall-clock seconds per update of one replicate (a single training run) on ``engine``,
    best of TIMING_REPEATS timings of ``n_steps`` updates after an untimed warm-up call.
    Machine-dependent and not deterministic: it never enters runs.parquet."""
    row = _info(frame)
    schedule = get_schedule("inverse_time", eta0=row["schedule.eta0"], k0=row["schedule.k0"])

    def wall_time(steps: int) -> float:
        return simulate(
            build_problem(PROBLEMS[row["problem_label"]]),
            get_optimizer("sgd"),
            schedule,
            n_steps=steps,
            sampler=row["sampler"],
            batch_size=int(row["batch_size"]),
            n_replicates=1,
            record=[0, steps],
            engine=engine,
        ).attrs["wall_time"]

    wall_time(10)
    return min(wall_time(n_steps) for _ in range(TIMING_REPEATS)) / n_steps


def wall_clock_table(by_b: dict, tradeoff: pd.DataFrame, scale: Scale) -> pd.DataFrame:
    """Seconds per iteration (timing probe, per engine) times iterations to eps."""
    parts = []
    for engine, label in TIMING_ENGINES.items():
        per_iter = {
            b: _seconds_per_iteration(frame, _timing_steps(engine, b, scale), engine)
            for b, frame in by_b.items()
        }
        t = tradeoff.assign(
            engine=label, seconds_per_iteration=tradeoff["batch_size"].map(per_iter)
        )
        for col in ("", "_ci_low", "_ci_high"):
            t[f"seconds{col}"] = t["seconds_per_iteration"] * t[f"iterations{col}"]
        parts.append(t)
    cols = ["engine", "batch_size", "eps", "seconds_per_iteration", "iterations", "seconds"]
    return pd.concat(parts, ignore_index=True)[
        cols + ["seconds_ci_low", "seconds_ci_high", "censored"]
    ]


# ---- checks -----------------------------------------------------------------------------------
GD_SOURCE = "Nesterov (2004) Thm 2.1.15; Polyak (1987) Sec. 1.4"
SGD_SOURCE = "Bottou, Curtis & Nocedal (2018) Thm 4.7 and Sec. 4.2 (minibatch: variance / b)"


def _check(id_, claim, statement, quantity, expected, lo, hi, est, ci, n, figure, table, notes=""):
    return Check(
        id=id_,
        claim=claim,
        statement=statement,
        source=SGD_SOURCE if claim in (3, 4) else GD_SOURCE,
        quantity=quantity,
        expected=expected,
        expected_low=float(lo),
        expected_high=float(hi),
        estimate=float(est),
        ci_low=float(ci[0]),
        ci_high=float(ci[1]),
        n_replicates=int(n),
        study=NAME,
        figure=f"figures/{figure}.png",
        table=f"tables/{table}.md",
        notes=notes,
    )


def gd_checks(rates: pd.DataFrame) -> list[Check]:
    """GD slope vs 1/ln(1/rho) within 5%, at every kappa for 1/L, kappa=100 for 2/(L+mu), and
    on logistic for 1/L."""
    checks = []
    pick = rates[
        rates["step_rule"].eq("1/L")
        | (rates["step_rule"].eq("2/(L+mu)") & rates["kappa"].eq(max(KAPPAS)))
    ]
    pick = pick[pick["step_times_L"] < 2]
    for _, r in pick.iterrows():
        where = f"kappa={r['kappa']:g}" if pd.notna(r["kappa"]) else "logistic"
        tag = "opt" if r["step_rule"] == "2/(L+mu)" else "1overL"
        t = r["slope_theory"]
        checks.append(
            _check(
                f"2-gd-slope-{where.replace('=', '')}-{tag}",
                2,
                f"GD iterations to eps grow linearly in log(1/eps) at the step's contraction rate "
                f"({r['problem_label']}, eta={r['step_rule']})",
                "iterations per unit ln(1/eps) (slope of K against ln(1/eps))",
                f"1/ln(1/rho) = {t:.4g} +- 5%, rho = max_i (1 - eta lambda_i)^2 = "
                f"{r['rho_theory']:.5g}",
                0.95 * t,
                1.05 * t,
                r["slope"],
                (r["ci_low"], r["ci_high"]),
                r["n"],
                "gd_linear_rate",
                "gd_rates",
                f"eps in [{r['eps_low']:.0e}, {r['eps_high']:.0e}], mean-curve crossings",
            )
        )
    return checks


def divergence_checks(div: pd.DataFrame) -> list[Check]:
    """Above 2/L every replicate diverges (pooled over kappa); at 1.95/L none does."""
    above = div[div["step_times_L"] > 2]
    k, n = int(above["n_diverged"].sum()), int(above["n"].sum())
    ci = stats.binomtest(k, n).proportion_ci(0.95, method="exact")
    below = div[np.isclose(div["step_times_L"], max(SWEEP_STEPS))]
    kb, nb = int(below["n_diverged"].sum()), int(below["n"].sum())
    cib = stats.binomtest(kb, nb).proportion_ci(0.95, method="exact")
    return [
        _check(
            "2-gd-diverges-above-2overL",
            2,
            "Gradient descent with a step above 2/L diverges",
            f"share of GD runs diverged at eta={DIVERGING_STEP:g}/L, pooled over kappa "
            f"{', '.join(f'{k:g}' for k in sorted(above['kappa'].unique()))}",
            ">= 0.9 (theory: all, |1 - eta L| > 1)",
            0.9,
            1.0,
            k / n,
            (ci.low, ci.high),
            n,
            "gd_step_sweep",
            "gd_divergence",
            "exact Clopper-Pearson 95% CI",
        ),
        _check(
            "2-gd-converges-below-2overL",
            2,
            "Gradient descent with a step below 2/L converges",
            f"share of GD runs diverged at eta={max(SWEEP_STEPS):g}/L (kappa={STOCHASTIC_KAPPA:g})",
            "<= 0.1 (theory: none)",
            0.0,
            0.1,
            kb / nb,
            (cib.low, cib.high),
            nb,
            "gd_step_sweep",
            "gd_divergence",
            "exact Clopper-Pearson 95% CI",
        ),
    ]


def optimal_step_check(curves, rates: pd.DataFrame, n_boot: int = N_BOOT) -> Check:
    """2/(L+mu) needs fewer iterations per e-fold than every other step of the kappa=10 sweep:
    min over other steps of slope(step)/slope(2/(L+mu)) > 1, with a bootstrap CI."""
    label = QUADRATIC.format(STOCHASTIC_KAPPA)
    lo, hi = GD_FIT_EPS
    eps = EPS_FIT[(EPS_FIT >= lo) & (EPS_FIT <= hi)]
    u = np.log(1.0 / eps)
    sweep = rates[(rates["problem_label"] == label) & (rates["step_times_L"] < 2)]
    slopes, boots = {}, {}
    for _, r in sweep.iterrows():
        point, b, _, _ = mean_curve_crossings(
            curves[r["curve"]], eps, interpolate="linear", n_boot=n_boot, seed=_seed(r["curve"])
        )
        slopes[r["step_rule"]] = float(ols_slope(u, point, skip_nan=True)[0])
        boots[r["step_rule"]] = ols_slope(u, b, skip_nan=True)
    opt = "2/(L+mu)"
    others = [s for s in slopes if s != opt]
    ratio = min(slopes[s] for s in others) / slopes[opt]
    ratio_b = np.min(np.stack([boots[s] for s in others]), axis=0) / boots[opt]
    ci = _nan_ci(ratio_b)
    runner_up = min(others, key=lambda s: slopes[s])
    theory = dict(zip(sweep["step_rule"], sweep["slope_theory"]))
    return _check(
        "2-gd-optimal-step",
        2,
        "The optimal fixed step for a quadratic is 2/(L+mu)",
        f"min over other steps (eta L in {sorted(sweep['step_times_L'].round(3).tolist())}) of "
        f"iterations per e-fold / those of 2/(L+mu), kappa={STOCHASTIC_KAPPA:g}",
        f"> 1 (theory: {min(theory[s] for s in others) / theory[opt]:.3g})",
        1.0,
        math.inf,
        ratio,
        ci,
        int(sweep["n"].min()),
        "gd_step_sweep",
        "gd_rates",
        f"closest competitor: eta={runner_up}",
    )


def sgd_check(sgd: pd.DataFrame) -> Check:
    r = sgd[
        (sgd["problem_label"] == QUADRATIC.format(STOCHASTIC_KAPPA))
        & (sgd["batch_size"] == 1)
        & (sgd["sampler"] == "replacement")
    ].iloc[0]
    return _check(
        "3-sgd-iterations-1overeps",
        3,
        "SGD with eta_k ~ 1/k on a strongly convex problem needs O(1/eps) iterations",
        "log-log slope of iterations to eps against 1/eps (SGD b=1, i.i.d. sampling)",
        "1 (accepted: [0.85, 1.15])",
        0.85,
        1.15,
        r["slope"],
        (r["fit_ci_low"], r["fit_ci_high"]),
        r["fit_n"],
        "iterations_to_eps",
        "sgd_rates",
        f"{r['curve']}; eta_k = 1/(mu(k+k0)), k0 = {r['schedule.k0']:.4g}; eps in "
        f"[{r['fit_eps_low']:.2g}, {r['fit_eps_high']:.2g}] (crossings at k >= "
        f"{SGD_WINDOW_K0} k0)",
    )


def minibatch_checks(fits: dict, exponent: dict, n: int) -> list[Check]:
    bs = fits["batch_sizes"]
    return [
        _check(
            "4-minibatch-iterations-fall",
            4,
            "Larger minibatches need fewer iterations to reach eps",
            f"log-log slope of iterations to eps={CLAIM_EPS:g} against b (b in {bs})",
            "in [-1, 0) (theory: -1 while the 1/(bk) variance term dominates)",
            -1.0,
            0.0,
            fits["iterations"]["slope"],
            (fits["iterations"]["ci_low"], fits["iterations"]["ci_high"]),
            n,
            "minibatch_tradeoff",
            "tradeoff_to_eps",
        ),
        _check(
            "4-minibatch-samples-grow",
            4,
            "Minibatch SGD is worse per sample processed than SGD",
            f"log-log slope of samples to eps={CLAIM_EPS:g} against b (b in {bs})",
            "in (0, 1] (samples grow with b; = 1 + the iterations slope)",
            0.0,
            1.0,
            fits["samples"]["slope"],
            (fits["samples"]["ci_low"], fits["samples"]["ci_high"]),
            n,
            "minibatch_tradeoff",
            "tradeoff_to_eps",
        ),
        _check(
            "4-minibatch-variance-1overbk",
            4,
            "The minibatch variance term scales like 1/(b k)",
            "log-log slope of the fitted variance coefficient c_b of "
            f"f ~ c_b/(k+k0) + B (k0/(k+k0))^2 against b (b in {exponent['batch_sizes']}: "
            "those whose variance term is >= half of f at the end of the run)",
            "-1 (accepted: [-1.1, -0.9])",
            -1.1,
            -0.9,
            exponent["slope"],
            (exponent["ci_low"], exponent["ci_high"]),
            n,
            "minibatch_tradeoff",
            "minibatch_variance",
        ),
    ]


# ---- figures --------------------------------------------------------------------------------
def _pretty(text: str) -> str:
    return text.replace("mu", "μ").replace("eta", "η").replace("kappa", "κ")


FIGURE_PANELS = (QUADRATIC.format(STOCHASTIC_KAPPA), LOGISTIC, TEACHER)
FIGURE_GD_STEPS = ("1/L", "2/(L+mu)", f"constant {TEACHER_STEPS['GD']:g}")
METHOD_RANK = {"GD": 0, "SGD": 1, "minibatch": 2}
SUBOPT_FLOOR = 1e-10  # y-axis floor of the convex panels (GD reaches machine precision)


def _shown(frame: pd.DataFrame) -> pd.Series:
    """Rows of the methods the per-problem figures show (GD with 1/L and 2/(L+mu) only)."""
    return frame["problem_label"].isin(FIGURE_PANELS) & (
        (frame["method"] != "GD") | frame["step_rule"].isin(FIGURE_GD_STEPS)
    )


def _ordered(data: pd.DataFrame, labels: pd.DataFrame, x: str) -> pd.DataFrame:
    """``data`` sorted GD, SGD, minibatch by b (legend order), with readable method labels."""
    combos = labels[["method", "batch_size", "method_label"]].drop_duplicates("method_label")
    combos = combos.assign(rank=combos["method"].map(METHOD_RANK))
    order = combos.sort_values(["rank", "batch_size", "method_label"])["method_label"].tolist()
    rank = {label: i for i, label in enumerate(order)}
    data = data.assign(_order=data["method_label"].map(rank)).sort_values(["_order", x])
    return data.drop(columns="_order").assign(method_label=data["method_label"].map(_pretty))


def subopt_figure(runs: pd.DataFrame):
    """f - f* against iterations and against samples processed, per problem and method."""
    data = runs[_shown(runs)]
    fig, axes = new_figure(2, len(FIGURE_PANELS), width=5.6, height=3.8)
    for i, label in enumerate(FIGURE_PANELS):
        part = data[data["problem_label"] == label]
        for j, x in enumerate(("step", "samples")):
            ax = axes[2 * i + j]
            mc = _ordered(mean_curve(part, "subopt", x, by=["method_label"]), part, x)
            plot_mean_curves(
                ax,
                mc,
                x=x,
                hue="method_label",
                xlabel="iterations k" if x == "step" else "samples processed (gradient evals)",
                ylabel="f(w) - f*",
                title=f"{_pretty(label)}: vs {'iterations' if x == 'step' else 'samples'}",
                palette="tab10",
                legend_title="method",
            )
            if label != TEACHER:
                ax.set_ylim(bottom=SUBOPT_FLOOR)
    return fig


def gd_rate_figure(curves, rates: pd.DataFrame, n_boot: int = N_BOOT):
    """GD iterations to eps against log10(1/eps), fitted slope and theory, per problem."""
    labels = list(dict.fromkeys(rates["problem_label"]))
    fig, axes = new_figure(2, math.ceil(len(labels) / 2), width=5.2, height=3.9)
    for ax in axes[len(labels) :]:
        ax.set_visible(False)
    for ax, label in zip(axes, labels):
        sub = rates[
            (rates["problem_label"] == label) & rates["step_rule"].isin(["1/L", "2/(L+mu)"])
        ]
        for (_, r), color in zip(sub.iterrows(), ("C0", "C3")):
            # the interpolated mean-curve crossings that the slope is fitted to
            point, boots, _, _ = mean_curve_crossings(
                curves[r["curve"]], EPS, interpolate="linear", n_boot=n_boot, seed=_seed(r["curve"])
            )
            q = _censored_ci(boots)
            x = np.log10(1.0 / EPS)
            ax.errorbar(
                x,
                point,
                yerr=np.nan_to_num(np.vstack([point - q[0], q[1] - point])).clip(0),
                fmt="o",
                ms=3,
                color=color,
                label=f"η={_pretty(r['step_rule'])}: fit {r['slope']:.3g} [{r['ci_low']:.3g}, "
                f"{r['ci_high']:.3g}]/e-fold",
            )
            # theory slope, anchored at the fitted line at the start of the fit window
            u_hi = np.log(1.0 / r["eps_high"])
            k_hi = r["intercept"] + r["slope"] * u_hi
            uu = np.linspace(0, np.log(1.0 / GD_FIT_EPS[0]), 50)
            ax.plot(
                uu / np.log(10),
                k_hi + r["slope_theory"] * (uu - u_hi),
                color=color,
                ls="--",
                lw=1,
                label=f"theory 1/ln(1/ρ) = {r['slope_theory']:.3g}",
            )
        ax.axvspan(np.log10(1 / GD_FIT_EPS[1]), np.log10(1 / GD_FIT_EPS[0]), color="0.9", zorder=0)
        ax.set_xlabel("log10(1/eps)")
        ax.set_ylabel("iterations to f - f* <= eps")
        ax.set_title(_pretty(label) + " (GD)")
        ax.legend(
            fontsize="x-small",
            title="mean-curve crossing (interpolated),\n95% bootstrap CI; shaded: fit window",
            title_fontsize="x-small",
        )
    return fig


def step_sweep_figure(rates: pd.DataFrame, div: pd.DataFrame):
    """Iterations per e-fold against eta L at kappa=10, with 1/ln(1/rho(eta)) and divergence."""
    label = QUADRATIC.format(STOCHASTIC_KAPPA)
    problem = build_problem(PROBLEMS[label])
    eig = np.linalg.eigvalsh(local_hessian(problem))
    sub = rates[(rates["problem_label"] == label) & (rates["step_times_L"] < 2)]
    sub = sub.sort_values("step_times_L")
    fig, ax = new_figure(1, 1, width=6.0, height=4.0)
    plot_estimates(
        ax,
        sub,
        x="step_times_L",
        y="slope",
        logy=True,
        xlabel="step η × L",
        ylabel="iterations per e-fold of eps (slope of K vs ln(1/eps))",
        title=f"GD step sweep, {_pretty(label)}",
        note="measured: mean curve, 95% bootstrap CI",
    )
    grid = np.linspace(0.3, 1.999, 400)
    theory = [iterations_per_efold(gd_contraction(eig, s / problem.L)) for s in grid]
    add_reference_line(ax, grid, theory, "theory 1/ln(1/ρ), ρ = max(1 - ηλ)²")
    opt = 2.0 / (1.0 + problem.mu / problem.L)
    ax.axvline(opt, color="C2", ls=":", label="η = 2/(L+μ)")
    ax.axvline(2.0, color="C3", ls="-", lw=0.8)
    d = div[(div["problem_label"] == label) & (div["step_times_L"] > 2)]
    for _, r in d.iterrows():
        ax.annotate(
            f"η={r['step_times_L']:g}/L:\n{r['n_diverged']}/{r['n']} diverged",
            xy=(2.0, max(theory) / 3),
            xytext=(1.25, max(theory) / 3),
            arrowprops={"arrowstyle": "->", "color": "C3"},
            fontsize="small",
            color="C3",
        )
    ax.legend(fontsize="small")
    return fig


def _sgd_reference(ax, sgd: pd.DataFrame, label: str) -> None:
    """K proportional to 1/eps through the middle of the i.i.d. SGD fit window."""
    r = sgd[(sgd["problem_label"] == label) & (sgd["batch_size"] == 1)]
    r = r[r["sampler"] == "replacement"]
    if not len(r) or not math.isfinite(r["slope"].iloc[0]):
        return
    r = r.iloc[0]
    e = np.geomspace(r["fit_eps_low"], r["fit_eps_high"], 20)
    u_mid = 0.5 * np.log(1.0 / (r["fit_eps_low"] * r["fit_eps_high"]))
    k = np.exp(r["fit_intercept"] + r["slope"] * u_mid + np.log(1.0 / e) - u_mid)
    add_reference_line(ax, e * 3, k / 3, "K ∝ 1/eps (SGD theory, offset)", color="0.2")


def iterations_figure(hits: pd.DataFrame, sgd: pd.DataFrame):
    """Iterations and samples to eps against eps (log-log), per problem and method."""
    fig, axes = new_figure(len(FIGURE_PANELS), 2, width=5.0, height=3.8)
    shown = hits[_shown(hits) & ~hits["mean_curve_censored"]]
    for i, label in enumerate(FIGURE_PANELS):
        part = shown[shown["problem_label"] == label]
        for row, what in enumerate(("iterations", "samples")):
            ax = axes[row * len(FIGURE_PANELS) + i]
            bands = part.assign(
                mean=part[what],
                ci_low=part[f"{what}_ci_low"],
                ci_high=part[f"{what}_ci_high"].replace(np.inf, np.nan),
            )
            plot_mean_curves(
                ax,
                _ordered(bands, part, "eps"),
                x="eps",
                hue="method_label",
                xlabel="target eps on f - f*",
                ylabel=f"{what} for the mean curve to reach eps",
                title=_pretty(label),
                palette="tab10",
                legend_title="method",
            )
            ax.invert_xaxis()
            if label != TEACHER and row == 0:
                _sgd_reference(ax, sgd, label)
            ax.legend(
                title=f"method (R={int(part['n'].max() + part['n_diverged'].max())}; "
                "band = 95% bootstrap CI)",
                fontsize="x-small",
                title_fontsize="x-small",
            )
    return fig


def tradeoff_figure(trade: pd.DataFrame, clock: pd.DataFrame, var: pd.DataFrame, exponent):
    """Iterations, samples and wall-clock time to eps against b; the variance coefficient."""
    fig, axes = new_figure(2, 2, width=5.4, height=3.9)
    ident = var[var["identified"]]
    c_pure = float(np.exp(np.mean(np.log(ident["b_times_c"]))))  # C in c_b = C/b
    t = trade.assign(eps=trade["eps"].map(lambda e: f"{e:g}"))
    c = clock[np.isclose(clock["eps"], CLAIM_EPS)]
    bs = np.array(sorted(trade["batch_size"].unique()), dtype=float)
    problem = _pretty(QUADRATIC.format(STOCHASTIC_KAPPA))
    for ax, (table, y, hue, ylabel, title) in zip(
        axes[:3],
        [
            (t, "iterations", "eps", "iterations to eps", f"iterations to eps vs b ({problem})"),
            (t, "samples", "eps", "samples to eps (= b × iterations)", "samples to eps vs b"),
            (
                c,
                "seconds",
                "engine",
                f"wall-clock seconds to eps={CLAIM_EPS:g}",
                "wall-clock time vs b (one run; machine-dependent)",
            ),
        ],
    ):
        plot_estimates(
            ax,
            table[~table["censored"]],
            x="batch_size",
            y=y,
            low=f"{y}_ci_low",
            high=f"{y}_ci_high",
            hue=hue,
            logx=True,
            logy=True,
            xlabel="minibatch size b",
            ylabel=ylabel,
            title=title,
            note="95% bootstrap CI",
        )
        if y != "seconds":
            for e, color in zip(TRADEOFF_EPS, ("C0", "C1", "C2")):
                pure = c_pure / (bs * e) if y == "iterations" else np.full_like(bs, c_pure / e)
                ax.plot(bs, pure, color=color, ls="--", lw=0.9)
            pure_label = "C/(b eps)" if y == "iterations" else "C/eps"
            ax.plot([], [], color="0.3", ls="--", label=f"variance term only: {pure_label}")
            ax.legend(fontsize="x-small", title="eps", title_fontsize="x-small")
    ax = axes[3]
    plot_estimates(
        ax,
        var.assign(identified=var["identified"].map({True: "fitted", False: "bias-dominated"})),
        x="batch_size",
        hue="identified",
        y="c",
        low="c_ci_low",
        high="c_ci_high",
        logx=True,
        logy=True,
        xlabel="minibatch size b",
        ylabel="variance coefficient c_b",
        title=f"f ≈ c_b/(k+k0) + B(k0/(k+k0))²; log-log slope over b = "
        f"{exponent['batch_sizes']}:\n{exponent['slope']:.3f} "
        f"[{exponent['ci_low']:.3f}, {exponent['ci_high']:.3f}] (theory -1)",
        note="95% bootstrap CI",
    )
    add_reference_line(ax, bs, c_pure / bs, "C/b (theory: slope -1)")
    return fig


# ---- analysis -------------------------------------------------------------------------------
def variance_exponent(var: pd.DataFrame, var_boots: np.ndarray) -> dict:
    """Log-log slope of c_b against b over the identified b (bootstrap CI; -1 expected)."""
    ok = var["identified"].to_numpy(bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        fit = _slope_ci(
            np.log(var.loc[ok, "batch_size"].to_numpy(float)),
            np.log(var.loc[ok, "c"].to_numpy(float)),
            np.log(var_boots[:, ok]),
            int(var.loc[ok, "n"].min()) if ok.any() else 0,
        )
    fit["batch_sizes"] = ", ".join(str(b) for b in var.loc[ok, "batch_size"])
    return fit


def _lighten_log_axes(fig) -> None:
    """No minor ticks on log axes: the whitegrid style does not draw them, but matplotlib
    would still lay them out (a third of the time it takes to save these figures)."""
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            if axis.get_scale() == "log":
                axis.set_minor_locator(NullLocator())


def analyze(runs: pd.DataFrame, scale: Scale) -> Analysis:
    """Tables, figures, findings and checks of claims 2-4 from the runs."""
    n_boot = scale.pick(N_BOOT, N_BOOT // 5)
    curves = _curves(runs)
    hits = hitting_table(curves, n_boot)
    rates = gd_rate_table(curves, n_boot)
    div = divergence_table(curves)
    sgd = sgd_rate_table(curves, n_boot)
    by_b = _stochastic_quadratic(curves)
    var, var_boots = variance_coefficients(by_b, n_boot)
    exponent = variance_exponent(var, var_boots)
    trade, fits = tradeoff_table(by_b, n_boot)
    clock = wall_clock_table(by_b, trade, scale)
    n = int(next(iter(curves.values()))["replicate"].nunique())

    checks = gd_checks(rates) + divergence_checks(div)
    checks += [optimal_step_check(curves, rates, n_boot), sgd_check(sgd)]
    checks += minibatch_checks(fits, exponent, n)

    tables = {
        "hitting_times": hits,
        "gd_rates": rates,
        "gd_divergence": div,
        "sgd_rates": sgd,
        "tradeoff_to_eps": trade,
        "minibatch_variance": var,
        "minibatch_fits": pd.DataFrame(
            [
                {
                    "quantity": f"log-log slope of iterations to eps={CLAIM_EPS:g} vs b",
                    **fits["iterations"],
                    "batch_sizes": fits["batch_sizes"],
                    "theory": "-1 (variance-dominated)",
                },
                {
                    "quantity": f"log-log slope of samples to eps={CLAIM_EPS:g} vs b",
                    **fits["samples"],
                    "batch_sizes": fits["batch_sizes"],
                    "theory": "0 (variance-dominated), > 0 with bias",
                },
                {
                    "quantity": "log-log slope of variance coefficient c_b vs b",
                    **exponent,
                    "theory": "-1",
                },
            ]
        ),
        "wall_clock": clock,
    }
    figures = {
        "subopt_curves": subopt_figure(runs),
        "gd_linear_rate": gd_rate_figure(curves, rates, n_boot),
        "gd_step_sweep": step_sweep_figure(rates, div),
        "iterations_to_eps": iterations_figure(hits, sgd),
        "minibatch_tradeoff": tradeoff_figure(trade, clock, var, exponent),
    }
    for fig in figures.values():
        _lighten_log_axes(fig)
    captions = _captions()
    findings = _findings(rates, div, sgd, var, exponent, fits, trade, clock, hits)
    return Analysis(tables, figures, captions, findings, checks)


def _captions() -> dict[str, str]:
    return {
        "subopt_curves": "f - f* against iterations (left) and samples processed (right), per "
        f"method and problem ({CI_NOTE}).",
        "gd_linear_rate": "Batch GD: iterations to eps grow linearly in log(1/eps); measured "
        "slope (fit over the shaded window) next to the theoretical 1/ln(1/rho).",
        "gd_step_sweep": "GD iterations per e-fold of eps against the step eta L at kappa=10: "
        "theory 1/ln(1/rho(eta)) is minimal at 2/(L+mu); above 2/L every run diverges.",
        "iterations_to_eps": "Iterations (top) and samples (bottom) for the mean curve to reach "
        "eps, per method: GD needs log(1/eps) iterations, SGD ~ 1/eps.",
        "minibatch_tradeoff": "Minibatch trade-off on the quadratic (kappa=10): iterations fall "
        "with b, samples grow, wall-clock time (machine-dependent) follows the iterations; the "
        "fitted variance coefficient falls like 1/b.",
        "hitting_times": "Iterations and samples to each eps for every condition: mean curve "
        "(first recorded step, bootstrap CI) and replicate quantiles, censored runs counted "
        "(a censored replicate counts as +inf in the quantiles).",
        "gd_rates": "Batch GD: fitted iterations per e-fold of eps against 1/ln(1/rho), rho the "
        "step's contraction factor from the Hessian at w*.",
        "gd_divergence": "Share of GD runs that diverged, per step, exact 95% CI.",
        "sgd_rates": "SGD and minibatch SGD with eta_k = 1/(mu(k+k0_b)): log-log slope of "
        "iterations to eps against 1/eps (1 expected with i.i.d. sampling).",
        "tradeoff_to_eps": "Iterations and samples for the mean curve to reach eps per b "
        "(interpolated crossings, bootstrap CI).",
        "minibatch_fits": "Log-log slopes against b (bootstrap CIs, independent per b): "
        f"iterations and samples to eps={CLAIM_EPS:g}, and the variance coefficient.",
        "minibatch_variance": "Variance coefficient c_b of f ~ c_b/(k+k0_b) + B (k0_b/(k+k0_b))^2 "
        "per b, and its log-log slope against b (expected -1).",
        "wall_clock": "Wall-clock time to eps = seconds per iteration (one replicate, numpy "
        "engine, best of 3, measured at analysis time: machine-dependent) x iterations to eps.",
    }


def _fmt_ci(est, lo, hi, digits=3) -> str:
    return f"{est:.{digits}g} [{lo:.{digits}g}, {hi:.{digits}g}]"


def _fmt_fit(fit: dict) -> str:
    return _fmt_ci(fit["slope"], fit["ci_low"], fit["ci_high"])


def _findings(rates, div, sgd, var, exponent, fits, trade, clock, hits) -> list[str]:
    out = []
    one = rates[rates["step_rule"].eq("1/L") & rates["kappa"].notna()].sort_values("kappa")
    parts = [
        f"kappa={r['kappa']:g}: {_fmt_ci(r['slope'], r['ci_low'], r['ci_high'])} vs theory "
        f"{r['slope_theory']:.3g}"
        for _, r in one.iterrows()
    ]
    out.append(
        "Batch GD with eta=1/L needs iterations linear in ln(1/eps); fitted iterations per "
        f"e-fold (95% CI) {'; '.join(parts)} (theory 1/ln(1/rho), rho = (1 - 1/kappa)^2)."
    )
    lg = rates[rates["problem_label"] == LOGISTIC]
    for _, r in lg.iterrows():
        out.append(
            f"Logistic regression, GD eta={r['step_rule']}: "
            f"{_fmt_ci(r['slope'], r['ci_low'], r['ci_high'])} iterations per e-fold vs "
            f"{r['slope_theory']:.3g} from the Hessian at w* (eigenvalues in "
            f"[{r['mu_local']:.3g}, {r['L_local']:.3g}]; the step uses the global bound L)."
        )
    above = div[div["step_times_L"] > 2]
    out.append(
        f"Steps above 2/L diverge: {int(above['n_diverged'].sum())} of {int(above['n'].sum())} GD "
        f"runs at eta={DIVERGING_STEP:g}/L; at eta={max(SWEEP_STEPS):g}/L "
        f"{int(div.loc[np.isclose(div['step_times_L'], max(SWEEP_STEPS)), 'n_diverged'].sum())} "
        "diverged."
    )
    s = sgd.set_index("curve")
    for name, r in s.iterrows():
        if not math.isfinite(r["slope"]):
            out.append(
                f"{name}: no 1/eps slope fitted: fewer than 3 eps are reached past "
                f"{SGD_WINDOW_K0} k0 = {r['k_min']:.0f} iterations within its "
                f"{r['n_steps']:.0f}-step budget (k0 = {r['schedule.k0']:.0f}), i.e. the run "
                "ends in the transient where the (k0/k)^2 bias term still matters."
            )
            continue
        out.append(
            f"{name}: iterations to eps grow like (1/eps)^s with s = "
            f"{_fmt_ci(r['slope'], r['fit_ci_low'], r['fit_ci_high'])} over eps in "
            f"[{r['fit_eps_low']:.2g}, {r['fit_eps_high']:.2g}]."
        )
    out.append(
        f"Minibatch (eps={CLAIM_EPS:g}): iterations scale like b^{_fmt_fit(fits['iterations'])}, "
        f"samples like b^{_fmt_fit(fits['samples'])}; the variance coefficient like "
        f"b^{_fmt_fit(exponent)} "
        "(theory -1: the variance term is c_1/(b k))."
    )
    at = clock[np.isclose(clock["eps"], CLAIM_EPS) & ~clock["censored"]]
    for engine, part in at.groupby("engine", sort=False):
        best = part.loc[part["seconds"].idxmin()]
        worst = part.loc[part["seconds"].idxmax()]
        out.append(
            f"Wall-clock to eps={CLAIM_EPS:g} (machine-dependent timing probe, one run, {engine}): "
            f"fastest b={int(best['batch_size'])} at {best['seconds']:.3g} s "
            f"({best['seconds_per_iteration'] * 1e6:.3g} us/iteration), slowest "
            f"b={int(worst['batch_size'])} at {worst['seconds']:.3g} s "
            f"({worst['seconds_per_iteration'] * 1e6:.3g} us/iteration)."
        )
    ts = hits[(hits["problem_label"] == TEACHER)]
    for _, r in ts[np.isclose(ts["eps"], 1e-3)].iterrows():
        out.append(
            f"Teacher-student ({r['method_label']}), eps=1e-3: {r['n_censored']} of {r['n']} "
            f"replicates censored ({100 * r['share_censored']:.0f}%); median "
            f"{r['iterations_q50']:.4g} iterations."
        )
    return out


study = Study(
    name=NAME,
    title="Iterations to eps: batch GD, SGD and minibatch SGD",
    description=__doc__.split("\n\n", 1)[1],
    conditions=conditions,
    compute=compute,
    analyze=analyze,
    claims=(2, 3, 4),
    replicates=100,
    quick_replicates=20,
)
