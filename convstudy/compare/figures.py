"""The figures of a comparison, drawn from the tidy frames of a
:class:`~convstudy.compare.protocol.Comparison`.

- ``curves``: per problem, the mean objective of the evaluation runs against iterations with
  its 95% Student-t band (non-diverged replicates), one line per method, the target dashed;
- ``survival``: per problem, the Kaplan-Meier share of replicates that reached the target
  against iterations (censored at the budget) with its 95% band;
- ``profile``: the Dolan-More performance profile rho_s(tau) of every method with its 95%
  stratified-bootstrap band;
- ``sensitivity``: per problem, the median final objective of every tuning trial against its
  learning rate (the tuning runs: a few replicates, no interval), the chosen trial starred and
  trials with diverged replicates crossed.

Every method keeps one colour in all four figures (:func:`method_colors`); legends sit below
the panels; figures use constrained layout, so saving them needs no tight bounding box.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FormatStrFormatter, LogLocator
from matplotlib.transforms import blended_transform_factory

from ..figures import CI_NOTE, drop_minor_log_ticks, figure_legend, new_figure, plot_mean_curves
from ..stats.survival import KM_METHOD

if TYPE_CHECKING:
    from .protocol import Comparison

__all__ = ["comparison_figures", "method_colors", "METRIC_LABELS"]

METRIC_LABELS = {"subopt": "f(w) - f*", "loss": "loss f(w)"}
_TARGET_STYLE = {"color": "0.25", "ls": "--", "lw": 1.0}
_MAX_COLUMNS = 4  # panels per row
_MIN_WIDTH = 8.0  # inches
_CHOSEN = {"marker": "*", "ms": 14, "mec": "black", "mew": 0.8, "zorder": 5}
_DIVERGED = {"marker": "x", "ms": 7, "mew": 1.6, "zorder": 4}


def method_colors(methods: Sequence[str]) -> dict[str, tuple]:
    """One colour per method, in the given order (tab10; husl beyond ten methods)."""
    palette = "tab10" if len(methods) <= 10 else "husl"
    return dict(zip(methods, sns.color_palette(palette, len(methods))))


def _panels(n: int, *, width: float = 3.7, height: float = 3.0) -> tuple[Figure, list]:
    """A figure with exactly ``n`` panels, up to four per row (unused grid cells removed), at
    least ``_MIN_WIDTH`` inches wide so that the legend below fits."""
    ncols = min(n, _MAX_COLUMNS)
    width = max(width, _MIN_WIDTH / ncols)
    fig, axes = new_figure(ncols, math.ceil(n / ncols), width=width, height=height)
    axes = list(np.atleast_1d(axes))
    for ax in axes[n:]:
        ax.remove()
    return fig, axes[:n]


def _ordered(frame: pd.DataFrame, methods: Sequence[str]) -> pd.DataFrame:
    """Rows of ``methods`` in that order (stable within a method)."""
    rank = {m: i for i, m in enumerate(methods)}
    frame = frame[frame["method"].isin(rank)]
    return frame.iloc[np.argsort(frame["method"].map(rank).to_numpy(), kind="stable")]


def _legend(fig: Figure, axes: list, title: str, n_entries: int) -> None:
    figure_legend(fig, axes, title=title, ncols=min(n_entries, 6))


def _curves_figure(result, colors: dict) -> tuple[Figure, str]:
    curves, targets = result.tables["curves"], result.settings["targets"]
    fig, axes = _panels(len(result.problems))
    for ax, problem in zip(axes, result.problems):
        part = _ordered(curves[curves["problem"] == problem.name], list(colors))
        part = part[np.isfinite(part["mean"]) & (part["mean"] > 0)]
        part = part.assign(
            ci_high=part["ci_high"].where(np.isfinite(part["ci_high"]), part["mean"])
        )
        present = list(dict.fromkeys(part["method"]))
        plot_mean_curves(ax, part, x="step", hue="method", logx=False, logy=True,
                         palette=[colors[m] for m in present], xlabel="iterations k",
                         ylabel=METRIC_LABELS[problem.metric], title=problem.name)  # fmt: skip
        ax.axhline(targets[problem.name], **_TARGET_STYLE, label="target")
    drop_minor_log_ticks(fig)
    R = result.settings["replicates"]
    _legend(fig, axes, f"method at its chosen setting ({CI_NOTE}, R = {R}); dashed = target",
            len(colors) + 1)  # fmt: skip
    caption = (
        f"Mean objective of the {R} evaluation replicates of every method at its chosen setting "
        "against iterations, one panel per problem (log y axis), with its 95% Student-t band "
        "over the non-diverged replicates (a lower end at or below 0 drawn at mean/10); the "
        "dashed line is the problem's target."
    )
    return fig, caption


def _step_with_band(ax, x, y, low, high, color, label: str) -> None:
    """A right-continuous step curve (an empirical share) with its band drawn as steps too."""
    ax.step(x, y, where="post", color=color, lw=1.5, label=label)
    ax.fill_between(x, low, high, step="post", color=color, alpha=0.16, lw=0)


def _survival_figure(result, colors: dict) -> tuple[Figure, str]:
    survival = result.tables["survival"]
    survival = survival[survival["unit"] == "iterations"]
    budgets = result.tables["curves"].groupby("problem")["step"].max()
    fig, axes = _panels(len(result.problems))
    for ax, problem in zip(axes, result.problems):
        part = survival[survival["problem"] == problem.name]
        budget = float(budgets.get(problem.name, part["time"].max()))
        for method, color in colors.items():
            km = part[part["method"] == method].sort_values("time", kind="stable")
            if km.empty:
                continue
            last = km.iloc[[-1]].assign(time=max(budget, float(km["time"].iloc[-1])))
            km = pd.concat([km, last], ignore_index=True)  # the last step runs to the budget
            _step_with_band(ax, km["time"], km["reached"], km["reached_ci_low"],
                            km["reached_ci_high"], color, method)  # fmt: skip
        ax.axhline(0.5, color="0.5", ls=":", lw=1, label="one half (the KM median)")
        ax.set(xlim=(0, budget), ylim=(-0.02, 1.02), xlabel="iterations k", title=problem.name,
               ylabel="share of replicates at target")  # fmt: skip
    R = result.settings["replicates"]
    _legend(fig, axes, f"method ({KM_METHOD}, 95%; R = {R})", len(colors) + 1)
    caption = (
        "Share of the evaluation replicates that reached the problem's target against "
        f"iterations (the Kaplan-Meier estimate 1 - S(k), R = {R}, replicates that miss the "
        "target or diverge censored at the budget), with its 95% exponential Greenwood band; "
        "the median time to target is where a curve crosses the dotted line at one half."
    )
    return fig, caption


def _profile_figure(result, colors: dict) -> tuple[Figure, str]:
    profile = result.tables["profile"]
    fig, ax = new_figure(1, 1, width=6.4, height=4.2)
    for method, color in colors.items():
        part = profile[profile["method"] == method].sort_values("tau", kind="stable")
        _step_with_band(ax, part["tau"], part["rho"], part["ci_low"], part["ci_high"], color,
                        method)  # fmt: skip
    unit = result.settings.get("unit", "iterations")
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.set(ylim=(-0.02, 1.02), xlabel=f"tau (ratio to the best method's median {unit} to target)",
           ylabel="rho_s(tau): share of problems")  # fmt: skip
    drop_minor_log_ticks(fig)
    n_problems = int(profile["n_problems"].max()) if len(profile) else 0
    _legend(fig, [ax], "method (band = 95% stratified-bootstrap CI)", len(colors))
    caption = (
        f"Dolan-More performance profile over the {n_problems} problems: rho_s(tau) is the "
        f"share of problems on which method s reaches the target in a median number of {unit} "
        "within a factor tau of the best method (a method that does not reach it counts as a "
        "failure, so a curve may stay below 1), with the 95% stratified-bootstrap band "
        "(replicates resampled within each problem)."
    )
    return fig, caption


def _sensitivity_figure(result, colors: dict) -> tuple[Figure, str]:
    tuning, targets = result.tables["tuning"], result.settings["targets"]
    fig, axes = _panels(len(result.problems))
    for ax, problem in zip(axes, result.problems):
        top = blended_transform_factory(ax.transData, ax.transAxes)  # x in data, y in the panel
        part = tuning[tuning["problem"] == problem.name]
        for method, color in colors.items():
            trials = part[part["method"] == method].sort_values("lr", kind="stable")
            lr, y = trials["lr"].to_numpy(float), trials["median_final"].to_numpy(float)
            finite = np.isfinite(y)
            line = "-" if trials["lr"].is_unique else "none"
            ax.plot(lr[finite], y[finite], ls=line, marker="o", ms=3, lw=1.2, color=color,
                    label=method)  # fmt: skip
            marks = (
                (trials["n_diverged"].to_numpy() > 0, _DIVERGED),
                (trials["chosen"].to_numpy(bool), _CHOSEN),
            )
            for mask, style in marks:
                ax.plot(lr[mask & finite], y[mask & finite], ls="none", color=color, **style)
                over = mask & ~finite  # drawn at the top of the panel
                if over.any():  # (an empty unclipped line would stretch the layout)
                    ax.plot(lr[over], np.full(over.sum(), 0.96), ls="none", color=color,
                            transform=top, clip_on=False, **style)  # fmt: skip
        ax.axhline(targets[problem.name], **_TARGET_STYLE)
        ax.set(xscale="log", yscale="log", xlabel="learning rate lr", title=problem.name,
               ylabel=f"median final {METRIC_LABELS[problem.metric]}")  # fmt: skip
    keys = [("chosen trial", _CHOSEN), ("trial with diverged replicates", _DIVERGED)]
    for label, style in keys:
        axes[0].add_line(Line2D([], [], ls="none", color="0.4", label=label, **style))
    drop_minor_log_ticks(fig)
    Rt = result.settings["tune_replicates"]
    _legend(fig, axes, f"method (median of R = {Rt} tuning replicates; x at the top: the "
            "median diverged; dashed = target)", len(colors) + len(keys))  # fmt: skip
    caption = (
        "Learning-rate sensitivity: the median final objective of the "
        f"{Rt} tuning replicates of every trial against its learning rate, one panel per "
        "problem (log-log; a tuning median, no interval), the chosen trial starred, trials "
        "with diverged replicates crossed (at the top of the panel when the median itself "
        "diverged), the target dashed."
    )
    return fig, caption


def comparison_figures(result: Comparison) -> tuple[dict[str, Figure], dict[str, str]]:
    """The four figures of a :class:`~convstudy.compare.protocol.Comparison` and their
    one-sentence captions, both keyed by stem: ``curves``, ``survival``, ``profile`` and
    ``sensitivity`` (module docstring). Every method has the same colour in all of them.
    """
    colors = method_colors([m.label for m in result.methods])
    drawn = {stem: draw(result, colors) for stem, draw in _DRAWERS.items()}
    return {s: d[0] for s, d in drawn.items()}, {s: d[1] for s, d in drawn.items()}


_DRAWERS = {
    "curves": _curves_figure,
    "survival": _survival_figure,
    "profile": _profile_figure,
    "sensitivity": _sensitivity_figure,
}
