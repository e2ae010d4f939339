"""The comparison page: ``index.html`` (one self-contained file) and ``README.md`` of a
comparison folder, rendered from the files in it, so a page can be rebuilt without rerunning.

The folder (written by :mod:`convstudy.compare.output`)::

    comparison.json        title, settings, problems, methods, caveats, captions, figures,
                           provenance, n_computed, n_cached, wall_time, command
    tables/<stem>.csv      ranking, improvement, medians, finals, chosen (full precision)
    figures/<stem>.png     the figures listed in comparison.json

Both pages hold the same sections: the set-up (methods, tuning budget and search, selection
rule, tuning and evaluation seeds, replicates; a banner on a quick run), the problems, the
caveats, the ranking (IQM with its stratified-bootstrap CI, tied ranks shown), the Kaplan-Meier
median iterations to target per problem and method with its CI ("not reached" when fewer than
half of the replicates reach the target), P(A faster than B) for every pair, the final
objective and test metrics (mean with Student-t CI), every figure with its caption and the
provenance. Numbers have 4 significant digits and intervals read ``[low, high]``. The HTML
embeds every image as a ``data:`` URI (no script); its only links are the tables' CSV files.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..report import _CSS, _ci, _data_uri, _inline_html, _md_cell, _num, _slug
from .figures import METRIC_LABELS
from .measures import TEST_METRICS

__all__ = ["render_comparison_html", "render_comparison_markdown", "QUICK_BANNER"]

QUICK_BANNER = (
    "Quick run (`--quick`): each problem's short step budget and fewer replicates, so the "
    "intervals are wider and more replicates are censored; rerun without `--quick` for results "
    "to cite."
)
NOT_REACHED = "not reached"
_SELECTION_RULES = {
    "time": "the shortest median time to target over its tuning replicates (ties, such as "
    "every trial missing the target, broken by the lower median final objective)",
    "final": "the lowest median final objective over its tuning replicates",
}
_PAGE_CSS = ".quick{background:#fdf0c4;color:#6b4f00;padding:.5rem .8rem;border-radius:4px}"


@dataclass
class _Table:
    """A table of Markdown cells; ``numeric`` columns are right-aligned."""

    headers: list[str]
    rows: list[list[str]]
    numeric: list[bool]
    csv: str = ""  # the stem of the CSV it shows


# a page is a list of blocks: (kind, payload) with kind in heading, text, items, table, figure,
# banner; both renderers walk the same list
_Block = tuple[str, object]


def _time(x: float) -> str:
    """A time to target; inf (the target not reached) as 'not reached'."""
    return NOT_REACHED if math.isinf(x) and x > 0 else _num(x)


def _estimate(value: float, low: float, high: float) -> str:
    """``value [low, high]``, or the value alone when the CI is missing."""
    ci = _ci(low, high)
    return _num(value) if ci == "–" else f"{_num(value)} {ci}"


def _time_estimate(value: float, low: float, high: float) -> str:
    if math.isinf(value) and math.isinf(low):
        return NOT_REACHED
    return f"{_time(value)} [{_time(low)}, {_time(high)}]"


def _read(folder: Path, stem: str) -> pd.DataFrame | None:
    path = folder / "tables" / f"{stem}.csv"
    return pd.read_csv(path) if path.is_file() else None


def _setup(data: dict) -> str:
    """The one-paragraph set-up, in Markdown."""
    s = data["settings"]
    methods = []
    for m in data["methods"]:
        parts = [f"{k} {v}" for k, v in m.get("space", {}).items()]
        parts += [f"{k} = {v:g} fixed" for k, v in m.get("fixed", {}).items()]
        if m.get("schedule", "constant") != "constant":
            parts.append(f"schedule {m['schedule']}")
        optimizer = f"optimizer `{m['optimizer']}`" if m["optimizer"] != m["name"] else ""
        methods.append(f"`{m['name']}` ({'; '.join(filter(None, [optimizer, *parts]))})")
    budgets = s["budget"]
    if len(set(budgets.values())) == 1:
        budget = f"the same budget of {next(iter(budgets.values()))} trials per problem"
    else:
        shown = ", ".join(f"{k} {v}" for k, v in budgets.items())
        budget = f"**unequal budgets** of trials per problem ({shown})"
    search = "a grid" if s["search"] == "grid" else f"a seeded random search (seed {s['seed']})"
    rule = _SELECTION_RULES.get(s["selection"], f"the rule {s['selection']!r}")
    return (
        f"{len(methods)} methods: {', '.join(methods)}. Every method was tuned with {budget}, "
        f"placed by {search} over its search space, each trial run on {s['tune_replicates']} "
        f"tuning replicates; the chosen trial has {rule}, among the trials where no replicate "
        f"diverged. The chosen setting then ran {s['replicates']} evaluation replicates on seeds "
        "disjoint from the tuning seeds (other starting points and minibatches), so the luck "
        f"of the selection does not enter what is reported; every seed derives from run seed "
        f"{s['seed']}. Times to target are in {s.get('unit', 'iterations')} unless stated."
    )


def _problems_table(data: dict) -> _Table:
    rows = [
        [f"`{p['name']}`", p.get("description", ""),
         METRIC_LABELS.get(p["metric"], p["metric"]), _num(p["target"]), str(p["n_steps"])]
        for p in data["problems"]
    ]  # fmt: skip
    headers = ["problem", "description", "metric", "target", "budget (iterations)"]
    return _Table(headers, rows, [False, False, False, True, True])


def _ranking_table(frame: pd.DataFrame) -> _Table:
    rows = []
    for r in frame.itertuples(index=False):
        tied = "" if pd.isna(r.tied_with) else str(r.tied_with)
        rank = f"{r.rank} (tie)" if tied else str(r.rank)
        rows.append([rank, f"`{r.method}`", _estimate(r.iqm, r.ci_low, r.ci_high),
                     tied, str(r.n_problems), str(r.n_runs)])  # fmt: skip
    headers = ["rank", "method", "IQM of normalised scores [95% CI]", "tied with", "problems",
               "runs"]  # fmt: skip
    return _Table(headers, rows, [True, False, True, False, True, True], csv="ranking")


def _matrix(frame: pd.DataFrame, data: dict, cell, csv: str, target: bool = True) -> _Table:
    """A problem x method table of ``cell(row)`` for the row of ``frame`` of that problem and
    method ("–" where there is none), with each problem's target when ``target``."""
    rows_of = {(r["problem"], r["method"]): r for r in frame.to_dict("records")}
    methods = [m["name"] for m in data["methods"]]
    rows = [
        [f"`{p['name']}`", *([_num(p["target"])] if target else []),
         *[cell(rows_of[p["name"], m]) if (p["name"], m) in rows_of else "–" for m in methods]]
        for p in data["problems"]
    ]  # fmt: skip
    headers = ["problem", *(["target"] if target else []), *[f"`{m}`" for m in methods]]
    return _Table(headers, rows, [False, *[True] * (target + len(methods))], csv=csv)


