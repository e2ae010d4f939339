"""Claim 1: the empirical risk is unbiased with variance var(div)/N; minibatches follow var(div)/b.

At a fixed w (the population minimiser w*, and a point at a fixed distance from it) each
replicate is one Monte Carlo draw of three estimators, at every size of a log-spaced grid:

- ``train_size``: the empirical risk (and gradient) of N i.i.d. samples from the data
  distribution (``GaussianLinearModel``; for real data the dataset's empirical distribution).
  Prediction: var(div)/N, var(div) the variance of one sample's divergence.
- ``with_replacement``: b i.i.d. indices into a fixed training set (the synthetic problem's 1000
  samples; for real data the whole dataset: ``train_size`` drawn again). Prediction: var(div)/b,
  var(div) the training set's population variance (ddof 0).
- ``without_replacement``: b distinct indices: (N - b)/(N - 1) var(div)/b (Cochran 1977,
  "Sampling Techniques", Thm 2.2).

The gradient estimates follow the same predictions with tr Cov(grad div) for var(div); each
replicate stores ||g - E g||^2, whose mean is tr Cov(g) as every estimator here is unbiased. The
predictions use exact population moments (:mod:`convstudy.theory.sampling_variance`), so the
ratio measured/predicted carries only Monte Carlo error.
"""

from __future__ import annotations

import functools

import matplotlib.lines
import numpy as np
import pandas as pd

from convstudy import figures as fg
from convstudy.claims import Check
from convstudy.engine import replicate_generators
from convstudy.problems import LeastSquares, get_problem
from convstudy.stats.estimate import Estimate, derived_seed
from convstudy.stats.means import mean_ci
from convstudy.stats.variance import variance_against_size
from convstudy.study import Analysis, Scale, Study
from convstudy.theory import sampling_variance as sv

# fmt: off
DESIGNS = ("train_size", "with_replacement", "without_replacement")
DESIGN_LABELS = dict(zip(DESIGNS, ("training set of N i.i.d. samples", "minibatch, with "
                                   "replacement", "minibatch, without replacement")))
PROBLEM_LABELS = {"gaussian_linear": "Gaussian linear model (synthetic, d=10, N=1000)",
                  "logistic": "Logistic regression (breast cancer, N=569)"}
POINT_LABELS = {"w_star": "at w*", "far": "far from w*"}
# distance of the "far" point from w*: F rises from 0.5 to 8.3 (synthetic), 0.10 to 0.49 (logistic)
FAR_DISTANCE = {"gaussian_linear": 2.0, "logistic": 5.0}
DIRECTION_SEED = 2024  # the fixed unit direction from w* to the far point (part of the design)
SYNTHETIC_SEED, SYNTHETIC_TRAIN_SIZE = 0, 1000  # w_true and the synthetic fixed training set
DISTRIBUTION_MINIBATCH, N_BOOT = 32, 1000  # the minibatch shown in the distributions figure
SLOPE, RATIO, BIAS = (-1.1, -0.9), (0.9, 1.1), (-0.02, 0.02)  # expected intervals of the checks
SOURCE = ("course slides (Training Neural Networks: Optimization); Cochran (1977) Sampling "
          "Techniques, Thm 2.1-2.2")
# quantity: (per-sample variance, axis label, column of the runs)
QUANTITIES = {"loss": ("var_div", "Var(loss estimate)", "loss"),
              "gradient": ("trace_cov", "tr Cov(gradient estimate)", "grad_sqdev")}
FITS = {"raw": "raw", "corrected": "FPC-corrected: variance / ((N-b)/(N-1))"}


@functools.lru_cache(maxsize=8)
def population(name: str):
    """(fixed training set, w*, data distribution or None) of problem ``name``, once per process."""
    if name == "gaussian_linear":
        rng = np.random.default_rng(SYNTHETIC_SEED)
        dist = sv.GaussianLinearModel(np.logspace(0.0, 1.0, 10), 1.0, rng.standard_normal(10))
        return LeastSquares(*dist.draw(rng, SYNTHETIC_TRAIN_SIZE), name=name), dist.w_true, dist
    if name == "logistic":
        return get_problem(name), get_problem(name).w_star, None
    raise ValueError(f"The 'problem' of a variance condition must be one of "
                     f"{sorted(PROBLEM_LABELS)}. Got {name!r} instead.")


