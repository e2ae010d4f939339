"""Claim 1: the empirical risk is unbiased with variance var(div)/N; minibatches follow var(div)/b.

At a fixed w (the population minimiser w*, and a point at a fixed distance from it) each
replicate is one Monte Carlo draw of three estimators, at every size of a log-spaced grid:

- ``train_size``: the empirical risk (and gradient) of N i.i.d. samples from the data
  distribution (``GaussianLinearModel``; for real data the dataset's empirical distribution,
  i.e. the next design drawn again): var(div)/N.
- ``with_replacement``: b i.i.d. indices into a fixed training set (the synthetic problem's 1000
  samples; for real data the whole dataset): var(div)/b, var(div) its population variance.
- ``without_replacement``: b distinct indices: (N - b)/(N - 1) var(div)/b (Cochran 1977, Thm 2.2).

Gradients follow the same predictions with tr Cov(grad div) for var(div) (the mean of
||g - E g||^2). The predictions use exact population moments
(:mod:`convstudy.theory.sampling_variance`), so measured/predicted carries only Monte Carlo error.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from convstudy import figures as fg
from convstudy.catalogue.variance import RATIO_SPECS, UNBIASED
from convstudy.claims import Check
from convstudy.engine import replicate_generators
from convstudy.problems import LeastSquares, get_problem
from convstudy.stats.estimate import Estimate, derived_seed
from convstudy.stats.means import mean_ci
from convstudy.stats.variance import variance_against_size
from convstudy.study import Analysis, Scale, Study, Variant
from convstudy.theory import sampling_variance as sv

DESIGN_LABELS = {
    "train_size": "training set of N i.i.d. samples",
    "with_replacement": "minibatch, with replacement",
    "without_replacement": "minibatch, without replacement",
}
DESIGNS = tuple(DESIGN_LABELS)
PROBLEM_LABELS = {
    "gaussian_linear": "Gaussian linear model (synthetic, d=10, N=1000)",
    "logistic": "Logistic regression (breast cancer, N=569)",
}
POINT_LABELS = {"w_star": "at w*", "far": "far from w*"}
# distance of the "far" point from w*: F rises from 0.5 to 8.3 (synthetic), 0.10 to 0.49 (logistic)
FAR_DISTANCE = {"gaussian_linear": 2.0, "logistic": 5.0}
DIRECTION_SEED = 2024  # the fixed unit direction from w* to the far point (part of the design)
SYNTHETIC_SEED, SYNTHETIC_TRAIN_SIZE = 0, 1000  # w_true and the synthetic fixed training set
N_BOOT = 1000  # bootstrap resamples of the variance fits
# quantity: (per-sample variance, axis label, column of the runs, how it is estimated)
QUANTITIES = {
    "loss": ("var_div", "Var(loss estimate)", "loss", "variance"),
    "gradient": ("trace_cov", "tr Cov(gradient estimate)", "grad_sqdev", "mean_square"),
}
CHECKED = {  # check: (design, quantity, figure), each at the largest size
    "1a": ("train_size", "loss", "variance_vs_n"),
    "1b": ("with_replacement", "loss", "variance_vs_b"),
    "1c": ("without_replacement", "loss", "variance_vs_b"),
    "1e": ("with_replacement", "gradient", "variance_vs_b"),
}
DRAWS = {  # broken variant: (how every design draws its indices, description)
    "without-replacement": ("without", "every design drawn without replacement (i.i.d. ones too)"),
    "with-replacement": ("with", "every design drawn with replacement (the one without too)"),
    "biased-sampler": ("weighted", "indices drawn with p_i ~ div_i, without 1/(N p_i) weights"),
}
VARIANTS = {
    name: Variant(text, lambda c, h=how: c | {"draw": h}) for name, (how, text) in DRAWS.items()
} | {"no-fpc": Variant("predicts var(div)/b without replacement (no finite-population factor)")}


@functools.lru_cache(maxsize=8)
def population(name: str):
    """(fixed training set, w*, data distribution or None) of problem ``name``, once per process."""
    if name == "gaussian_linear":
        rng = np.random.default_rng(SYNTHETIC_SEED)
        dist = sv.GaussianLinearModel(np.logspace(0.0, 1.0, 10), 1.0, rng.standard_normal(10))
        return LeastSquares(*dist.draw(rng, SYNTHETIC_TRAIN_SIZE), name=name), dist.w_true, dist
    if name == "logistic":
        return get_problem(name), get_problem(name).w_star, None
    raise ValueError(
        f"The 'problem' of a variance condition must be one of {sorted(PROBLEM_LABELS)}. "
        f"Got {name!r} instead."
    )


def evaluation_point(name: str, distance: float) -> np.ndarray:
    """w* + distance * u, with u a fixed unit direction drawn from ``DIRECTION_SEED``."""
    w_star = population(name)[1]
    u = np.random.default_rng(DIRECTION_SEED).standard_normal(w_star.size)
    return w_star + distance * u / np.linalg.norm(u)


def reference(name: str, w: np.ndarray, design: str, fpc: bool = True) -> dict:
    """Exact ``risk`` (expectation of the estimator), ``var_div``, ``trace_cov``, ``mean_grad``
    and the sampling scheme (``population_size`` without replacement, else None; ``replace``);
    ``fpc=False`` is the wrong formula var/b for sampling without replacement."""
    training, _, dist = population(name)
    if design == "train_size" and dist is not None:
        return dist.moments(w) | {"population_size": None, "replace": True}
    div, grads = sv.per_sample_values(training, w)
    without = design == DESIGNS[2] and fpc
    scheme = {"population_size": training.n_samples if without else None, "replace": not without}
    var, cov = sv.population_variance(div), sv.population_total_variance(grads)
    return {"risk": float(div.mean()), "var_div": var, "trace_cov": cov} | scheme


def predicted_variance(ref: dict, sizes: np.ndarray, key: str = "var_div") -> np.ndarray:
    """var/n, or (N - n)/(N - 1) var/n without replacement (``key``: the per-sample variance)."""
    n, replace = ref["population_size"], ref["replace"]
    return sv.variance_of_sample_mean(ref[key], sizes, population_size=n, replace=replace)


def conditions(scale: Scale) -> list[dict]:
    """Both problems at w* and far from it, sizes 1, 2, 4, ..., 512 (quick: at w*, 1..256 by 4)."""
    sizes = {"size_max": scale.pick(512, 256), "size_base": scale.pick(2, 4)}
    points = scale.pick(POINT_LABELS, ["w_star"])
    return [
        {"problem": name, "point": point, "distance": FAR_DISTANCE[name] * (point == "far")} | sizes
        for name in PROBLEM_LABELS
        for point in points
    ]


def _indices(rng, draw: str, n: int, sizes: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Index segments of lengths ``sizes``, one after the other: i.i.d. uniform ("with"), one
    independent permutation prefix per size ("without") or i.i.d. with p_i = ``weights``."""
    if draw == "with":
        return rng.integers(0, n, int(sizes.sum()))
    if draw == "weighted":
        return rng.choice(n, int(sizes.sum()), p=weights)
    perms = rng.permuted(np.tile(np.arange(n), (sizes.size, 1)), axis=1)
    return np.concatenate([perms[j, :b] for j, b in enumerate(sizes)])


