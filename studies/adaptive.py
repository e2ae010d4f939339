r"""Claim 7: adaptive methods normalise each coordinate's step; Adam's bias correction; AMSGrad.

The course says RMSprop and Adam divide each parameter's step by a running RMS of its
derivatives (Adam also keeps a bias-corrected running mean), that they help most when curvature
differs strongly by direction, and that RPROP uses only the sign of the derivative. Three grids:

- ``tuning``: SGD, momentum 0.9, Adagrad, RMSprop, Adam, AMSGrad and RPROP (torch.optim
  conventions), each at every constant step of its grid, compared at its best one by the
  protocol of :mod:`convstudy.tuning` (iterations for the mean curve to reach eps = EPS_REL x
  E[f(w0) - f*]), on :class:`AxisScaled` (ill-conditioned *along the axes*),
  :class:`RotatedScaled` (the same data rotated: SGD and momentum, rotation-equivariant, behave
  identically on both, while a diagonal preconditioner can only undo axis-aligned scaling) and
  the nonconvex ``teacher_student``. Minibatches of b = 10, except RPROP: **full batch**, as its
  steps adapt to sign agreements of successive gradients, which minibatch noise destroys
  (Riedmiller & Braun 1993), so its iterations cost N samples.
- ``bias``: Adam (default betas) with and without bias correction over 50 steps on
  ``axis_scaled`` at eta0 = 1e-3 (torch's default) and 1e-2, both variants of a replicate from
  one seed (same start and minibatches: paired CIs): the step per coordinate ||w_k - w_{k-1}|| /
  (eta0 sqrt(d)) (an engine observable) and the progress f(w0) - f(w_k), against the
  constant-gradient step ratio (1 - beta1^k)/sqrt(1 - beta2^k) (:mod:`convstudy.theory.adaptive`).
- ``reddi``: Reddi, Kale & Kumar's (2018, Thm 3) ``adam_counterexample``, f_t(x) = C x w.p.
  p = (1 + delta)/(C + 1), else -x, on [-1, 1] (C = 100, delta = 1, optimum x* = -1): Adam and
  AMSGrad with beta2 = 0.9, beta1 in {0, 0.9} (< sqrt(beta2), the theorem's condition), SGD as a
  reference, alpha_t = alpha / sqrt(t), one sample per step with replacement, projected onto
  [-1, 1] by the engine's ``project=`` hook; x is an engine observable.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd

from convstudy import figures as fg
from convstudy import tuning as protocol
from convstudy.claims import Check
from convstudy.engine import Observable
from convstudy.problems import LeastSquares, register_problem
from convstudy.stats.curves import log_reduction, mean_curve, paired_curve_ratio
from convstudy.stats.estimate import Estimate, bootstrap_method, derived_seed
from convstudy.study import Analysis, Scale, Study, build_problem, simulate_cell
from convstudy.theory.adaptive import bias_step_ratio

NAME = "adaptive"
METHODS = ("sgd", "momentum", "adagrad", "rmsprop", "adam", "amsgrad", "rprop")
METHOD_LABELS = dict(zip(METHODS, ("SGD", "momentum 0.9", "Adagrad", "RMSprop", "Adam",
                                   "AMSGrad", "RPROP (full batch)")))  # fmt: skip
PROBLEMS = ("axis_scaled", "rotated_scaled", "teacher_student")
PROBLEM_LABELS = dict(zip(PROBLEMS, ("badly scaled features (axis-aligned, kappa=1e3)",
    "same spectrum, rotated", "teacher-student tanh network (nonconvex)")))  # fmt: skip
BATCH_SIZE = 10
EPS_REL = {"axis_scaled": (1e-3, 1e-2), "rotated_scaled": (1e-3, 1e-2),  # (full, quick)
           "teacher_student": (1e-2, 1e-1)}  # fmt: skip
# log-spaced records: the network's full loss at a record costs many minibatch steps
N_RECORDS = {"axis_scaled": 100, "rotated_scaled": 100, "teacher_student": 50}
# iteration budgets (full, quick); RPROP's are shorter: each of its iterations is full batch
N_STEPS = {"axis_scaled": (1500, 400), "rotated_scaled": (1500, 400),
           "teacher_student": (800, 400), "rprop": (300, 100)}  # fmt: skip
BIAS_ETAS, BIAS_STEPS, BIAS_CHECK_ETA, BIAS_CHECK_K = (1e-3, 1e-2), 50, 1e-3, 10
ADAM_BETAS = (0.9, 0.999)
REDDI = {"problem.C": 100.0, "problem.n_samples": 101, "problem.n_large": 2}  # delta = 1
REDDI_BETA2, REDDI_CHECK_BETA1 = 0.9, 0.0
REDDI_RUNS = (("sgd", None), ("adam", 0.0), ("amsgrad", 0.0), ("adam", 0.9), ("amsgrad", 0.9))
REDDI_ALPHA = {"sgd": 0.03, "adam": 1.0, "amsgrad": 1.0}
RPROP_CHECK_LOG10 = -6.0  # "converges": at least a 10^6-fold reduction of f - f*
SOURCE_ADAPTIVE = ("course slides (Training Neural Networks: Optimization); Kingma & Ba (2015); "
                   "Tieleman & Hinton (2012); Riedmiller & Braun (1993)")  # fmt: skip
SOURCE_REDDI = "Reddi, Kale & Kumar (2018), On the convergence of Adam and beyond, Sec. 3, Thm 3"


# ---- problems, grids and computes -------------------------------------------------------------
@register_problem("axis_scaled")
class AxisScaled(LeastSquares):
    """Least squares with feature scales spread over decades along the axes: X = sqrt(N) Q
    diag(sqrt(lambda)), Q (N x d) orthonormal, so H = diag(lambda), lambda log-spaced over
    [1/kappa, 1]; y = X w_true + noise z. ``w0="random"`` starts at w* + z, z ~ N(0, I)."""

    name, rotate = "axis_scaled", False

    def __init__(self, *, dim=10, condition_number=1e3, noise=0.1, n_samples=1000, seed=0):
        rng = np.random.default_rng(seed)
        eig = np.logspace(-np.log10(condition_number), 0.0, dim)
        Q, _ = np.linalg.qr(rng.standard_normal((n_samples, dim)))
        V, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
        X = np.sqrt(n_samples) * Q * np.sqrt(eig)
        y = X @ rng.standard_normal(dim) + noise * rng.standard_normal(n_samples)
        super().__init__(X @ V.T if self.rotate else X, y, name=self.name)

    def initial_point(self) -> np.ndarray:
        return self.w_star.copy()


@register_problem("rotated_scaled")
class RotatedScaled(AxisScaled):
    """:class:`AxisScaled` rotated, X V^T (V random orthogonal) with the *same* y:
    H = V diag(lambda) V^T and f_rot(V w) = f_axis(w)."""

    name, rotate = "rotated_scaled", True


def conditions(scale: Scale) -> dict[str, list[dict]]:
    """Named grids: the tuning grid x problems, Adam's bias-correction pairs, Reddi et al."""
    tuning = [{"problem": prob, "optimizer": m, "schedule": "constant", "schedule.eta0": eta0,
               "n_steps": scale.pick(*N_STEPS["rprop" * full or prob]), "w0": "random",
               "sampler": "full" if full else "reshuffle", "n_records": N_RECORDS[prob],
               "batch_size": build_problem({"problem": prob}).n_samples if full else BATCH_SIZE}
              for prob in PROBLEMS for m in METHODS for full in [m == "rprop"]
              for eta0 in protocol.eta_grid(m, scale.quick)]  # fmt: skip
    bias = [{"problem": "axis_scaled", "optimizer": "adam", "schedule": "constant",
             "optimizer.beta1": ADAM_BETAS[0], "optimizer.beta2": ADAM_BETAS[1], "w0": "random",
             "schedule.eta0": eta0, "n_steps": BIAS_STEPS, "record": "all",
             "batch_size": BATCH_SIZE} for eta0 in BIAS_ETAS]  # fmt: skip
    reddi = [
        {"problem": "adam_counterexample", **REDDI, "optimizer": m, "schedule": "inverse_sqrt",
         **({"optimizer.beta1": b, "optimizer.beta2": REDDI_BETA2} if b is not None else {}),
         "label": f"{METHOD_LABELS[m]}, beta1={b:g}, beta2={REDDI_BETA2:g}" if b is not None
         else f"SGD, alpha={REDDI_ALPHA[m]:g}", "schedule.eta0": REDDI_ALPHA[m],  # alpha/sqrt(t)
         "n_steps": scale.pick(5000, 1000), "sampler": "replacement", "batch_size": 1}
        for m, b in REDDI_RUNS
    ]  # fmt: skip
    return {"tuning": tuning, "bias": bias, "reddi": reddi}