def evaluation_point(name: str, distance: float) -> np.ndarray:
    """w* + distance * u, with u a fixed unit direction drawn from ``DIRECTION_SEED``."""
    w_star = population(name)[1]
    u = np.random.default_rng(DIRECTION_SEED).standard_normal(w_star.size)
    return w_star + distance * u / np.linalg.norm(u)


def reference(name: str, w: np.ndarray, design: str) -> dict:
    """Exact ``risk`` (expectation of the estimator), ``var_div``, ``trace_cov``, ``mean_grad``
    and the sampling scheme (``population_size`` for sampling without replacement, ``replace``)."""
    training, _, dist = population(name)
    if design == "train_size" and dist is not None:
        return dist.moments(w) | {"population_size": None, "replace": True}
    div, grads = sv.per_sample_values(training, w)
    return {"risk": float(div.mean()), "var_div": sv.population_variance(div),
            "trace_cov": sv.population_total_variance(grads), "mean_grad": grads.mean(axis=0),
            "population_size": training.n_samples if design == DESIGNS[2] else None,
            "replace": design != DESIGNS[2]}


def predicted_variance(ref: dict, sizes: np.ndarray, key: str = "var_div") -> np.ndarray:
    """var/n, or (N - n)/(N - 1) var/n without replacement (``key``: the per-sample variance)."""
    return sv.variance_of_sample_mean(ref[key], sizes, population_size=ref["population_size"],
                                      replace=ref["replace"])


def conditions(scale: Scale) -> list[dict]:
    """Both problems at w* and far from it, sizes 1, 2, 4, ..., 512 (quick: at w*, 1..256 by 4)."""
    sizes = {"size_max": scale.pick(512, 256), "size_base": scale.pick(2, 4)}
    return [{"problem": name, "point": point, "distance": FAR_DISTANCE[name] * (point == "far")}
            | sizes for name in PROBLEM_LABELS for point in scale.pick(POINT_LABELS, ["w_star"])]


def compute(condition: dict, seed: int, replicate_ids) -> pd.DataFrame:
    """One draw of every estimator at every size per replicate: columns ``replicate, design, size,
    loss, grad_sqdev`` (= ||g - E g||^2). Replicate r draws from its own stream, in a fixed
    order: the training sets of every size, the minibatches with replacement, then without."""
    training, _, dist = population(condition["problem"])
    w = evaluation_point(condition["problem"], condition["distance"])
    base, n = condition["size_base"], training.n_samples
    sizes = base ** np.arange(int(np.log(condition["size_max"]) / np.log(base) + 1e-9) + 1)
    if sizes.max() >= n:
        raise ValueError(f"The 'size_max' entry of a variance condition must be below the training-"
                         f"set size {n}. Got {condition['size_max']} instead.")
    div, grads = sv.per_sample_values(training, w)
    ids, total, ends = np.asarray(replicate_ids), int(sizes.sum()), np.cumsum(sizes)
    idx = {d: np.empty((ids.size, total), dtype=np.int64) for d in DESIGNS}
    fresh, orders = np.empty((2, ids.size, sizes.size)), np.tile(np.arange(n), (sizes.size, 1))
    for r, rng in enumerate(replicate_generators(seed, ids)[0]):
        if dist is None:  # i.i.d. from the empirical distribution of the dataset
            idx["train_size"][r] = rng.integers(0, n, total)
        else:  # fresh training sets from the Gaussian linear model
            fresh[:, r] = dist.fresh_estimates(rng, w, sizes)
        idx["with_replacement"][r] = rng.integers(0, n, total)
        perms = rng.permuted(orders, axis=1)  # one independent permutation per size
        for j, (b, end) in enumerate(zip(sizes, ends)):
            idx["without_replacement"][r, end - b : end] = perms[j, :b]
    parts = []
    for design in DESIGNS:
        draws = fresh if design == "train_size" and dist is not None else sv.segment_means(
            idx[design], sizes, div, grads - grads.mean(axis=0))
        parts.append(pd.DataFrame({"replicate": np.tile(ids, sizes.size), "design": design,
                                   "size": np.repeat(sizes, ids.size), "loss": draws[0].T.ravel(),
                                   "grad_sqdev": draws[1].T.ravel()}))
    return pd.concat(parts, ignore_index=True)