def compute(condition: dict, seed: int, replicate_ids) -> pd.DataFrame:
    """One draw of every estimator at every size per replicate: columns ``replicate, design, size,
    loss, grad_sqdev`` (= ||g - E g||^2). Replicate r draws from its own stream, in a fixed
    order: the training sets of every size, the minibatches with replacement, then without.
    A broken variant's ``draw`` makes every design draw its indices from the training set so."""
    training, _, dist = population(condition["problem"])
    w = evaluation_point(condition["problem"], condition["distance"])
    base, n, draw = condition["size_base"], training.n_samples, condition.get("draw")
    sizes = base ** np.arange(int(np.log(condition["size_max"]) / np.log(base) + 1e-9) + 1)
    if sizes.max() >= n or draw not in (None, "with", "without", "weighted"):
        raise ValueError(
            f"A variance condition needs 'size_max' below the training-set size {n} and 'draw' "
            f"'with', 'without' or 'weighted'. Got {condition['size_max']} and {draw!r} instead."
        )
    div, grads = sv.per_sample_values(training, w)
    ids, weights, fresh_sets = np.asarray(replicate_ids), div / div.sum(), bool(dist and not draw)
    how = dict(zip(DESIGNS, (draw or "with", draw or "with", draw or "without")))
    shape, fresh = (ids.size, int(sizes.sum())), np.empty((2, ids.size, sizes.size))
    idx = {d: np.empty(shape, dtype=np.int64) for d in DESIGNS[fresh_sets:]}
    for r, rng in enumerate(replicate_generators(seed, ids)[0]):
        if fresh_sets:  # fresh training sets from the Gaussian linear model
            fresh[:, r] = dist.fresh_estimates(rng, w, sizes)
        for design, rows in idx.items():
            rows[r] = _indices(rng, how[design], n, sizes, weights)
    centred, frames = grads - grads.mean(axis=0), []
    draws = {d: sv.segment_means(v, sizes, div, centred) for d, v in idx.items()}
    columns = {"replicate": np.tile(ids, sizes.size), "size": np.repeat(sizes, ids.size)}
    for design in DESIGNS:
        loss, sqdev = fresh if design not in draws else draws[design]
        frame = columns | {"design": design, "loss": loss.T.ravel(), "grad_sqdev": sqdev.T.ravel()}
        frames.append(pd.DataFrame(frame))
    return pd.concat(frames, ignore_index=True)


