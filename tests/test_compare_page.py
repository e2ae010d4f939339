"""The comparison figures and page: one panel per problem and one line per method in one colour
everywhere, censored medians as "not reached", a self-contained HTML page, the quick banner."""

from __future__ import annotations

import json
import math
import re
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from convstudy.compare import compare
from convstudy.compare.figures import comparison_figures
from convstudy.compare.output import comparison_record
from convstudy.compare.page import (
    NOT_REACHED,
    QUICK_BANNER,
    render_comparison_html,
    render_comparison_markdown,
)

TABLES = ("ranking", "improvement", "medians", "finals", "chosen")
PROBLEMS = ["quadratic_k10", "quartic"]
METHODS = ["sgd", "adam"]


@pytest.fixture(scope="module")
def result():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the edge-of-the-space warning of a 3-trial budget
        return compare(["sgd"], baselines=["adam"], problems=",".join(PROBLEMS), budget=3,
                       quick=True, replicates=4, tune_replicates=2, n_boot=200)  # fmt: skip


@pytest.fixture(scope="module")
def drawn(result):
    figures, captions = comparison_figures(result)
    yield figures, captions
    for fig in figures.values():
        plt.close(fig)


def write_folder(result, figures: dict, captions: dict, folder: Path, **settings) -> Path:
    """The comparison folder as output.py lays it out (comparison.json, tables/, figures/);
    ``settings`` override entries of ``result.settings``."""
    (folder / "tables").mkdir(parents=True)
    (folder / "figures").mkdir()
    for stem in TABLES:
        result.tables[stem].to_csv(folder / "tables" / f"{stem}.csv", index=False)
    for stem, fig in figures.items():
        fig.savefig(folder / "figures" / f"{stem}.png", dpi=40)
    record = comparison_record(result, captions, list(figures))
    record["settings"] = {**record["settings"], **settings}
    record["title"] = "sgd against adam"
    record["command"] = "convstudy compare --optimizer sgd --baselines adam"
    (folder / "comparison.json").write_text(json.dumps(record), encoding="utf-8")
    return folder


def _method_lines(ax) -> dict:
    """Method name -> the lines of ``ax`` labelled with it."""
    lines = {}
    for line in ax.get_lines():
        lines.setdefault(line.get_label(), []).append(line)
    return {m: lines.get(m, []) for m in METHODS}


def test_every_figure_has_a_panel_per_problem_and_a_line_per_method_in_one_colour(drawn):
    figures, captions = drawn
    assert set(figures) == set(captions) == {"curves", "survival", "profile", "sensitivity"}
    colours = {}
    for stem, fig in figures.items():
        assert len(fig.axes) == (1 if stem == "profile" else len(PROBLEMS)), stem
        titles = [ax.get_title() for ax in fig.axes]
        assert titles == ([""] if stem == "profile" else PROBLEMS), stem
        assert len(fig.legends) == 1 and not any(ax.get_legend() for ax in fig.axes)
        for ax in fig.axes:
            for method, lines in _method_lines(ax).items():
                assert len(lines) == 1, (stem, ax.get_title(), method)
                colours.setdefault(method, set()).add(tuple(lines[0].get_color()))
        assert captions[stem].endswith(".")
        assert "95%" in captions[stem] or stem == "sensitivity"  # tuning medians have no CI
    assert all(len(c) == 1 for c in colours.values()) and len(colours) == len(METHODS)
    curves = figures["curves"].axes[0]
    assert curves.get_yscale() == "log" and curves.get_ylabel() == "f(w) - f*"
    targets = [line for line in curves.get_lines() if line.get_label() == "target"]
    assert targets and targets[0].get_ydata()[0] == pytest.approx(4.616e-7)
    assert figures["profile"].axes[0].get_xscale() == "log"