def rms_step(w: np.ndarray, w_previous: np.ndarray) -> np.ndarray:
    """||w_k - w_{k-1}|| / sqrt(d) per replicate (the RMS of the last update)."""
    return np.sqrt(np.mean((w - w_previous) ** 2, axis=1))


def first_coordinate(w: np.ndarray) -> np.ndarray:
    """x = w[:, 0] (the counterexample's one parameter)."""
    return w[:, 0]


def paired_bias_cell(condition: dict, seed: int, replicates) -> pd.DataFrame:
    """Adam with and without bias correction from one seed: same starts and minibatches."""
    observe = {"step_rms": Observable(rms_step, previous=True)}
    runs = pd.concat([simulate_cell({**condition, "optimizer.bias_correction": c}, seed, replicates,
                                    observe=observe).assign(variant="un" * (not c) + "corrected")
                      for c in (True, False)], ignore_index=True)  # fmt: skip
    f0 = runs.groupby(["variant", "replicate"])["loss"].transform("first")  # rows: by step
    return runs.assign(step_per_eta=runs["step_rms"] / condition["schedule.eta0"],
                       progress=f0 - runs["loss"])  # fmt: skip


# ---- analysis ---------------------------------------------------------------------------------
def bias_correction_table(bias: pd.DataFrame, run_seed: int = 0) -> pd.DataFrame:
    """Per eta0 and step k >= 1, ratios uncorrected / corrected of paired means
    (:func:`convstudy.stats.curves.paired_curve_ratio`) of ``step_per_eta`` = ||w_k - w_{k-1}|| /
    (eta0 sqrt(d)) and ``progress`` = f(w_0) - f(w_k), and the constant-gradient step ratio."""
    parts = []
    for eta0, cell in bias[bias["step"] > 0].groupby("eta0", sort=True):
        unc, cor = (cell[cell["variant"] == v] for v in ("uncorrected", "corrected"))
        ratios = [paired_curve_ratio(unc, cor, y, seed=derived_seed(run_seed, NAME, y, f"{eta0:g}"))
                  .drop(columns="n").set_index("step").add_prefix(f"{out}_ratio_")
                  for y, out in (("step_per_eta", "step"), ("progress", "progress"))]  # fmt: skip
        table = pd.concat(ratios, axis=1).rename(columns=lambda c: c.replace("_value", ""))
        parts.append(table.reset_index(names="k").assign(
            eta0=eta0, step_ratio_theory=lambda t: bias_step_ratio(t["k"], *ADAM_BETAS),
            n=cor["replicate"].nunique()))  # fmt: skip
    return pd.concat(parts, ignore_index=True)