def analyze(runs: pd.DataFrame, scale: Scale) -> Analysis:
    rows, pooled = {"variance_by_size": [], "bias": []}, {}
    groups = runs.groupby(["problem", "point", "distance", "design"], sort=False)
    for (problem, point, distance, design), part in groups:
        w = evaluation_point(problem, distance)
        ref = reference(problem, w, design, fpc=scale.variant != "no-fpc")
        key = {"problem": problem, "point": point, "design": design}
        sizes = np.sort(part["size"].unique()).astype(float)
        for quantity, (per_sample, _, column, kind) in QUANTITIES.items():
            draws = part.pivot(index="replicate", columns="size", values=column).to_numpy(float)
            seed = derived_seed(scale.seed, "variance-slope", problem, point, design, quantity)
            pred = predicted_variance(ref, sizes, per_sample)
            cols = variance_against_size(draws, sizes, pred, seed=seed, kind=kind, n_boot=N_BOOT)[0]
            cols["ratio_to_no_fpc"] = cols["measured"] / (ref[per_sample] / sizes)
            rows["variance_by_size"].append(pd.DataFrame(key | {"quantity": quantity} | cols))
        losses = part.pivot(index="replicate", columns="size", values="loss").to_numpy(float)
        z = (losses - ref["risk"]) / np.sqrt(predicted_variance(ref, sizes))
        pooled.setdefault((problem, point), []).append(z)
        rows["bias"].append(key | _bias_columns(z))
    for (problem, point), zs in pooled.items():  # pooled over designs and sizes
        every = {"problem": problem, "point": point, "design": "all"}
        rows["bias"].append(every | _bias_columns(np.hstack(zs)))
    tables = {k: pd.DataFrame(v) for k, v in rows.items() if k != "variance_by_size"}
    tables["variance_by_size"] = pd.concat(rows["variance_by_size"], ignore_index=True)
    found = checks(tables)
    designs = {"variance_vs_n": DESIGNS[:1], "variance_vs_b": DESIGNS[1:]}
    by_size = tables["variance_by_size"]
    figures = {k: variance_figure(by_size, d) for k, d in designs.items() if not scale.variant}
    return Analysis(tables, figures, CAPTIONS, findings(tables), found, caveats(found))


