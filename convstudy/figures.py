"""Seaborn figures shared by the studies: mean curves with CI bands, estimates with CIs, theory.

Every figure says which interval it draws (benchopt #334): bands are 95% Student-t intervals of
the mean over non-diverged replicates unless the caller says otherwise, and the number of
replicates is in the legend title.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

__all__ = ["new_figure", "plot_mean_curves", "plot_estimates", "add_reference_line", "CI_NOTE"]

CI_NOTE = "mean, band = 95% CI over replicates"


def new_figure(
    ncols: int = 1, nrows: int = 1, *, width: float = 5.0, height: float = 3.6, sharey: bool = False
):
    """A figure with the convstudy style (seaborn ``whitegrid``, ``notebook`` context)."""
    sns.set_theme(style="whitegrid", context="notebook", font_scale=0.85)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(width * ncols, height * nrows),
        squeeze=False,
        sharey=sharey,
        layout="constrained",
    )
    return fig, axes.ravel() if axes.size > 1 else axes[0, 0]


def plot_mean_curves(
    ax,
    curves: pd.DataFrame,
    *,
    x: str,
    hue: str | None = None,
    logx: bool = True,
    logy: bool = True,
    xlabel: str = "",
    ylabel: str = "",
    title: str = "",
    palette: str = "viridis",
    legend_title: str | None = None,
    style: str | None = None,
):
    """Mean curves with 95% CI bands from a :func:`convstudy.stats.curves.mean_curve` frame.

    ``curves`` has columns ``x, mean, ci_low, ci_high, n`` (and ``hue``); points with a
    non-positive mean are dropped on a log axis. The legend title states R and the interval.
    """
    data = curves.copy()
    if logy:
        data = data[data["mean"] > 0]
        data = data.assign(ci_low=data["ci_low"].where(data["ci_low"] > 0, data["mean"] / 10))
    if logx:
        data = data[data[x] > 0]
    levels = list(dict.fromkeys(data[hue])) if hue else [None]
    colors = sns.color_palette(palette, len(levels))
    for level, color in zip(levels, colors):
        part = data if hue is None else data[data[hue] == level]
        ax.plot(
            part[x],
            part["mean"],
            color=color,
            label=None if hue is None else str(level),
            lw=1.6,
            ls="-" if style is None else style,
        )
        ax.fill_between(part[x], part["ci_low"], part["ci_high"], color=color, alpha=0.2, lw=0)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if hue:
        n = int(data["n"].max()) if "n" in data and len(data) else 0
        ax.legend(
            title=f"{legend_title or hue} (R={n}; {CI_NOTE})",
            fontsize="small",
            title_fontsize="small",
        )
    return ax


def plot_estimates(
    ax,
    table: pd.DataFrame,
    *,
    x: str,
    y: str,
    low: str = "ci_low",
    high: str = "ci_high",
    hue: str | None = None,
    logx: bool = False,
    logy: bool = False,
    xlabel: str = "",
    ylabel: str = "",
    title: str = "",
    palette: str = "deep",
    note: str = "error bars = 95% CI",
):
    """Point estimates with asymmetric CI error bars (fitted slopes, hitting times, ...)."""
    levels = list(dict.fromkeys(table[hue])) if hue else [None]
    colors = sns.color_palette(palette, len(levels))
    for level, color in zip(levels, colors):
        part = table if hue is None else table[table[hue] == level]
        yv = part[y].to_numpy(float)
        err = np.vstack([yv - part[low].to_numpy(float), part[high].to_numpy(float) - yv])
        err = np.where(np.isfinite(err), np.maximum(err, 0), 0)
        ax.errorbar(
            part[x],
            yv,
            yerr=err,
            fmt="o-",
            color=color,
            capsize=3,
            ms=4,
            label=None if hue is None else str(level),
        )
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(ylabel or y)
    if title:
        ax.set_title(title)
    if hue:
        ax.legend(title=f"{hue} ({note})", fontsize="small", title_fontsize="small")
    elif note:
        ax.text(
            0.99,
            0.01,
            note,
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize="x-small",
            color="0.3",
        )
    return ax


def add_reference_line(
    ax, x: Sequence[float], y: Sequence[float], label: str, *, color: str = "black", ls: str = "--"
):
    """Overlay a theoretical prediction (dashed) and add it to the legend."""
    ax.plot(x, y, color=color, ls=ls, lw=1.2, label=label)
    ax.legend(fontsize="small", title_fontsize="small")
    return ax


def small_legend(ax, title: str | None = None, **kwargs):
    """The axis legend in x-small type (figures with many entries), with an optional title;
    ``kwargs`` go to ``ax.legend`` (e.g. ``loc``)."""
    return ax.legend(fontsize="x-small", title=title, title_fontsize="x-small", **kwargs)


def plot_function_1d(
    ax,
    f,
    x: Sequence[float],
    *,
    points: Sequence[tuple[str, float, str]] = (),
    ylim=None,
    xlabel: str = "w",
    ylabel: str = "f(w)",
    title: str = "",
):
    """A one-dimensional objective f over the grid ``x``, with dashed lines at named points.

    ``points`` holds ``(name, x, color)`` triples (minima, maxima, a starting point), each
    labelled ``"name x"`` in the legend.
    """
    x = np.asarray(x, dtype=float)
    ax.plot(x, f(x), color="black", lw=1.4)
    for name, xv, color in points:
        ax.axvline(xv, color=color, ls="--", lw=1, label=f"{name} {xv:.2f}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if ylim is not None:
        ax.set_ylim(*ylim)
    if title:
        ax.set_title(title, fontsize="small")
    if points:
        ax.legend(fontsize="x-small")
    return ax


def add_estimate_point(
    ax,
    x: float,
    value: float,
    low: float,
    high: float,
    *,
    label: str,
    marker: str = "s",
    color: str = "black",
):
    """One estimate with its asymmetric CI as a lone marker (a baseline beside a sweep)."""
    err = [[max(value - low, 0.0)], [max(high - value, 0.0)]]
    ax.errorbar([x], [value], yerr=err, fmt=marker, color=color, capsize=3, label=label)
    return ax


def plot_estimates_and_predictions(
    ax,
    table: pd.DataFrame,
    *,
    x: str,
    y: str,
    predicted: str,
    hue: str,
    low: str = "ci_low",
    high: str = "ci_high",
    prediction_label: str = "prediction",
    logx: bool = False,
    logy: bool = False,
    palette: str = "deep",
):
    """Measured estimates with CI bars (markers) and the theory's prediction (a dashed line in
    the same colour), one pair per ``hue`` level, both in the legend.

    On a log y axis a CI reaching 0 or below is drawn down to estimate/10 (so it stays visible);
    say so in the caption. Returns ``ax``.
    """
    levels = list(dict.fromkeys(table[hue]))
    for level, color in zip(levels, sns.color_palette(palette, len(levels))):
        part = table[table[hue] == level]
        yv, lo = part[y].to_numpy(float), part[low].to_numpy(float)
        if logy:
            lo = np.where(lo > 0, lo, yv / 10)
        err = np.maximum(np.vstack([yv - lo, part[high].to_numpy(float) - yv]), 0)
        ax.errorbar(part[x], yv, yerr=np.nan_to_num(err), fmt="o", color=color, ms=4, capsize=2,
                    lw=1, label=str(level))  # fmt: skip
        ax.plot(part[x], part[predicted], color=color, ls="--", lw=1.2,
                label=f"{level}: {prediction_label}")  # fmt: skip
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    return ax


def plot_tuning_sensitivity(
    ax,
    table: pd.DataFrame,
    *,
    hue: str,
    order: Sequence[str],
    labels: dict | None = None,
    x: str = "eta0",
    y: str = "final_subopt",
    palette: str = "tab10",
):
    """Final value against a tuned step size, one line per ``hue`` level, from a tuning table.

    ``table`` has columns ``x, y, final_ci_low, final_ci_high, n, best`` (see
    :func:`convstudy.tuning.tuning_table`): bars are the 95% t-CI (lower end cut at y/10 on the
    log axis), a star marks the selected value (``best``), an x a value where every replicate
    diverged (``n == 0``, drawn above the data).
    """
    colors = dict(zip(order, sns.color_palette(palette, len(order))))
    top = np.nanmax(table["final_ci_high"].to_numpy(float)) if len(table) else 1.0
    for level in order:
        part = table[table[hue] == level]
        ok = part[part["n"] > 0]
        mean = ok[y].to_numpy(float)
        low = ok["final_ci_low"].where(ok["final_ci_low"] > 0, ok[y] / 10).to_numpy(float)
        err = np.clip(np.vstack([mean - low, ok["final_ci_high"].to_numpy(float) - mean]), 0, None)
        label = (labels or {}).get(level, str(level))
        ax.errorbar(ok[x], mean, yerr=err, fmt="o-", ms=3, capsize=2, lw=1.2,
                    color=colors[level], label=label)  # fmt: skip
        best = part[part["best"]]
        ax.scatter(best[x], best[y], marker="*", s=160, color=colors[level], edgecolor="black",
                   zorder=5)  # fmt: skip
        dead = part[part["n"] == 0]
        ax.scatter(dead[x], np.full(len(dead), top * 3), marker="x", s=40, color=colors[level])
    ax.set_xscale("log")
    ax.set_yscale("log")
    return ax


def plot_hitting_time_intervals(
    ax,
    table: pd.DataFrame,
    *,
    rows: Sequence[str],
    row: str,
    hue: str,
    hue_order: Sequence[str],
    row_labels: dict | None = None,
    hue_labels: dict | None = None,
    palette: str = "deep",
):
    """Hitting times with bootstrap CIs as horizontal bars: one row per ``row`` level, dodged
    by ``hue``; a hit that was never reached (inf) is a '>' at the budget (``n_steps``).

    ``table`` has columns ``row, hue, hit, hit_ci_low, hit_ci_high, n_steps, n`` (e.g. the best
    rows of :func:`convstudy.tuning.tuning_table`); an upper CI end at inf is drawn to the budget.
    """
    colors = dict(zip(hue_order, sns.color_palette(palette, len(hue_order))))
    y0 = np.arange(len(rows))
    for j, level in enumerate(hue_order):
        part = table[table[hue] == level].set_index(row).reindex(list(rows))
        if part["n"].isna().all():
            continue
        y = y0 + (j - (len(hue_order) - 1) / 2) * 0.22
        budget = float(part["n_steps"].max())
        hit, lo, hi = (part[c].to_numpy(float) for c in ("hit", "hit_ci_low", "hit_ci_high"))
        ok = np.isfinite(hit)
        hi = np.minimum(hi, budget)
        ax.errorbar(hit[ok], y[ok], xerr=np.vstack([hit[ok] - lo[ok], hi[ok] - hit[ok]]), fmt="o",
                    color=colors[level], capsize=3, ms=5,
                    label=(hue_labels or {}).get(level, str(level)))  # fmt: skip
        ax.scatter(np.full((~ok).sum(), budget), y[~ok], marker=">", color=colors[level])
    ax.set_yticks(y0, [(row_labels or {}).get(r, str(r)) for r in rows])
    ax.set_xscale("log")
    ax.invert_yaxis()
    return ax


def drop_minor_log_ticks(fig) -> None:
    """No minor ticks on the log axes of ``fig``: the whitegrid style does not draw them, but
    matplotlib still lays them out, which can take a third of the time it takes to save a
    figure with many log-log panels."""
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            if axis.get_scale() == "log":
                axis.set_minor_locator(matplotlib.ticker.NullLocator())


def log2_size_axis(ax, sizes, label: str):
    """A log2 x axis with ``sizes`` as plain integer tick labels (1, 2, 4, ... not 2^k)."""
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [str(int(s)) for s in sizes])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.tick_params(axis="x", labelsize="x-small")
    ax.set_xlabel(label)
    return ax


def figure_legend(fig, axes, title: str = "", ncols: int = 2):
    """One legend below the figure with the entries of ``axes`` (duplicates once), replacing
    the axes' own legends."""
    entries = {}
    for ax in np.ravel(axes):
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    for ax in fig.axes:
        if ax.get_legend():
            ax.get_legend().remove()
    return fig.legend(entries.values(), entries.keys(), loc="outside lower center", ncols=ncols,
                      fontsize="small", title=title, title_fontsize="small")  # fmt: skip