def analyze(runs: pd.DataFrame, scale: Scale) -> Analysis:
    rows, pooled = {"variance_by_size": [], "slopes": [], "single_sample": [], "bias": []}, {}
    for (problem, point, distance, design), part in runs.groupby(
            ["problem", "point", "distance", "design"], sort=False):
        ref, key = reference(problem, evaluation_point(problem, distance), design), {
            "problem": problem, "point": point, "design": design}
        sizes, N = np.sort(part["size"].unique()).astype(float), ref["population_size"]
        for quantity, (per_sample, _, column) in QUANTITIES.items():
            draws = part.pivot(index="replicate", columns="size", values=column).to_numpy(float)
            seed = derived_seed(scale.seed, "variance-slope", problem, point, design, quantity)
            cols, fits, boots = variance_against_size(
                draws, sizes, predicted_variance(ref, sizes, per_sample), seed=seed,
                kind="variance" if quantity == "loss" else "mean_square", n_boot=N_BOOT,
                correction=sv.finite_population_correction(N, sizes) if N else None)
            cols["ratio_to_no_fpc"] = cols["measured"] / (ref[per_sample] / sizes)
            rows["variance_by_size"].append(pd.DataFrame(key | {"quantity": quantity} | cols))
            for name, fit in fits.items():
                e = fit.estimate
                rows["slopes"].append(key | {"quantity": quantity, "fit": FITS[name]} | {
                    "slope": e.value, "ci_low": e.ci_low, "ci_high": e.ci_high, "se": fit.se,
                    "expected": -1.0} | fit.details | {"n": e.n})
            if design == "train_size" and quantity == "loss":  # one sample against N_max
                low, high = np.nanquantile(boots[:, 0] / boots[:, -1], [0.025, 0.975])
                var, lo, hi = cols["measured"], cols["ci_low"], cols["ci_high"]
                rows["single_sample"].append(key | {
                    "var_div_exact": ref["var_div"], "var_single_measured": var[0], "ci_low": lo[0],
                    "ci_high": hi[0], "N_max": int(sizes[-1]), "var_single_over_var_risk":
                    var[0] / var[-1], "ratio_ci_low": low, "ratio_ci_high": high, "n": len(draws)})
        losses = part.pivot(index="replicate", columns="size", values="loss").to_numpy(float)
        z = (losses - ref["risk"]) / np.sqrt(predicted_variance(ref, sizes))
        pooled.setdefault((problem, point), []).append(z)
        rows["bias"].append(key | _bias_columns(z, len(z)) | {"expected_loss": ref["risk"],
                            "mean_loss_minus_expected": np.mean(losses - ref["risk"])})
    tables = {k: pd.DataFrame(v) for k, v in rows.items() if k != "variance_by_size"}
    tables["variance_by_size"] = by_size = pd.concat(rows["variance_by_size"], ignore_index=True)
    tables["bias"] = pd.concat([tables["bias"], pd.DataFrame([  # pooled over designs and sizes
        {"problem": p, "point": q, "design": "all"} | _bias_columns(np.hstack(zs), len(zs[0]))
        for (p, q), zs in pooled.items()])], ignore_index=True)
    figures = {"variance_vs_n": variance_figure(by_size, DESIGNS[:1]),
               "variance_vs_b": variance_figure(by_size, DESIGNS[1:]),
               "distributions": distributions_figure(runs, tables["bias"])}
    return Analysis(tables, figures, CAPTIONS, findings(tables), checks(tables))


