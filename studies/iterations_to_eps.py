"""Iterations (and samples) to reach f - f* <= eps: batch GD, SGD and minibatch SGD.

Claims 2-4 on a quadratic (d = 10, N = 1000, spectrum log-spaced over [1, kappa], noise 3,
kappa = 10, 30, 100) and L2-logistic regression (breast cancer, lam = 0.1); random starts.

- ``gd``: batch GD, eta = s/L with s = 1, 2/(1 + 1/kappa) (= 2/(L + mu)), 2.1 at every kappa,
  s = 0.5, 1.5, 1.7, 1.95 at kappa = 10, s = 1, 2/(L + mu) on logistic; 30 e-folds of the
  predicted rate (200 steps above 2/L), recorded at log-spaced and every (n/30)-th step;
- ``sgd``: SGD (b = 1) and minibatch SGD (b = 4 .. 256, i.i.d.), eta_k = 1/(mu (k + k0_b)),
  k0_b = L_b/mu (expected smoothness L_b), K_1/b + 50 k0_b steps; one reshuffled SGD run.

Checks (predictions, bands, broken variants): :mod:`convstudy.catalogue.iterations_to_eps`;
exact constants: :mod:`convstudy.theory.complexity`; wall-clock: ``benchmarks/``.
"""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pandas as pd

from convstudy import figures as fg
from convstudy.catalogue import iterations_to_eps as cat
from convstudy.engine import record_steps
from convstudy.stats import curves as sc
from convstudy.stats import fits as sf
from convstudy.stats.estimate import Estimate, derived_seed
from convstudy.stats.proportions import diverged_share, proportion_ci
from convstudy.study import Analysis, Scale, Study, Variant, build_problem, simulate_cell
from convstudy.theory import complexity as cx

NAME, KAPPAS = "iterations_to_eps", (10.0, 30.0, 100.0)
QUADRATIC, LOGISTIC = "quadratic kappa={:g}", "logistic (breast cancer)"
STOCHASTIC = QUADRATIC.format(10.0)  # the quadratic on which SGD and minibatch SGD run
QUAD = {"problem": "quadratic", "problem.dim": 10, "problem.n_samples": 1000, "problem.seed": 0}
PROBLEMS = {QUADRATIC.format(k): {**QUAD, "problem.condition_number": k} for k in KAPPAS}
PROBLEMS = {k: {**v, "problem.noise": 3.0} for k, v in PROBLEMS.items()}
PROBLEMS[LOGISTIC] = {"problem": "logistic", "problem.lam": 0.1}
LABELS = ("curve", "problem_label", "method", "method_label", "step_rule", "kappa", "b")
LABELS += ("step_times_L", "k0")  # design values: a broken variant changes the parameters only
GD_STEPS, SWEEP_STEPS = (1.0, "opt"), (0.5, 1.5, 1.7, 1.95)  # eta L ("opt": 2/(L + mu))
DIVERGING_STEP, DIVERGING_BUDGET, GD_EFOLDS, GD_RECORDS, SGD_RECORDS = 2.1, 200, 30.0, 30, 80
MINIBATCHES, LOGISTIC_MINIBATCHES, BIAS_STEPS = (1, 4, 16, 64, 256), (1, 16), 50
EPS_FIT = 10.0 ** -np.arange(0.0, 8.01, 0.125)  # eps grid of the rate fits
GD_FIT_EPS = (1e-8, 1e-4)
GD_EPS = EPS_FIT[(EPS_FIT >= GD_FIT_EPS[0]) & (EPS_FIT <= GD_FIT_EPS[1])]
SGD_WINDOW_K0, VARIANCE_FIT_K0 = 50, 5  # fits use k >= 50 k0 (slope) and k >= 5 k0 (c_b)
TRADEOFF_EPS, CLAIM_EPS, N_BOOT = 10.0 ** -np.arange(1.0, 3.01, 0.5), 1e-2, 1000
OPT, IID, CI = f"{STOCHASTIC} | GD eta=2/(L+mu)", f"{STOCHASTIC} | SGD b=1 (i.i.d.)", "95% CI"


