r"""Claim 7: adaptive methods normalise each coordinate's step; Adam's bias correction; AMSGrad.

The course says RMSprop and Adam divide each parameter's step by a running RMS of its
derivatives (Adam also keeps a running mean, bias-corrected so that early estimates are not
biased towards zero, with beta1 = 0.9, beta2 = 0.999, eps = 1e-8), that they help most when
curvature differs strongly by direction, and that RPROP uses only the sign of the derivative.
This study runs SGD, heavy-ball momentum, Adagrad, RMSprop, Adam, AMSGrad and RPROP
(torch.optim conventions, :mod:`convstudy.optim`) in four parts:

- ``tuning``: every method over a log-spaced grid of constant step sizes eta0 (half-decade
  steps, the grid placed per method around its natural scale) on three problems:

  * ``axis_scaled``: least squares with badly scaled features. X = Z diag(s) with Z (N x d)
    whitened (Z^T Z / N = I) and feature scales s_j = sqrt(lambda_j), lambda log-spaced over
    [1/kappa, 1] (d = 10, kappa = 1e3, N = 1000, target noise 0.1): the Hessian is
    diag(lambda), ill-conditioned *along the coordinate axes*.
  * ``rotated_scaled``: the same data rotated, X V^T with V a random orthogonal matrix and the
    same targets: Hessian V diag(lambda) V^T, the same spectrum but not axis-aligned. The two
    problems are the same problem in rotated coordinates (f_rot(V w) = f_axis(w)), so a
    rotation-equivariant method (SGD, momentum) behaves identically on both while a diagonal
    preconditioner (Adagrad, RMSprop, Adam, AMSGrad, RPROP) can only undo the axis-aligned
    scaling. Starts: w0 = w* + z, z ~ N(0, I) per replicate (isotropic, so also rotation-free).
  * ``teacher_student``: a nonconvex realizable tanh network (f* = 0), PyTorch-default random
    initialisation per replicate.

  Minibatches of b = 10 by random reshuffling, except RPROP, which runs **full batch**: it uses
  only the sign of the derivative and adapts its steps from sign agreements between successive
  gradients, which minibatch noise destroys (Riedmiller & Braun 1993 designed it for full-batch
  learning). An RPROP iteration therefore costs N samples, not b; the tables give both counts.

  For each problem and method, the *best* eta0 is the one whose mean suboptimality curve
  reaches eps = EPS_REL x E[f(w0) - f*] in the fewest iterations (ties: the lower final
  suboptimality), among grid values where no replicate diverged and the mean curve *ends* below
  eps: a constant step whose noise floor sits above eps only dips below it by chance, and its
  hitting time would say nothing about convergence. (Fallbacks when no value qualifies: drop the
  end condition, then the divergence condition.) The curves and iterations-to-eps are reported
  at that eta0, tuned and reported on the same runs. Hitting times are read on a log-spaced
  step grid, with a bootstrap CI over replicates and the share of bootstrap curves that never
  reach eps (censoring).
- ``bias``: Adam (default betas) with and without bias correction over its first 50 steps on
  the axis-scaled problem, the two runs of a replicate sharing its start and minibatches (common
  random numbers), at eta0 = 1e-3 (torch's default) and 1e-2. The step length per coordinate,
  ||w_k - w_{k-1}|| / (eta0 sqrt(d)), and the progress f(w0) - f(w_k) are compared; for a
  constant gradient the uncorrected step is (1 - beta1^k)/sqrt(1 - beta2^k) times the
  corrected one (Kingma & Ba 2015, Sec. 3).
- ``reddi``: the stochastic counterexample of Reddi, Kale & Kumar (2018, Sec. 3, Thm 3):
  f_t(x) = C x with probability p = (1 + delta)/(C + 1), else -x, on x in [-1, 1]
  (:class:`convstudy.problems.counterexamples.AdamCounterexample`, C = 100, delta = 1), so
  E f_t(x) = delta x is minimised at x* = -1. Adam and AMSGrad with beta2 = 0.9 and beta1 in
  {0, 0.9} (both below sqrt(beta2), the theorem's condition), SGD as a reference, all with
  alpha_t = alpha / sqrt(t), projected onto [-1, 1] after every step (:func:`simulate_projected`:
  the engine has no projection).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np
import pandas as pd

from convstudy.claims import Check
from convstudy.engine import record_steps, replicate_generators, simulate
from convstudy.figures import CI_NOTE, new_figure, plot_mean_curves
from convstudy.optim import Optimizer, get_optimizer
from convstudy.problems import LeastSquares, Problem, get_problem
from convstudy.problems.counterexamples import AdamCounterexample
from convstudy.sampling import batch_stream, get_sampler
from convstudy.schedules import Schedule, constant, inverse_sqrt
from convstudy.stats.curves import mean_curve, mean_curve_crossings
from convstudy.stats.estimate import bootstrap
from convstudy.stats.means import mean_ci
from convstudy.study import Analysis, Scale, Study, split_condition

__all__ = [
    "METHODS",
    "badly_scaled_least_squares",
    "eta_grid",
    "simulate_projected",
    "hitting_time_bootstrap",
    "bias_step_ratio",
    "bias_correction_table",
    "select_best_eta",
    "conditions",
    "compute",
    "analyze",
    "study",
]

NAME = "adaptive"
METHODS = ("sgd", "momentum", "adagrad", "rmsprop", "adam", "amsgrad", "rprop")
METHOD_LABELS = {
    "sgd": "SGD",
    "momentum": "momentum 0.9",
    "adagrad": "Adagrad",
    "rmsprop": "RMSprop",
    "adam": "Adam",
    "amsgrad": "AMSGrad",
    "rprop": "RPROP (full batch)",
}
# log10 of the first eta0 of each method's grid; grids go up in half-decades (RPROP: decades,
# its lr only sets the initial step size). Placed around each method's natural scale; the
# tables flag a best value at the edge of its grid (at_grid_edge).
GRID_START = {
    "sgd": -2.0,
    "momentum": -3.0,
    "adagrad": -2.5,
    "rmsprop": -3.5,
    "adam": -3.0,
    "amsgrad": -3.0,
}
GRID_SIZE = 6
RPROP_GRID = (-3.0, -2.0, -1.0)
QUICK_GRID_INDEX = (3, 4)  # quick runs keep two grid values per method

SCALED = {"dim": 10, "condition_number": 1e3, "noise": 0.1, "n_samples": 1000, "seed": 0}
PROBLEMS = ("axis_scaled", "rotated_scaled", "teacher_student")
PROBLEM_LABELS = {
    "axis_scaled": "badly scaled features (axis-aligned, kappa=1e3)",
    "rotated_scaled": "same spectrum, rotated",
    "teacher_student": "teacher-student tanh network (nonconvex)",
}
BATCH_SIZE = 10
EPS_REL = {"axis_scaled": 1e-3, "rotated_scaled": 1e-3, "teacher_student": 1e-2}
QUICK_EPS_REL = {"axis_scaled": 1e-2, "rotated_scaled": 1e-2, "teacher_student": 1e-1}
# log-spaced records per run (hitting times are read on this grid); the network's full-data
# loss and gradient at a record cost as much as many minibatch steps, so it gets fewer
N_RECORDS = {"axis_scaled": 100, "rotated_scaled": 100, "teacher_student": 50}
# iteration budgets (full, quick); RPROP's are shorter because each of its iterations is full
# batch (N samples) and it needs far fewer of them
N_STEPS = {
    "axis_scaled": (1500, 400),
    "rotated_scaled": (1500, 400),
    "teacher_student": (800, 400),
    "rprop": (300, 100),
}

BIAS_ETAS = (1e-3, 1e-2)
BIAS_STEPS = 50
BIAS_CHECK_ETA = 1e-3
BIAS_CHECK_K = 10
ADAM_BETAS = (0.9, 0.999)

REDDI = {"C": 100.0, "n_samples": 101, "n_large": 2}  # Theorem 3 with delta = 1
REDDI_BETA2 = 0.9
REDDI_RUNS = (("sgd", None), ("adam", 0.0), ("amsgrad", 0.0), ("adam", 0.9), ("amsgrad", 0.9))
REDDI_ALPHA = {"sgd": 0.03, "adam": 1.0, "amsgrad": 1.0}
REDDI_CHECK_BETA1 = 0.0
RPROP_CHECK_LOG10 = -6.0  # "converges": at least a 10^6-fold reduction of f - f*
N_BOOT = 1000
SOURCE_ADAPTIVE = (
    "course slides (Training Neural Networks: Optimization); Kingma & Ba (2015); "
    "Tieleman & Hinton (2012); Riedmiller & Braun (1993)"
)
SOURCE_REDDI = "Reddi, Kale & Kumar (2018), On the convergence of Adam and beyond, Sec. 3, Thm 3"


# ---- problems ---------------------------------------------------------------------------------
@functools.lru_cache(maxsize=8)
def badly_scaled_least_squares(
    orientation: str,
    *,
    dim: int = 10,
    condition_number: float = 1e3,
    noise: float = 0.1,
    n_samples: int = 1000,
    seed: int = 0,
) -> LeastSquares:
    """Least squares with feature scales spread over decades, axis-aligned or rotated.

    X_axis = sqrt(N) Q diag(sqrt(lambda)) with Q (N x d) orthonormal columns, so the Hessian is
    H = X^T X / N = diag(lambda), lambda log-spaced over [1/kappa, 1] (mu = 1/kappa, L = 1).
    y = X_axis w_true + noise * z. ``orientation="rotated"`` uses X_axis V^T (V random
    orthogonal) with the *same* y: H = V diag(lambda) V^T and f_rot(V w) = f_axis(w).
    """
    if orientation not in ("axis", "rotated"):
        raise ValueError(
            "The 'orientation' parameter of badly_scaled_least_squares must be 'axis' or "
            f"'rotated'. Got {orientation!r} instead."
        )
    rng = np.random.default_rng(seed)
    eig = np.logspace(-np.log10(condition_number), 0.0, dim)
    Q, _ = np.linalg.qr(rng.standard_normal((n_samples, dim)))
    V, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    X = np.sqrt(n_samples) * Q * np.sqrt(eig)
    y = X @ rng.standard_normal(dim) + noise * rng.standard_normal(n_samples)
    if orientation == "rotated":
        X = X @ V.T
    return LeastSquares(X, y, name=f"{orientation}_scaled")


def _problem(condition: dict) -> Problem:
    name = condition["problem"]
    if name in ("axis_scaled", "rotated_scaled"):
        params = split_condition(condition, "problem")
        return badly_scaled_least_squares(name.split("_")[0], **params)
    if name == AdamCounterexample.name:
        return AdamCounterexample(**split_condition(condition, "problem"))
    return get_problem(name, **split_condition(condition, "problem"))


def _isotropic_starts(problem: Problem, seed: int, replicates) -> np.ndarray:
    """w0 = w* + z, z ~ N(0, I_d), from each replicate's initialisation stream."""
    _, init = replicate_generators(seed, replicates)
    return problem.w_star + np.stack([rng.standard_normal(problem.dim) for rng in init])