def reddi_table(reddi: pd.DataFrame) -> pd.DataFrame:
    """Final iterate x per optimizer (mean, 95% t-CI, share of replicates at x > 0)."""
    last = reddi[reddi["step"] == reddi["step"].max()]
    final = mean_curve(last, y="x", by=["label"]).set_index("label")
    return last.groupby("label", sort=False).agg(
        method=("optimizer", "first"), beta1=("optimizer.beta1", "first"),
        alpha=("schedule.eta0", "first"), n_steps=("step", "max"),
        share_x_positive=("x", lambda x: np.mean(x > 0)),
    ).join(final[["mean", "ci_low", "ci_high", "n"]].rename(columns={"mean": "final_x"})
           ).reset_index()  # fmt: skip


def _checks(tuning, best, boots, bias_table, reddi) -> list[Check]:
    check = functools.partial(Check.from_estimate, claim=7, study=NAME, source=SOURCE_ADAPTIVE)
    at = best.set_index(["problem", "method"])
    sgd, rprop = at.loc[("axis_scaled", "sgd")], at.loc[("axis_scaled", "rprop")]
    out = [check(
        protocol.ratio_estimate(best, "axis_scaled", m), id=f"7-{m}-vs-sgd-axis_scaled",
        statement=f"On least squares with badly scaled, axis-aligned features {METHOD_LABELS[m]} "
        "reaches eps in fewer iterations than SGD, both at their best constant eta0.",
        quantity=f"T_eps({m}) / T_eps(SGD), eps = {sgd['eps']:.3g}", expected="< 1",
        expected_low=0.0, expected_high=1.0, figure="figures/curves_best_eta.png",
        table="tables/best_eta.md", notes=f"{m} eta0={r['eta0']:g}: {r['hit']:g} iterations; "
        f"SGD eta0={sgd['eta0']:g}: {sgd['hit']:g}; b={BATCH_SIZE}; bootstrap CI, censored share "
        f"{r['p_censored']:.2f} / {sgd['p_censored']:.2f}.")
        for m, r in ((m, at.loc[("axis_scaled", m)]) for m in ("adam", "rmsprop"))]  # fmt: skip
    out.append(check(
        protocol.contrast_estimate(best, boots, "adam", ("axis_scaled", "rotated_scaled")),
        id="7-adam-needs-axis-aligned-scaling", statement="Adam's per-coordinate normalisation "
        "helps when the bad scaling is along the coordinate axes: rotating the same problem "
        "removes much of its advantage over SGD.",
        quantity="[T_eps(Adam)/T_eps(SGD)] rotated / [T_eps(Adam)/T_eps(SGD)] axis-aligned",
        expected="> 1", expected_low=1.0, expected_high=math.inf,
        figure="figures/iterations_to_eps.png", table="tables/best_eta.md", notes="Same "
        "spectrum and data; SGD is rotation-equivariant, a diagonal preconditioner not.",
    ))  # fmt: skip
    floor = np.finfo(float).eps * max(abs(build_problem({"problem": "axis_scaled"}).f_star), 1)
    out.append(check(
        log_reduction(tuning[(tuning["method"] == "rprop") & (tuning["eta0"] == rprop["eta0"])
                             & (tuning["problem"] == "axis_scaled")], floor=floor),
        id="7-rprop-converges-full-batch", statement="RPROP, which uses only the sign of each "
        "derivative, converges on the badly scaled problem when run full batch.",
        quantity=f"mean log10[(f(w_K) - f*) / (f(w_0) - f*)], K = {rprop['n_steps']}",
        expected=f"<= {RPROP_CHECK_LOG10:g}", expected_low=-math.inf,
        expected_high=RPROP_CHECK_LOG10, figure="figures/curves_best_eta.png",
        table="tables/best_eta.md", notes=f"eta0 (initial step) = {rprop['eta0']:g}; values "
        "floored at machine precision of f*; randomness only from the starting points.",
    ))  # fmt: skip
    row = bias_table.set_index(["eta0", "k"]).loc[(BIAS_CHECK_ETA, BIAS_CHECK_K)]
    est = {c: Estimate(*row[[f"{c}_ratio", f"{c}_ratio_ci_low", f"{c}_ratio_ci_high"]],
                       int(row["n"]), "paired " + bootstrap_method(1000))
           for c in ("step", "progress")}  # fmt: skip
    bias_check = functools.partial(
        check, source="Kingma & Ba (2015), Sec. 3 (initialisation bias correction)",
        expected_low=1.0, expected_high=math.inf, figure="figures/bias_correction.png",
        table="tables/bias_ratios.md")  # fmt: skip
    at_k = f"at k = {BIAS_CHECK_K}, eta0 = {BIAS_CHECK_ETA:g}"
    out += [
        bias_check(est["step"], id="7-adam-bias-correction-step", statement="Bias correction "
                   "sets the size of Adam's early steps: without it, with the default betas, the "
                   "early steps are not smaller but larger, by about (1 - beta1^k) / sqrt(1 - "
                   "beta2^k).", quantity=f"mean step uncorrected / corrected {at_k}",
                   expected="> 1 (constant-gradient theory "
                   f"{float(bias_step_ratio(BIAS_CHECK_K, *ADAM_BETAS)):.2f})",
                   notes="Paired runs (same start and minibatches); paired bootstrap CI."),
        bias_check(est["progress"], id="7-adam-bias-correction-progress", statement="Without "
                   "bias correction Adam's progress over the first steps differs from the "
                   "corrected run's: with the default betas it is larger.", expected="> 1",
                   quantity=f"[f(w0) - f(w_k)] uncorrected / corrected {at_k}",
                   notes="Ratio of mean progress; paired bootstrap CI."),
    ]  # fmt: skip
    for method, low, high, text in (
        ("adam", 0.0, 1.0, "ends on the wrong side, x > 0 (the worst point is x = +1)"),
        ("amsgrad", -1.0, 0.0, "approaches the optimum x* = -1 (x < 0)"),
    ):
        r = reddi[(reddi["method"] == method) & (reddi["beta1"] == REDDI_CHECK_BETA1)].iloc[0]
        out.append(check(
            Estimate(r["final_x"], r["ci_low"], r["ci_high"], int(r["n"]), "Student t"),
            id=f"7-reddi-{method}", source=SOURCE_REDDI, expected=f"in [{low:g}, {high:g}]",
            statement=f"On the stochastic counterexample of Reddi et al. {METHOD_LABELS[method]} "
            f"with beta1 = {REDDI_CHECK_BETA1:g}, beta2 = {REDDI_BETA2:g} {text}.",
            quantity=f"mean x after {r['n_steps']} steps", expected_low=low, expected_high=high,
            figure="figures/reddi_counterexample.png", table="tables/reddi_final_x.md",
            notes=f"C = {REDDI['problem.C']:g}, p = {REDDI['problem.n_large']}/"
            f"{REDDI['problem.n_samples']}, alpha_t = {r['alpha']:g}/sqrt(t); share of replicates "
            f"ending at x > 0: {r['share_x_positive']:.2f}."))  # fmt: skip
    return out