def _bias_columns(z: np.ndarray) -> dict:
    """Mean standardized deviation (estimate - F(w)) / predicted sd with its t-CI over the
    draws of ``z`` (replicates x sizes); ``n`` counts the replicates."""
    e = mean_ci(np.ravel(z))
    columns = {"mean_standardized_bias": e.value, "ci_low": e.ci_low, "ci_high": e.ci_high}
    return columns | {"n_draws": e.n, "n": len(z)}


def _row(table: pd.DataFrame, index: int = 0, **where) -> pd.Series:
    """The ``index``-th row of ``table`` whose columns equal ``where``."""
    return table[np.logical_and.reduce([table[k] == v for k, v in where.items()])].iloc[index]


def checks(tables: dict) -> list[Check]:
    """Per cell: measured / predicted variance at the largest size of each design in
    ``CHECKED`` (1a only where the training sets are not the with-replacement design), and the
    pooled standardized bias."""
    out, by_size = [], tables["variance_by_size"]
    last = by_size.groupby(["problem", "point", "design", "quantity"], sort=False).tail(1)
    for (problem, point), cell in last.groupby(["problem", "point"], sort=False):
        where = f"{PROBLEM_LABELS[problem]}, {POINT_LABELS[point]}"
        common = {"study": "variance", "tag": f"{problem}-{point}", "where": where}
        for check, (design, quantity, figure) in CHECKED.items():
            if check == "1a" and population(problem)[2] is None:
                continue  # the real data's training sets are the with-replacement design
            r = _row(cell, design=design, quantity=quantity)
            e = Estimate(r.ratio, r.ratio_low, r.ratio_high, int(r.n), "measured / exact")
            notes = f"measured / (per-sample variance / size) = {r.ratio_to_no_fpc:.3f}"
            common |= {"table": "tables/variance_by_size.md", "size": int(r["size"])}
            common |= {"notes": notes, "figure": f"figures/{figure}.png"}
            out.append(RATIO_SPECS[check].check(e, prediction=1.0, **common))
        b = _row(tables["bias"], problem=problem, point=point, design="all")
        e = Estimate(b.mean_standardized_bias, b.ci_low, b.ci_high, int(b.n), "Student t")
        common |= {"table": "tables/bias.md", "figure": "", "notes": f"{b.n_draws} draws"}
        out.append(UNBIASED.check(e, prediction=0.0, **common))
    return out


def findings(tables: dict) -> list[str]:
    """Per cell: measured / predicted variance at the smallest and the largest size of every
    design (loss), and the ratio to var(div)/b without the FPC."""
    out, by_size = [], tables["variance_by_size"]
    loss = by_size[by_size["quantity"] == "loss"]
    for (problem, point), cell in loss.groupby(["problem", "point"], sort=False):
        ends = cell.groupby("design", sort=False).nth([0, -1])
        text = "; ".join(
            f"{DESIGN_LABELS[r.design]} at {int(r.size)}: {r.ratio:.3f} [{r.ratio_low:.3f}, "
            f"{r.ratio_high:.3f}] ({r.ratio_to_no_fpc:.3f} of var(div)/size)"
            for r in ends.itertuples()
        )
        where = f"{PROBLEM_LABELS[problem]}, {POINT_LABELS[point]}"
        out.append(f"{where}: measured / exact predicted variance of the loss estimate: {text}.")
    return out


def caveats(checks: list[Check]) -> list[str]:
    """The duplicated real-data design, and every check that does not read reproduced."""
    out = [
        "For the real data set (logistic) the 'training set of N i.i.d. samples' is drawn from "
        "the data set's empirical distribution, which is the minibatch design with replacement: "
        "its rows in the tables are a second, independent draw of that design, not checked again."
    ]
    for c in checks:
        decided, reason = c.judged()
        if decided != "reproduced":
            out.append(
                f"`{c.id}` reads {decided}: {reason} (estimate {c.estimate:.4g}). The prediction "
                "is exact, so this is Monte Carlo error or a real deviation of that size."
            )
    return out