def plot_condition_curves(
    ax, frames: dict, *, theory: dict | None = None, palette="viridis", legend_title: str = "",
    title: str = "", window: tuple[float, float] | None = None, window_label: str = "window",
    ylabel: str = "E[f(w_k)] - f*", legend_loc: str = "best",
):  # fmt: skip
    """Mean curves with 95% CI bands of named runs frames ``{name: frame}`` (one condition each).

    ``theory`` maps names to ``(steps, values)`` drawn dashed in the curve's colour (e.g. an
    exact expectation); ``window`` shades an x-interval (a fit or plateau window); ``palette``
    is a seaborn palette name or a list of colours. The legend is x-small with ``legend_title``.
    """
    from .stats.curves import mean_curve

    curves = pd.concat([mean_curve(f).assign(curve=name) for name, f in frames.items()])
    plot_mean_curves(ax, curves, x="step", hue="curve", palette=palette, xlabel="update k",
                     ylabel=ylabel, title=title)  # fmt: skip
    for name, color in zip(frames, sns.color_palette(palette, len(frames))):
        if theory and name in theory:
            ax.plot(*theory[name], color=color, ls="--", lw=0.9)
    if theory:
        ax.plot([], [], color="0.3", ls="--", lw=0.9, label="exact expectation (theory)")
    if window is not None:
        ax.axvspan(*window, color="0.92", zorder=0, label=window_label)
    title_text = f"{legend_title} ({CI_NOTE})" if legend_title else CI_NOTE
    ax.legend(fontsize="x-small", title=title_text, title_fontsize="x-small", loc=legend_loc)
    return ax