def _findings(best, checks: dict, bias: pd.DataFrame, reddi: pd.DataFrame) -> list[str]:
    out = [f"{PROBLEM_LABELS[prob]}: " + protocol.describe_best(part, METHOD_LABELS, ("adam",
           "rmsprop")) for prob, part in best.groupby("problem", sort=False)]  # fmt: skip
    c, r = checks["7-adam-needs-axis-aligned-scaling"], checks["7-rprop-converges-full-batch"]
    b1, bk = (bias.set_index(["eta0", "k"]).loc[(BIAS_CHECK_ETA, k)] for k in (1, BIAS_CHECK_K))
    runs = "; ".join(f"{x['label']}: x = {x['final_x']:.2f} [{x['ci_low']:.2f}, "
                     f"{x['ci_high']:.2f}] ({x['share_x_positive']:.0%} of replicates at x > 0)"
                     for _, x in reddi.iterrows())  # fmt: skip
    return out + [
        "Same spectrum, only the orientation differs: rotating the problem multiplies Adam's "
        f"iterations-to-eps relative to SGD by {c.estimate:.1f} [{c.ci_low:.1f}, {c.ci_high:.1f}]"
        " (a diagonal preconditioner can only undo axis-aligned scaling). RPROP (full batch) "
        f"reduces f - f* on the axis-aligned problem by 10^{r.estimate:.1f} [{r.ci_low:.1f}, "
        f"{r.ci_high:.1f}] in {r.quantity.rsplit('= ', 1)[1]} iterations.",
        f"Adam without bias correction (betas {ADAM_BETAS}) takes *larger* early steps, not "
        f"smaller: at eta0 = {BIAS_CHECK_ETA:g} the step ratio uncorrected/corrected is "
        f"{b1['step_ratio']:.2f} at k = 1 and {bk['step_ratio']:.2f} [{bk['step_ratio_ci_low']:.2f}"
        f", {bk['step_ratio_ci_high']:.2f}] at k = {BIAS_CHECK_K} (constant-gradient theory "
        f"{b1['step_ratio_theory']:.2f} and {bk['step_ratio_theory']:.2f}); its progress "
        f"f(w0) - f(w_k) after {BIAS_CHECK_K} steps is {bk['progress_ratio']:.2f} "
        f"[{bk['progress_ratio_ci_low']:.2f}, {bk['progress_ratio_ci_high']:.2f}] times the "
        "corrected run's. Without correction the step is m/sqrt(v), and v's bias (1-b2^k, under "
        "a square root) outweighs m's (1-b1^k) whenever 1-b1 > sqrt(1-b2), as with the defaults.",
        f"Reddi et al. counterexample (C = {REDDI['problem.C']:g}, p = {REDDI['problem.n_large']}/"
        f"{REDDI['problem.n_samples']}, optimum x* = -1, alpha_t = alpha/sqrt(t)), mean final "
        f"iterate after {int(reddi['n_steps'].iloc[0])} steps (95% t-CI): {runs}.",
    ]  # fmt: skip