def _bias_columns(z: np.ndarray, n: int) -> dict:
    """Mean standardized deviation (estimate - F(w)) / predicted sd with its t-CI."""
    e = mean_ci(np.ravel(z))
    return {"mean_standardized_bias": e.value, "ci_low": e.ci_low, "ci_high": e.ci_high,
            "mean_loss_minus_expected": np.nan, "expected_loss": np.nan, "n_draws": e.n, "n": n}


def _row(table: pd.DataFrame, index: int = 0, **where) -> pd.Series:
    """The ``index``-th row of ``table`` whose columns equal ``where``."""
    return table[np.logical_and.reduce([table[k] == v for k, v in where.items()])].iloc[index]


SLOPE_CHECKS = {  # id: (design, quantity, statement, what is fitted, figure, size symbol)
    "1a-slope-N": ("train_size", "loss", "Var(empirical risk) = var(div)/N",
                   "Var(empirical risk) against N", "variance_vs_n", "N"),
    "1b-slope-b": ("with_replacement", "loss", "Var(minibatch loss) = var(div)/b, with replacement",
                   "Var(minibatch loss) against b (with replacement)", "variance_vs_b", "b"),
    "1e-grad-slope-b": ("with_replacement", "gradient", "tr Cov(minibatch gradient) = tr Cov(grad"
                        " div)/b", "tr Cov(minibatch gradient) against b (with replacement)",
                        "variance_vs_b", "")}


def checks(tables: dict) -> list[Check]:
    out = []
    for problem, point in dict.fromkeys(zip(tables["bias"]["problem"], tables["bias"]["point"])):
        where, tag = f"{PROBLEM_LABELS[problem]}, {POINT_LABELS[point]}", f"{problem}-{point}"
        cell, found = {"claim": 1, "source": SOURCE}, {}
        for check, (design, quantity, statement, what, figure, n) in SLOPE_CHECKS.items():
            r = _row(tables["slopes"], problem=problem, point=point, design=design,
                     quantity=quantity, fit="raw")
            found[check] = Check.from_estimate(
                Estimate(r.slope, r.ci_low, r.ci_high, int(r.n), ""), id=f"{check}-{tag}",
                statement=f"{statement} ({where})", quantity=f"log-log slope of {what}",
                expected="slope -1, in [-1.1, -0.9]", expected_low=SLOPE[0], expected_high=SLOPE[1],
                figure=f"figures/{figure}.png", table="tables/slopes.md",
                notes=f"{n} = {r.size_min:g}..{r.size_max:g}" if n else "", **cell)
        last = _row(tables["variance_by_size"], -1, problem=problem, point=point,
                    design="without_replacement", quantity="loss")
        found["1c"] = Check.from_estimate(
            Estimate(last.ratio, last.ratio_low, last.ratio_high, int(last.n), ""),
            id=f"1c-fpc-ratio-{tag}", figure="figures/variance_vs_b.png", **cell,
            statement=f"Without replacement Var(minibatch loss) = (N-b)/(N-1) var(div)/b ({where})",
            quantity=f"measured / predicted variance at the largest b = {int(last['size'])}",
            expected="ratio 1, in [0.9, 1.1]", expected_low=RATIO[0], expected_high=RATIO[1],
            table="tables/variance_by_size.md",
            notes=f"without the FPC the ratio would be {last.ratio_to_no_fpc:.3f}")
        b = _row(tables["bias"], problem=problem, point=point, design="all")
        found["1d"] = Check.from_estimate(
            Estimate(b.mean_standardized_bias, b.ci_low, b.ci_high, int(b.n), ""),
            id=f"1d-unbiased-{tag}", figure="figures/distributions.png", **cell,
            statement=f"The empirical risk and minibatch losses are unbiased ({where})",
            quantity="mean (estimate - expected divergence) / predicted sd, pooled over designs "
            "and sizes", expected="0, within 0.02 predicted sd", expected_low=BIAS[0],
            expected_high=BIAS[1], table="tables/bias.md", notes=f"{b.n_draws} draws")
        out += [*list(found.values())[:2], found["1c"], found["1d"], found["1e-grad-slope-b"]]
    return out