def plot_schedules(
    ax_steps, axes_sums, schedules: dict, n_steps: int, *, colors: dict, horizon: int = 10**5
):
    """Step sizes eta_k of named schedules over ``n_steps`` updates (``ax_steps``) and their
    partial sums sum_{j<k} eta_j, sum_{j<k} eta_j^2 to ``horizon`` (two ``axes_sums``, log-log):
    the Robbins-Monro conditions sum eta = inf, sum eta^2 < inf (Robbins & Monro 1951) made
    visible. Legend entries of the sums say ``RM`` / ``not RM`` (``schedule.robbins_monro``)."""
    from .theory.noise_floor import step_size_sums

    ks, at = np.arange(1, n_steps), np.unique(np.geomspace(1, horizon, 200).astype(int)) - 1
    for name, schedule in schedules.items():
        ax_steps.plot(ks, schedule(ks), color=colors[name], label=name)
        rm = "RM" if schedule.robbins_monro else "not RM"
        for ax, sums in zip(axes_sums, step_size_sums(schedule(np.arange(horizon)))):
            ax.plot(at + 1, sums[at], color=colors[name], label=f"{name} ({rm})")
    ax_steps.set(xscale="log", yscale="log", xlabel="update k", ylabel="step size eta_k")
    for ax, power, title in zip(axes_sums, ("", "^2"), ("Robbins-Monro needs sum eta = inf ...",
                                                       "... and sum eta^2 < inf")):  # fmt: skip
        ax.set(xscale="log", yscale="log", xlabel="updates k", title=title,
               ylabel=f"sum_{{j<k}} eta_j{power}")  # fmt: skip
    axes_sums[0].legend(fontsize="x-small", title="schedule (RM = Robbins-Monro)",
                        title_fontsize="x-small")  # fmt: skip
    return ax_steps, axes_sums