# ---- figures ----------------------------------------------------------------------------------
def _tuning_figures(tuning: pd.DataFrame, table: pd.DataFrame, best: pd.DataFrame) -> dict:
    curves = protocol.best_curves(tuning, best, METHOD_LABELS)
    (fig_c, axes_c), (fig_s, axes_s) = (fg.new_figure(3, 1, width=4.8, height=h) for h in (5, 4.4))
    for ax, ax_s, problem in zip(axes_c, axes_s, PROBLEMS):
        eps = table.loc[table["problem"] == problem, "eps"].iloc[0]
        fg.plot_mean_curves(ax, curves[curves["problem"] == problem], x="step", hue="label",
                            palette="tab10", xlabel="iteration k", ylabel="f(w_k) - f*",
                            title=PROBLEM_LABELS[problem])  # fmt: skip
        fg.plot_tuning_sensitivity(ax_s, table[table["problem"] == problem], hue="method",
                                   order=METHODS, labels=METHOD_LABELS)  # fmt: skip
        ax.axhline(eps, color="0.3", ls=":", lw=1, label=f"eps = {eps:.2g}")
        ax_s.axhline(eps, color="0.3", ls=":", lw=1)
        fg.small_legend(ax, f"method at its best eta0 ({fg.CI_NOTE})", loc="upper center",
                        bbox_to_anchor=(0.5, -0.16), ncols=2)  # fmt: skip
        ax_s.set(xlabel="constant step size eta0", ylabel="final f(w_K) - f*  (dotted: eps)",
                 title=PROBLEM_LABELS[problem])  # fmt: skip
    fg.small_legend(fig_s, "mean, bars = 95% t-CI (cut at mean/10 on the log axis); star = best "
                    "eta0; x = every replicate diverged", loc="outside lower center", ncols=7,
                    handles=axes_s[0].get_legend_handles_labels()[0])  # fmt: skip
    fig_h, ax = fg.new_figure(1, 1, width=7.5, height=4.6)
    fg.plot_hitting_time_intervals(ax, best, rows=METHODS, row="method", hue="problem",
                                   hue_order=PROBLEMS, row_labels=METHOD_LABELS,
                                   hue_labels=PROBLEM_LABELS)  # fmt: skip
    ax.set_xlabel("iterations for the mean curve to reach eps, at the best eta0")
    fg.small_legend(ax, "problem (bars = 95% bootstrap CI; > = not reached in the budget)",
                    loc="upper center", bbox_to_anchor=(0.5, -0.14), ncols=2)  # fmt: skip
    return {"curves_best_eta": fig_c, "eta_sensitivity": fig_s, "iterations_to_eps": fig_h}