def _median_cell(r: dict) -> str:
    cell = _time_estimate(r["median"], r["ci_low"], r["ci_high"])
    censored = f" ({int(r['n_censored'])}/{int(r['n'])} censored)" if r["n_censored"] else ""
    return cell + censored


def _final_cell(r: dict) -> str:
    cell = _estimate(r["final"], r["final_ci_low"], r["final_ci_high"])
    diverged = f" ({int(r['n_diverged'])}/{int(r['n'])} diverged)" if r["n_diverged"] else ""
    return cell + diverged


def _setting_cell(r: dict) -> str:
    """The chosen hyper-parameters: lr and any other tuned or fixed one."""
    names = ["lr"] + sorted(k for k in r if k.startswith(("optimizer.", "schedule.")))
    return ", ".join(
        f"{name.removeprefix('optimizer.')} = {_num(float(r[name]))}"
        for name in names
        if pd.notna(r.get(name))
    )


def _improvement_table(frame: pd.DataFrame, data: dict) -> _Table:
    cells = frame.set_index(["method_a", "method_b"])
    methods = [m["name"] for m in data["methods"]]
    rows = []
    for a in methods:
        row = [f"`{a}`"]
        for b in methods:
            if (a, b) not in cells.index:
                row.append("–")
                continue
            r = cells.loc[(a, b)]
            text = _estimate(r["probability"], r["ci_low"], r["ci_high"])
            row.append(f"**{text}**" if r["ci_low"] > 0.5 or r["ci_high"] < 0.5 else text)
        rows.append(row)
    headers = ["A \\ B", *[f"`{m}`" for m in methods]]
    return _Table(headers, rows, [False, *[True] * len(methods)], csv="improvement")