def findings(tables: dict) -> list[str]:
    out, slopes = [], tables["slopes"][tables["slopes"]["quantity"] == "loss"]
    for (problem, point), s in slopes.groupby(["problem", "point"], sort=False):
        text = {(r.design, r.fit[:3]): f"{r.slope:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]"
                for r in s.itertuples()}
        last = _row(tables["variance_by_size"], -1, problem=problem, point=point,
                    design="without_replacement", quantity="loss")
        out.append(
            f"{PROBLEM_LABELS[problem]}, {POINT_LABELS[point]}: Var(empirical risk) falls with N "
            f"at slope {text['train_size', 'raw']}, the minibatch loss with b at slope "
            f"{text['with_replacement', 'raw']} with replacement and "
            f"{text['without_replacement', 'FPC']} without replacement after dividing by the "
            f"FPC; at b = {int(last['size'])} without replacement the measured/predicted ratio is "
            f"{last.ratio:.3f} [{last.ratio_low:.3f}, {last.ratio_high:.3f}] with the FPC and "
            f"{last.ratio_to_no_fpc:.3f} without it.")
    single = "; ".join(
        f"{r.var_single_over_var_risk:.0f} [{r.ratio_ci_low:.0f}, {r.ratio_ci_high:.0f}] at "
        f"N = {r.N_max} ({r.problem}, {r.point})" for r in tables["single_sample"].itertuples())
    return out + ["One sample's divergence has N times the variance of the empirical risk: "
                  f"var(single sample) / var(empirical risk at N) = {single}."]


ERRORBAR_NOTE = ("markers: Monte Carlo estimate, bars: 95% CI over replicates (to estimate/10 if"
                 " it reaches 0);\ndashed: exact prediction var/n, (N-b)/(N-1) var/n without "
                 "replacement (var: var(div), or tr Cov(grad div) for the gradient)")


def variance_figure(table: pd.DataFrame, designs: tuple):
    """Loss and gradient variance against size, one column per cell; for minibatches a third
    row: measured / (per-sample variance / b), which follows 1 or (N-b)/(N-1)."""
    table = table[table["design"].isin(designs)]
    table = table.assign(label=table["design"].map(DESIGN_LABELS))
    keys, rows = list(dict.fromkeys(zip(table["problem"], table["point"]))), 1 + len(designs)
    fig, axes = fg.new_figure(len(keys), rows, width=3.6, height=2.9)
    axes = np.asarray(axes).reshape(rows, len(keys))
    for col, (problem, point) in enumerate(keys):
        cell = table[(table["problem"] == problem) & (table["point"] == point)]
        for row, (quantity, (_, ylabel, _)) in enumerate(QUANTITIES.items()):
            fg.plot_estimates_and_predictions(axes[row, col], cell[cell["quantity"] == quantity],
                x="size", y="measured", predicted="predicted", hue="label", logy=True)
            axes[row, col].set_ylabel(ylabel)
        if rows == 3:
            base = cell["measured"] / cell["ratio_to_no_fpc"]  # per-sample variance / b
            ratio = cell.assign(lo=cell["ci_low"] / base, hi=cell["ci_high"] / base,
                                fpc=cell["predicted"] / base,
                                label=cell["quantity"] + ": " + cell["label"])
            fg.plot_estimates_and_predictions(axes[2, col], ratio, x="size", y="ratio_to_no_fpc",
                low="lo", high="hi", predicted="fpc", hue="label",
                prediction_label="1 or (N-b)/(N-1)")
            axes[2, col].set_ylabel("measured / (per-sample var / b)")
        axes[0, col].set_title(f"{PROBLEM_LABELS[problem]}\n{POINT_LABELS[point]}",
                               fontsize="small")
        for ax in axes[:, col]:
            fg.log2_size_axis(ax, np.sort(cell["size"].unique()),
                              "training-set size N" if rows == 2 else "minibatch size b")
    fg.figure_legend(fig, axes[:, 0], ERRORBAR_NOTE)
    return fig