def plot_tuning_summary(
    curves: pd.DataFrame,
    table: pd.DataFrame,
    best: pd.DataFrame,
    *,
    panels: dict,
    methods: dict,
) -> dict:
    """Three figures of a tuned comparison, one panel per problem (``panels``: name -> title;
    ``methods``: name -> label), every x axis in samples processed where batch sizes differ:

    - ``curves_best_eta``: mean curves against ``samples`` (``curves`` from
      :func:`convstudy.tuning.best_curves` with ``x="samples"``), eps dotted;
    - ``eta_sensitivity``: final value against eta0 per method (:func:`plot_tuning_sensitivity`
      on ``table``, a star on its ``best`` rows), one legend outside below;
    - ``samples_to_eps``: samples until the mean curve reaches eps at the best eta0 with
      bootstrap CIs (``hit`` x ``samples_per_step`` of ``best``; markers, no joining lines).
    """
    (fig_c, axes_c), (fig_s, axes_s) = (new_figure(3, 1, width=4.8, height=h) for h in (5, 4.4))
    for ax, ax_s, (problem, title) in zip(axes_c, axes_s, panels.items()):
        eps = table.loc[table["problem"] == problem, "eps"].iloc[0]
        plot_mean_curves(
            ax,
            curves[curves["problem"] == problem],
            x="samples",
            hue="label",
            palette="tab10",
            xlabel="samples processed",
            ylabel="f(w) - f*",
            title=title,
        )
        plot_tuning_sensitivity(
            ax_s,
            table[table["problem"] == problem],
            hue="method",
            order=list(methods),
            labels=methods,
        )
        ax.axhline(eps, color="0.3", ls=":", lw=1, label=f"eps = {eps:.2g}")
        ax_s.axhline(eps, color="0.3", ls=":", lw=1)
        small_legend(
            ax,
            f"method at its chosen eta0 ({CI_NOTE})",
            loc="upper center",
            bbox_to_anchor=(0.5, -0.16),
            ncols=2,
        )
        ax_s.set(xlabel="constant step size eta0", ylabel="final f(w_K) - f*", title=title)
    small_legend(
        fig_s,
        "mean, bars = 95% t-CI (cut at mean/10 on the log axis); star = chosen "
        "eta0; x = every replicate diverged; dotted = eps",
        loc="outside lower center",
        ncols=8,
        handles=axes_s[0].get_legend_handles_labels()[0],
    )
    cols = ("hit", "hit_ci_low", "hit_ci_high", "n_steps")
    in_samples = best.assign(**{c: best[c] * best["samples_per_step"] for c in cols})
    fig_h, ax = new_figure(1, 1, width=7.5, height=4.6)
    plot_hitting_time_intervals(
        ax,
        in_samples,
        rows=list(methods),
        row="method",
        hue="problem",
        hue_order=list(panels),
        row_labels=methods,
        hue_labels=panels,
    )
    ax.set_xlabel("samples processed until the mean curve reaches eps (iterations x batch size)")
    small_legend(
        ax,
        "problem (bars = 95% bootstrap CI; > = not reached in the budget)",
        loc="upper center",
        bbox_to_anchor=(0.5, -0.14),
        ncols=2,
    )
    return {"curves_best_eta": fig_c, "eta_sensitivity": fig_s, "samples_to_eps": fig_h}