def _bias_figure(bias: pd.DataFrame, table: pd.DataFrame):
    fig, axes = fg.new_figure(3, 1, width=4.6, height=3.8)
    steps = mean_curve(bias[bias["step"] > 0], y="step_per_eta", by=["eta0", "variant"])
    steps["label"] = steps["variant"] + ", eta0=" + steps["eta0"].map("{:g}".format)
    fg.plot_mean_curves(axes[0], steps, x="step", hue="label", palette="Paired", logx=False,
                        xlabel="step k", ylabel="RMS step per coordinate / eta0",
                        title="Adam's first steps")  # fmt: skip
    fg.small_legend(axes[0], f"variant ({fg.CI_NOTE})")
    k = np.arange(1, BIAS_STEPS + 1)
    axes[1].plot(k, bias_step_ratio(k, *ADAM_BETAS), color="black", ls="--", lw=1.2,
                 label="(1-b1^k)/sqrt(1-b2^k), constant g")  # fmt: skip
    for ax, col, what in zip(axes[1:], ("step", "progress"), ("step size", "f(w_0) - f(w_k)")):
        ratio = table.rename(columns={f"{col}_ratio{e}": e[1:] or "mean"
                                      for e in ("", "_ci_low", "_ci_high")})  # fmt: skip
        fg.plot_mean_curves(ax, ratio.assign(label="eta0=" + ratio["eta0"].map("{:g}".format)),
                            x="k", hue="label", palette="Dark2", logx=False, logy=False,
                            xlabel="step k", ylabel=f"{what} ratio, uncorrected / corrected",
                            title=f"{what}: without / with correction")  # fmt: skip
        ax.set_ylim(bottom=0.0)
        fg.small_legend(ax, "ratio of means, band = 95% paired bootstrap CI")
    for ax in axes:
        ax.axhline(1.0, color="black", ls=":", lw=1)
    return fig