# ---- grids and conditions ---------------------------------------------------------------------
def eta_grid(method: str, quick: bool = False) -> tuple[float, ...]:
    """The constant step sizes eta0 tried for ``method`` (6 half-decades; RPROP: 3 decades)."""
    if method not in METHODS:
        raise ValueError(
            f"The 'method' parameter of eta_grid must be one of {list(METHODS)}. "
            f"Got {method!r} instead."
        )
    if method == "rprop":
        exps = RPROP_GRID[1:2] if quick else RPROP_GRID
    else:
        exps = GRID_START[method] + 0.5 * np.arange(GRID_SIZE)
        exps = exps[list(QUICK_GRID_INDEX)] if quick else exps
    return tuple(float(f"{10.0**e:.3g}") for e in exps)


def conditions(scale: Scale) -> list[dict]:
    """Tuning grid x problems, Adam's bias-correction pairs, and the Reddi counterexample."""
    conds = []
    for problem in PROBLEMS:
        extra = (
            {f"problem.{k}": v for k, v in SCALED.items()} if problem != "teacher_student" else {}
        )
        for method in METHODS:
            n_steps = scale.pick(*N_STEPS["rprop" if method == "rprop" else problem])
            for eta0 in eta_grid(method, scale.quick):
                conds.append(
                    {"part": "tuning", "problem": problem, **extra, "method": method,
                     "eta0": eta0, "n_steps": n_steps}
                )  # fmt: skip
    for eta0 in BIAS_ETAS:
        conds.append(
            {"part": "bias", "problem": "axis_scaled",
             **{f"problem.{k}": v for k, v in SCALED.items()},
             "method": "adam", "eta0": eta0, "n_steps": BIAS_STEPS}
        )  # fmt: skip
    for method, beta1 in REDDI_RUNS:
        cond = {
            "part": "reddi",
            "problem": AdamCounterexample.name,
            **{f"problem.{k}": v for k, v in REDDI.items()},
            "method": method,
            "eta0": REDDI_ALPHA[method],
            "n_steps": scale.pick(5000, 1000),
        }
        if beta1 is not None:
            cond.update({"optimizer.beta1": beta1, "optimizer.beta2": REDDI_BETA2})
        conds.append(cond)
    return conds