def _by_problem_and_method(frame: pd.DataFrame, data: dict) -> list[dict]:
    """The rows of ``frame`` in the page's problem order, then method order."""
    problems = {p["name"]: i for i, p in enumerate(data["problems"])}
    methods = {m["name"]: i for i, m in enumerate(data["methods"])}
    order = frame.assign(_p=frame["problem"].map(problems), _m=frame["method"].map(methods))
    return order.sort_values(["_p", "_m"], kind="stable").to_dict("records")


def _test_table(frame: pd.DataFrame, data: dict) -> _Table | None:
    """Test metrics after training and untrained, for the problems that have test data."""
    tests = [c for c in TEST_METRICS if c in frame and frame[c].notna().any()]
    if not tests:
        return None
    keys = [prefix + name for name in tests for prefix in ("", "untrained_")]
    rows = [
        [f"`{r['problem']}`", f"`{r['method']}`",
         *[_estimate(r[k], r[f"{k}_ci_low"], r[f"{k}_ci_high"]) for k in keys]]
        for r in _by_problem_and_method(frame[frame[tests].notna().any(axis=1)], data)
    ]  # fmt: skip
    headers = ["problem", "method", *[f"{k.replace('_', ' ')} [95% CI]" for k in keys]]
    return _Table(headers, rows, [False, False, *[True] * len(keys)], csv="finals")


def _provenance(data: dict) -> _Table:
    items = dict(data.get("provenance", {}))
    if data.get("command"):
        items["command"] = f"`{data['command']}`"
    items["cells computed / from the cache"] = f"{data['n_computed']} / {data['n_cached']}"
    items["wall time"] = f"{_num(float(data['wall_time']))} s"
    rows = [
        [k, v if isinstance(v, str) else json.dumps(v, sort_keys=True)] for k, v in items.items()
    ]
    return _Table(["item", "value"], rows, [False, False])


def _blocks(folder: Path) -> tuple[str, list[_Block]]:
    """The page's title and blocks, read from ``folder``."""
    data = json.loads((folder / "comparison.json").read_text(encoding="utf-8"))
    unit = data["settings"].get("unit", "iterations")
    blocks: list[_Block] = []
    if data["settings"].get("quick"):
        blocks.append(("banner", QUICK_BANNER))
    blocks += [("heading", "Set-up"), ("text", _setup(data)), ("table", _problems_table(data))]
    if data.get("caveats"):
        blocks += [("heading", "Caveats"), ("items", list(data["caveats"]))]
    sections = [
        ("ranking", "Ranking", _ranking_table,
         f"Methods ranked by the interquartile mean (IQM) of normalised scores: per replicate, "
         f"the best method's median {unit} to target on the problem divided by its own (1 = as "
         "fast as the best median, 0 = target not reached), pooled over problems. CIs are "
         "95% stratified-bootstrap intervals (replicates resampled within each problem); "
         "methods whose CIs overlap, directly or through a chain, share a rank."),
        ("medians", "Iterations to target",
         lambda f: _matrix(f[f["unit"] == "iterations"], data, _median_cell, "medians"),
         "Kaplan-Meier median iterations to the problem's target over the evaluation "
         "replicates, with its 95% CI (Brookmeyer-Crowley, exponential Greenwood band); a "
         "replicate that misses the target or diverges is censored at the budget. "
         f"*{NOT_REACHED}*: fewer than half of the replicates (or, as a CI end, the band) reach "
         "the target within the budget."),
        ("improvement", "Probability of improvement", lambda f: _improvement_table(f, data),
         f"P(A faster than B): the chance that a random replicate of A (row) reaches the "
         f"target in fewer {unit} than one of B (column), averaged over problems (ties count "
         "one half), with its 95% stratified-bootstrap CI; bold when the CI excludes 1/2."),
        ("finals", "Final objective", lambda f: _matrix(f, data, _final_cell, "finals"),
         "The problem's metric at the end of the budget: mean over the non-diverged evaluation "
         "replicates with its 95% Student-t CI, each method at its chosen setting."),
        ("finals", "Test metrics", lambda f: _test_table(f, data),
         "On the problems with test data: the test metrics at the end of the budget and before "
         "training (untrained), mean over the evaluation replicates with its 95% Student-t CI."),
        ("chosen", "Chosen settings",
         lambda f: _matrix(f, data, _setting_cell, "chosen", target=False),
         "The hyper-parameters each method ran with on each problem, chosen by the tuning "
         "rule above (searched and fixed ones)."),
    ]  # fmt: skip
    for stem, heading, build, note in sections:
        frame = _read(folder, stem)
        table = None if frame is None else build(frame)
        if table is not None:
            blocks += [("heading", heading), ("text", note), ("table", table)]
    figures = [s for s in data.get("figures", []) if (folder / "figures" / f"{s}.png").is_file()]
    if figures:
        blocks.append(("heading", "Figures"))
    blocks += [("figure", (s, data.get("captions", {}).get(s, ""))) for s in figures]
    blocks += [("heading", "Provenance"), ("table", _provenance(data))]
    return data.get("title", "Comparison"), blocks