ERRORBAR_NOTE = (
    "markers: Monte Carlo estimate, bars: 95% CI over replicates (to estimate/10 if it reaches "
    "0);\ndashed: exact prediction var/n, (N-b)/(N-1) var/n without replacement (var: var(div), "
    "or tr Cov(grad div) for the gradient)"
)


def variance_figure(table: pd.DataFrame, designs: tuple):
    """Loss and gradient variance against size, one column per cell; for minibatches a third
    row: measured / (per-sample variance / b), which follows 1 or (N-b)/(N-1)."""
    table = table[table["design"].isin(designs)]
    table = table.assign(label=table["design"].map(DESIGN_LABELS))
    keys, rows = list(dict.fromkeys(zip(table["problem"], table["point"]))), 1 + len(designs)
    fig, axes = fg.new_figure(len(keys), rows, width=3.6, height=2.9)
    axes = np.asarray(axes).reshape(rows, len(keys))
    plot = functools.partial(fg.plot_estimates_and_predictions, x="size", predicted="predicted")
    for col, (problem, point) in enumerate(keys):
        cell = table[(table["problem"] == problem) & (table["point"] == point)]
        for row, (quantity, (_, ylabel, _, _)) in enumerate(QUANTITIES.items()):
            part = cell[cell["quantity"] == quantity]
            plot(axes[row, col], part, y="measured", hue="label", logy=True)
            axes[row, col].set_ylabel(ylabel)
        if rows == 3:  # divided by the per-sample variance / b
            base, label = cell["measured"] / cell["ratio_to_no_fpc"], cell["quantity"] + ": "
            ratio = cell.assign(ci_low=cell["ci_low"] / base, ci_high=cell["ci_high"] / base)
            ratio = ratio.assign(predicted=cell["predicted"] / base, label=label + cell["label"])
            plot(
                axes[2, col],
                ratio,
                y="ratio_to_no_fpc",
                hue="label",
                prediction_label="1 or (N-b)/(N-1)",
            )
            axes[2, col].set_ylabel("measured / (per-sample var / b)")
        title = f"{PROBLEM_LABELS[problem]}\n{POINT_LABELS[point]}"
        axes[0, col].set_title(title, fontsize="small")
        label = "training-set size N" if rows == 2 else "minibatch size b"
        for ax in axes[:, col]:
            fg.log2_size_axis(ax, np.sort(cell["size"].unique()), label)
    fg.figure_legend(fig, axes[:, 0], ERRORBAR_NOTE)
    return fig


CAPTIONS = {
    "variance_by_size": "Measured variance (loss) or tr Cov (gradient) of each estimator at each "
    "size, the exact prediction var(div)/n (times (N-n)/(N-1) without replacement) and their "
    "ratio, with 95% CIs; ratio_to_no_fpc divides by var(div)/n without the FPC.",
    "bias": "Mean (estimate - expected divergence) / predicted sd, 95% t-CI; 'all' pools all.",
    "variance_vs_n": "Var(empirical risk), tr Cov(empirical gradient) against N; predicted var/N.",
    "variance_vs_b": "Var(minibatch loss) (top), tr Cov(minibatch gradient) (middle) against b "
    "with predictions; bottom: measured / (per-sample variance / b), predicted 1 or (N-b)/(N-1).",
}
study = Study(
    name="variance",
    description=__doc__.split("\n\n", 1)[1].strip(),
    title="Variance of the empirical risk and of minibatch estimates (claim 1)",
    conditions=conditions,
    compute=compute,
    analyze=analyze,
    labels=("point",),
    variants=VARIANTS,
    claims=(1,),
    replicates=4000,
    quick_replicates=1000,
)