# ---- compute ----------------------------------------------------------------------------------
def simulate_projected(
    problem: AdamCounterexample,
    optimizer: Optimizer,
    schedule: Schedule,
    *,
    n_steps: int,
    replicates,
    seed: int,
    n_records: int = 60,
) -> pd.DataFrame:
    """Projected online optimisation: one sample per step, drawn with replacement, then project.

    x_{k+1} = Proj_F(update(g_k, x_k)), g_k the gradient of the sample drawn at step k. The
    samples come from the engine's own stream definition (``replicate_generators`` and the
    ``replacement`` sampler), so replicate r's run does not depend on the other replicates.
    Columns: replicate, step, samples, loss, subopt, x, diverged (always False).
    """
    ids = np.asarray(list(replicates), dtype=np.int64)
    sample_rngs, _ = replicate_generators(seed, ids)
    blocks = batch_stream(get_sampler("replacement"), sample_rngs, problem.n_samples, 1)
    w = np.tile(problem.initial_point(), (ids.size, 1))
    state = optimizer.init(w)
    etas = schedule(np.arange(n_steps))
    record_at = set(record_steps(n_steps, "log", n_records).tolist())
    rows, block, pos = [], None, 0
    for k in range(n_steps + 1):
        if k in record_at:
            loss = problem.loss(w)
            rows.append(
                pd.DataFrame(
                    {
                        "replicate": ids,
                        "step": k,
                        "samples": k,
                        "loss": loss,
                        "subopt": loss - problem.f_star,
                        "x": w[:, 0],
                        "diverged": False,
                    }
                )
            )
        if k == n_steps:
            break
        if block is None or pos == block.shape[0]:
            block, pos = next(blocks), 0
        g = problem.batch_grad(w, block[pos])
        pos += 1
        w, state = optimizer.update(g, w, state, float(etas[k]))
        w = problem.project(w)
    frame = pd.concat(rows, ignore_index=True)
    return frame.sort_values(["replicate", "step"], kind="stable", ignore_index=True)


def _tuning_cell(condition: dict, seed: int, replicates) -> pd.DataFrame:
    problem = _problem(condition)
    full = condition["method"] == "rprop"
    if problem.name == "teacher_student":
        w0 = "random"  # PyTorch-default initialisation per replicate
    else:
        w0 = _isotropic_starts(problem, seed, replicates)
    return simulate(
        problem,
        get_optimizer(condition["method"]),
        constant(condition["eta0"]),
        n_steps=condition["n_steps"],
        sampler="full" if full else "reshuffle",
        batch_size=problem.n_samples if full else BATCH_SIZE,
        replicates=replicates,
        seed=seed,
        n_records=N_RECORDS[condition["problem"]],
        w0=w0,
    )


def _bias_cell(condition: dict, seed: int, replicates) -> pd.DataFrame:
    """Adam with and without bias correction, paired: same seed, starts and minibatches."""
    problem = _problem(condition)
    w0 = _isotropic_starts(problem, seed, replicates)
    eta0, n_steps, d = condition["eta0"], condition["n_steps"], problem.dim
    frames = []
    for correct in (True, False):
        frame = simulate(
            problem,
            get_optimizer("adam", betas=ADAM_BETAS, bias_correction=correct),
            constant(eta0),
            n_steps=n_steps,
            batch_size=BATCH_SIZE,
            replicates=replicates,
            seed=seed,
            record="all",
            w0=w0,
            record_iterates=True,
        )
        w_cols = [f"w_{j}" for j in range(d)]
        W = frame[w_cols].to_numpy().reshape(-1, n_steps + 1, d)  # sorted by replicate, step
        step = np.sqrt(np.mean(np.diff(W, axis=1) ** 2, axis=2)) / eta0
        frame = frame.drop(columns=w_cols)
        frame["step_rms"] = np.concatenate([np.full((W.shape[0], 1), np.nan), step], axis=1).ravel()
        frame["variant"] = "corrected" if correct else "uncorrected"
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _reddi_optimizer(condition: dict) -> Optimizer:
    params = split_condition(condition, "optimizer")
    if "beta1" in params:
        params = {"betas": (params.pop("beta1"), params.pop("beta2"))}
    return get_optimizer(condition["method"], **params)


def _reddi_cell(condition: dict, seed: int, replicates) -> pd.DataFrame:
    return simulate_projected(
        _problem(condition),
        _reddi_optimizer(condition),
        inverse_sqrt(condition["eta0"]),  # eta_k = alpha / sqrt(k + 1) = alpha / sqrt(t)
        n_steps=condition["n_steps"],
        replicates=replicates,
        seed=seed,
    )


PARTS = {"tuning": _tuning_cell, "bias": _bias_cell, "reddi": _reddi_cell}


def compute(condition: dict, seed: int, replicate_ids) -> pd.DataFrame:
    """One cell of the grid: dispatch on ``condition['part']``."""
    return PARTS[condition["part"]](condition, seed, replicate_ids)


# ---- measures ---------------------------------------------------------------------------------
def hitting_time_bootstrap(
    frame: pd.DataFrame, eps: float, *, n_boot: int = N_BOOT, seed: int = 0
) -> dict:
    """Steps for the mean suboptimality curve to reach ``eps``, with its bootstrap replicates.

    The mean is over non-diverged replicates; ``boots`` are the hitting steps of ``n_boot``
    bootstrap mean curves (replicates resampled), inf where a curve never reaches eps within
    the budget (censored). ``hit`` is inf when the mean curve itself never reaches it; with no
    non-diverged replicate everything is inf and ``n`` is 0.
    """
    point, boots, n, n_div = mean_curve_crossings(frame, eps, n_boot=n_boot, seed=seed)
    censored_as_inf = np.where(np.isnan(boots[:, 0]), np.inf, boots[:, 0])
    hit = float(point[0]) if n and np.isfinite(point[0]) else math.inf
    return {"hit": hit, "boots": censored_as_inf, "n": n, "n_diverged": n_div}