def _table_md(table: _Table) -> list[str]:
    lines = ["| " + " | ".join(table.headers) + " |",
             "|" + "|".join("---:" if n else ":---" for n in table.numeric) + "|"]  # fmt: skip
    lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in table.rows]
    if table.csv:
        lines += ["", f"Full precision: [tables/{table.csv}.csv](tables/{table.csv}.csv)."]
    return lines


def render_comparison_markdown(folder: Path) -> str:
    """The folder's ``README.md``: the comparison page in Markdown, figures as relative image
    links (``figures/<stem>.png``), tables linked to their CSV files."""
    title, blocks = _blocks(Path(folder))
    lines = [f"# {title}", ""]
    for kind, payload in blocks:
        if kind == "heading":
            lines += [f"## {payload}", ""]
        elif kind == "banner":
            lines += [f"> **{payload}**", ""]
        elif kind == "text":
            lines += [payload, ""]
        elif kind == "items":
            lines += [f"- {item}" for item in payload] + [""]
        elif kind == "table":
            lines += _table_md(payload) + [""]
        else:
            stem, caption = payload
            lines += [f"![{stem}](figures/{stem}.png)", "", f"*{caption or stem}*", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _table_html(table: _Table) -> str:
    head = "".join(f"<th>{_inline_html(h)}</th>" for h in table.headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{_inline_html(c)}</td>' if n else f"<td>{_inline_html(c)}</td>"
            for c, n in zip(row, table.numeric)
        )
        + "</tr>"
        for row in table.rows
    )
    link = ""
    if table.csv:
        rel = f"tables/{table.csv}.csv"
        link = f'<p class="run">Full precision: <a href="{html.escape(rel)}">{rel}</a>.</p>'
    return f'<div class="tablewrap"><table><tr>{head}</tr>{body}</table></div>{link}'


def render_comparison_html(folder: Path) -> str:
    """The folder's ``index.html``: the comparison page as one self-contained HTML file (inline
    CSS, no script, every figure embedded as a ``data:`` URI)."""
    folder = Path(folder)
    title, blocks = _blocks(folder)
    headings = [p for kind, p in blocks if kind == "heading"]
    nav = "".join(f'<li><a href="#{_slug(h)}">{html.escape(h)}</a></li>' for h in headings)
    h = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
         '<meta name="viewport" content="width=device-width, initial-scale=1">',
         f"<title>{html.escape(title)}</title>", f"<style>\n{_CSS}\n{_PAGE_CSS}\n</style>",
         "</head>", "<body>", f"<h1>{html.escape(title)}</h1>",
         f"<nav><ol>{nav}</ol></nav>"]  # fmt: skip
    for kind, payload in blocks:
        if kind == "heading":
            h.append(f'<h2 id="{_slug(payload)}">{html.escape(payload)}</h2>')
        elif kind == "banner":
            h.append(f'<p class="quick"><strong>{_inline_html(payload)}</strong></p>')
        elif kind == "text":
            h.append(f"<p>{_inline_html(payload)}</p>")
        elif kind == "items":
            h.append("<ul>" + "".join(f"<li>{_inline_html(i)}</li>" for i in payload) + "</ul>")
        elif kind == "table":
            h.append(_table_html(payload))
        else:
            stem, caption = payload
            uri = _data_uri(folder / "figures" / f"{stem}.png")
            h.append(
                f'<figure id="{_slug("fig-" + stem)}"><img src="{uri}" '
                f'alt="{html.escape(stem, quote=True)}"><figcaption><code>'
                f"{html.escape(stem)}</code>: {_inline_html(caption)}</figcaption></figure>"
            )
    h += ["</body>", "</html>"]
    return "\n".join(h) + "\n"
