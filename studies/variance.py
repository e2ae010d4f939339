"""Claim 1: the empirical risk is unbiased with variance var(div)/N; minibatches follow var(div)/b.

At a fixed parameter w (the population minimiser w*, and a point at a fixed distance from it),
each replicate is one Monte Carlo draw of three estimators, at every size of a log-spaced grid:

- ``train_size``: the empirical risk (and gradient) of a training set of N samples drawn i.i.d.
  from the data distribution. For the synthetic problem that is a fresh draw from the Gaussian
  linear model; for real data the distribution is the empirical distribution of the bundled
  dataset, so training sets are drawn from it *with replacement*. Prediction: var(div)/N, with
  var(div) the variance of one sample's divergence under the distribution.
- ``with_replacement``: a minibatch of b indices drawn i.i.d. from a fixed training set (the
  synthetic problem's one training set of 1000 samples; the whole dataset for real data).
  Prediction: var(div)/b with var(div) the training set's population variance (ddof 0).
  (For real data this is the same sampling scheme as ``train_size``: two independent draws.)
- ``without_replacement``: b distinct indices from the same training set. Prediction:
  (N - b)/(N - 1) var(div)/b (Cochran 1977, "Sampling Techniques", Thm 2.2).

The same three predictions hold for the gradient estimates with var(div) replaced by the trace
of the per-sample gradient covariance, tr Cov(grad div); each replicate stores ||g - E g||^2,
whose mean is tr Cov(g) because every estimator here is unbiased (E g is known exactly).

The predictions use exact population moments (closed form for the Gaussian model, sums over
the data for real data), so the ratio measured/predicted carries only Monte Carlo error.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import matplotlib.lines
import matplotlib.ticker
import numpy as np
import pandas as pd

from convstudy.claims import Check
from convstudy.engine import replicate_generators
from convstudy.figures import new_figure
from convstudy.problems import LeastSquares, Problem, get_problem
from convstudy.stats.fits import SlopeFit
from convstudy.stats.means import mean_ci, mean_sem_ci
from convstudy.stats.variance import bootstrap_dispersion, fit_variance_slope, variance_ci
from convstudy.study import Analysis, Scale, Study
from convstudy.theory.sampling_variance import (
    finite_population_correction,
    population_total_variance,
    population_variance,
    variance_of_sample_mean,
)

DESIGNS = ("train_size", "with_replacement", "without_replacement")
DESIGN_LABELS = {
    "train_size": "training set of N i.i.d. samples",
    "with_replacement": "minibatch, with replacement",
    "without_replacement": "minibatch, without replacement",
}
PROBLEM_LABELS = {
    "gaussian_linear": "Gaussian linear model (synthetic, d=10, N=1000)",
    "logistic": "Logistic regression (breast cancer, N=569)",
}
POINT_LABELS = {"w_star": "at w*", "far": "far from w*"}
# distance of the "far" point from w*: F rises from 0.5 to 8.3 (synthetic), 0.10 to 0.49 (logistic)
FAR_DISTANCE = {"gaussian_linear": 2.0, "logistic": 5.0}
DIRECTION_SEED = 2024  # seed of the fixed unit direction from w* to the far point
SYNTHETIC_SEED = 0  # seed of w_true and of the synthetic fixed training set
SYNTHETIC_TRAIN_SIZE = 1000
DISTRIBUTION_MINIBATCH = 32  # the minibatch shown in the distributions figure
N_BOOT = 1000
SLOPE_INTERVAL = (-1.1, -0.9)
RATIO_INTERVAL = (0.9, 1.1)
BIAS_INTERVAL = (-0.02, 0.02)
SOURCE = (
    "course slides (Training Neural Networks: Optimization); Cochran (1977) Sampling "
    "Techniques, Thm 2.1-2.2"
)


@dataclass(frozen=True)
class GaussianLinear:
    """The synthetic data distribution: x ~ N(0, diag(lambda)), y = x . w_true + noise * z.

    With div(w) = (x . w - y)^2 / 2 and e = w - w_true, the residual r = x . e - noise z is
    N(0, s^2) with s^2 = e' Sigma e + noise^2, so the risk is F(w) = s^2 / 2 and
    var(div) = var(r^2) / 4 = s^4 / 2. The gradient r x has mean Sigma e and, by Isserlis'
    theorem E[(a.x)^2 x x'] = (a' Sigma a) Sigma + 2 Sigma a a' Sigma, covariance
    s^2 Sigma + Sigma e e' Sigma, so tr Cov = s^2 tr Sigma + ||Sigma e||^2. A diagonal Sigma
    loses no generality: every quantity here is invariant under rotations of x.
    """

    eigenvalues: np.ndarray
    noise: float
    w_true: np.ndarray

    @property
    def dim(self) -> int:
        return self.eigenvalues.size

    def draw(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """n i.i.d. samples (X (n, d), y (n,)) from ``rng``."""
        z = rng.standard_normal((n, self.dim + 1))
        X = z[:, :-1] * np.sqrt(self.eigenvalues)
        return X, X @ self.w_true + self.noise * z[:, -1]

    def moments(self, w: np.ndarray) -> dict:
        """Exact risk F(w), var(div), tr Cov(grad div) and mean gradient E grad div at w."""
        e = w - self.w_true
        sigma_e = self.eigenvalues * e
        s2 = float(e @ sigma_e) + self.noise**2
        return {
            "risk": s2 / 2,
            "var_div": s2**2 / 2,
            "trace_cov": s2 * float(self.eigenvalues.sum()) + float(sigma_e @ sigma_e),
            "mean_grad": sigma_e,
        }


@dataclass(frozen=True)
class Population:
    """A problem of the study: its fixed training set and, if synthetic, its data distribution.

    ``training`` is the finite training set minibatches are drawn from; ``distribution`` is
    None for real data, whose population is the training set itself. ``w_star`` minimises the
    population risk (w_true for the Gaussian model, the certified optimum for real data).
    """

    name: str
    training: Problem
    w_star: np.ndarray
    distribution: GaussianLinear | None


@functools.lru_cache(maxsize=8)
def population(name: str) -> Population:
    """The study's problem ``name`` ('gaussian_linear' or 'logistic'), built once per process."""
    if name == "gaussian_linear":
        rng = np.random.default_rng(SYNTHETIC_SEED)
        dist = GaussianLinear(np.logspace(0.0, 1.0, 10), 1.0, rng.standard_normal(10))
        X, y = dist.draw(rng, SYNTHETIC_TRAIN_SIZE)
        return Population(name, LeastSquares(X, y, name=name), dist.w_true, dist)
    if name == "logistic":
        problem = get_problem("logistic")
        return Population(name, problem, problem.w_star, None)
    raise ValueError(
        f"The 'problem' parameter of the variance study must be one of {sorted(PROBLEM_LABELS)}. "
        f"Got {name!r} instead."
    )


