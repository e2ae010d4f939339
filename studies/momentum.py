"""Claim 6: momentum and Nesterov need ~sqrt(kappa) iterations where gradient descent needs kappa.

Three parts, each a set of conditions (``part`` key):

- ``kappa``: full-batch gradient descent, heavy-ball momentum and Nesterov's method, each with
  its optimal constant parameters for a mu-strongly convex, L-smooth quadratic, on quadratics
  with condition numbers kappa = L/mu from 10 to 10^4 (10 parameters, Hessian eigenvalues
  log-spaced from mu = 1 to L = kappa). Full batch is deterministic, so replicates differ by
  their random starting point (``w0="random"``: w* + (1, ..., 1) sqrt(2/d) + N(0, I)). The
  measured quantity is the iterations until ||w_k - w*||^2 <= eps ||w_0 - w*||^2 for each
  start (the error the theorems for gradient descent and heavy ball bound); its mean over
  starts, against kappa, is fitted with a log-log slope (bootstrap CI over starts). Theory:
  slope 1 for gradient descent, 1/2 for the accelerated methods. The iterations until
  f(w_k) - f* <= eps (f(w_0) - f*) are reported too, unchecked: f(w_0) - f* is dominated by the
  steep directions, so this target asks the slow direction for a reduction of only about
  eps kappa, and a method that removes the steep directions at once (Nesterov with lr = 1/L)
  then needs about sqrt(kappa) ln(1/(eps kappa)) steps, a log-log slope below 1/2 at any
  fixed eps.
- ``trajectory``: the same three methods on a 2-D quadratic with kappa = 30, drawn over the
  contours of f in the Hessian's eigenbasis: gradient descent zig-zags across the steep
  direction, momentum damps the zig-zag and moves faster along the flat one.
- ``noise``: stochastic gradients (one sample, drawn with replacement) near the optimum of a
  noisy quadratic: SGD with step eta against heavy-ball momentum beta with step eta (1 - beta),
  i.e. at the same effective step eta_eff = lr / (1 - beta). After a burn-in from w* the
  per-step update w_{k+1} - w_k is recorded for a window of steps; the variance of the update,
  in units of eta_eff^2 tr Cov(grad div_i(w*)), is about 1 for SGD and (1 - beta)/(1 + beta)
  for momentum in the small-step limit (the buffer is an exponential average of the gradient
  noise; Polyak 1987, ch. 4; the stationary distribution of w is the same to first order in
  eta_eff). The check asks that the ratio momentum/SGD be below 1.

Optimal parameters (functions below): gradient descent lr = 2/(L + mu) (Nesterov 2004,
Thm 2.1.15); heavy ball lr = 4/(sqrt L + sqrt mu)^2, momentum = ((sqrt kappa - 1)/(sqrt kappa +
1))^2 (Polyak 1964); Nesterov lr = 1/L, momentum = (sqrt kappa - 1)/(sqrt kappa + 1) (Nesterov
2004, constant step scheme III, (2.2.22)).

**torch's Nesterov is Nesterov's scheme.** convstudy.optim follows torch.optim.SGD:
b_t = m b_{t-1} + g_t (b_1 = g_1), w_t = w_{t-1} - lr (g_t + m b_t). Nesterov's scheme III is
x_{k+1} = y_k - h grad f(y_k), y_{k+1} = x_{k+1} + beta (x_{k+1} - x_k), y_0 = x_0. With
v_k = x_k - x_{k-1} and b = -v / h one checks y_{k+1} = y_k - h (g_k + beta b_{k+1}) and
b_{k+1} = beta b_k + g_k, with the same first step y_1 = y_0 - h (1 + beta) g_0. So torch's
(lr, momentum) = (h, beta) = (1/L, (sqrt kappa - 1)/(sqrt kappa + 1)) exactly, and torch's
iterate w is Nesterov's search point y_k (where the gradient is evaluated), not x_k; this study
measures f at y_k. Heavy ball in torch's form is Polyak's w_{k+1} = w_k - lr g_k +
m (w_k - w_{k-1}) with w_{-1} = w_0, for a constant lr.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pandas as pd

from convstudy._validation import check_array, check_option, check_scalar
from convstudy.claims import Check
from convstudy.engine import simulate
from convstudy.figures import add_reference_line, new_figure, plot_estimates
from convstudy.optim import get_optimizer
from convstudy.stats.curves import hitting_times
from convstudy.stats.fits import condition_bootstrap, fit_trend
from convstudy.stats.means import mean_ci
from convstudy.study import Analysis, Scale, Study, build_problem

METHODS = ("gd", "heavy_ball", "nesterov")
METHOD_LABELS = {
    "gd": "gradient descent",
    "heavy_ball": "heavy ball (Polyak)",
    "nesterov": "Nesterov",
}
EPS = (1e-3, 1e-6)  # relative targets; the checks use the smallest
CHECK_EPS = 1e-6
METRICS = {
    "distance": "||w_k - w*||^2 <= eps ||w_0 - w*||^2",
    "suboptimality": "f(w_k) - f* <= eps (f(w_0) - f*)",
}
CHECK_METRIC = "distance"
RECORD_RATIO = 1.01  # hitting times are read on a geometric step grid of ratio 1.01
N_BOOT = 2000
GD_SLOPE_INTERVAL = (0.85, 1.15)
ACCELERATED_SLOPE_INTERVAL = (0.4, 0.6)
SOURCE = (
    "Nesterov (2004) Introductory Lectures on Convex Optimization, Thm 2.1.15 and 2.2.3; "
    "Polyak (1964) Some methods of speeding up the convergence of iteration methods"
)
QUADRATIC = {"problem": "quadratic", "problem.dim": 10, "problem.noise": 0.0}
TRAJECTORY = {
    "problem": "quadratic",
    "problem.dim": 2,
    "problem.condition_number": 30.0,
    "problem.noise": 0.0,
    "problem.n_samples": 2,
    "n_steps": 40,
}
TRAJECTORY_START = (-3.0, 0.5)  # start in the eigenbasis: (flat, steep) offsets from w*
NOISE_PROBLEM = {
    "problem": "quadratic",
    "problem.dim": 10,
    "problem.condition_number": 10.0,
    "problem.noise": 1.0,
    "problem.n_samples": 200,
}
EFFECTIVE_LR = 0.01  # eta_eff * L = 0.1: the small-step regime
NOISE_MOMENTA = (0.0, 0.5, 0.8, 0.9)
CHECK_MOMENTUM = 0.9


# ---- optimal parameters -------------------------------------------------------------------------
class Tuning(NamedTuple):
    """Constant parameters of a method and the per-step contraction of f - f* they give.

    ``rate`` is the asymptotic factor by which f - f* shrinks per step on a quadratic whose
    Hessian has extreme eigenvalues mu and L (the square of the error's contraction factor).
    """

    lr: float
    momentum: float
    rate: float


def _mu_L(mu: float, L: float, owner: str) -> tuple[float, float]:
    mu = check_scalar(mu, "mu", owner, low=0.0)
    L = check_scalar(L, "L", owner, low=mu, closed="left")
    return mu, L


def gradient_descent_tuning(mu: float, L: float) -> Tuning:
    """Gradient descent with lr = 2/(L + mu), the optimal constant step on a quadratic.

    ||w_k - w*|| <= ((kappa - 1)/(kappa + 1))^k ||w_0 - w*||: the step minimises
    max_i |1 - lr lambda_i| over the spectrum [mu, L] (Nesterov 2004,
    Thm 2.1.15); f - f* contracts by the square, ((kappa - 1)/(kappa + 1))^2, per step.
    """
    mu, L = _mu_L(mu, L, "gradient_descent_tuning")
    rho = (L - mu) / (L + mu)
    return Tuning(lr=2.0 / (L + mu), momentum=0.0, rate=rho**2)


def heavy_ball_tuning(mu: float, L: float) -> Tuning:
    """Polyak's heavy ball, lr = 4/(sqrt L + sqrt mu)^2, momentum = ((sqrt k - 1)/(sqrt k + 1))^2.

    On a quadratic w_{k+1} = w_k - lr grad f(w_k) + m (w_k - w_{k-1}) contracts the error by
    sqrt(m) = (sqrt kappa - 1)/(sqrt kappa + 1) per step asymptotically, the best rate of any
    two-step linear method (Polyak 1964; Polyak 1987, Introduction to Optimization, 3.2.1);
    f - f* by m. At the extreme eigenvalues the iteration matrix has a double root, so the
    transient carries a factor linear in k.
    """
    mu, L = _mu_L(mu, L, "heavy_ball_tuning")
    q = (math.sqrt(L) - math.sqrt(mu)) / (math.sqrt(L) + math.sqrt(mu))
    return Tuning(lr=4.0 / (math.sqrt(L) + math.sqrt(mu)) ** 2, momentum=q**2, rate=q**2)


def nesterov_tuning(mu: float, L: float) -> Tuning:
    """Nesterov's constant-step scheme: lr = 1/L, momentum = (sqrt kappa - 1)/(sqrt kappa + 1).

    Guarantee (Nesterov 2004, Thm 2.2.3): f(x_k) - f* <= (1 - 1/sqrt kappa)^k (f(x_0) - f* +
    mu/2 ||x_0 - x*||^2). ``rate`` is the exact asymptotic contraction of f - f* on a quadratic
    with eigenvalues in [mu, L], :func:`spectral_radius` squared, which is close to
    (1 - 1/sqrt kappa)^2. torch's ``SGD(nesterov=True)`` with these (lr, momentum) runs this
    scheme exactly (see the module docstring).
    """
    mu, L = _mu_L(mu, L, "nesterov_tuning")
    m = (math.sqrt(L) - math.sqrt(mu)) / (math.sqrt(L) + math.sqrt(mu))
    r = spectral_radius(1.0 / L, m, [mu, L], nesterov=True)
    return Tuning(lr=1.0 / L, momentum=m, rate=r**2)


TUNINGS = {
    "gd": gradient_descent_tuning,
    "heavy_ball": heavy_ball_tuning,
    "nesterov": nesterov_tuning,
}


def spectral_radius(lr: float, momentum: float, eigenvalues, *, nesterov: bool = False) -> float:
    """Asymptotic per-step contraction of the error of (Nesterov) momentum on a quadratic.

    Along an eigenvector with eigenvalue lambda the error obeys e_{k+1} = a e_k - c e_{k-1},
    with a = 1 + m - lr lambda, c = m for heavy ball and a = (1 + m)(1 - lr lambda),
    c = m (1 - lr lambda) for Nesterov (torch's form, see the module docstring); the rate is
    the largest modulus of a root of z^2 - a z + c over all eigenvalues (m = 0: |1 - lr lambda|).
    """
    owner = "spectral_radius"
    lr = check_scalar(lr, "lr", owner, low=0.0)
    m = check_scalar(momentum, "momentum", owner, low=0.0, closed="left")
    check_option(nesterov, "nesterov", owner, [False, True])
    lam = check_array(eigenvalues, "eigenvalues", owner, ndim=1)
    shrink = 1.0 - lr * lam
    a, c = ((1 + m) * shrink, m * shrink) if nesterov else (1 + m - lr * lam, np.full_like(lam, m))
    disc = np.sqrt((a * a - 4 * c).astype(complex))
    roots = np.abs(np.stack([(a + disc) / 2, (a - disc) / 2]))
    return float(roots.max())


def iteration_budget(rate: float, eps: float, kappa: float, margin: float) -> int:
    """Steps to run so that f - f* <= eps (f_0 - f*) is reached: margin ln(kappa/eps) / -ln(rate).

    For gradient descent this is a guarantee with margin = 1: f_k - f* <= L/2 rho^{2k}
    ||e_0||^2 and f_0 - f* >= mu/2 ||e_0||^2, so the relative gap is at most kappa rate^k.
    """
    owner = "iteration_budget"
    rate = check_scalar(rate, "rate", owner, low=0.0, high=1.0)
    eps = check_scalar(eps, "eps", owner, low=0.0, high=1.0)
    kappa = check_scalar(kappa, "kappa", owner, low=1.0, closed="left")
    margin = check_scalar(margin, "margin", owner, low=0.0)
    return int(math.ceil(margin * math.log(kappa / eps) / -math.log(rate))) + 20


def geometric_record_grid(n_steps: int, ratio: float = RECORD_RATIO) -> np.ndarray:
    """Steps 0..n_steps on a geometric grid of ratio ``ratio`` (every step while they are dense)."""
    n = max(int(math.ceil(math.log(max(n_steps, 2)) / math.log(ratio))), 2)
    grid = np.unique(np.round(np.geomspace(1, max(n_steps, 1), n)).astype(np.int64))
    return np.unique(np.concatenate([[0], grid, [n_steps]]))


def make_optimizer(method: str, tuning: Tuning):
    """The convstudy optimizer of ``method`` with the momentum of ``tuning``."""
    check_option(method, "method", "make_optimizer", METHODS)
    if method == "gd" or tuning.momentum == 0.0:
        return get_optimizer("sgd")
    name = "momentum" if method == "heavy_ball" else "nesterov"
    return get_optimizer(name, momentum=tuning.momentum)


# ---- conditions ---------------------------------------------------------------------------------
def conditions(scale: Scale) -> list[dict]:
    log_kappas = scale.pick(np.arange(1.0, 4.01, 0.5), np.arange(1.0, 3.01, 0.5))
    kappas = [float(round(10**x, 6)) for x in log_kappas]
    out = [
        {
            "part": "kappa",
            "method": m,
            "kappa": k,
            **QUADRATIC,
            "problem.n_samples": QUADRATIC["problem.dim"],
            "problem.condition_number": k,
        }
        for m in METHODS
        for k in kappas
    ]
    out += [
        {"part": "trajectory", "method": m, "kappa": TRAJECTORY["problem.condition_number"]}
        | TRAJECTORY
        for m in METHODS
    ]
    out += [
        {
            "part": "noise",
            "momentum": beta,
            "effective_lr": EFFECTIVE_LR,
            "burn_in": scale.pick(600, 400),
            "window": scale.pick(200, 100),
            **NOISE_PROBLEM,
        }
        for beta in NOISE_MOMENTA
    ]
    return out


# ---- compute ------------------------------------------------------------------------------------
def _kappa_cell(condition: dict, seed: int, replicates) -> pd.DataFrame:
    """Hitting times of both relative targets (METRICS) for each replicate's random start."""
    problem = build_problem(condition)
    method = condition["method"]
    tuning = TUNINGS[method](problem.mu, problem.L)
    kappa = problem.L / problem.mu
    n_steps = iteration_budget(tuning.rate, min(EPS), kappa, 1.0 if method == "gd" else 3.0)
    frame = simulate(
        problem,
        make_optimizer(method, tuning),
        tuning.lr,
        n_steps=n_steps,
        sampler="full",
        batch_size=problem.n_samples,
        replicates=replicates,
        seed=seed,
        w0="random",
        record=geometric_record_grid(n_steps),
        record_iterates=True,
    )
    err = frame[[f"w_{j}" for j in range(problem.dim)]].to_numpy() - problem.w_star
    frame = frame.assign(distance=np.einsum("ij,ij->i", err, err), suboptimality=frame["subopt"])
    parts = []
    for metric in METRICS:
        start = frame.groupby("replicate")[metric].transform("first")
        rel = frame[["replicate", "step", "diverged"]].assign(rel=frame[metric] / start)
        parts.append(hitting_times(rel, EPS, y="rel").assign(metric=metric))
    hits = pd.concat(parts, ignore_index=True)
    return hits.assign(
        lr=tuning.lr,
        momentum_param=tuning.momentum,
        rate=tuning.rate,
        budget=n_steps,
    )


def eigenbasis(problem) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (ascending) and eigenvectors (columns) of a least-squares problem's Hessian."""
    H = problem.X.T @ problem.X / problem.n_samples + problem.lam * np.eye(problem.dim)
    return np.linalg.eigh(H)


def _trajectory_cell(condition: dict, seed: int, replicates) -> pd.DataFrame:
    """One deterministic trajectory per method (stored as replicate 0) with its iterates."""
    if 0 not in set(int(r) for r in replicates):
        return pd.DataFrame()
    problem = build_problem(condition)
    tuning = TUNINGS[condition["method"]](problem.mu, problem.L)
    _, V = eigenbasis(problem)
    w0 = problem.w_star + V @ np.asarray(TRAJECTORY_START)
    frame = simulate(
        problem,
        make_optimizer(condition["method"], tuning),
        tuning.lr,
        n_steps=condition["n_steps"],
        sampler="full",
        batch_size=problem.n_samples,
        replicates=[0],
        seed=seed,
        w0=w0,
        record="all",
        record_iterates=True,
    )
    U = (frame[["w_0", "w_1"]].to_numpy() - problem.w_star) @ V  # eigen-coordinates
    return frame.assign(u_flat=U[:, 0], u_steep=U[:, 1], lr=tuning.lr)


def gradient_noise_trace(problem, w: np.ndarray) -> float:
    """tr Cov(grad div_i(w)) over i uniform on the N samples (the SGD noise of one sample)."""
    grads = problem.sample_grads(w[None, :], np.arange(problem.n_samples)[None, :])[0]
    return float(np.mean(np.sum((grads - grads.mean(axis=0)) ** 2, axis=1)))


def update_statistics(frame: pd.DataFrame, dim: int, scale: float) -> pd.DataFrame:
    """Per replicate: mean over consecutive recorded steps of ||w_{k+1} - w_k||^2 / scale.

    At stationarity E[w_{k+1} - w_k] = 0, so this is the total variance of the update (the
    trace of its covariance), averaged over the window. ``frame`` holds iterates
    ``w_0..w_{dim-1}`` at consecutive steps (``record_iterates``). Also returns the replicate's
    mean suboptimality over the same steps.
    """
    cols = [f"w_{j}" for j in range(dim)]
    rows = []
    for rep, part in frame.sort_values(["replicate", "step"]).groupby("replicate", sort=True):
        steps = part["step"].to_numpy()
        if not np.all(np.diff(steps) == 1):
            raise ValueError("update_statistics needs iterates at consecutive steps.")
        dw = np.diff(part[cols].to_numpy(), axis=0)
        rows.append(
            {
                "replicate": rep,
                "update_var": float(np.mean(np.sum(dw * dw, axis=1)) / scale),
                "subopt_mean": float(part["subopt"].mean()),
                "diverged": bool(part["diverged"].any()),
            }
        )
    return pd.DataFrame(rows)


def _noise_cell(condition: dict, seed: int, replicates) -> pd.DataFrame:
    """Update variance at stationarity for SGD or momentum at effective step eta_eff."""
    problem = build_problem(condition)
    beta, eta = condition["momentum"], condition["effective_lr"]
    burn, window = condition["burn_in"], condition["window"]
    opt = get_optimizer("sgd") if beta == 0.0 else get_optimizer("momentum", momentum=beta)
    frame = simulate(
        problem,
        opt,
        eta * (1.0 - beta),
        n_steps=burn + window,
        sampler="replacement",
        batch_size=1,
        replicates=replicates,
        seed=seed,
        w0=problem.w_star,
        record=np.arange(burn, burn + window + 1),
        record_iterates=True,
    )
    noise = gradient_noise_trace(problem, problem.w_star)
    stats = update_statistics(frame, problem.dim, eta**2 * noise)
    return stats.assign(lr=eta * (1.0 - beta), noise_trace=noise)


def compute(condition: dict, seed: int, replicate_ids) -> pd.DataFrame:
    part = check_option(condition.get("part"), "part", "momentum.compute", PARTS)
    return PARTS[part](condition, seed, replicate_ids)


PARTS = {"kappa": _kappa_cell, "trajectory": _trajectory_cell, "noise": _noise_cell}


# ---- analysis -----------------------------------------------------------------------------------
def _select(frame: pd.DataFrame, method: str, metric: str, eps: float) -> pd.DataFrame:
    keep = (frame["method"] == method) & (frame["metric"] == metric)
    return frame[keep & np.isclose(frame["eps"], eps)]


def _hit_samples(kappa_runs: pd.DataFrame, method: str, metric: str, eps: float):
    """kappa values and, per kappa, the hitting times of the replicates (inf when censored)."""
    part = _select(kappa_runs, method, metric, eps)
    kappas = np.sort(part["kappa"].unique())
    samples = [
        part.loc[part["kappa"] == k, "hit"].fillna(np.inf).to_numpy(dtype=float) for k in kappas
    ]
    return kappas, samples


def _predicted_iterations(rate: float, eps: float) -> float:
    """ln(1/eps) / -ln(rate): steps for f - f* to shrink by eps at the asymptotic rate."""
    return math.log(1.0 / eps) / -math.log(rate)


def _kappa_tables(kappa_runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows, slopes = [], []
    for i, method in enumerate(METHODS):
        for j, (metric, eps) in enumerate((m, e) for m in METRICS for e in EPS):
            kappas, samples = _hit_samples(kappa_runs, method, metric, eps)
            fit = fit_trend(kappas, samples, n_boot=N_BOOT, seed=100 * i + j).estimate
            expected = GD_SLOPE_INTERVAL if method == "gd" else ACCELERATED_SLOPE_INTERVAL
            slopes.append(
                {
                    "method": method,
                    "metric": metric,
                    "eps": eps,
                    "slope": fit.value,
                    "ci_low": fit.ci_low,
                    "ci_high": fit.ci_high,
                    "theory": 1.0 if method == "gd" else 0.5,
                    "expected_low": expected[0],
                    "expected_high": expected[1],
                    "checked": metric == CHECK_METRIC and eps == CHECK_EPS,
                    "kappa_min": float(kappas.min()),
                    "kappa_max": float(kappas.max()),
                    "n_per_kappa": fit.n,
                    "n_censored": int(sum(np.isinf(s).sum() for s in samples)),
                }
            )
            sub = _select(kappa_runs, method, metric, eps)
            for k, s in zip(kappas, samples):
                cell = sub[sub["kappa"] == k].iloc[0]
                finite = s[np.isfinite(s)]
                estimate = mean_ci(finite)
                mean, lo, hi, n = estimate.value, estimate.ci_low, estimate.ci_high, estimate.n
                rows.append(
                    {
                        "method": method,
                        "metric": metric,
                        "kappa": k,
                        "eps": eps,
                        "mean_iterations": float(mean) if finite.size == s.size else np.inf,
                        "ci_low": float(lo),
                        "ci_high": float(hi),
                        "sd": float(np.std(finite, ddof=1)),
                        "predicted": _predicted_iterations(cell["rate"], eps),
                        "lr": cell["lr"],
                        "momentum": cell["momentum_param"],
                        "budget": int(cell["budget"]),
                        "n": int(n),
                        "n_censored": int(np.isinf(s).sum()),
                    }
                )
    return pd.DataFrame(rows), pd.DataFrame(slopes)


def _noise_table(noise_runs: pd.DataFrame) -> pd.DataFrame:
    betas = sorted(noise_runs["momentum"].unique())
    samples = [
        noise_runs.loc[noise_runs["momentum"] == b, "update_var"].to_numpy(float) for b in betas
    ]
    point, boots = condition_bootstrap(samples, n_boot=N_BOOT, seed=7)
    ratios = boots / boots[:, [0]]
    rows = []
    for j, beta in enumerate(betas):
        part = noise_runs[noise_runs["momentum"] == beta]
        estimate = mean_ci(part["update_var"].to_numpy(float))
        mean, lo, hi, n = estimate.value, estimate.ci_low, estimate.ci_high, estimate.n
        s_mean_ci = mean_ci(part["subopt_mean"].to_numpy(float))
        s_mean, s_lo, s_hi = s_mean_ci.value, s_mean_ci.ci_low, s_mean_ci.ci_high
        r_lo, r_hi = np.quantile(ratios[:, j], [0.025, 0.975])
        rows.append(
            {
                "momentum": beta,
                "lr": float(part["lr"].iloc[0]),
                "effective_lr": float(part["effective_lr"].iloc[0]),
                "update_var": float(mean),
                "update_var_low": float(lo),
                "update_var_high": float(hi),
                "ratio_to_sgd": float(point[j] / point[0]),
                "ratio_low": float(r_lo),
                "ratio_high": float(r_hi),
                "theory_ratio": (1 - beta) / (1 + beta),
                "stationary_subopt": float(s_mean),
                "stationary_subopt_low": float(s_lo),
                "stationary_subopt_high": float(s_hi),
                "n": int(n),
                "n_diverged": int(part["diverged"].sum()),
            }
        )
    return pd.DataFrame(rows)


def _trajectory_table(traj: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for method in METHODS:
        part = traj[traj["method"] == method].sort_values("step")
        steep = part["u_steep"].to_numpy()
        rows.append(
            {
                "method": method,
                "kappa": float(part["kappa"].iloc[0]),
                "lr": float(part["lr"].iloc[0]),
                "steps": int(part["step"].max()),
                "steep_sign_changes": int(np.sum(np.diff(np.sign(steep)) != 0)),
                "steep_abs_max": float(np.max(np.abs(steep))),
                "steep_abs_after_20": float(abs(steep[20])),
                "flat_abs_after_20": float(abs(part["u_flat"].to_numpy()[20])),
                "final_subopt": float(part["subopt"].iloc[-1]),
            }
        )
    return pd.DataFrame(rows)


def _kappa_figure(hits: pd.DataFrame, slopes: pd.DataFrame):
    fig, axes = new_figure(ncols=2, width=5.6, height=4.4, sharey=True)
    for ax, metric in zip(axes, METRICS):
        table = hits[(hits["metric"] == metric) & np.isclose(hits["eps"], CHECK_EPS)].copy()
        s = slopes[(slopes["metric"] == metric) & np.isclose(slopes["eps"], CHECK_EPS)]
        s = s.set_index("method")
        table["label"] = [
            f"{METHOD_LABELS[m]}: slope {s.loc[m, 'slope']:.2f} "
            f"[{s.loc[m, 'ci_low']:.2f}, {s.loc[m, 'ci_high']:.2f}]"
            for m in table["method"]
        ]
        checked = " (checked)" if metric == CHECK_METRIC else " (reported)"
        plot_estimates(
            ax,
            table,
            x="kappa",
            y="mean_iterations",
            hue="label",
            logx=True,
            logy=True,
            xlabel="condition number kappa = L / mu",
            ylabel="iterations to the target",
            title=f"target {METRICS[metric].replace('eps', f'{CHECK_EPS:g}')}{checked}",
        )
        for method, ls in zip(METHODS, [":", "--", "-."]):
            part = table[table["method"] == method]
            add_reference_line(
                ax,
                part["kappa"],
                part["predicted"],
                f"ln(1/eps) / -ln(rate), {METHOD_LABELS[method]}",
                color="0.45",
                ls=ls,
            )
        ax.title.set_fontsize("small")
        ax.legend(
            fontsize="x-small",
            title="mean over random starts, 95% t-CI;\nslope [95% bootstrap CI]",
            title_fontsize="x-small",
        )
    return fig


def _trajectory_figure(traj: pd.DataFrame):
    fig, axes = new_figure(ncols=4, width=3.6, height=3.4)
    kappa = float(traj["kappa"].iloc[0])
    reach = 1.1 * np.nanmax(np.abs(traj[["u_flat", "u_steep"]].to_numpy()), axis=0)
    uf = np.linspace(-reach[0], 0.5 * reach[0], 200)
    us = np.linspace(-reach[1], reach[1], 200)
    F, S = np.meshgrid(uf, us)
    levels = np.geomspace(0.01, 0.5 * kappa * reach[1] ** 2, 14)
    for ax, method, color in zip(axes[:3], METHODS, ["C0", "C1", "C2"]):
        part = traj[traj["method"] == method].sort_values("step")
        ax.contour(F, S, 0.5 * (F**2 + kappa * S**2), levels=levels, colors="0.75", linewidths=0.7)
        ax.plot(part["u_flat"], part["u_steep"], "o-", color=color, ms=2.5, lw=1)
        ax.plot([0], [0], marker="*", color="k", ms=9)
        ax.set_title(METHOD_LABELS[method], fontsize="small")
        ax.set_xlabel("flat eigendirection (lambda = mu)")
        ax.set_ylabel("steep eigendirection (lambda = L)")
        ax.set_xlim(uf[0], uf[-1])
        ax.set_ylim(us[0], us[-1])
    ax = axes[3]
    for method, color in zip(METHODS, ["C0", "C1", "C2"]):
        part = traj[traj["method"] == method].sort_values("step")
        ax.semilogy(part["step"], part["subopt"], color=color, label=METHOD_LABELS[method])
    ax.set_xlabel("iteration k")
    ax.set_ylabel("f(w_k) - f*")
    ax.set_title("suboptimality (one deterministic run)", fontsize="small")
    ax.legend(fontsize="x-small")
    fig.suptitle(
        f"40 iterations from the same start on a 2-D quadratic, kappa = {kappa:g}", fontsize="small"
    )
    return fig


def _update_variance_figure(table: pd.DataFrame):
    fig, axes = new_figure(ncols=2, width=4.6, height=3.6)
    plot_estimates(
        axes[0],
        table.assign(ratio=table["ratio_to_sgd"]),
        x="momentum",
        y="ratio",
        low="ratio_low",
        high="ratio_high",
        xlabel="momentum beta (lr = eta_eff (1 - beta))",
        ylabel="Var(w_{k+1} - w_k): momentum / SGD",
        title="Update variance at matched effective step",
        note="error bars = 95% bootstrap CI over replicates",
    )
    beta = np.linspace(0, max(table["momentum"]), 100)
    add_reference_line(axes[0], beta, (1 - beta) / (1 + beta), "(1 - beta)/(1 + beta), small eta")
    plot_estimates(
        axes[1],
        table,
        x="momentum",
        y="stationary_subopt",
        low="stationary_subopt_low",
        high="stationary_subopt_high",
        xlabel="momentum beta",
        ylabel="mean f(w_k) - f* over the window",
        title="Stationary suboptimality (same eta_eff)",
        note="error bars = 95% t-CI over replicates",
    )
    axes[1].set_ylim(bottom=0)
    return fig


def _checks(slopes: pd.DataFrame, noise: pd.DataFrame) -> list[Check]:
    checks = []
    s = slopes[slopes["checked"]].set_index("method")
    ids = {
        "gd": "6a-gd-kappa-slope",
        "heavy_ball": "6b-heavy-ball-kappa-slope",
        "nesterov": "6c-nesterov-kappa-slope",
    }
    for method in METHODS:
        row = s.loc[method]
        theory = "1 (iterations ~ kappa)" if method == "gd" else "1/2 (iterations ~ sqrt kappa)"
        checks.append(
            Check(
                id=ids[method],
                claim=6,
                statement=(
                    f"{METHOD_LABELS[method]} with its optimal constant parameters needs "
                    f"iterations proportional to kappa^{row['theory']:g} on a quadratic"
                ),
                source=SOURCE,
                quantity=(
                    f"log-log slope of mean iterations to "
                    f"{METRICS[CHECK_METRIC].replace('eps', f'{CHECK_EPS:g}')} "
                    f"against kappa in [{row['kappa_min']:g}, {row['kappa_max']:g}]"
                ),
                expected=f"{theory}; accept [{row['expected_low']}, {row['expected_high']}]",
                expected_low=float(row["expected_low"]),
                expected_high=float(row["expected_high"]),
                estimate=float(row["slope"]),
                ci_low=float(row["ci_low"]),
                ci_high=float(row["ci_high"]),
                n_replicates=int(row["n_per_kappa"]),
                figure="figures/kappa_scaling.png",
                table="tables/kappa_slopes.md",
                notes=f"{int(row['n_censored'])} censored runs; random starts are the replicates",
            )
        )
    row = noise.set_index("momentum").loc[CHECK_MOMENTUM]
    checks.append(
        Check(
            id="6d-momentum-update-variance",
            claim=6,
            statement="momentum smooths SGD: smaller update variance at the same effective step",
            source="course slides; Polyak (1987) Introduction to Optimization, ch. 4",
            quantity=(
                f"Var(w_(k+1) - w_k) of momentum {CHECK_MOMENTUM:g} / SGD at eta_eff = "
                f"{row['effective_lr']:g}, near w*"
            ),
            expected=f"< 1 (small-step theory (1-b)/(1+b) = {row['theory_ratio']:.3f})",
            expected_low=0.0,
            expected_high=1.0,
            estimate=float(row["ratio_to_sgd"]),
            ci_low=float(row["ratio_low"]),
            ci_high=float(row["ratio_high"]),
            n_replicates=int(row["n"]),
            figure="figures/update_variance.png",
            table="tables/update_variance_by_momentum.md",
            notes="95% percentile bootstrap CI of a ratio of means of independent conditions",
        )
    )
    return checks


def _slope_text(slopes: pd.DataFrame, metric: str) -> str:
    s = slopes[(slopes["metric"] == metric) & np.isclose(slopes["eps"], CHECK_EPS)]
    s = s.set_index("method")
    return "; ".join(
        f"{METHOD_LABELS[m]} {s.loc[m, 'slope']:.2f} [{s.loc[m, 'ci_low']:.2f}, "
        f"{s.loc[m, 'ci_high']:.2f}]"
        for m in METHODS
    )


def _findings(slopes: pd.DataFrame, noise: pd.DataFrame, traj: pd.DataFrame) -> list[str]:
    n_row = noise.set_index("momentum").loc[CHECK_MOMENTUM]
    sgd_row = noise.set_index("momentum").loc[0.0]
    t = traj.set_index("method")
    return [
        f"Log-log slope of iterations against kappa to the target "
        f"{METRICS['distance'].replace('eps', f'{CHECK_EPS:g}')} (95% bootstrap CI over random "
        f"starts): {_slope_text(slopes, 'distance')}. Theory: 1 for gradient descent, 1/2 for "
        "heavy ball and Nesterov.",
        f"To the target {METRICS['suboptimality'].replace('eps', f'{CHECK_EPS:g}')} instead: "
        f"{_slope_text(slopes, 'suboptimality')} (not checked: this target depends on how "
        "f(w_0) - f* is spread over the spectrum, see the module docstring).",
        f"On the 2-D quadratic (kappa = {t['kappa'].iloc[0]:g}) the steep coordinate of gradient "
        f"descent changes sign {t.loc['gd', 'steep_sign_changes']} times in "
        f"{t.loc['gd', 'steps']} steps and is still {t.loc['gd', 'steep_abs_after_20']:.3g} "
        f"after 20 steps, against {t.loc['heavy_ball', 'steep_abs_after_20']:.3g} (heavy ball, "
        f"which first overshoots to {t.loc['heavy_ball', 'steep_abs_max']:.2f} from "
        f"{abs(TRAJECTORY_START[1]):g}: its iteration matrix has a double root at lambda = L) "
        f"and {t.loc['nesterov', 'steep_abs_after_20']:.3g} (Nesterov, whose lr = 1/L removes "
        f"the steep direction in one step). Along the flat direction the distance left after "
        f"20 steps is {t.loc['gd', 'flat_abs_after_20']:.3g} (GD), "
        f"{t.loc['heavy_ball', 'flat_abs_after_20']:.3g} (heavy ball), "
        f"{t.loc['nesterov', 'flat_abs_after_20']:.3g} (Nesterov), from "
        f"{abs(TRAJECTORY_START[0]):g}; after 40 steps "
        f"f - f* = {t.loc['gd', 'final_subopt']:.2e}, {t.loc['heavy_ball', 'final_subopt']:.2e}"
        f", {t.loc['nesterov', 'final_subopt']:.2e}.",
        f"At the same effective step eta_eff = {n_row['effective_lr']:g}, momentum "
        f"{CHECK_MOMENTUM:g} has {n_row['ratio_to_sgd']:.3f} [{n_row['ratio_low']:.3f}, "
        f"{n_row['ratio_high']:.3f}] times the update variance of SGD (small-step theory "
        f"{n_row['theory_ratio']:.3f}), with a stationary f - f* of "
        f"{n_row['stationary_subopt']:.3g} against {sgd_row['stationary_subopt']:.3g} for SGD.",
    ]


def analyze(runs: pd.DataFrame, scale: Scale) -> Analysis:
    kappa_runs = runs[runs["part"] == "kappa"]
    traj = runs[runs["part"] == "trajectory"]
    noise_runs = runs[runs["part"] == "noise"]
    hits, slopes = _kappa_tables(kappa_runs)
    noise = _noise_table(noise_runs)
    traj_table = _trajectory_table(traj)
    return Analysis(
        tables={
            "kappa_hitting_times": hits,
            "kappa_slopes": slopes,
            "trajectory_summary": traj_table,
            "update_variance_by_momentum": noise,
        },
        figures={
            "kappa_scaling": _kappa_figure(hits, slopes),
            "trajectories": _trajectory_figure(traj),
            "update_variance": _update_variance_figure(noise),
        },
        captions={
            "kappa_scaling": "Mean iterations to reduce ||w - w*||^2 (checked) or f - f* "
            "(reported) by 1e-6 against the condition number, with 95% t-CIs over random "
            "starts and the asymptotic-rate prediction.",
            "trajectories": "Gradient descent, heavy ball and Nesterov on a 2-D quadratic over "
            "the contours of f, in the Hessian's eigenbasis.",
            "update_variance": "Variance of the SGD update with and without momentum at the same "
            "effective step, relative to SGD, and the stationary suboptimality.",
            "kappa_hitting_times": "Iterations to a relative gap eps per method and kappa.",
            "kappa_slopes": "Log-log slopes of iterations against kappa with bootstrap CIs.",
            "trajectory_summary": "Oscillation of the steep coordinate in the 2-D runs.",
            "update_variance_by_momentum": "Update variance at matched effective step, per "
            "momentum.",
        },
        findings=_findings(slopes, noise, traj_table),
        checks=_checks(slopes, noise),
    )


study = Study(
    name="momentum",
    title="Momentum and Nesterov: sqrt(kappa) iterations and smoother SGD steps",
    description=(
        "Gradient descent, heavy-ball momentum and Nesterov's method with their optimal "
        "parameters on quadratics with condition numbers 10 to 10^4 (iterations to shrink the "
        "squared error by 1e-6, over random starts), a 2-D trajectory plot, and the variance of "
        "SGD updates with and without momentum at the same effective step (DESIGN.md claim 6)."
    ),
    conditions=conditions,
    compute=compute,
    analyze=analyze,
    claims=(6,),
    replicates=100,
    quick_replicates=20,
)