def distributions_figure(runs: pd.DataFrame, bias: pd.DataFrame):
    """Violins of one sample's divergence, a minibatch loss and the largest training set's risk."""
    import seaborn as sns

    keys = list(dict.fromkeys(zip(runs["problem"], runs["point"])))
    fig, axes = fg.new_figure(len(keys), 1, width=3.6, height=3.3)
    for ax, (problem, point) in zip(np.atleast_1d(axes), keys):
        cell = runs[(runs["problem"] == problem) & (runs["point"] == point)]
        train, mini = cell[cell["design"] == "train_size"], cell[cell["design"] == DESIGNS[2]]
        b = min(mini["size"].unique(), key=lambda s: abs(s - DISTRIBUTION_MINIBATCH))
        n = train["size"].max()
        frame = pd.concat([train[train["size"] == 1].assign(estimator="one sample\n(N=1)"),
                           mini[mini["size"] == b].assign(estimator=f"minibatch\n(b={b})"),
                           train[train["size"] == n].assign(estimator=f"training set\n(N={n})")])
        frame = frame[frame["loss"] > 0]
        sns.violinplot(data=frame, x="estimator", y="loss", hue="estimator", log_scale=True, ax=ax,
                       cut=0, inner="quart", density_norm="width", legend=False, palette="crest")
        risk = _row(bias, problem=problem, point=point, design="train_size")["expected_loss"]
        ax.axhline(risk, color="black", ls="--", lw=1)
        ax.set_ylim(np.quantile(frame["loss"], 0.005) / 1.5, frame["loss"].max() * 1.5)
        ax.set_title(f"{PROBLEM_LABELS[problem]}\n{POINT_LABELS[point]}", fontsize="small")
        ax.set(xlabel="", ylabel="loss estimate (log scale)")
        ax.tick_params(axis="x", labelsize="x-small")
    fig.legend([matplotlib.lines.Line2D([], [], color="black", ls="--", lw=1)],
               [f"expected divergence F(w); R={runs['replicate'].nunique()} draws per violin, "
                "dashed lines inside: quartiles; the axis starts near the 0.5% quantile"],
               loc="outside lower center", fontsize="small")
    return fig


CAPTIONS = {
    "variance_by_size": "Measured variance (loss) or tr Cov (gradient) of each estimator at each "
    "size, the exact prediction var(div)/n (times (N-n)/(N-1) without replacement) and their "
    "ratio, with 95% CIs; ratio_to_no_fpc divides by var(div)/n without the FPC.",
    "slopes": "Least-squares slopes of log variance against log size, 95% bootstrap CIs over "
    "replicates (expected -1); without replacement also after dividing by the FPC.",
    "single_sample": "One sample's divergence: exact var(div), its estimate (N=1), and "
    "var(div)/var(empirical risk at the largest N), expected to equal N.",
    "bias": "Mean (estimate - expected divergence) / predicted sd, 95% t-CI; 'all' pools all.",
    "variance_vs_n": "Var(empirical risk), tr Cov(empirical gradient) against N; predicted var/N.",
    "variance_vs_b": "Var(minibatch loss) (top) and tr Cov(minibatch gradient) (middle) against b, "
    "with and without replacement, with both predictions; bottom: measured / (per-sample "
    "variance / b), which follows (N-b)/(N-1) without replacement.",
    "distributions": "Distributions of one sample's divergence, a minibatch loss and the "
    "empirical risk of the largest training set (log scale), with the expected divergence.",
}
study = Study(name="variance", description=__doc__.split("\n\n", 1)[1].strip(),
              title="Variance of the empirical risk and of minibatch estimates (claim 1)",
              conditions=conditions, compute=compute, analyze=analyze, labels=("point",),
              claims=(1,), replicates=4000, quick_replicates=1000)