def test_sensitivity_marks_the_chosen_and_the_diverged_trials(result, drawn):
    tuning = result.tables["tuning"]
    tuning = tuning[tuning["problem"] == PROBLEMS[0]]
    # lr = 10 diverges on the quadratic: an infinite median, crossed at the top of the panel
    n_infinite = int((~tuning["median_final"].map(math.isfinite)).sum())
    assert n_infinite
    ax = drawn[0]["sensitivity"].axes[0]
    marked = [line for line in ax.get_lines() if len(line.get_xdata())]
    stars = [line for line in marked if line.get_marker() == "*"]
    on_top = [line for line in marked if line.get_marker() == "x" and line.get_ydata()[0] == 0.96]
    assert sum(len(line.get_xdata()) for line in stars) == tuning["chosen"].sum() == len(METHODS)
    assert sum(len(line.get_xdata()) for line in on_top) == n_infinite


def test_pages_show_every_section_and_not_reached_for_censored_medians(result, drawn, tmp_path):
    folder = write_folder(result, *drawn, tmp_path / "cmp")
    medians = result.tables["medians"]
    censored = medians[(medians["unit"] == "iterations") & (medians["median"] == math.inf)]
    assert len(censored)  # sgd misses the quadratic's target in every replicate
    page, readme = render_comparison_html(folder), render_comparison_markdown(folder)
    for text in (page, readme):
        for heading in ("Set-up", "Caveats", "Ranking", "Iterations to target",
                        "Probability of improvement", "Final objective", "Figures",
                        "Provenance"):  # fmt: skip
            assert heading in text
        assert NOT_REACHED in text and "inf [" not in text and "[inf" not in text
        assert "(4/4 censored)" in text
        assert "2 tuning replicates" in text and "4 evaluation replicates" in text
        assert re.search(r"\d\.\d+ \[\d\.\d+, \d\.\d+\]", text)  # estimate [low, high]
    row = next(
        line for line in readme.splitlines() if line.startswith("| `quadratic_k10` | 4.616e-07")
    )
    assert row.count(NOT_REACHED) == 1  # sgd's cell; adam reaches the target
    assert readme.count("](figures/") == 4 and "data:image" not in readme


def test_an_open_median_interval_reads_not_reached_at_its_upper_end(result, drawn, tmp_path):
    folder = write_folder(result, *drawn, tmp_path / "cmp")
    path = folder / "tables" / "medians.csv"
    medians = pd.read_csv(path)
    cell = (medians["problem"] == "quartic") & (medians["method"] == "adam")
    medians.loc[cell, ["median", "ci_low", "ci_high", "n_censored"]] = [123.456, 98.7, math.inf, 1]
    medians.to_csv(path, index=False)
    readme = render_comparison_markdown(folder)
    assert f"123.5 [98.7, {NOT_REACHED}] (1/4 censored)" in readme


def test_html_is_self_contained(result, drawn, tmp_path):
    folder = write_folder(result, *drawn, tmp_path / "cmp")
    page = render_comparison_html(folder)
    assert 'src="figures/' not in page and "<script" not in page
    assert page.count('src="data:image/png;base64,') == 4
    assert page.count("<figcaption>") == 4
    assert drawn[1]["profile"].split(":")[0] in page


def test_quick_banner_only_on_a_quick_run(result, drawn, tmp_path):
    quick = write_folder(result, *drawn, tmp_path / "quick", quick=True)
    full = write_folder(result, *drawn, tmp_path / "full", quick=False)
    banner = QUICK_BANNER.split("`")[0]
    assert banner in render_comparison_html(quick) and banner in render_comparison_markdown(quick)
    assert banner not in render_comparison_html(full)
    assert banner not in render_comparison_markdown(full)


def test_unequal_budgets_are_said_in_the_setup(result, drawn, tmp_path):
    folder = write_folder(result, *drawn, tmp_path / "cmp", budget={"sgd": 6, "adam": 3})
    assert "**unequal budgets** of trials per problem (sgd 6, adam 3)" in (
        render_comparison_markdown(folder)
    )