def _condition(label: str, method: str, name: str, rule: str, n: int, b: int, **keys) -> dict:
    """The problem's keys, plain SGD updates from a random start, ``keys``, and the labels."""
    gd, kappa = method == "GD", PROBLEMS[label].get("problem.condition_number", -1)
    out = {**PROBLEMS[label], "optimizer": "sgd", "w0": "random", "batch_size": b, **keys}
    rec = {"n_records": GD_RECORDS if gd else SGD_RECORDS, "record_every": gd * n // 30}
    out |= {"n_steps": n, **rec, "curve": f"{label} | {name}", "problem_label": label}
    out |= {"kappa": kappa} if kappa > 0 else {}
    return out | {"method": method, "method_label": name, "step_rule": rule, "b": b}


def _gd(label: str, times_L) -> dict:
    """Batch GD with eta = times_L / L (or 2/(L + mu)); budget from the predicted rate."""
    p = build_problem(PROBLEMS[label])
    eta = 2.0 / (p.L + p.mu) if times_L == "opt" else times_L / p.L
    slope = cx.gd_rate(p, eta)["slope_theory"]
    n = DIVERGING_BUDGET if math.isinf(slope) else math.ceil(GD_EFOLDS * slope)
    rule = "2/(L+mu)" if times_L == "opt" else "1/L" if times_L == 1.0 else f"{times_L:g}/L"
    keys = {"sampler": "full", "schedule": "constant", "schedule.eta0": eta}
    keys["step_times_L"] = eta * p.L
    return _condition(label, "GD", f"GD eta={rule}", rule, n, p.n_samples, **keys)


def _tuned(label: str, b: int, k1: int, sampler: str = "replacement") -> dict:
    """eta_k = 1/(mu (k + k0_b)), k0_b = L_b/mu, for K_1/b (variance term) + 50 k0_b (bias)."""
    p, order = build_problem(PROBLEMS[label]), {"replacement": "i.i.d."}.get(sampler, "reshuffled")
    k0, name = cx.minibatch_k0(p, b), f"SGD b=1 ({order})" if b == 1 else f"minibatch b={b}"
    n = k1 if b == 1 else math.ceil(k1 / b + BIAS_STEPS * k0)
    keys = {"sampler": sampler, "schedule": "inverse_time", "schedule.k0": k0, "k0": k0}
    keys["schedule.eta0"] = 1.0 / (p.mu * k0)
    return _condition(label, "SGD" if b == 1 else "minibatch", name, "1/(mu(k+k0))", n, b, **keys)


def conditions(scale: Scale) -> dict[str, list[dict]]:
    """The grids; a quick run has kappa 10, 100, two sweep steps, b = 1, 16, 256, shorter SGD."""
    kappas, sweep = scale.pick(KAPPAS, KAPPAS[::2]), scale.pick(SWEEP_STEPS, SWEEP_STEPS[2:])
    gd = [_gd(QUADRATIC.format(k), s) for k in kappas for s in (*GD_STEPS, DIVERGING_STEP)]
    gd += [_gd(STOCHASTIC, s) for s in sweep] + [_gd(LOGISTIC, s) for s in GD_STEPS]
    k1, k1_log = scale.pick(150_000, 40_000), scale.pick(30_000, 6_000)
    sgd = [_tuned(STOCHASTIC, b, k1) for b in scale.pick(MINIBATCHES, MINIBATCHES[::2])]
    sgd += [] if scale.quick else [_tuned(STOCHASTIC, 1, k1 // 3, sampler="reshuffle")]
    return {"gd": gd, "sgd": sgd + [_tuned(LOGISTIC, b, k1_log) for b in LOGISTIC_MINIBATCHES]}


def compute(condition: dict, seed: int, replicates) -> pd.DataFrame:
    """:func:`simulate_cell` recording at log-spaced steps and every ``record_every``-th step."""
    n, every = condition["n_steps"], condition["record_every"] or condition["n_steps"]
    record = np.union1d(record_steps(n, "log", condition["n_records"]), np.arange(0, n + 1, every))
    return simulate_cell({**condition, "record": record}, seed, replicates)


def _broken(methods: tuple, scale: float = 1.0, drop: str = "", **change):
    """Conditions of ``methods`` run with ``scale`` x their step, ``change`` and no ``drop`` key
    (labels and theory keep the design); other conditions as they are."""

    def broken(c: dict) -> dict:
        if c["method"] not in methods:
            return c
        c = {k: v for k, v in c.items() if k != drop} | change
        return c | {"schedule.eta0": c["schedule.eta0"] * scale}

    return broken


SGD = ("SGD", "minibatch")
VARIANTS = {
    "half_step": Variant("GD runs eta/2 (the design and theory: eta)", _broken(("GD",), 0.5)),
    "double_step": Variant("GD runs 2 eta (the design and theory: eta)", _broken(("GD",), 2.0)),
    "constant_step": Variant(
        "SGD keeps its first step 1/L_b: no 1/k decay",
        _broken(SGD, drop="schedule.k0", schedule="constant"),
    ),
    "no_variance_reduction": Variant(
        "minibatch gradients from one sample (b = 1), schedule and budget of b",
        _broken(("minibatch",), batch_size=1),
    ),
}


INFO = LABELS + ("schedule.eta0", "batch_size", "sampler", "n_steps")


def _by_curve(runs: pd.DataFrame) -> dict[str, tuple[dict, pd.DataFrame]]:
    """(labels and design, frame) of each condition of a grid, by ``curve``."""
    groups = runs.groupby("curve", sort=False)
    return {c: ({k: g[k].iloc[0] if k in g else math.nan for k in INFO}, g) for c, g in groups}


def rate_tables(gd: dict, sgd: dict, *, n_boot: int, seed: int):
    """GD iterations per e-fold of eps (over GD_FIT_EPS) against 1/ln(1/rho) at the design's step
    and diverged shares (exact CIs); SGD log-log slopes of iterations to eps against 1/eps past
    50 k0_b. Returns the three tables and the fits by curve."""
    rates, shares, rows, fits, gd_seed = [], [], [], {}, derived_seed(seed, "gd_rates")
    for name, (i, f) in gd.items():
        p, s = build_problem(PROBLEMS[i["problem_label"]]), derived_seed(gd_seed, name)
        fit = fits[name] = sf.fit_hitting_slope(f, GD_EPS, n_boot=n_boot, seed=s)
        f0 = float(f.loc[f["step"] == 0, "subopt"].mean())
        rates.append(sf.slope_fit_row(fit, **i, **cx.gd_rate(p, i["step_times_L"] / p.L), f0=f0))
        e = diverged_share(f)
        shares.append({**i, **e.as_row(), "n_diverged": round(e.value * e.n)})
    for name, (i, f) in sgd.items():
        window, s = (SGD_WINDOW_K0 * i["k0"], i["n_steps"]), derived_seed(seed, name)
        kw = {"scale": "loglog", "window": window, "n_boot": n_boot, "seed": s}
        fits[name] = sf.fit_hitting_slope(f, EPS_FIT, **kw)
        rows.append(sf.slope_fit_row(fits[name], **i, k_min=window[0]))
    return pd.DataFrame(rates), pd.DataFrame(shares), pd.DataFrame(rows), fits


def minibatch_tables(sgd: dict, *, n_boot: int, seed: int):
    """Per design b (stochastic quadratic, i.i.d.): iterations, samples to eps (interpolated
    mean-curve crossings) against c_1/(b eps) - k0_b, and c_b of f ~ c_b/(k + k0) + B (k0/(k +
    k0))^2 (k >= 5 k0_b) against c_1/b; log-log slopes against b of the iterations to CLAIM_EPS
    (missing if a b misses it) and of c_b (over b whose variance term ends >= half of f)."""
    trade, var, k_boots, c_boots, p = [], [], [], [], build_problem(PROBLEMS[STOCHASTIC])
    c1 = cx.inverse_time_variance_constant(p, 1 / p.mu)
    for i, f in sgd.values():
        if i["problem_label"] != STOCHASTIC or i["sampler"] != "replacement":
            continue
        b, k0, kw = int(i["b"]), i["k0"], {"n_boot": n_boot}
        t, boots = sc.mean_curve_crossing_table(
            f, TRADEOFF_EPS, interpolate="log", seed=derived_seed(seed, "tradeoff", b), **kw
        )
        t = t.rename(columns={"hit": "iterations"}).assign(batch_size=b, k0=k0)
        trade.append(t.assign(theory=c1 / (b * t["eps"]) - k0, samples=b * t["iterations"]))
        k_boots.append(boots[:, np.isclose(TRADEOFF_EPS, CLAIM_EPS)][:, 0])
        c, B, boots = sf.fit_inverse_time_coefficients(
            f, k0, k_min=VARIANCE_FIT_K0 * k0, seed=derived_seed(seed, b), **kw
        )
        c_boots.append(boots)
        share = cx.inverse_time_variance_share(c.value, B, k0, i["n_steps"])
        row = {"batch_size": b, "k0": k0, **c.as_row("c_"), "bias_B": B, "c_theory": c1 / b}
        var.append(row | {"variance_share_end": share, "identified": share >= 0.5})
    trade, var = pd.concat(trade, ignore_index=True), pd.DataFrame(var)
    at, ok = trade[np.isclose(trade["eps"], CLAIM_EPS)], var["identified"].to_numpy(bool)
    log_b, n = np.log(var["batch_size"]), int(at["n"].min())
    slopes = {"iterations": sf.bootstrap_slope(log_b, at["iterations"], np.stack(k_boots, 1), n=n)}
    if at["censored"].any():  # a b that misses eps within K_1/b + 50 k0_b did not speed up
        slopes["iterations"] = sf.SlopeFit(Estimate(math.nan, math.nan, math.nan, 0, ""), *[0] * 3)
    c_b, c_boots = var.loc[ok, "c_estimate"], np.stack(c_boots, 1)[:, ok]
    n_ok = int(var.loc[ok, "c_n"].min()) if ok.any() else 0
    slopes["variance"] = sf.bootstrap_slope(log_b[ok], c_b, c_boots, n=n_ok, skip_nan=True)
    return trade, var.assign(b_c_over_c1=var["c_estimate"] / var["c_theory"]), slopes, c1


def checks(rates, div, sgd, fits, optimal, var, slopes, c1) -> list:
    """Claim 2: GD slopes (1/L at every kappa and on logistic, 2/(L+mu) at the largest kappa),
    divergence above 2/L and none at 1.95/L, 2/(L+mu) fastest. Claim 3: SGD's iterations ~
    (1/eps)^1 and its constant c_1. Claim 4: c_b ~ 1/b; iterations fall, samples grow."""

    def check(spec, estimate, prediction, table, figure="minibatch_tradeoff", **kw):
        at = {"figure": f"figures/{figure}.png", "table": f"tables/{table}.md"}
        return spec.check(estimate, prediction=prediction, study=NAME, **at, **kw)

    out, rule = [], rates["step_rule"]
    for _, r in rates[rule.eq("1/L") | (rule.eq("2/(L+mu)") & rates["kappa"].eq(100))].iterrows():
        step = "1overL" if r["step_rule"] == "1/L" else "opt"
        where = f"kappa{r['kappa']:g}" if r["kappa"] > 0 else "logistic"
        kw = {"problem": r["problem_label"], "rule": r["step_rule"], "step": step, "where": where}
        out.append(check(cat.GD_SLOPE, fits[r["curve"]].estimate, r["slope_theory"], *GD_AT, **kw))
    above, below = div[div["step_times_L"] > 2], div[np.isclose(div["step_times_L"], 1.95)]
    up = proportion_ci(above["n_diverged"].sum(), above["n"].sum(), method="exact")
    down = proportion_ci(below["n_diverged"].sum(), below["n"].sum(), method="exact")
    sweep = rates[(rates["problem_label"] == STOCHASTIC) & (rates["step_times_L"] < 2)]
    theory = dict(zip(sweep["step_rule"], sweep["slope_theory"]))
    best = min(v for s, v in theory.items() if s != "2/(L+mu)") / theory["2/(L+mu)"]
    c = Estimate(*var.iloc[0][["c_estimate", "c_ci_low", "c_ci_high", "c_n"]], "bootstrap")
    steps, sizes = sorted(sweep["step_times_L"].round(3)), list(var["batch_size"])
    iterations = slopes["iterations"].estimate
    b, variance = list(var.loc[var["identified"], "batch_size"]), slopes["variance"].estimate
    r, sweep_at, kappas = sgd.loc[sgd["curve"] == IID].iloc[0], "gd_step_sweep", set(above["kappa"])
    closest, window = f"closest: eta={optimal[1]}", f"eps {r['eps_low']:.2g}-{r['eps_high']:.2g}"
    return out + [
        check(cat.DIVERGES, up, 1.0, "gd_divergence", sweep_at, kappas=sorted(kappas)),
        check(cat.CONVERGES, down, 0.0, "gd_divergence", sweep_at),
        check(cat.OPTIMAL_STEP, optimal[0], best, "gd_rates", sweep_at, steps=steps, notes=closest),
        check(cat.SGD_SLOPE, fits[IID].estimate, 1.0, "sgd_rates", notes=window),
        check(cat.SGD_CONSTANT, c, c1, "minibatch_variance"),
        check(cat.MINIBATCH_VARIANCE, variance, -1.0, "minibatch_variance", b=b),
        check(cat.MINIBATCH_ITERATIONS, iterations, math.nan, "tradeoff_to_eps", b=sizes),
    ]


# ---- figures --------------------------------------------------------------------------------
COLORS = matplotlib.colormaps["tab10"].colors
XLABEL = {"step": "iterations k", "samples": "samples processed (b k)"}
GD_AT = ("gd_rates", "subopt_curves")
RIGHT = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0)}
BELOW = {"loc": "upper center", "bbox_to_anchor": (0.5, -0.22), "ncols": 2}


def _theory(i: dict, f: pd.DataFrame, k: np.ndarray):
    """The theory's f_k - f* from its constants: (f_0 - f*) rho^k for GD (rho from the Hessian
    at w*), c_b/(k + k0_b) with the exact variance constant for i.i.d. SGD; None otherwise."""
    p = build_problem(PROBLEMS[i["problem_label"]])
    if i["method"] == "GD":
        rho = cx.gd_rate(p, i["schedule.eta0"])["rho_theory"]
        return f.loc[f["step"] == 0, "subopt"].mean() * rho**k
    c = cx.inverse_time_variance_constant(p, 1.0 / p.mu, int(i["b"]))
    return c / (k + i["k0"]) if i["sampler"] == "replacement" else None


def subopt_figure(curves: dict):
    """f - f* against iterations and samples per problem and method, theory dotted."""
    fig, axes = fg.new_figure(2, 2, width=5.0, height=3.6)
    kw = {"hue": "method_label", "palette": "tab10", "ylabel": "f(w) - f*"}
    for row, label in enumerate((STOCHASTIC, LOGISTIC)):
        shown = [(i, f) for i, f in curves.values() if i["problem_label"] == label]
        shown = [t for t in shown if t[0]["step_rule"] in ("1/L", "2/(L+mu)", "1/(mu(k+k0))")]
        for ax, x in zip(axes[2 * row : 2 * row + 2], ("step", "samples")):
            mc = pd.concat([sc.mean_curve(f, "subopt", x).assign(**i) for i, f in shown])
            fg.plot_mean_curves(ax, mc, x=x, title=label, xlabel=XLABEL[x], **kw)
            for color, (i, f) in zip(COLORS, shown):
                k = np.geomspace(1, i["n_steps"], 200)
                if (y := _theory(i, f, k)) is not None:
                    ax.plot(k * (i["b"] if x == "samples" else 1), y, color=color, ls=":", lw=1.4)
            ax.set_ylim(bottom=1e-10)  # GD reaches machine precision
            ax.get_legend().remove()
        ax.plot([], [], color="0.3", ls=":", label="theory: (f0-f*) rho^k; c_b/(k+k0_b)")
        fg.small_legend(ax, f"mean, band = 95% CI (R={int(mc['n'].max())})", **RIGHT)
    return fig


def step_sweep_figure(rates: pd.DataFrame, div: pd.DataFrame):
    """Iterations per e-fold against eta L at kappa = 10 (markers, CI) with 1/ln(1/rho(eta))."""
    p, (fig, ax) = build_problem(PROBLEMS[STOCHASTIC]), fg.new_figure(1, 1, width=8.5, height=3.8)
    sub = rates[(rates["problem_label"] == STOCHASTIC) & (rates["step_times_L"] < 2)]
    top = div[(div["problem_label"] == STOCHASTIC) & (div["step_times_L"] > 2)].iloc[0]
    err = np.abs(sub[["ci_low", "ci_high"]].to_numpy().T - sub["slope"].to_numpy())
    ax.errorbar(sub["step_times_L"], sub["slope"], err, fmt="o", capsize=3, label=f"measured, {CI}")
    grid = np.linspace(0.3, 1.999, 400)
    theory = [cx.gd_rate(p, s / p.L)["slope_theory"] for s in grid]
    ax.plot(grid, theory, "k--", lw=1.2, label="1/ln(1/rho), rho = max (1 - eta lambda_i)^2")
    ax.axvline(2.0 / (1.0 + p.mu / p.L), color="C2", ls=":", label="eta = 2/(L+mu)")
    diverged = f"{top['n_diverged']}/{top['n']} runs diverged at {top['step_times_L']:g}/L"
    ax.axvline(2.0, color="C3", lw=0.8, label=f"eta = 2/L; {diverged}")
    ax.set(yscale="log", xlabel="step eta x L", ylabel="iterations per e-fold of eps")
    fg.small_legend(ax, f"GD, {STOCHASTIC}", **RIGHT)
    return fig


def tradeoff_figure(trade: pd.DataFrame, var: pd.DataFrame, c1: float):
    """Iterations vs 1/eps, samples vs b with the variance term alone; b c_b vs b and c_1."""
    fig, axes = fg.new_figure(3, 1, width=4.4, height=4.2)
    t = trade[~trade["censored"]].assign(inv_eps=1 / trade["eps"])
    t = t.assign(b=t["batch_size"].map("b={}".format), e=t["eps"].map("eps={:.2g}".format))
    s = t.assign(**{c: t[c] * t["batch_size"] for c in ("ci_low", "ci_high", "theory")})
    kw = {"predicted": "theory", "prediction_label": "variance term", "logx": True, "logy": True}
    fg.plot_estimates_and_predictions(axes[0], t, x="inv_eps", y="iterations", hue="b", **kw)
    fg.plot_estimates_and_predictions(axes[1], s, x="batch_size", y="samples", hue="e", **kw)
    v = var.assign(fit=var["identified"].map({True: "fitted", False: "bias-dominated"}), c=c1)
    v = v.assign(**{k: v[f"c_{k}"] * v["batch_size"] for k in ("estimate", "ci_low", "ci_high")})
    kw |= {"predicted": "c", "prediction_label": "theory c_1", "logy": False}
    fg.plot_estimates_and_predictions(axes[2], v, x="batch_size", y="estimate", hue="fit", **kw)
    axes[2].axhspan(0.9 * c1, 1.1 * c1, color="0.9", zorder=0, label="c_1 +- 10%")
    axes[2].set(ylim=(0, 2 * c1))
    titles = ("iterations to eps vs 1/eps", "samples to eps vs b", "b x variance coefficient c_b")
    for ax, xl, title in zip(axes, ("1/eps", "minibatch size b", "minibatch size b"), titles):
        ax.set(xlabel=xl, ylabel=title.split(" vs")[0], title=f"{title}, {STOCHASTIC}")
        fg.small_legend(ax, **BELOW)
    return fig


# ---- analysis -------------------------------------------------------------------------------
def analyze(runs: dict[str, pd.DataFrame], scale: Scale) -> Analysis:
    """Tables, figures (none for a broken variant), findings, caveats and checks."""
    boot = {"n_boot": scale.pick(N_BOOT, N_BOOT // 5), "seed": scale.seed}
    gd, stochastic = _by_curve(runs["gd"]), _by_curve(runs["sgd"])
    rates, div, sgd, fits = rate_tables(gd, stochastic, **boot)
    trade, var, slopes, c1 = minibatch_tables(stochastic, **boot)
    sweep = rates.loc[rates["problem_label"].eq(STOCHASTIC) & rates["step_times_L"].lt(2), "curve"]
    boot["seed"] = derived_seed(scale.seed, "gd_rates")
    ratio, closest = sf.min_hitting_slope_ratio({c: gd[c][1] for c in sweep}, OPT, GD_EPS, **boot)
    fit_rows = pd.DataFrame([sf.slope_fit_row(slopes[w], quantity=f"{w} vs b") for w in slopes])
    tables = dict(zip(TABLES, (rates, div, sgd, trade, var, fit_rows)))
    draw = [(subopt_figure, gd | stochastic), (step_sweep_figure, rates, div)]
    draw += [(tradeoff_figure, trade, var, c1)]
    figures = {} if scale.variant else {k: f(*a) for k, (f, *a) in zip(CAPTIONS, draw)}
    for fig in figures.values():
        fg.drop_minor_log_ticks(fig)
    found = checks(rates, div, sgd, fits, (ratio, gd[closest][0]["step_rule"]), var, slopes, c1)
    notes = _findings(rates, sgd, trade, var), found, _caveats(found, sgd, var)
    return Analysis(tables, figures, CAPTIONS, *notes)


CAPTIONS = {
    "subopt_curves": f"f - f* vs iterations and samples ({fg.CI_NOTE}); dotted: theory.",
    "gd_step_sweep": "GD iterations per e-fold against eta L (kappa=10) and 1/ln(1/rho(eta)).",
    "minibatch_tradeoff": "Minibatch SGD (kappa=10) against the variance term c_1/(b k).",
    "gd_rates": "GD iterations per e-fold of eps (eps in [1e-8, 1e-4]) against 1/ln(1/rho).",
    "gd_divergence": "Share of GD runs that diverged, per step, exact 95% CI.",
    "sgd_rates": "SGD: log-log slope of iterations to eps vs 1/eps (crossings at k >= 50 k0_b).",
    "tradeoff_to_eps": "Iterations to eps per b (interpolated crossings, bootstrap CI) and theory.",
    "minibatch_variance": "Variance coefficient c_b of f ~ c_b/(k+k0) + B (k0/(k+k0))^2 vs c_1/b.",
    "minibatch_fits": "Log-log slopes against b: iterations to eps=0.01, variance coefficient c_b.",
}
TABLES = list(CAPTIONS)[3:]


def _findings(rates, sgd, trade, var) -> list[str]:
    """Sentences whose numbers come from the tables."""
    one = rates[rates["step_rule"].eq("1/L") & rates["rho_theory"].lt(1)].itertuples()
    ci = "{0.slope:.4g} [{0.ci_low:.4g}, {0.ci_high:.4g}]".format
    gd = "; ".join(f"{r.problem_label}: {ci(r)} vs {r.slope_theory:.4g}" for r in one)
    out = [f"GD, eta=1/L: iterations per e-fold of eps (95% CI) vs 1/ln(1/rho): {gd}."]
    fitted = sgd.dropna(subset="slope").itertuples()
    out += [f"{r.curve}: iterations to eps ~ eps^-{ci(r)}." for r in fitted]
    at = trade[np.isclose(trade["eps"], CLAIM_EPS)].itertuples()
    ratio = ", ".join(f"b={r.batch_size}: {r.b_c_over_c1:.3f}" for r in var.itertuples())
    samples = ", ".join(f"b={r.batch_size}: {r.samples:.4g}" for r in at)
    return out + [f"b c_b / c_1: {ratio}. Samples to eps={CLAIM_EPS:g}: {samples}."]


def _caveats(found, sgd, var) -> list[str]:
    """The anomalies of the tables, with their numbers."""
    tol = [c for c in found if c.verdict == "within tolerance"]
    off = [f"{c.id} {c.estimate:.7g} vs {c.prediction:.7g}" for c in tol]
    out = [f"CIs excluding the prediction: {'; '.join(off)}. {cat.GD_WINDOW_CAVEAT}"] * bool(off)
    missing, shuffled = sgd[sgd["slope"].isna()], sgd[sgd["sampler"].eq("reshuffle")]
    out += [cat.NO_SLOPE_CAVEAT.format(r.curve, r.k_min, r.n_steps) for r in missing.itertuples()]
    out += [cat.SHUFFLED_CAVEAT.format(r.curve, r.slope) for r in shuffled.itertuples()]
    w = var.loc[var["variance_share_end"].idxmin()]
    return out + [cat.BIAS_CAVEAT.format(w.batch_size, 1 - w.variance_share_end)]


META = {"name": NAME, "title": "Iterations to eps: batch GD, SGD and minibatch SGD"}
META |= {"claims": (2, 3, 4), "replicates": 100, "quick_replicates": 20, "labels": LABELS}
META |= {"conditions": conditions, "analyze": analyze, "compute": compute, "variants": VARIANTS}
study = Study(**META, description=__doc__.split("\n\n", 1)[1])