def _reddi_figure(reddi: pd.DataFrame):
    fig, ax = fg.new_figure(1, 1, width=9.0, height=4.0)
    fg.plot_mean_curves(ax, mean_curve(reddi, y="x", by=["label"]), x="step", hue="label",
                        palette="tab10", logy=False, xlabel="step t", ylabel="x_t (projected)",
                        title="Reddi et al. (2018): f_t = C x w.p. p, else -x")  # fmt: skip
    ax.axhline(-1.0, color="green", ls="--", lw=1, label="optimum x* = -1")
    ax.axhline(1.0, color="red", ls=":", lw=1, label="worst point x = +1")
    ax.set_ylim(-1.1, 1.1)
    fg.small_legend(ax, f"optimizer ({fg.CI_NOTE})", loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig


CAPTIONS = {
    "curves_best_eta": "Mean suboptimality of each method at its best constant eta0 (95% CI "
    "bands); dotted: eps.",
    "eta_sensitivity": "Final suboptimality against eta0 after each method's budget (n_steps in "
    "tables/eta_grid.md; RPROP: shorter, full batch); star: best eta0; x: all diverged.",
    "iterations_to_eps": "Iterations for the mean curve to reach eps at the best eta0 (95% "
    "bootstrap CI); RPROP iterations are full batch (N samples each).",
    "bias_correction": "Adam's first 50 steps with and without bias correction (paired runs): "
    "step per coordinate over eta0, and the ratios of steps and of progress.",
    "reddi_counterexample": "Mean iterate on Reddi et al.'s counterexample: Adam drifts to the "
    "worst point x = +1, AMSGrad and SGD towards the optimum x = -1.",
    "eta_grid": "Every (problem, method, eta0): final suboptimality (95% t-CI), iterations to eps "
    "(bootstrap CI, censored share), divergences; best = the chosen eta0.",
    "best_eta": "Best eta0 per problem and method: iterations to eps (and samples), ratio to SGD.",
    "bias_ratios": "Adam without / with bias correction per step k: step and progress ratios "
    "(paired bootstrap CIs), constant-gradient step ratio.",
    "reddi_final_x": "Final iterate per optimizer on Reddi et al.'s counterexample (mean, 95% "
    "t-CI, share of replicates at x > 0).",
}


def analyze(runs: dict[str, pd.DataFrame], scale: Scale) -> Analysis:
    """Tables, figures, checks and findings of the three grids."""
    tuning, bias = (runs[g].rename(columns={"optimizer": "method", "schedule.eta0": "eta0"})
                    for g in ("tuning", "bias"))  # fmt: skip
    start = tuning[tuning["step"] == 0].groupby("problem")["subopt"].mean()
    eps = {p: scale.pick(*EPS_REL[p]) * start[p] for p in start.index}
    table, boots = protocol.tuning_table(tuning, eps, run_seed=scale.seed, tag=NAME)
    best = protocol.ratio_to_reference(table, boots, "sgd")
    bias_table, reddi = bias_correction_table(bias, scale.seed), reddi_table(runs["reddi"])
    checks = _checks(tuning, best, boots, bias_table, reddi)
    return Analysis(
        tables={"eta_grid": table.drop(columns="at_grid_edge"), "best_eta": best.drop(
            columns="best"), "bias_ratios": bias_table, "reddi_final_x": reddi},
        figures={**_tuning_figures(tuning, table, best), "bias_correction": _bias_figure(
            bias, bias_table), "reddi_counterexample": _reddi_figure(runs["reddi"])},
        captions=CAPTIONS, checks=checks,
        findings=_findings(best, {c.id: c for c in checks}, bias_table, reddi))  # fmt: skip


study = Study(
    name=NAME,
    title="Adaptive methods: per-coordinate step sizes, bias correction and AMSGrad (claim 7)",
    description="SGD, momentum, Adagrad, RMSprop, Adam, AMSGrad and full-batch RPROP, each at "
    "its best constant step, on badly scaled least squares (axis-aligned and rotated) and a "
    "teacher-student network; Adam with and without bias correction; and Reddi et al.'s (2018) "
    "counterexample, on which Adam converges to the wrong point and AMSGrad does not.",
    conditions=conditions, analyze=analyze, labels=("label",), claims=(7,), replicates=50,
    compute={"tuning": simulate_cell, "bias": paired_bias_cell, "reddi": functools.partial(
        simulate_cell, observe={"x": first_coordinate}, project=True)}, quick_replicates=10,
)  # fmt: skip