def _interval(boots: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap values that may be inf (censored) or NaN (undefined)."""
    vals = boots[~np.isnan(boots)]
    if vals.size == 0:
        return math.nan, math.nan
    # inverted_cdf: the ends are bootstrap values (recorded steps for hitting times)
    lo, hi = np.quantile(vals, [0.5 - level / 2, 0.5 + level / 2], method="inverted_cdf")
    return float(lo), float(hi)


def _final_values(frame: pd.DataFrame, y: str = "subopt") -> np.ndarray:
    """``y`` at the last recorded step of every non-diverged replicate."""
    last = frame[frame["step"] == frame["step"].max()]
    return last.loc[~last["diverged"].astype(bool), y].to_numpy(float)


def _cell_summary(frame: pd.DataFrame, eps: float, seed: int) -> dict:
    hits = hitting_time_bootstrap(frame, eps, seed=seed)
    final = _final_values(frame)
    final_ci = mean_ci(final if final.size > 1 else [])
    lo_h, hi_h = _interval(hits["boots"])
    return {
        "n": hits["n"],
        "n_diverged": hits["n_diverged"],
        "final_subopt": final_ci.value,
        "final_ci_low": final_ci.ci_low,
        "final_ci_high": final_ci.ci_high,
        "hit": hits["hit"],
        "hit_ci_low": lo_h,
        "hit_ci_high": hi_h,
        "p_censored": float(np.mean(np.isinf(hits["boots"]))),
        "_boots": hits["boots"],
    }


def select_best_eta(table: pd.DataFrame) -> pd.Series:
    """Boolean mask of the best eta0 per (problem, method) in a tuning table.

    The fewest iterations to eps (``hit``, censored = inf), ties broken by the lowest final
    suboptimality, among the grid values where no replicate diverged and the mean curve ends
    at or below eps (``final_subopt <= eps``); when no value qualifies, among those without
    divergence; when every value had a divergence, among all with a surviving replicate.
    """
    best = pd.Series(False, index=table.index)
    for _, group in table.groupby(["problem", "method"], sort=False):
        alive = group[group["n"] > 0]
        stable = alive[alive["n_diverged"] == 0]
        held = stable[stable["final_subopt"] <= stable["eps"]]
        pool = next((p for p in (held, stable, alive) if len(p)), None)
        if pool is None:
            continue
        key = pool.assign(_final=pool["final_subopt"].fillna(np.inf))
        best[key.sort_values(["hit", "_final"], kind="stable").index[0]] = True
    return best


def bias_step_ratio(k, beta1: float = 0.9, beta2: float = 0.999) -> np.ndarray:
    """Uncorrected / corrected Adam step for a constant gradient: (1 - b1^k) / sqrt(1 - b2^k).

    With m_k = (1 - b1^k) g and v_k = (1 - b2^k) g^2 (constant g, eps negligible) the uncorrected
    step is lr (1 - b1^k)/sqrt(1 - b2^k) and the corrected one lr (Kingma & Ba 2015, Sec. 3).
    """
    k = np.asarray(k, dtype=float)
    return (1.0 - beta1**k) / np.sqrt(1.0 - beta2**k)


# ---- analysis: tuning -------------------------------------------------------------------------
def _eps_by_problem(tuning: pd.DataFrame, scale: Scale) -> dict:
    """eps = EPS_REL x mean f(w0) - f* over every tuning run of the problem (step 0)."""
    rel = QUICK_EPS_REL if scale.quick else EPS_REL
    start = tuning[tuning["step"] == 0].groupby("problem")["subopt"].mean()
    return {p: rel[p] * float(start[p]) for p in start.index}


def _tuning_table(tuning: pd.DataFrame, eps: dict) -> tuple[pd.DataFrame, dict]:
    rows, boots = [], {}
    for i, ((problem, method, eta0), cell) in enumerate(
        tuning.groupby(["problem", "method", "eta0"], sort=False)
    ):
        summary = _cell_summary(cell, eps[problem], seed=i)
        boots[(problem, method, eta0)] = summary.pop("_boots")
        n_steps = int(cell["step"].max())
        rows.append(
            {"problem": problem, "method": method, "eta0": eta0, "eps": eps[problem],
             "n_steps": n_steps, "samples_per_step": int(cell["samples"].max()) // max(n_steps, 1),
             **summary}
        )  # fmt: skip
    table = pd.DataFrame(rows)
    table["best"] = select_best_eta(table)
    ends = table.groupby(["problem", "method"])["eta0"].agg(["min", "max"])
    edge = table.join(ends, on=["problem", "method"])
    table["at_grid_edge"] = (edge["eta0"] == edge["min"]) | (edge["eta0"] == edge["max"])
    return table, boots


def _ratio_to_sgd(table: pd.DataFrame, boots: dict) -> pd.DataFrame:
    """Per problem and method at the best eta0: T_method / T_SGD with a bootstrap CI."""
    best = table[table["best"]].copy()
    out = []
    for problem, group in best.groupby("problem", sort=False):
        sgd = group[group["method"] == "sgd"].iloc[0]
        b_sgd = boots[(problem, "sgd", sgd["eta0"])]
        for _, row in group.iterrows():
            b = boots[(problem, row["method"], row["eta0"])]
            with np.errstate(invalid="ignore", divide="ignore"):
                ratio = b / b_sgd  # independent runs: independent resamples
                point = row["hit"] / sgd["hit"]
            lo, hi = _interval(ratio)
            out.append(
                {**row.to_dict(), "ratio_to_sgd": point, "ratio_ci_low": lo, "ratio_ci_high": hi,
                 "hit_samples": row["hit"] * row["samples_per_step"]}
            )  # fmt: skip
    return pd.DataFrame(out)


def _best_curves(tuning: pd.DataFrame, best: pd.DataFrame) -> pd.DataFrame:
    parts = []
    for _, row in best.iterrows():
        cell = tuning[
            (tuning["problem"] == row["problem"])
            & (tuning["method"] == row["method"])
            & (tuning["eta0"] == row["eta0"])
        ]
        if row["n"] == 0:
            continue
        label = f"{METHOD_LABELS[row['method']]}, eta0={row['eta0']:g}"
        parts.append(mean_curve(cell).assign(problem=row["problem"], label=label))
    return pd.concat(parts, ignore_index=True)


# ---- analysis: bias correction ----------------------------------------------------------------
def bias_correction_table(bias: pd.DataFrame) -> pd.DataFrame:
    """Adam without / with bias correction, per eta0 and step k, from paired runs.

    ``bias`` has one row per replicate, step and ``variant`` ("corrected", "uncorrected") with
    ``loss`` and ``step_rms`` = ||w_k - w_{k-1}|| / (eta0 sqrt(d)). For each k:
    step_ratio = mean_r step_rms_u / mean_r step_rms_c and progress_ratio =
    mean_r [f(w_0) - f(w_k)]_u / mean_r [f(w_0) - f(w_k)]_c, with percentile CIs from a
    bootstrap that resamples replicates jointly for both variants (they share start and
    minibatches), and step_ratio_theory = (1 - b1^k)/sqrt(1 - b2^k) (:func:`bias_step_ratio`).
    """
    rows = []
    values = ["loss", "step_rms"]
    for i, (eta0, cell) in enumerate(bias.groupby("eta0", sort=True)):
        by_variant = {
            v: part.pivot(index="replicate", columns="step", values=values)
            for v, part in cell.groupby("variant")
        }
        corr, unc = by_variant["corrected"], by_variant["uncorrected"]
        steps = corr["loss"].columns.to_numpy()[1:]
        s_c, s_u = corr["step_rms"].to_numpy()[:, 1:], unc["step_rms"].to_numpy()[:, 1:]
        loss_c, loss_u = corr["loss"].to_numpy(), unc["loss"].to_numpy()
        p_c = loss_c[:, :1] - loss_c[:, 1:]
        p_u = loss_u[:, :1] - loss_u[:, 1:]
        K = steps.size
        paired = np.hstack([s_u, s_c, p_u, p_c])  # resample replicates jointly (paired)

        def ratios(means, K=K):
            return np.hstack([means[:, :K] / means[:, K : 2 * K], means[:, 2 * K : 3 * K]
                              / means[:, 3 * K :]])  # fmt: skip

        point = ratios(paired.mean(axis=0)[None])[0]
        boots = bootstrap(paired, ratios, n_boot=N_BOOT, seed=100 + i)
        q = np.quantile(boots, [0.025, 0.975], axis=0)
        rows.append(
            pd.DataFrame(
                {
                    "eta0": eta0,
                    "k": steps,
                    "step_corrected": s_c.mean(axis=0),
                    "step_uncorrected": s_u.mean(axis=0),
                    "step_ratio": point[:K],
                    "step_ratio_ci_low": q[0, :K],
                    "step_ratio_ci_high": q[1, :K],
                    "step_ratio_theory": bias_step_ratio(steps),
                    "progress_ratio": point[K:],
                    "progress_ratio_ci_low": q[0, K:],
                    "progress_ratio_ci_high": q[1, K:],
                    "n": s_c.shape[0],
                }
            )  # fmt: skip
        )
    return pd.concat(rows, ignore_index=True)


def _bias_step_curves(bias: pd.DataFrame) -> pd.DataFrame:
    parts = []
    for (eta0, variant), cell in bias.groupby(["eta0", "variant"], sort=True):
        cell = cell[cell["step"] > 0].assign(diverged=False)
        curve = mean_curve(cell, y="step_rms")
        parts.append(curve.assign(label=f"{variant}, eta0={eta0:g}"))
    return pd.concat(parts, ignore_index=True)


# ---- analysis: Reddi et al. -------------------------------------------------------------------
def _reddi_label(method: str, beta1) -> str:
    if method == "sgd":
        return f"SGD, alpha={REDDI_ALPHA['sgd']:g}"
    return f"{METHOD_LABELS[method]}, beta1={beta1:g}, beta2={REDDI_BETA2:g}"


def _reddi_table(reddi: pd.DataFrame) -> pd.DataFrame:
    rows = []
    beta1 = reddi.get("optimizer.beta1", pd.Series(np.nan, index=reddi.index))
    for (method, b1), cell in reddi.assign(_b1=beta1.fillna(-1.0)).groupby(
        ["method", "_b1"], sort=False
    ):
        x = _final_values(cell, "x")
        final_x = mean_ci(x)
        rows.append(
            {"method": method, "beta1": None if b1 < 0 else b1,
             "label": _reddi_label(method, None if b1 < 0 else b1),
             "alpha": float(cell["eta0"].iloc[0]), "n_steps": int(cell["step"].max()),
             "final_x": final_x.value, "ci_low": final_x.ci_low, "ci_high": final_x.ci_high,
             "share_x_positive": float(np.mean(x > 0)), "n": final_x.n}
        )  # fmt: skip
    return pd.DataFrame(rows)


def _reddi_curves(reddi: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    beta1 = reddi.get("optimizer.beta1", pd.Series(np.nan, index=reddi.index)).fillna(-1.0)
    parts = []
    for _, row in table.iterrows():
        b1 = -1.0 if row["beta1"] is None or pd.isna(row["beta1"]) else row["beta1"]
        cell = reddi[(reddi["method"] == row["method"]) & (beta1 == b1)]
        parts.append(mean_curve(cell, y="x").assign(label=row["label"]))
    return pd.concat(parts, ignore_index=True)


# ---- figures ----------------------------------------------------------------------------------
def _curves_figure(curves: pd.DataFrame, eps: dict):
    fig, axes = new_figure(3, 1, width=4.8, height=5.0)
    for ax, problem in zip(axes, PROBLEMS):
        part = curves[curves["problem"] == problem]
        if not len(part):
            continue
        plot_mean_curves(
            ax, part, x="step", hue="label", palette="tab10",
            xlabel="iteration k", ylabel="f(w_k) - f*", title=PROBLEM_LABELS[problem],
            legend_title="method at its best eta0",
        )  # fmt: skip
        ax.axhline(eps[problem], color="0.3", ls=":", lw=1, label=f"eps = {eps[problem]:.2g}")
        ax.legend(
            fontsize="x-small", title=f"method at its best eta0 ({CI_NOTE})",
            title_fontsize="x-small", loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=2,
        )  # fmt: skip
    return fig


def _sensitivity_figure(table: pd.DataFrame):
    import seaborn as sns

    fig, axes = new_figure(3, 1, width=4.8, height=4.4)
    colors = dict(zip(METHODS, sns.color_palette("tab10", len(METHODS))))
    for ax, problem in zip(axes, PROBLEMS):
        part = table[table["problem"] == problem]
        top = np.nanmax(part["final_ci_high"].to_numpy(float)) if len(part) else 1.0
        for method in METHODS:
            m = part[part["method"] == method]
            ok = m[m["n"] > 0]
            mean = ok["final_subopt"]
            low = ok["final_ci_low"].where(ok["final_ci_low"] > 0, mean / 10)  # log axis
            yerr = np.vstack([mean - low, ok["final_ci_high"] - mean])
            ax.errorbar(
                ok["eta0"], ok["final_subopt"], yerr=np.clip(yerr, 0, None), fmt="o-", ms=3,
                capsize=2, color=colors[method], label=METHOD_LABELS[method], lw=1.2,
            )  # fmt: skip
            best = m[m["best"]]
            ax.scatter(best["eta0"], best["final_subopt"], marker="*", s=160,
                       color=colors[method], edgecolor="black", zorder=5)  # fmt: skip
            dead = m[m["n"] == 0]
            ax.scatter(dead["eta0"], np.full(len(dead), top * 3), marker="x", s=40,
                       color=colors[method])  # fmt: skip
        if len(part):
            ax.axhline(part["eps"].iloc[0], color="0.3", ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("constant step size eta0")
        ax.set_ylabel("final f(w_K) - f*  (dotted: eps)")
        ax.set_title(PROBLEM_LABELS[problem])
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(
        handles, labels, loc="outside lower center", ncols=len(METHODS), fontsize="x-small",
        title_fontsize="x-small",
        title="mean over replicates, bars = 95% t-CI (lower end cut at mean/10 on the log axis); "
        "star = best eta0 (fewest iterations to eps, ending below eps); x = every replicate "
        "diverged",
    )  # fmt: skip
    return fig


def _hits_figure(best: pd.DataFrame):
    import seaborn as sns

    fig, ax = new_figure(1, 1, width=7.5, height=4.6)
    colors = dict(zip(PROBLEMS, sns.color_palette("deep", len(PROBLEMS))))
    y0 = np.arange(len(METHODS))
    for j, problem in enumerate(PROBLEMS):
        part = best[best["problem"] == problem].set_index("method").reindex(list(METHODS))
        if part["n"].isna().all():
            continue
        y = y0 + (j - 1) * 0.22
        budget = float(part["n_steps"].max())
        hit, lo, hi = (part[c].to_numpy(float) for c in ("hit", "hit_ci_low", "hit_ci_high"))
        finite = np.isfinite(hit)
        hi = np.minimum(hi, budget)  # an upper end at inf (censored) is drawn to the budget
        ax.errorbar(
            hit[finite], y[finite],
            xerr=np.vstack([hit[finite] - lo[finite], hi[finite] - hit[finite]]),
            fmt="o", color=colors[problem], capsize=3, ms=5, label=PROBLEM_LABELS[problem],
        )  # fmt: skip
        ax.scatter(np.full((~finite).sum(), budget), y[~finite], marker=">", color=colors[problem])
    ax.set_yticks(y0, [METHOD_LABELS[m] for m in METHODS])
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_xlabel("iterations for the mean curve to reach eps, at the best eta0")
    ax.legend(
        fontsize="small", title_fontsize="small", loc="upper center",
        bbox_to_anchor=(0.5, -0.14), ncols=2,
        title="problem (bars = 95% bootstrap CI over replicates; > = not reached in the budget)",
    )  # fmt: skip
    return fig


def _ratio_curves(table: pd.DataFrame, column: str) -> pd.DataFrame:
    """A ratio column of the bias table as a mean-curve frame (x = k, hue = label)."""
    return table.rename(
        columns={column: "mean", f"{column}_ci_low": "ci_low", f"{column}_ci_high": "ci_high"}
    ).assign(label=lambda t: "eta0=" + t["eta0"].map("{:g}".format))


def _bias_figure(step_curves: pd.DataFrame, table: pd.DataFrame):
    fig, axes = new_figure(3, 1, width=4.6, height=3.8)
    plot_mean_curves(
        axes[0], step_curves, x="step", hue="label", palette="Paired", logx=False, logy=True,
        xlabel="step k", ylabel="RMS step per coordinate / eta0",
        title="Adam's first steps", legend_title="bias correction",
    )  # fmt: skip
    axes[0].axhline(1.0, color="black", ls=":", lw=1)
    axes[0].legend(fontsize="x-small", title=f"variant ({CI_NOTE})", title_fontsize="x-small")
    plot_mean_curves(
        axes[1], _ratio_curves(table, "step_ratio"), x="k", hue="label", palette="Dark2",
        logx=False, logy=False, xlabel="step k", ylabel="step ratio, uncorrected / corrected",
        title="step size: without / with correction", legend_title="step size",
    )  # fmt: skip
    k = np.arange(1, BIAS_STEPS + 1)
    axes[1].plot(k, bias_step_ratio(k, *ADAM_BETAS), color="black", ls="--", lw=1.2,
                 label="(1-b1^k)/sqrt(1-b2^k), constant g")  # fmt: skip
    plot_mean_curves(
        axes[2], _ratio_curves(table, "progress_ratio"), x="k", hue="label", palette="Dark2",
        logx=False, logy=False, xlabel="step k", ylabel="progress ratio, uncorrected / corrected",
        title="f(w_0) - f(w_k): without / with correction", legend_title="step size",
    )  # fmt: skip
    for ax in axes[1:]:
        ax.axhline(1.0, color="black", ls=":", lw=1)
        ax.set_ylim(bottom=0.0)
        ax.legend(fontsize="x-small", title_fontsize="x-small",
                  title="ratio of means, band = 95% paired bootstrap CI")  # fmt: skip
    return fig


def _reddi_figure(curves: pd.DataFrame):
    fig, ax = new_figure(1, 1, width=9.0, height=4.0)
    plot_mean_curves(
        ax, curves, x="step", hue="label", palette="tab10", logx=True, logy=False,
        xlabel="step t", ylabel="x_t (projected onto [-1, 1])",
        title="Reddi et al. (2018): f_t = C x w.p. p, else -x; optimum x* = -1",
        legend_title="optimizer",
    )  # fmt: skip
    ax.axhline(-1.0, color="green", ls="--", lw=1, label="optimum x* = -1")
    ax.axhline(1.0, color="red", ls=":", lw=1, label="worst point x = +1")
    ax.set_ylim(-1.1, 1.1)
    ax.legend(fontsize="x-small", title=f"optimizer ({CI_NOTE})", title_fontsize="x-small",
              loc="center left", bbox_to_anchor=(1.01, 0.5))  # fmt: skip
    return fig


# ---- checks and findings ----------------------------------------------------------------------
def _check_ratio(ratios: pd.DataFrame, problem: str, method: str, n_reps: int) -> Check:
    row = ratios[(ratios["problem"] == problem) & (ratios["method"] == method)].iloc[0]
    sgd = ratios[(ratios["problem"] == problem) & (ratios["method"] == "sgd")].iloc[0]
    return Check(
        id=f"7-{method}-vs-sgd-{problem}",
        claim=7,
        statement=(
            f"On least squares with badly scaled, axis-aligned features {METHOD_LABELS[method]} "
            "reaches eps in fewer iterations than SGD, both at their best constant eta0."
        ),
        source=SOURCE_ADAPTIVE,
        quantity=f"T_eps({method}) / T_eps(SGD), eps = {row['eps']:.3g}",
        expected="< 1",
        expected_low=0.0,
        expected_high=1.0,
        estimate=float(row["ratio_to_sgd"]),
        ci_low=float(row["ratio_ci_low"]),
        ci_high=float(row["ratio_ci_high"]),
        n_replicates=n_reps,
        figure="figures/curves_best_eta.png",
        table="tables/best_eta.md",
        notes=(
            f"{method} eta0={row['eta0']:g}: {row['hit']:g} iterations; SGD eta0={sgd['eta0']:g}:"
            f" {sgd['hit']:g}; b={BATCH_SIZE}; bootstrap CI, censored share "
            f"{row['p_censored']:.2f} / {sgd['p_censored']:.2f}."
        ),
    )


def _check_contrast(ratios: pd.DataFrame, boots: dict, n_reps: int) -> Check:
    """(T_adam/T_sgd) rotated / (T_adam/T_sgd) axis, bootstrap CI from the four cells."""
    best = ratios.set_index(["problem", "method"])
    b = {
        (p, m): boots[(p, m, best.loc[(p, m), "eta0"])]
        for p in ("axis_scaled", "rotated_scaled")
        for m in ("adam", "sgd")
    }
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = (b[("rotated_scaled", "adam")] / b[("rotated_scaled", "sgd")]) / (
            b[("axis_scaled", "adam")] / b[("axis_scaled", "sgd")]
        )
        point = (
            best.loc[("rotated_scaled", "adam"), "ratio_to_sgd"]
            / best.loc[("axis_scaled", "adam"), "ratio_to_sgd"]
        )
    lo, hi = _interval(boot)
    return Check(
        id="7-adam-needs-axis-aligned-scaling",
        claim=7,
        statement=(
            "Adam's per-coordinate normalisation helps when the bad scaling is along the "
            "coordinate axes: rotating the same problem removes much of its advantage over SGD."
        ),
        source=SOURCE_ADAPTIVE,
        quantity="[T_eps(Adam)/T_eps(SGD)] rotated / [T_eps(Adam)/T_eps(SGD)] axis-aligned",
        expected="> 1",
        expected_low=1.0,
        expected_high=math.inf,
        estimate=float(point),
        ci_low=lo,
        ci_high=hi,
        n_replicates=n_reps,
        figure="figures/iterations_to_eps.png",
        table="tables/best_eta.md",
        notes="Same spectrum and data; SGD is rotation-equivariant, a diagonal preconditioner not.",
    )


def _check_rprop(tuning: pd.DataFrame, best: pd.DataFrame) -> Check:
    row = best[(best["problem"] == "axis_scaled") & (best["method"] == "rprop")].iloc[0]
    cell = tuning[
        (tuning["problem"] == "axis_scaled")
        & (tuning["method"] == "rprop")
        & (tuning["eta0"] == row["eta0"])
    ]
    start = cell[cell["step"] == 0].set_index("replicate")["subopt"]
    end = cell[cell["step"] == cell["step"].max()].set_index("replicate")["subopt"]
    tiny = np.finfo(float).eps * max(abs(badly_scaled_least_squares("axis", **SCALED).f_star), 1.0)
    rel = np.log10(np.maximum(end.reindex(start.index).to_numpy(float), tiny) / start.to_numpy())
    rel = rel[np.isfinite(rel)]
    return Check.from_estimate(
        mean_ci(rel),
        id="7-rprop-converges-full-batch",
        claim=7,
        statement=(
            "RPROP, which uses only the sign of each derivative, converges on the badly scaled "
            "problem when run full batch."
        ),
        source=SOURCE_ADAPTIVE,
        quantity=f"mean log10[(f(w_K) - f*) / (f(w_0) - f*)], K = {int(cell['step'].max())}",
        expected=f"<= {RPROP_CHECK_LOG10:g}",
        expected_low=-math.inf,
        expected_high=RPROP_CHECK_LOG10,
        figure="figures/curves_best_eta.png",
        table="tables/best_eta.md",
        notes=(
            f"eta0 (initial step) = {row['eta0']:g}; values floored at machine precision of f*; "
            "randomness only from the starting points."
        ),
    )


def _checks_bias(table: pd.DataFrame) -> list[Check]:
    row = table[(table["eta0"] == BIAS_CHECK_ETA) & (table["k"] == BIAS_CHECK_K)].iloc[0]
    theory = float(bias_step_ratio(BIAS_CHECK_K, *ADAM_BETAS))
    common = {
        "claim": 7,
        "source": "Kingma & Ba (2015), Sec. 3 (initialisation bias correction)",
        "n_replicates": int(row["n"]),
        "figure": "figures/bias_correction.png",
        "table": "tables/bias_ratios.md",
    }
    return [
        Check(
            id="7-adam-bias-correction-step",
            statement=(
                "Bias correction sets the size of Adam's early steps: without it, with the "
                "default betas, the early steps are not smaller but larger, by about "
                "(1 - beta1^k) / sqrt(1 - beta2^k)."
            ),
            quantity=f"mean step uncorrected / corrected at k = {BIAS_CHECK_K}, "
            f"eta0 = {BIAS_CHECK_ETA:g}",
            expected=f"> 1 (constant-gradient theory {theory:.2f})",
            expected_low=1.0,
            expected_high=math.inf,
            estimate=float(row["step_ratio"]),
            ci_low=float(row["step_ratio_ci_low"]),
            ci_high=float(row["step_ratio_ci_high"]),
            notes="Paired runs (same start and minibatches); paired bootstrap CI.",
            **common,
        ),
        Check(
            id="7-adam-bias-correction-progress",
            statement=(
                "Without bias correction Adam's progress over the first steps differs from "
                "the corrected run's: with the default betas it is larger."
            ),
            quantity=f"[f(w0) - f(w_k)] uncorrected / corrected at k = {BIAS_CHECK_K}, "
            f"eta0 = {BIAS_CHECK_ETA:g}",
            expected="> 1",
            expected_low=1.0,
            expected_high=math.inf,
            estimate=float(row["progress_ratio"]),
            ci_low=float(row["progress_ratio_ci_low"]),
            ci_high=float(row["progress_ratio_ci_high"]),
            notes="Ratio of mean progress; paired bootstrap CI.",
            **common,
        ),
    ]


def _checks_reddi(table: pd.DataFrame) -> list[Check]:
    checks = []
    for method, low, high, text in (
        ("adam", 0.0, 1.0, "ends on the wrong side, x > 0 (the worst point is x = +1)"),
        ("amsgrad", -1.0, 0.0, "approaches the optimum x* = -1 (x < 0)"),
    ):
        row = table[(table["method"] == method) & (table["beta1"] == REDDI_CHECK_BETA1)].iloc[0]
        checks.append(
            Check(
                id=f"7-reddi-{method}",
                claim=7,
                statement=(
                    f"On the stochastic counterexample of Reddi et al. {METHOD_LABELS[method]} "
                    f"with beta1 = {REDDI_CHECK_BETA1:g}, beta2 = {REDDI_BETA2:g} {text}."
                ),
                source=SOURCE_REDDI,
                quantity=f"mean x after {row['n_steps']} steps",
                expected=f"in [{low:g}, {high:g}]",
                expected_low=low,
                expected_high=high,
                estimate=row["final_x"],
                ci_low=row["ci_low"],
                ci_high=row["ci_high"],
                n_replicates=int(row["n"]),
                figure="figures/reddi_counterexample.png",
                table="tables/reddi_final_x.md",
                notes=(
                    f"C = {REDDI['C']:g}, p = {REDDI['n_large']}/{REDDI['n_samples']}, "
                    f"alpha_t = {row['alpha']:g}/sqrt(t); share of replicates ending at x > 0: "
                    f"{row['share_x_positive']:.2f}."
                ),
            )
        )
    return checks


def _fmt_hit(row) -> str:
    """'T [lo, hi] (eta0 e)' for a best-eta row, or 'not reached in K'; flags a grid edge."""
    eta = f"eta0 {row['eta0']:g}" + (", edge of its grid" if row["at_grid_edge"] else "")
    if not np.isfinite(row["hit"]):
        return f"not reached in {row['n_steps']} ({eta})"
    return f"{row['hit']:g} [{row['hit_ci_low']:g}, {row['hit_ci_high']:g}] ({eta})"


def _fmt_ratio(row) -> str:
    return f"{row['ratio_to_sgd']:.2f} [{row['ratio_ci_low']:.2f}, {row['ratio_ci_high']:.2f}]"


def _tuning_findings(ratios: pd.DataFrame, checks: dict) -> list[str]:
    out = []
    for problem in PROBLEMS:
        part = ratios[ratios["problem"] == problem].set_index("method")
        if not len(part):
            continue
        hits = "; ".join(f"{METHOD_LABELS[m]} {_fmt_hit(part.loc[m])}" for m in part.index)
        text = (
            f"{PROBLEM_LABELS[problem]}: iterations for the mean curve to reach eps = "
            f"{part['eps'].iloc[0]:.2g} at each method's best eta0 (95% bootstrap CI): {hits}."
        )
        if {"adam", "rmsprop", "sgd"} <= set(part.index):
            text += (
                f" Ratio to SGD: Adam {_fmt_ratio(part.loc['adam'])}, RMSprop "
                f"{_fmt_ratio(part.loc['rmsprop'])}."
            )
        if "rprop" in part.index and np.isfinite(part.loc["rprop", "hit"]):
            r = part.loc["rprop"]
            text += (
                f" RPROP's {r['hit']:g} full-batch iterations are {r['hit_samples']:g} samples, "
                f"against {part.loc['sgd', 'hit_samples']:g} for SGD (b = {BATCH_SIZE})."
            )
        out.append(text)
    c = checks.get("7-adam-needs-axis-aligned-scaling")
    if c is not None:
        out.append(
            "Same spectrum, only the orientation differs: rotating the problem multiplies Adam's "
            f"iterations-to-eps relative to SGD by {c.estimate:.1f} [{c.ci_low:.1f}, "
            f"{c.ci_high:.1f}]. SGD and momentum are rotation-equivariant; the per-coordinate "
            "normalisation of Adagrad, RMSprop, Adam and RPROP can only undo axis-aligned scaling."
        )
    c = checks.get("7-rprop-converges-full-batch")
    rprop = ratios[(ratios["problem"] == "axis_scaled") & (ratios["method"] == "rprop")]
    if c is not None and len(rprop):
        out.append(
            "RPROP (full batch) on the axis-aligned problem: log10 of the remaining fraction of "
            f"f(w0) - f* after {int(rprop['n_steps'].iloc[0])} iterations is {c.estimate:.1f} "
            f"[{c.ci_low:.1f}, {c.ci_high:.1f}]."
        )
    return out


def _bias_finding(bias_table: pd.DataFrame) -> list[str]:
    row = bias_table[(bias_table["eta0"] == BIAS_CHECK_ETA)].set_index("k")
    if BIAS_CHECK_K not in row.index:
        return []
    r, r1 = row.loc[BIAS_CHECK_K], row.loc[row.index.min()]
    return [
        f"Adam without bias correction (betas {ADAM_BETAS}) takes *larger* early steps, not "
        f"smaller: at eta0 = {BIAS_CHECK_ETA:g} the step ratio uncorrected/corrected is "
        f"{r1['step_ratio']:.2f} at k = 1 and {r['step_ratio']:.2f} "
        f"[{r['step_ratio_ci_low']:.2f}, {r['step_ratio_ci_high']:.2f}] at k = {BIAS_CHECK_K} "
        f"(constant-gradient theory (1-b1^k)/sqrt(1-b2^k): {r1['step_ratio_theory']:.2f} and "
        f"{r['step_ratio_theory']:.2f}), and the progress f(w0) - f(w_k) after {BIAS_CHECK_K} "
        f"steps is {r['progress_ratio']:.2f} [{r['progress_ratio_ci_low']:.2f}, "
        f"{r['progress_ratio_ci_high']:.2f}] times the corrected run's. Both moment estimates "
        "start biased towards 0; without correction the step is m/sqrt(v), and v's bias "
        "(factor 1-b2^k under a square root) outweighs m's (1-b1^k) whenever "
        "1-b1 > sqrt(1-b2), as with the default betas."
    ]


def _reddi_finding(reddi_table: pd.DataFrame) -> list[str]:
    lines = [
        f"{r['label']}: x = {r['final_x']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}] "
        f"({r['share_x_positive']:.0%} of replicates at x > 0)"
        for _, r in reddi_table.iterrows()
    ]
    return [
        f"Reddi et al. counterexample (C = {REDDI['C']:g}, p = {REDDI['n_large']}/"
        f"{REDDI['n_samples']}, optimum x* = -1, alpha_t = alpha/sqrt(t)), mean final iterate "
        f"after {int(reddi_table['n_steps'].iloc[0])} steps (95% t-CI): " + "; ".join(lines) + "."
    ]


# ---- analysis ---------------------------------------------------------------------------------
def analyze(runs: pd.DataFrame, scale: Scale) -> Analysis:
    """Tables, figures, checks and findings of the four parts."""
    tuning = runs[runs["part"] == "tuning"]
    bias = runs[runs["part"] == "bias"]
    reddi = runs[runs["part"] == "reddi"]
    n_reps = int(tuning["replicate"].nunique())

    eps = _eps_by_problem(tuning, scale)
    table, boots = _tuning_table(tuning, eps)
    ratios = _ratio_to_sgd(table, boots)
    curves = _best_curves(tuning, ratios)
    bias_table = bias_correction_table(bias)
    reddi_table = _reddi_table(reddi)

    checks = [
        _check_ratio(ratios, "axis_scaled", "adam", n_reps),
        _check_ratio(ratios, "axis_scaled", "rmsprop", n_reps),
        _check_contrast(ratios, boots, n_reps),
        _check_rprop(tuning, ratios),
        *_checks_bias(bias_table),
        *_checks_reddi(reddi_table),
    ]
    checks = [dataclasses.replace(c, study=NAME) for c in checks]

    shown = [
        "problem", "method", "eta0", "eps", "n_steps", "samples_per_step", "n", "n_diverged",
        "final_subopt", "final_ci_low", "final_ci_high", "hit", "hit_ci_low", "hit_ci_high",
        "p_censored",
    ]  # fmt: skip
    best_cols = shown + [
        "at_grid_edge", "hit_samples", "ratio_to_sgd", "ratio_ci_low", "ratio_ci_high",
    ]  # fmt: skip
    return Analysis(
        tables={
            "eta_grid": table[shown + ["best"]],
            "best_eta": ratios[best_cols],
            "bias_ratios": bias_table,
            "reddi_final_x": reddi_table,
        },
        figures={
            "curves_best_eta": _curves_figure(curves, eps),
            "eta_sensitivity": _sensitivity_figure(table),
            "iterations_to_eps": _hits_figure(ratios),
            "bias_correction": _bias_figure(_bias_step_curves(bias), bias_table),
            "reddi_counterexample": _reddi_figure(_reddi_curves(reddi, reddi_table)),
        },
        captions={
            "curves_best_eta": "Mean suboptimality against iterations for every method at its "
            "best constant eta0 (95% CI bands); dotted line: eps.",
            "eta_sensitivity": "Final suboptimality against eta0 per method and problem, after "
            "each method's iteration budget (tables/eta_grid.md, column n_steps; RPROP's is "
            "shorter and full batch); star: the best eta0; x: every replicate diverged.",
            "iterations_to_eps": "Iterations for the mean curve to reach eps at the best eta0, "
            "95% bootstrap CI; RPROP iterations are full-batch (N samples each).",
            "bias_correction": "Adam's first 50 steps with and without bias correction (paired "
            "runs): step size per coordinate over eta0, and the ratio of progress.",
            "reddi_counterexample": "Mean iterate on Reddi et al.'s counterexample: Adam drifts to "
            "the worst point x = +1, AMSGrad and SGD towards the optimum x = -1.",
            "eta_grid": "Every (problem, method, eta0) cell: final suboptimality (mean, 95% "
            "t-CI), iterations to eps (bootstrap CI, censored share), divergences; best = the "
            "chosen eta0.",
            "best_eta": "Best eta0 per problem and method, iterations to eps (and samples), and "
            "the ratio to SGD with a bootstrap CI.",
            "bias_ratios": "Adam without / with bias correction per step k: step-size ratio "
            "(with the constant-gradient theory) and progress ratio, paired bootstrap CIs.",
            "reddi_final_x": "Final iterate on Reddi et al.'s counterexample per optimizer "
            "(mean, 95% t-CI, share of replicates at x > 0).",
        },
        findings=[
            *_tuning_findings(ratios, {c.id: c for c in checks}),
            *_bias_finding(bias_table),
            *_reddi_finding(reddi_table),
        ],
        checks=checks,
    )


study = Study(
    name=NAME,
    title="Adaptive methods: per-coordinate step sizes, bias correction and AMSGrad (claim 7)",
    description=(
        "SGD, momentum, Adagrad, RMSprop, Adam, AMSGrad and full-batch RPROP tuned over a grid "
        "of constant step sizes on badly scaled least squares (axis-aligned and rotated, same "
        "spectrum) and a nonconvex teacher-student network; Adam with and without bias "
        "correction over its first steps; and the counterexample of Reddi, Kale & Kumar (2018) "
        "on which Adam converges to the wrong point and AMSGrad does not."
    ),
    conditions=conditions,
    compute=compute,
    analyze=analyze,
    claims=(7,),
    replicates=50,
    quick_replicates=10,
)