def evaluation_point(pop: Population, distance: float) -> np.ndarray:
    """w* + distance * u, with u a fixed unit direction drawn from ``DIRECTION_SEED``."""
    u = np.random.default_rng(DIRECTION_SEED).standard_normal(pop.w_star.size)
    return pop.w_star + distance * u / np.linalg.norm(u)


def per_sample(pop: Population, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """div_i(w) (N,) and grad div_i(w) (N, d) over the fixed training set."""
    idx = np.arange(pop.training.n_samples)[None, :]
    return pop.training.sample_losses(w[None], idx)[0], pop.training.sample_grads(w[None], idx)[0]


def reference(pop: Population, w: np.ndarray, design: str) -> dict:
    """Exact expectation and per-sample variances of the estimator ``design`` at w.

    Keys: ``risk`` (E of the estimator), ``var_div``, ``trace_cov``, ``population_size``
    (N for sampling without replacement, else None) and ``replace``.
    """
    if design == "train_size" and pop.distribution is not None:
        m = pop.distribution.moments(w)
        return {**m, "population_size": None, "replace": True}
    div, grads = per_sample(pop, w)
    return {
        "risk": float(div.mean()),
        "var_div": population_variance(div),
        "trace_cov": population_total_variance(grads),
        "mean_grad": grads.mean(axis=0),
        "population_size": pop.training.n_samples if design == "without_replacement" else None,
        "replace": design != "without_replacement",
    }


def predicted_variance(ref: dict, sizes: np.ndarray, key: str) -> np.ndarray:
    """var(div)/n, or (N - n)/(N - 1) var(div)/n without replacement (``key``: per-sample var)."""
    return variance_of_sample_mean(
        ref[key], sizes, population_size=ref["population_size"], replace=ref["replace"]
    )


def size_grid(size_max: int, size_base: int) -> np.ndarray:
    """1, base, base^2, ... up to ``size_max``."""
    return size_base ** np.arange(int(np.floor(np.log(size_max) / np.log(size_base) + 1e-9)) + 1)


# ---- grid and compute ------------------------------------------------------------------------
def conditions(scale: Scale) -> list[dict]:
    """Every problem at w* and far from it, sizes 1, 2, 4, ..., 512.

    A quick run keeps the problems at w* only, with sizes 1, 4, 16, 64, 256.
    """
    sizes = {"size_max": scale.pick(512, 256), "size_base": scale.pick(2, 4)}
    points = scale.pick(tuple(POINT_LABELS), ("w_star",))
    return [
        {"problem": name, "point": point, "distance": FAR_DISTANCE[name] if point == "far" else 0.0}
        | sizes
        for name in PROBLEM_LABELS
        for point in points
    ]


def _segment_estimates(
    idx: np.ndarray, sizes: np.ndarray, div: np.ndarray, centred_grads: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Minibatch losses and ||g - grad f||^2 for concatenated index segments.

    ``idx`` (R, sum(sizes)) holds, for each replicate, the indices of every minibatch one after
    the other (sizes[0] indices, then sizes[1], ...). Returns two (R, S) arrays. Replicates are
    processed in blocks of at most ~2 million gathered values; each row is reduced on its own,
    so a replicate's numbers do not depend on which other replicates share its chunk.
    """
    n_rep = idx.shape[0]
    losses = np.empty((n_rep, sizes.size))
    sqdev = np.empty((n_rep, sizes.size))
    for j, (b, end) in enumerate(zip(sizes, np.cumsum(sizes))):
        block = max(1, 2_000_000 // (int(b) * centred_grads.shape[1]))
        for start in range(0, n_rep, block):
            rows = idx[start : start + block, end - b : end]
            losses[start : start + block, j] = div[rows].sum(axis=1) / b
            dev = centred_grads[rows].sum(axis=1) / b
            sqdev[start : start + block, j] = np.einsum("rd,rd->r", dev, dev)
    return losses, sqdev


def _fresh_estimates(
    dist: GaussianLinear, w: np.ndarray, rng: np.random.Generator, sizes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Empirical risk and ||g - E g||^2 of fresh training sets of each size, from one draw."""
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    X, y = dist.draw(rng, int(sizes.sum()))
    res = X @ w - y
    losses = 0.5 * np.add.reduceat(res**2, starts) / sizes
    dev = np.add.reduceat(res[:, None] * X, starts, axis=0) / sizes[:, None]
    dev -= dist.moments(w)["mean_grad"]
    return losses, np.einsum("sd,sd->s", dev, dev)


def compute(condition: dict, seed: int, replicate_ids) -> pd.DataFrame:
    """One Monte Carlo draw of every estimator at every size, per replicate.

    Replicate r draws from its own stream (:func:`convstudy.engine.replicate_generators`), in
    a fixed order: the training sets of every size, then the minibatches with replacement,
    then those without replacement; so its draws do not depend on the other replicates.
    Columns: ``replicate, design, size, loss, grad_sqdev`` with ``grad_sqdev`` = ||g - E g||^2.
    """
    pop = population(condition["problem"])
    w = evaluation_point(pop, condition["distance"])
    sizes = size_grid(condition["size_max"], condition["size_base"])
    n_train = pop.training.n_samples
    if sizes.max() >= n_train:
        raise ValueError(
            f"The 'size_max' entry of a variance condition must be below the training-set size "
            f"{n_train}. Got {condition['size_max']} instead."
        )
    div, grads = per_sample(pop, w)
    centred = grads - grads.mean(axis=0)
    dist = pop.distribution
    ids = np.asarray(replicate_ids)
    rngs, _ = replicate_generators(seed, ids)
    n_rep, total = ids.size, int(sizes.sum())
    idx = {d: np.empty((n_rep, total), dtype=np.int64) for d in DESIGNS}
    fresh = (np.empty((n_rep, sizes.size)), np.empty((n_rep, sizes.size)))
    ends = np.cumsum(sizes)
    orders = np.tile(np.arange(n_train), (sizes.size, 1))
    for r, rng in enumerate(rngs):
        if dist is None:  # i.i.d. from the empirical distribution of the dataset
            idx["train_size"][r] = rng.integers(0, n_train, total)
        else:  # fresh training sets from the Gaussian linear model
            fresh[0][r], fresh[1][r] = _fresh_estimates(dist, w, rng, sizes)
        idx["with_replacement"][r] = rng.integers(0, n_train, total)
        perms = rng.permuted(orders, axis=1)  # one independent permutation per size
        for j, (b, end) in enumerate(zip(sizes, ends)):
            idx["without_replacement"][r, end - b : end] = perms[j, :b]
    parts = []
    for design in DESIGNS:
        if design == "train_size" and dist is not None:
            losses, sqdev = fresh
        else:
            losses, sqdev = _segment_estimates(idx[design], sizes, div, centred)
        for j, b in enumerate(sizes):
            parts.append(
                pd.DataFrame(
                    {
                        "replicate": ids,
                        "design": design,
                        "size": int(b),
                        "loss": losses[:, j],
                        "grad_sqdev": sqdev[:, j],
                    }
                )
            )
    return pd.concat(parts, ignore_index=True)


# ---- analysis --------------------------------------------------------------------------------
def _matrix(part: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    table = part.pivot(index="replicate", columns="size", values=column)
    return table.columns.to_numpy(dtype=float), table.to_numpy(dtype=float)


def _cell_estimates(part: pd.DataFrame, ref: dict, seed: int) -> dict:
    """Variances, predictions, ratios, bootstrap replicates and slopes of one design."""
    sizes, losses = _matrix(part, "loss")
    _, sq = _matrix(part, "grad_sqdev")
    n_rep = losses.shape[0]
    out = {"sizes": sizes, "losses": losses, "n": n_rep}
    var, lo, hi = variance_ci(losses)
    gmean, _, glo, ghi, _ = mean_sem_ci(sq)
    boot_loss, boot_grad = bootstrap_dispersion(losses, sq, n_boot=N_BOOT, seed=seed)
    boots = {"loss": boot_loss, "gradient": boot_grad}
    corr = (
        finite_population_correction(ref["population_size"], sizes)
        if ref["population_size"]
        else None
    )
    for quantity, est, low, high, key in (
        ("loss", var, lo, hi, "var_div"),
        ("gradient", gmean, glo, ghi, "trace_cov"),
    ):
        pred = predicted_variance(ref, sizes, key)
        out[quantity] = pd.DataFrame(
            {
                "size": sizes.astype(int),
                "measured": est,
                "ci_low": low,
                "ci_high": high,
                "predicted": pred,
                "ratio": est / pred,
                "ratio_low": low / pred,
                "ratio_high": high / pred,
                "ratio_to_no_fpc": est / (ref[key] / sizes),
                "n": n_rep,
            }
        )
        out[f"slope_{quantity}"] = _slope_columns(
            fit_variance_slope(sizes, est, boots[quantity], n=n_rep)
        )
        if corr is not None:
            out[f"slope_{quantity}_fpc"] = _slope_columns(
                fit_variance_slope(sizes, est, boots[quantity], n=n_rep, correction=corr)
            )
    out["boots_loss"] = boots["loss"]
    pred_loss = predicted_variance(ref, sizes, "var_div")
    out["z"] = (losses - ref["risk"]) / np.sqrt(pred_loss)  # standardized deviations (R, S)
    return out


def _slope_columns(fit: SlopeFit) -> dict:
    e = fit.estimate
    return {"slope": e.value, "ci_low": e.ci_low, "ci_high": e.ci_high, "se": fit.se,
            **fit.details}  # fmt: skip


def _slope_row(problem, point, design, quantity, fit, s, n) -> dict:
    return {
        "problem": problem,
        "point": point,
        "design": design,
        "quantity": quantity,
        "fit": fit,
        "slope": s["slope"],
        "ci_low": s["ci_low"],
        "ci_high": s["ci_high"],
        "se": s["se"],
        "expected": -1.0,
        "size_min": s["size_min"],
        "size_max": s["size_max"],
        "n_sizes": s["n_sizes"],
        "n": n,
    }


def analyze(runs: pd.DataFrame, scale: Scale) -> Analysis:
    var_rows, slope_rows, bias_rows, single_rows, checks, findings = [], [], [], [], [], []
    cells = {}
    keys = runs[["problem", "point", "distance"]].drop_duplicates().itertuples(index=False)
    for k, (problem, point, distance) in enumerate(keys):
        pop = population(problem)
        w = evaluation_point(pop, distance)
        cell = runs[(runs["problem"] == problem) & (runs["point"] == point)]
        est = {}
        for j, design in enumerate(DESIGNS):
            ref = reference(pop, w, design)
            est[design] = e = _cell_estimates(
                cell[cell["design"] == design], ref, seed=100 * k + 10 * j
            )
            e["ref"] = ref
            for quantity in ("loss", "gradient"):
                var_rows.append(
                    e[quantity].assign(
                        problem=problem, point=point, design=design, quantity=quantity
                    )
                )
                slope_rows.append(
                    _slope_row(
                        problem, point, design, quantity, "raw", e[f"slope_{quantity}"], e["n"]
                    )
                )
                if f"slope_{quantity}_fpc" in e:
                    slope_rows.append(
                        _slope_row(
                            problem,
                            point,
                            design,
                            quantity,
                            "FPC-corrected: variance / ((N-b)/(N-1))",
                            e[f"slope_{quantity}_fpc"],
                            e["n"],
                        )
                    )
            z = e["z"].ravel()
            m_ci = mean_ci(z)
            m, lo, hi, n = m_ci.value, m_ci.ci_low, m_ci.ci_high, m_ci.n
            bias_rows.append(
                {
                    "problem": problem,
                    "point": point,
                    "design": design,
                    "mean_standardized_bias": float(m),
                    "ci_low": float(lo),
                    "ci_high": float(hi),
                    "mean_loss_minus_expected": float(np.mean(e["losses"] - ref["risk"])),
                    "expected_loss": ref["risk"],
                    "n_draws": int(n),
                    "n": e["n"],
                }
            )
        cells[(problem, point)] = est
        z_all = np.concatenate([est[d]["z"].ravel() for d in DESIGNS])
        bias_all = mean_ci(z_all)
        bias_rows.append(
            {
                "problem": problem,
                "point": point,
                "design": "all",
                "mean_standardized_bias": bias_all.value,
                "ci_low": bias_all.ci_low,
                "ci_high": bias_all.ci_high,
                "mean_loss_minus_expected": np.nan,
                "expected_loss": np.nan,
                "n_draws": bias_all.n,
                "n": est["train_size"]["n"],
            }
        )
        single_rows.append(_single_sample_row(problem, point, est["train_size"]))
        checks += _checks(problem, point, est, bias_all)
        findings += _findings(problem, point, est)
    findings.append(
        "One sample's divergence has N times the variance of the empirical risk: "
        "var(single sample) / var(empirical risk at N) = "
        + "; ".join(
            f"{r['var_single_over_var_risk']:.0f} [{r['ratio_ci_low']:.0f}, "
            f"{r['ratio_ci_high']:.0f}] at N = {r['N_max']} ({r['problem']}, {r['point']})"
            for r in single_rows
        )
        + "."
    )
    variance_table = pd.concat(var_rows, ignore_index=True)
    front = ["problem", "point", "design", "quantity"]
    variance_table = variance_table[front + [c for c in variance_table if c not in front]]
    tables = {
        "variance_by_size": variance_table,
        "slopes": pd.DataFrame(slope_rows),
        "single_sample": pd.DataFrame(single_rows),
        "bias": pd.DataFrame(bias_rows),
    }
    figures = {
        "variance_vs_n": _figure_vs_n(cells),
        "variance_vs_b": _figure_vs_b(cells),
        "distributions": _figure_distributions(cells),
    }
    captions = {
        "variance_by_size": "Measured variance (loss) or tr Cov (gradient) of each estimator at "
        "each size, the exact prediction var(div)/n (with (N-n)/(N-1) without replacement), and "
        "their ratio with 95% CI; ratio_to_no_fpc divides by var(div)/n without the FPC.",
        "slopes": "Least-squares slopes of log variance against log size with 95% bootstrap CIs "
        "over replicates (expected -1); without replacement also after dividing by the FPC.",
        "single_sample": "One sample's divergence: exact var(div), its Monte Carlo estimate "
        "(N=1), and var(div)/var(empirical risk at the largest N), expected to equal N.",
        "bias": "Mean of (estimate - expected divergence) in units of the estimator's predicted "
        "standard deviation, with 95% t-CI; 'all' pools every design and size.",
        "variance_vs_n": "Variance of the empirical risk (top) and tr Cov of the empirical "
        "gradient (bottom) against training-set size N, with the prediction var(div)/N.",
        "variance_vs_b": "Variance of the minibatch loss (top row) and tr Cov of the minibatch "
        "gradient (middle row) against b, with and without replacement, with both predictions; "
        "bottom row: measured / (per-sample variance / b), which follows (N-b)/(N-1) without "
        "replacement.",
        "distributions": "Distributions of one sample's divergence, a minibatch loss and the "
        "empirical risk of the largest training set (log scale), with the expected divergence.",
    }
    return Analysis(tables, figures, captions, findings, checks)


def _single_sample_row(problem, point, e) -> dict:
    sizes, boots = e["sizes"], e["boots_loss"]
    loss = e["loss"]
    ratio_boot = boots[:, 0] / boots[:, -1]
    point_ratio = loss["measured"].iloc[0] / loss["measured"].iloc[-1]
    q = np.nanquantile(ratio_boot, [0.025, 0.975])
    return {
        "problem": problem,
        "point": point,
        "var_div_exact": e["ref"]["var_div"],
        "var_single_measured": loss["measured"].iloc[0],
        "ci_low": loss["ci_low"].iloc[0],
        "ci_high": loss["ci_high"].iloc[0],
        "N_max": int(sizes[-1]),
        "var_single_over_var_risk": point_ratio,
        "ratio_ci_low": q[0],
        "ratio_ci_high": q[1],
        "n": e["n"],
    }


def _check(
    id_, statement, quantity, expected, interval, estimate, low, high, n, figure, table, notes=""
) -> Check:
    return Check(
        id=id_,
        claim=1,
        statement=statement,
        source=SOURCE,
        quantity=quantity,
        expected=expected,
        expected_low=interval[0],
        expected_high=interval[1],
        estimate=float(estimate),
        ci_low=float(low),
        ci_high=float(high),
        n_replicates=int(n),
        study="variance",
        figure=figure,
        table=table,
        notes=notes,
    )


def _checks(problem, point, est, bias_all) -> list[Check]:
    tag = f"{problem}-{point}"
    where = f"{PROBLEM_LABELS[problem]}, {POINT_LABELS[point]}"
    n = est["train_size"]["n"]
    slope_n = est["train_size"]["slope_loss"]
    slope_b = est["with_replacement"]["slope_loss"]
    slope_gb = est["with_replacement"]["slope_gradient"]
    wo = est["without_replacement"]
    last = wo["loss"].iloc[-1]
    expected_slope = "slope -1, in [-1.1, -0.9]"
    return [
        _check(
            f"1a-slope-N-{tag}",
            f"Var(empirical risk) = var(div)/N ({where})",
            "log-log slope of Var(empirical risk) against N",
            expected_slope,
            SLOPE_INTERVAL,
            slope_n["slope"],
            slope_n["ci_low"],
            slope_n["ci_high"],
            n,
            "figures/variance_vs_n.png",
            "tables/slopes.md",
            f"N = {slope_n['size_min']:g}..{slope_n['size_max']:g}",
        ),
        _check(
            f"1b-slope-b-{tag}",
            f"Var(minibatch loss) = var(div)/b, with replacement ({where})",
            "log-log slope of Var(minibatch loss) against b (with replacement)",
            expected_slope,
            SLOPE_INTERVAL,
            slope_b["slope"],
            slope_b["ci_low"],
            slope_b["ci_high"],
            n,
            "figures/variance_vs_b.png",
            "tables/slopes.md",
            f"b = {slope_b['size_min']:g}..{slope_b['size_max']:g}",
        ),
        _check(
            f"1c-fpc-ratio-{tag}",
            f"Without replacement Var(minibatch loss) = (N-b)/(N-1) var(div)/b ({where})",
            f"measured / predicted variance at the largest b = {int(last['size'])}",
            "ratio 1, in [0.9, 1.1]",
            RATIO_INTERVAL,
            last["ratio"],
            last["ratio_low"],
            last["ratio_high"],
            n,
            "figures/variance_vs_b.png",
            "tables/variance_by_size.md",
            f"without the FPC the ratio would be {last['ratio_to_no_fpc']:.3f}",
        ),
        _check(
            f"1d-unbiased-{tag}",
            f"The empirical risk and minibatch losses are unbiased ({where})",
            "mean (estimate - expected divergence) / predicted sd, pooled over designs and sizes",
            "0, within 0.02 predicted sd",
            BIAS_INTERVAL,
            bias_all.value,
            bias_all.ci_low,
            bias_all.ci_high,
            n,
            "figures/distributions.png",
            "tables/bias.md",
            f"{bias_all.n} draws",
        ),
        _check(
            f"1e-grad-slope-b-{tag}",
            f"tr Cov(minibatch gradient) = tr Cov(grad div)/b ({where})",
            "log-log slope of tr Cov(minibatch gradient) against b (with replacement)",
            expected_slope,
            SLOPE_INTERVAL,
            slope_gb["slope"],
            slope_gb["ci_low"],
            slope_gb["ci_high"],
            n,
            "figures/variance_vs_b.png",
            "tables/slopes.md",
        ),
    ]


def _findings(problem, point, est) -> list[str]:
    where = f"{PROBLEM_LABELS[problem]}, {POINT_LABELS[point]}"
    s_n = est["train_size"]["slope_loss"]
    s_b = est["with_replacement"]["slope_loss"]
    s_fpc = est["without_replacement"]["slope_loss_fpc"]
    last = est["without_replacement"]["loss"].iloc[-1]
    return [
        f"{where}: Var(empirical risk) falls with N at slope {s_n['slope']:.3f} "
        f"[{s_n['ci_low']:.3f}, {s_n['ci_high']:.3f}], the minibatch loss with b at slope "
        f"{s_b['slope']:.3f} [{s_b['ci_low']:.3f}, {s_b['ci_high']:.3f}] with replacement and "
        f"{s_fpc['slope']:.3f} [{s_fpc['ci_low']:.3f}, {s_fpc['ci_high']:.3f}] without "
        f"replacement after dividing by the FPC; at b = {int(last['size'])} without replacement "
        f"the measured/predicted ratio is {last['ratio']:.3f} [{last['ratio_low']:.3f}, "
        f"{last['ratio_high']:.3f}] with the FPC and {last['ratio_to_no_fpc']:.3f} without it."
    ]


# ---- figures ---------------------------------------------------------------------------------
_QUANTITY_LABELS = {"loss": "Var(loss estimate)", "gradient": "tr Cov(gradient estimate)"}
_PER_SAMPLE = {"loss": "var(div)", "gradient": "tr Cov(grad div)"}
_DESIGN_STYLE = {  # colour, marker, line style of the prediction
    "train_size": ("C0", "o", "--"),
    "with_replacement": ("C0", "o", "--"),
    "without_replacement": ("C3", "s", ":"),
}
_ERRORBAR_NOTE = (
    "markers: Monte Carlo estimate, bars: 95% CI over replicates (a CI reaching 0 is drawn "
    "to estimate/10); lines: exact prediction"
)


def _size_axis(ax, sizes, label: str) -> None:
    """Log2 x axis with the grid's sizes as plain integer tick labels."""
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [str(int(s)) for s in sizes], minor=False)
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.tick_params(axis="x", labelsize="x-small")
    ax.set_xlabel(label)


def _title(ax, key) -> None:
    ax.set_title(f"{PROBLEM_LABELS[key[0]]}\n{POINT_LABELS[key[1]]}", fontsize="small")


def _errorbars(ax, table, y, low, high, color, marker, label, shift=1.0, log=False):
    """Markers with CI bars; on a log axis a CI reaching 0 is drawn down to estimate/10."""
    lows = table[low].to_numpy(float)
    if log:
        lows = np.where(lows > 0, lows, table[y].to_numpy(float) / 10)
    err = np.vstack([table[y] - lows, table[high] - table[y]])
    ax.errorbar(
        table["size"] * shift,
        table[y],
        yerr=np.maximum(err, 0),
        fmt=marker,
        color=color,
        ms=4,
        capsize=2,
        lw=1,
        label=label,
    )


def _variance_panel(ax, cells, key, designs, quantity) -> None:
    for design in designs:
        e = cells[key][design]
        t = e[quantity]
        color, marker, ls = _DESIGN_STYLE[design]
        _errorbars(
            ax,
            t,
            "measured",
            "ci_low",
            "ci_high",
            color,
            marker,
            f"{DESIGN_LABELS[design]} (R={e['n']})",
            log=True,
        )
        n_sym = "N" if design == "train_size" else "b"
        fpc = "(N-b)/(N-1) " if design == "without_replacement" else ""
        ax.plot(
            t["size"],
            t["predicted"],
            color=color,
            ls=ls,
            lw=1.2,
            label=f"predicted {fpc}{_PER_SAMPLE['loss']}/{n_sym} "
            f"(gradient: {_PER_SAMPLE['gradient']})",
        )
    ax.set_yscale("log")
    ax.set_ylabel(_QUANTITY_LABELS[quantity])


def _figure_vs_n(cells: dict):
    keys = list(cells)
    fig, axes = new_figure(len(keys), 2, width=3.6, height=2.9)
    axes = np.asarray(axes).reshape(2, len(keys))
    for col, key in enumerate(keys):
        for row, quantity in enumerate(("loss", "gradient")):
            ax = axes[row, col]
            _variance_panel(ax, cells, key, ("train_size",), quantity)
            _size_axis(ax, cells[key]["train_size"]["sizes"], "training-set size N")
            if row == 0:
                _title(ax, key)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        loc="outside lower center",
        ncols=2,
        fontsize="small",
        title=_ERRORBAR_NOTE,
        title_fontsize="small",
    )
    return fig


def _figure_vs_b(cells: dict):
    designs = ("with_replacement", "without_replacement")
    keys = list(cells)
    fig, axes = new_figure(len(keys), 3, width=3.6, height=2.8)
    axes = np.asarray(axes).reshape(3, len(keys))
    for col, key in enumerate(keys):
        sizes = cells[key]["with_replacement"]["sizes"]
        for row, quantity in enumerate(("loss", "gradient")):
            _variance_panel(axes[row, col], cells, key, designs, quantity)
            _size_axis(axes[row, col], sizes, "minibatch size b")
        _title(axes[0, col], key)
        ax = axes[2, col]
        for design in designs:
            color, marker, _ = _DESIGN_STYLE[design]
            for quantity, shift, mk in (("loss", 0.93, marker), ("gradient", 1.07, "^")):
                t = cells[key][design][quantity]
                base = t["measured"] / t["ratio_to_no_fpc"]  # var(div)/b
                ratio = t.assign(
                    r=t["ratio_to_no_fpc"], lo=t["ci_low"] / base, hi=t["ci_high"] / base
                )
                _errorbars(
                    ax,
                    ratio,
                    "r",
                    "lo",
                    "hi",
                    color,
                    mk,
                    f"{quantity}: {DESIGN_LABELS[design]}",
                    shift=shift,
                )
        n_train = population(key[0]).training.n_samples
        grid = np.unique(np.round(np.geomspace(1, sizes.max(), 100)))
        ax.plot(
            grid,
            finite_population_correction(n_train, grid),
            color="C3",
            ls=":",
            lw=1.2,
            label="(N-b)/(N-1), N = training-set size",
        )
        ax.axhline(1.0, color="C0", ls="--", lw=1.2, label="1 (with replacement)")
        _size_axis(ax, sizes, "minibatch size b")
        ax.set_ylabel("measured / (per-sample var / b)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    ratio_handles, ratio_labels = axes[2, 0].get_legend_handles_labels()
    fig.legend(
        handles + ratio_handles,
        labels + [f"bottom row: {label}" for label in ratio_labels],
        loc="outside lower center",
        ncols=2 if len(keys) < 4 else 3,
        fontsize="small",
        title=_ERRORBAR_NOTE + ".\nBottom row: measured / (per-sample variance / b); "
        "circles and squares: loss, triangles: gradient",
        title_fontsize="small",
    )
    return fig


def _figure_distributions(cells: dict):
    import seaborn as sns

    keys = list(cells)
    fig, axes = new_figure(len(keys), 1, width=3.6, height=3.3)
    axes = np.atleast_1d(axes)
    for ax, key in zip(axes, keys):
        est = cells[key]
        train, mini = est["train_size"], est["without_replacement"]
        j_mini = int(np.argmin(np.abs(mini["sizes"] - DISTRIBUTION_MINIBATCH)))
        groups = {
            "one sample\n(N=1)": train["losses"][:, 0],
            f"minibatch\n(b={int(mini['sizes'][j_mini])})": mini["losses"][:, j_mini],
            f"training set\n(N={int(train['sizes'][-1])})": train["losses"][:, -1],
        }
        frame = pd.concat(
            [pd.DataFrame({"estimator": k, "loss": v}) for k, v in groups.items()],
            ignore_index=True,
        )
        frame = frame[frame["loss"] > 0]
        sns.violinplot(
            data=frame,
            x="estimator",
            y="loss",
            hue="estimator",
            log_scale=True,
            ax=ax,
            cut=0,
            inner="quart",
            density_norm="width",
            legend=False,
            palette="crest",
        )
        ax.axhline(train["ref"]["risk"], color="black", ls="--", lw=1)
        ax.set_ylim(np.quantile(frame["loss"], 0.005) / 1.5, frame["loss"].max() * 1.5)
        _title(ax, key)
        ax.set_xlabel("")
        ax.tick_params(axis="x", labelsize="x-small")
        ax.set_ylabel("loss estimate (log scale)")
    fig.legend(
        [matplotlib.lines.Line2D([], [], color="black", ls="--", lw=1)],
        [
            f"expected divergence F(w); R={cells[keys[0]]['train_size']['n']} draws per "
            "violin, dashed lines inside: quartiles; the axis starts near the 0.5% quantile"
        ],
        loc="outside lower center",
        fontsize="small",
    )
    return fig


study = Study(
    name="variance",
    title="Variance of the empirical risk and of minibatch estimates (claim 1)",
    description=__doc__.split("\n\n", 1)[1].strip(),
    conditions=conditions,
    compute=compute,
    analyze=analyze,
    claims=(1,),
    replicates=4000,
    quick_replicates=1000,
)

__all__ = ["study", "GaussianLinear", "population", "reference", "compute"]
