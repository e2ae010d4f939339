"""The claims table and the report index built from a reports tree.

A reports tree (written by :func:`convstudy.runner.run_study` and the ``convstudy`` command)::

    reports/
      claims.csv, claims.md        every check of every study, one row each (written by `claims`)
      index.md, index.html         the report index (written by `report`)
      <study>/study.json           the study's record: title, description, run, findings,
                                   figures and tables with captions, checks (the data the
                                   README and the index are rendered from)
      <study>/README.md            the same, rendered as Markdown
      <study>/claims.csv           the study's checks
      <study>/tables/*.csv|md, <study>/figures/*.png|svg, <study>/runs.parquet

Everything here reads files only, so an index can be rebuilt without recomputing anything.
Outputs are deterministic (fixed orders, no timestamps): the same tree gives identical bytes.
``index.html`` is one self-contained page: inline CSS, no script, every image embedded (a
``data:`` URI), so the file alone shows everything; links to the tables and files are relative.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from .catalogue import CLAIMS, claim_topic
from .claims import (
    CHECK_COLUMNS,
    CHECK_KINDS,
    MISSING_VERDICTS,
    VERDICTS,
    covers,
    verdict_and_reason,
)
from .output import atomic_write, atomic_write_text

__all__ = [
    "StudyPage",
    "collect_checks",
    "order_checks",
    "verdict_counts",
    "claims_summary",
    "claims_terminal_table",
    "claims_markdown",
    "write_claims",
    "read_claims",
    "run_sentence",
    "read_study_folder",
    "find_study_folders",
    "build_index",
    "render_index_md",
    "render_index_html",
]

VERDICT_RULE = (
    "Verdicts follow from the 95% CI against the acceptance band: reproduced (CI inside, and "
    "covering the theory's prediction where it gives one), within tolerance (CI inside the band "
    "but excluding the prediction), not reproduced (disjoint), inconclusive (they overlap, or "
    "nothing was measured and that is not itself the failure mode)."
)

_NUMBER_COLUMNS = ["expected_low", "expected_high", "prediction", "estimate", "ci_low", "ci_high"]
_TEXT_COLUMNS = [
    c
    for c in CHECK_COLUMNS
    if c not in (*_NUMBER_COLUMNS, "claim", "n_replicates", "ci_covers_prediction")
]
_SMALL_TABLE = (30, 12)  # tables up to this many rows x columns are inlined in index.html


# --------------------------------------------------------------------------- claims table


def _normalise_checks(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns in CHECK_COLUMNS order, text as str ('' for missing), numbers as float,
    and the verdict, its reason and whether the CI covers the prediction recomputed from the
    numbers (they are never taken on trust)."""
    frame = frame.copy()
    for col in CHECK_COLUMNS:
        if col not in frame:
            frame[col] = math.nan if col in _NUMBER_COLUMNS else ""
    frame = frame[CHECK_COLUMNS]
    for col in _NUMBER_COLUMNS:
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    for col in _TEXT_COLUMNS:
        frame[col] = frame[col].astype(object).where(frame[col].notna(), "").astype(str)
    frame["claim"] = pd.to_numeric(frame["claim"], errors="coerce").fillna(0).astype(int)
    frame["n_replicates"] = (
        pd.to_numeric(frame["n_replicates"], errors="coerce").fillna(0).astype(int)
    )
    frame.loc[~frame["missing"].isin(MISSING_VERDICTS), "missing"] = "inconclusive"
    frame.loc[~frame["kind"].isin(CHECK_KINDS), "kind"] = "claim"
    judged = [
        verdict_and_reason(lo, hi, elo, ehi, prediction=pred, missing=miss)
        for lo, hi, elo, ehi, pred, miss in frame[
            ["ci_low", "ci_high", "expected_low", "expected_high", "prediction", "missing"]
        ].itertuples(index=False)
    ]
    frame["verdict"] = [v for v, _ in judged]
    frame["reason"] = [r for _, r in judged]
    frame["ci_covers_prediction"] = [
        covers(lo, hi, pred)
        for lo, hi, pred in frame[["ci_low", "ci_high", "prediction"]].itertuples(index=False)
    ]
    return frame.reset_index(drop=True)


def order_checks(frame: pd.DataFrame) -> pd.DataFrame:
    """Checks sorted by claim number, then study name, keeping each study's own order."""
    frame = _normalise_checks(frame)
    return frame.sort_values(["claim", "study"], kind="stable").reset_index(drop=True)


def read_claims(path: str | os.PathLike) -> pd.DataFrame:
    """A claims CSV (a study's or the top-level one) as a normalised frame."""
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:  # an empty file: no checks
        frame = pd.DataFrame(columns=CHECK_COLUMNS)
    return _normalise_checks(frame)


def find_study_folders(out_dir: str | os.PathLike) -> list[Path]:
    """Study folders under ``out_dir`` (holding a study.json, README.md or runs.parquet),
    sorted by name."""
    out = Path(out_dir)
    if not out.is_dir():
        return []
    return sorted(
        p
        for p in out.iterdir()
        if p.is_dir()
        and not p.name.startswith(".")
        and "@" not in p.name  # a broken variant's run is not part of the report
        and any((p / name).is_file() for name in ("study.json", "README.md", "runs.parquet"))
    )


def collect_checks(out_dir: str | os.PathLike) -> pd.DataFrame:
    """Every study's ``claims.csv`` under ``out_dir`` in one frame, ordered by claim."""
    frames = []
    for folder in find_study_folders(out_dir):
        path = folder / "claims.csv"
        if not path.is_file():
            continue
        part = read_claims(path)
        part.loc[part["study"] == "", "study"] = folder.name
        frames.append(part)
    if not frames:
        return _normalise_checks(pd.DataFrame(columns=CHECK_COLUMNS))
    return order_checks(pd.concat(frames, ignore_index=True))


def verdict_counts(frame: pd.DataFrame) -> dict[str, int]:
    """How many checks got each verdict (every verdict listed, zeros included)."""
    counts = frame["verdict"].value_counts() if len(frame) else {}
    return {v: int(counts.get(v, 0)) for v in VERDICTS}


def claims_summary(frame: pd.DataFrame) -> str:
    """One sentence: ``18 checks of 8 claims: 15 reproduced, ...`` (claim checks only; sanity
    checks are counted apart)."""
    claims = frame[frame["kind"] != "sanity"] if "kind" in frame else frame
    counts = verdict_counts(claims)
    n_claims = claims["claim"].nunique() if len(claims) else 0
    parts = ", ".join(f"{n} {v}" for v, n in counts.items())
    text = (
        f"{len(claims)} check{'s' * (len(claims) != 1)} of {n_claims} "
        f"claim{'s' * (n_claims != 1)}: {parts}."
    )
    n_sanity = len(frame) - len(claims)
    if n_sanity:
        text += f" Apart from these, {n_sanity} sanity check{'s' * (n_sanity != 1)}."
    return text


def multiplicity_note(frame: pd.DataFrame) -> str:
    """What testing many checks at 95% each means for the table as a whole."""
    m = int((frame["kind"] != "sanity").sum()) if len(frame) else 0
    return (
        f"Each of the {m} claim checks uses its own 95% CI; none is adjusted for multiplicity. "
        f"Even if every implementation and prediction were exact, about {0.05 * m:.1f} of "
        "those CIs would miss the true value by chance (family-wise error not controlled), so "
        "a single surprising verdict is weak evidence on its own; verdicts that agree across "
        "independent seeds (`convstudy claims --seeds 0,1,2`) are not."
    )


def _num(x: float) -> str:
    """A number to 4 significant digits; NaN as an en dash, infinities as +-inf."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.4g}"


def _ci(low: float, high: float) -> str:
    if any(v is None or math.isnan(v) for v in (low, high)):
        return "–"
    return f"[{_num(low)}, {_num(high)}]"


def claims_terminal_table(frame: pd.DataFrame, width: int = 44) -> str:
    """The compact claims table for a terminal: claim, id, quantity, expected, estimate [CI],
    n, verdict (long texts wrapped at ``width`` characters)."""
    from tabulate import tabulate

    frame = order_checks(frame)
    rows = [
        [
            r.claim,
            r.id,
            r.quantity,
            r.expected,
            f"{_num(r.estimate)} {_ci(r.ci_low, r.ci_high)}",
            r.n_replicates,
            r.verdict,
        ]
        for r in frame.itertuples(index=False)
    ]
    headers = ["claim", "id", "quantity", "expected", "estimate [95% CI]", "R", "verdict"]
    if not rows:
        return "(no checks)"
    return tabulate(
        rows,
        headers=headers,
        tablefmt="simple",
        maxcolwidths=[None, 28, width, 28, None, None, None],
        disable_numparse=True,
    )


def _md_cell(text: str) -> str:
    """Text safe inside a Markdown table cell (one line, pipes escaped)."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _evidence_md(row, prefix: str = "") -> str:
    links = []
    for kind, rel in (("figure", row.figure), ("table", row.table)):
        if rel:
            target = f"{row.study}/{rel}" if row.study else rel
            links.append(f"[{kind}]({quote(prefix + target)})")
    return " · ".join(links)


def _per_claim(frame: pd.DataFrame) -> list[list]:
    """Rows (claim, topic, checks, reproduced, not reproduced, inconclusive) for claims 1..8
    and any other claim number present."""
    numbers = sorted(set(CLAIMS) | set(frame["claim"].tolist()))
    rows = []
    frame = frame[frame["kind"] != "sanity"]
    for c in numbers:
        part = frame[frame["claim"] == c]
        counts = verdict_counts(part)
        rows.append([c, claim_topic(c), len(part), *counts.values()])
    return rows


def claims_markdown(frame: pd.DataFrame, title: str = "Claims") -> str:
    """``claims.md``: a per-claim summary, then every check with its evidence (links are
    relative to the reports folder)."""
    frame = order_checks(frame)
    lines = [f"# {title}", "", claims_summary(frame), ""]
    lines += [
        "| claim | topic | checks | " + " | ".join(VERDICTS) + " |",
        "|---:|:---|---:|" + "---:|" * len(VERDICTS),
    ]
    for c, topic, n, *counts in _per_claim(frame):
        lines.append(f"| {c} | {_md_cell(topic)} | {n} | " + " | ".join(map(str, counts)) + " |")
    lines += ["", VERDICT_RULE, "", multiplicity_note(frame), ""]
    sanity = frame["kind"] == "sanity"
    lines += _checks_table_md(frame[~sanity], with_statement=True)
    if sanity.any():
        lines += [
            "",
            "## Sanity checks",
            "",
            "Checks no broken variant can fail (identities, exact linear algebra): they "
            "confirm the set-up and are not counted as claims.",
            "",
        ]
        lines += _checks_table_md(frame[sanity], with_statement=True)
    return "\n".join(lines) + "\n"


def _checks_table_md(frame: pd.DataFrame, *, with_statement: bool) -> list[str]:
    """Markdown lines of a table of checks, one row each, with links to their evidence;
    ``with_statement`` adds the claim's statement and source (the full claims table)."""
    extra = ["statement", "source"] if with_statement else []
    head = [
        "claim",
        "check",
        *extra,
        "quantity",
        "expected",
        "prediction",
        "estimate",
        "95% CI",
        "R",
        "verdict",
        "evidence",
    ]
    align = [
        "---:",
        ":---",
        *[":---"] * len(extra),
        ":---",
        ":---",
        "---:",
        "---:",
        ":---",
        "---:",
        ":---",
        ":---",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
    for r in frame.itertuples(index=False):
        texts = [r.statement, r.source] if with_statement else []
        cells = [
            str(r.claim),
            f"`{_md_cell(r.id)}`",
            *map(_md_cell, texts),
            _md_cell(r.quantity),
            _md_cell(r.expected),
            _num(r.prediction),
            _num(r.estimate),
            _ci(r.ci_low, r.ci_high),
            str(r.n_replicates),
            f"**{r.verdict}**"
            + (f" ({_md_cell(r.reason)})" if r.reason else "")
            + (f"; seeds agree {r.seeds_agree}" if r.seeds_agree else ""),
            _evidence_md(r),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def write_claims(frame: pd.DataFrame, out_dir: str | os.PathLike) -> list[Path]:
    """Write ``claims.csv`` (full precision, every column) and ``claims.md`` into ``out_dir``."""
    out = Path(out_dir)
    frame = order_checks(frame)
    csv = atomic_write(out / "claims.csv", lambda tmp: frame.to_csv(tmp, index=False))
    md = atomic_write_text(out / "claims.md", claims_markdown(frame))
    return [csv, md]


# --------------------------------------------------------------------------- study folders


@dataclass
class StudyPage:
    """What the index shows of one study folder, read from its ``study.json``."""

    name: str
    title: str
    description: list[str] = field(default_factory=list)  # paragraphs (Markdown)
    run: str = ""
    findings: list[str] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)  # (stem, caption)
    tables: list[tuple[str, str]] = field(default_factory=list)  # (stem, caption)
    runs_files: list[str] = field(default_factory=list)
    has_readme: bool = False
    caveats: list[str] = field(default_factory=list)
    quick: bool = False


def _paragraphs(text: str) -> list[str]:
    """Blocks separated by blank lines, each keeping its line breaks (lists stay lists)."""
    return [block.strip("\n") for block in re.split(r"\n\s*\n", text) if block.strip()]


def _block_html(block: str, prefix: str) -> str:
    """A Markdown block as HTML: runs of ``- `` items as a list, other lines as a paragraph."""
    out, para, items = [], [], []

    def flush():
        if para:
            out.append(f"<p>{_inline_html(' '.join(para), prefix)}</p>")
            para.clear()
        if items:
            lis = "".join(f"<li>{_inline_html(i, prefix)}</li>" for i in items)
            out.append(f"<ul>{lis}</ul>")
            items.clear()

    for line in block.splitlines():
        text = line.strip()
        if text.startswith(("- ", "* ")):
            if para:
                flush()
            items.append(text[2:])
        elif items and line.startswith(" "):  # an item's continuation line
            items[-1] += " " + text
        else:
            if items:
                flush()
            para.append(text)
    flush()
    return "".join(out)


def run_sentence(run: dict) -> str:
    """The one-line description of a run, from the ``run`` record of a ``study.json``."""
    if not run:
        return ""
    rows = ", ".join(f"{n} rows in `{stem}.parquet`" for stem, n in run.get("rows", {}).items())
    quick = ", quick (reduced) size" if run.get("quick") else ""
    if run.get("variant"):
        quick += f", deliberately broken variant {run['variant']!r}"
    return (
        f"Run: {run.get('replicates')} replicates per condition, seed {run.get('seed')}{quick}; "
        f"{run.get('conditions')} conditions" + (f", {rows}" if rows else "") + "."
    )


def read_study_folder(folder: str | os.PathLike) -> StudyPage:
    """A study folder's page, from the ``study.json`` the runner wrote (never from README
    text), plus any figure/table on disk it does not list (sorted by name); figures/tables
    listed but missing on disk are dropped. A folder without ``study.json`` shows its files."""
    folder = Path(folder)
    page = StudyPage(name=folder.name, title=folder.name)
    record = folder / "study.json"
    if record.is_file():
        data = json.loads(record.read_text(encoding="utf-8"))
        page.title = data.get("title", folder.name)
        page.description = _paragraphs(data.get("description", ""))
        page.run = run_sentence(data.get("run", {}))
        page.findings = list(data.get("findings", []))
        page.caveats = list(data.get("caveats", []))
        page.quick = bool(data.get("run", {}).get("quick"))
        page.figures = [(f["stem"], f.get("caption", "")) for f in data.get("figures", [])]
        page.tables = [(t["stem"], t.get("caption", "")) for t in data.get("tables", [])]
    page.has_readme = (folder / "README.md").is_file()
    page.runs_files = sorted(p.name for p in folder.glob("runs*.parquet"))
    page.figures = _merge(page.figures, folder / "figures", ".png")
    page.tables = _merge(page.tables, folder / "tables", ".csv", also=".md")
    return page


def _merge(listed, where: Path, suffix: str, also: str | None = None):
    on_disk = sorted(p.stem for p in where.glob(f"*{suffix}")) if where.is_dir() else []
    if also and where.is_dir():
        on_disk = sorted(set(on_disk) | {p.stem for p in where.glob(f"*{also}")})
    present = set(on_disk)
    kept = [(s, c) for s, c in listed if s in present]
    known = {s for s, _ in kept}
    return kept + [(s, "") for s in on_disk if s not in known]


def _study_order(pages: list[StudyPage], claims: pd.DataFrame) -> list[StudyPage]:
    """Studies in the order of the first claim they check, then by name (unchecked last)."""
    first = claims.groupby("study")["claim"].min().to_dict() if len(claims) else {}
    return sorted(pages, key=lambda p: (first.get(p.name, 10**6), p.name))


# --------------------------------------------------------------------------- index.md


_MD_LINK = re.compile(r"(!?\[[^\]]*\]\()(?!https?://|mailto:|#|/)([^)\s]+)(\))")


def _rebase(markdown: str, prefix: str) -> str:
    """Relative Markdown links of a study's text, made relative to the reports folder."""
    return _MD_LINK.sub(lambda m: f"{m[1]}{prefix}/{m[2]}{m[3]}", markdown)


def _existing(out: Path, rel: str) -> bool:
    return bool(rel) and (out / rel).is_file()


QUICK_WARNING = (
    "This report comes from a quick run (`--quick`): reduced grids, budgets and replicates. "
    "Its confidence intervals are wider and its fit windows shorter, so more verdicts read "
    "inconclusive and rates may be pre-asymptotic; the full run (`convstudy reproduce`) is the "
    "one to cite."
)


def render_index_md(out_dir: str | os.PathLike, pages: list[StudyPage], claims) -> str:
    """``index.md``: the claims table, then every study with its findings, figures and tables."""
    out = Path(out_dir)
    lines = ["# convstudy report", ""]
    if any(p.quick for p in pages):
        lines += [f"> **{QUICK_WARNING}**", ""]
    lines += [
        "Every convergence claim of the course, measured over many seeds with 95% confidence "
        "intervals. " + claims_summary(claims),
        "",
    ]
    if _existing(out, "claims.csv"):
        lines += ["Full claims table: [claims.md](claims.md) ([CSV](claims.csv)).", ""]
    lines += ["## Claims", ""]
    if len(claims):
        lines += _checks_table_md(claims, with_statement=False)
    else:
        lines.append("No checks yet: run `convstudy claims`.")
    lines += ["", "## Studies", ""]
    for p in pages:
        target = f"{quote(p.name)}/README.md" if p.has_readme else f"#{_slug(p.name)}"
        lines.append(f"- [{_md_cell(p.title)}]({target}) (`{p.name}`)")
    for p in pages:
        lines += ["", f"## {p.title}", "", f"Study `{p.name}`.", ""]
        for d in p.description:
            lines += [_rebase(d, quote(p.name)), ""]
        if p.run:
            lines += [p.run, ""]
        if p.findings:
            lines += ["### Findings", ""]
            lines += [f"- {_rebase(f, quote(p.name))}" for f in p.findings] + [""]
        if p.caveats:
            lines += ["### Caveats", ""]
            lines += [f"- {_rebase(c, quote(p.name))}" for c in p.caveats] + [""]
        for stem, cap in p.figures:
            base = f"{quote(p.name)}/figures/{quote(stem)}"
            lines += [f"![{cap or stem}]({base}.png)", ""]
            svg = f" ([SVG]({base}.svg))" if _existing(out, f"{p.name}/figures/{stem}.svg") else ""
            lines += [f"*{cap or stem}*{svg}", ""]
        if p.tables:
            lines += ["### Tables", ""]
            for stem, cap in p.tables:
                lines.append(
                    f"- {_table_links_md(out, p.name, stem)}" + (f": {cap}" if cap else "")
                )
            lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def _table_links_md(out: Path, study: str, stem: str) -> str:
    links = [
        f"[{label}]({quote(study)}/tables/{quote(stem)}.{ext})"
        for ext, label in (("md", stem), ("csv", "CSV"))
        if _existing(out, f"{study}/tables/{stem}.{ext}")
    ]
    return links[0] + (f" ({links[1]})" if len(links) > 1 else "")


# --------------------------------------------------------------------------- index.html

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;
max-width:1400px;padding:1rem 1.5rem 3rem;color:#1d2327;line-height:1.45}
h1{margin-bottom:.2rem}h2{border-bottom:1px solid #d0d7de;padding-bottom:.2rem;margin-top:2.2rem}
a{color:#0a58ca}code{background:#f3f4f6;padding:0 .2em;border-radius:3px}
nav ol{columns:2;font-size:.92rem}
table{border-collapse:collapse;font-size:.86rem;margin:.6rem 0}
th,td{border:1px solid #d0d7de;padding:.25rem .45rem;vertical-align:top;text-align:left}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.verdict{font-weight:600;padding:.05rem .4rem;border-radius:3px;white-space:nowrap}
.reproduced{background:#d1f0d8;color:#0f5323}.not-reproduced{background:#fbd3d0;color:#8a1c12}
.inconclusive{background:#fdf0c4;color:#6b4f00}.within-tolerance{background:#e3ecf8;color:#1f3f6b}
small.src{color:#57606a}table.claims{width:100%}td.statement{min-width:18em;width:34%}
td.evidence{white-space:nowrap}
figure{margin:1rem 0 1.6rem}figure img{max-width:100%;height:auto;border:1px solid #eaeef2}
figcaption{font-size:.9rem;color:#424a53}
.tablewrap{overflow-x:auto}details{margin:.4rem 0}p.run{color:#57606a;font-size:.9rem}
""".strip()

_INLINE = [
    (re.compile(r"\*\*(.+?)\*\*"), r"<strong>\1</strong>"),
    (re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])"), r"<em>\1</em>"),
]
_SPHINX_ROLE = re.compile(r":(?:mod|func|class|meth|attr|data|obj):(?=`)")
_HTML_LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _href(rel: str) -> str:
    """A relative path as an escaped, percent-quoted attribute value."""
    return html.escape(quote(rel), quote=True)


def _inline_html(markdown: str, prefix: str = "") -> str:
    """Inline Markdown (code, bold, italics, links) as HTML; everything else escaped.
    Relative links are rebased onto ``prefix`` (the study folder)."""
    markdown = _SPHINX_ROLE.sub("", markdown)  # ":mod:`x`" reads as "`x`"
    parts = re.split(r"(``.+?``|`[^`]+`)", markdown)
    out = []
    for part in parts:
        if part.startswith("``") and part.endswith("``") and len(part) >= 4:
            out.append(f"<code>{html.escape(part[2:-2].strip())}</code>")
            continue
        if part.startswith("`") and part.endswith("`") and len(part) >= 2:
            out.append(f"<code>{html.escape(part[1:-1])}</code>")
            continue
        pieces, last = [], 0
        for m in _HTML_LINK.finditer(part):
            pieces.append(_emphasis(html.escape(part[last : m.start()])))
            bang, text, url = m.groups()
            if not re.match(r"^(https?://|mailto:|#|/)", url) and prefix:
                url = f"{prefix}/{url}"
            if bang:  # an image inside a sentence: show it as a link, never fetch anything
                pieces.append(f'<a href="{html.escape(url)}">{html.escape(text or url)}</a>')
            else:
                pieces.append(f'<a href="{html.escape(url)}">{_emphasis(html.escape(text))}</a>')
            last = m.end()
        pieces.append(_emphasis(html.escape(part[last:])))
        out.append("".join(pieces))
    return "".join(out)


def _emphasis(escaped: str) -> str:
    for pattern, repl in _INLINE:
        escaped = pattern.sub(repl, escaped)
    return escaped


def _data_uri(path: Path) -> str:
    """A PNG as a ``data:`` URI, so that index.html is one file that travels (mail, a paper's
    supplement) with every image in it."""
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _verdict_span(v: str) -> str:
    return f'<span class="verdict {_slug(v)}">{html.escape(v)}</span>'


def _evidence_html(out: Path, row) -> str:
    links = []
    for kind, rel in (("figure", row.figure), ("table", row.table)):
        if not rel:
            continue
        target = f"{row.study}/{rel}" if row.study else rel
        if _existing(out, target):
            links.append(f'<a href="{_href(target)}">{kind}</a>')
        else:
            links.append(
                f'<span title="missing file {html.escape(target)}">{kind} (missing)</span>'
            )
    return " · ".join(links)


def _claims_html(out: Path, claims: pd.DataFrame, study_ids: set[str]) -> list[str]:
    h = ['<section id="claims">', "<h2>Claims</h2>", f"<p>{html.escape(claims_summary(claims))}"]
    if _existing(out, "claims.csv"):
        h[-1] += ' Full table: <a href="claims.md">claims.md</a> (<a href="claims.csv">CSV</a>).'
    h[-1] += "</p>"
    h += [
        '<div class="tablewrap"><table class="summary">',
        "<tr><th>claim</th><th>topic</th><th>checks</th><th>reproduced</th>"
        + "".join(f"<th>{v}</th>" for v in VERDICTS[1:])
        + "</tr>",
    ]
    for c, topic, n, *counts in _per_claim(claims):
        cells = "".join(f'<td class="num">{k}</td>' for k in counts)
        h.append(
            f'<tr><td class="num">{c}</td><td>{html.escape(topic)}</td>'
            f'<td class="num">{n}</td>{cells}</tr>'
        )
    h.append("</table></div>")
    h.append(f"<p>{html.escape(VERDICT_RULE)}</p>")
    if not len(claims):
        h.append("<p>No checks yet: run <code>convstudy claims</code>.</p></section>")
        return h
    h += [
        '<div class="tablewrap"><table class="claims">',
        "<tr><th>claim</th><th>statement (check, source)</th><th>quantity</th>"
        "<th>expected</th><th>prediction</th><th>estimate [95% CI]</th><th>R</th>"
        "<th>verdict</th><th>evidence</th></tr>",
    ]
    for r in claims.itertuples(index=False):
        check = f"<code>{html.escape(r.id)}</code>"
        if r.study in study_ids:
            check = f'<a href="#{_slug("study-" + r.study)}">{check}</a>'
        source = f" · {_inline_html(r.source)}" if r.source else ""
        notes = f'<br><small class="src">{_inline_html(r.notes)}</small>' if r.notes else ""
        reason = f'<br><small class="src">{html.escape(r.reason)}</small>' if r.reason else ""
        if r.seeds_agree:
            reason += (
                f'<br><small class="src" title="{html.escape(r.seed_verdicts, quote=True)}">'
                f"seeds agree {html.escape(r.seeds_agree)}</small>"
            )
        h.append(
            f'<tr id="check-{_slug(r.id)}"><td class="num">{r.claim}</td>'
            f'<td class="statement">{_inline_html(r.statement)}'
            f'<br><small class="src">{check}{source}</small></td>'
            f"<td>{_inline_html(r.quantity)}{notes}</td><td>{_inline_html(r.expected)}</td>"
            f'<td class="num">{html.escape(_num(r.prediction))}</td>'
            f'<td class="num">{html.escape(_num(r.estimate))}<br>'
            f"<small>{html.escape(_ci(r.ci_low, r.ci_high))}</small></td>"
            f'<td class="num">{r.n_replicates}</td><td>{_verdict_span(r.verdict)}{reason}</td>'
            f'<td class="evidence">{_evidence_html(out, r)}</td></tr>'
        )
    h += ["</table></div>", "</section>"]
    return h


def _inline_table(path: Path) -> str | None:
    """A small CSV table as HTML (escaped), or None when it is large or unreadable."""
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError):
        return None
    rows, cols = _SMALL_TABLE
    if len(frame) > rows or frame.shape[1] > cols:
        return None
    return frame.to_html(index=False, float_format=_num, na_rep="–", border=0, escape=True).replace(
        ' class="dataframe"', ' class="data"'
    )


def _study_html(out: Path, page: StudyPage) -> list[str]:
    name, pre = page.name, quote(page.name)
    sid = _slug("study-" + name)
    h = [f'<section id="{sid}" class="study">', f"<h2>{html.escape(page.title)}</h2>"]
    links = [f"study <code>{html.escape(name)}</code>"]
    if page.has_readme:
        links.append(f'<a href="{_href(name + "/README.md")}">README</a>')
    for runs in page.runs_files:
        links.append(f'<a href="{_href(name + "/" + runs)}">{html.escape(runs)}</a>')
    if _existing(out, f"{name}/claims.csv"):
        links.append(f'<a href="{_href(name + "/claims.csv")}">claims.csv</a>')
    h.append(f"<p>{' · '.join(links)}</p>")
    h += [_block_html(d, pre) for d in page.description]
    if page.run:
        h.append(f'<p class="run">{_inline_html(page.run, pre)}</p>')
    for heading, items in (("Findings", page.findings), ("Caveats", page.caveats)):
        if items:
            h.append(f"<h3>{heading}</h3><ul>")
            h += [f"<li>{_inline_html(f, pre)}</li>" for f in items]
            h.append("</ul>")
    if page.figures:
        h.append("<h3>Figures</h3>")
    for stem, cap in page.figures:
        base = f"{name}/figures/{stem}"
        alt = html.escape(cap or stem, quote=True)
        svg = ""
        if _existing(out, base + ".svg"):
            svg = f' (<a href="{_href(base + ".svg")}">SVG</a>)'
        h.append(
            f'<figure id="{_slug(f"fig-{name}-{stem}")}"><a href="{_href(base + ".png")}">'
            f'<img src="{_data_uri(out / (base + ".png"))}" alt="{alt}"></a>'
            f"<figcaption><code>{html.escape(stem)}</code>: {_inline_html(cap, pre)}{svg}"
            "</figcaption></figure>"
        )
    if page.tables:
        h.append("<h3>Tables</h3>")
    for stem, cap in page.tables:
        base = f"{name}/tables/{stem}"
        files = [
            f'<a href="{_href(f"{base}.{ext}")}">{ext.upper() if ext == "csv" else "Markdown"}</a>'
            for ext in ("md", "csv")
            if _existing(out, f"{base}.{ext}")
        ]
        label = f"<code>{html.escape(stem)}</code>" + (f": {_inline_html(cap, pre)}" if cap else "")
        inline = _inline_table(out / f"{base}.csv") if _existing(out, f"{base}.csv") else None
        if inline is not None:
            h.append(
                f"<details><summary>{label} ({', '.join(files)})</summary>"
                f'<div class="tablewrap">{inline}</div></details>'
            )
        else:
            h.append(f"<p>{label} ({', '.join(files)})</p>")
    h.append("</section>")
    return h


def render_index_html(out_dir: str | os.PathLike, pages: list[StudyPage], claims) -> str:
    """``index.html``: one self-contained page (inline CSS, no script, relative links)."""
    out = Path(out_dir)
    ids = {p.name for p in pages}
    h = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>convstudy report</title>",
        f"<style>\n{_CSS}\n</style>",
        "</head>",
        "<body>",
        "<header><h1>convstudy report</h1>",
        *(
            [f'<p class="run"><strong>{html.escape(QUICK_WARNING)}</strong></p>']
            if any(p.quick for p in pages)
            else []
        ),
        "<p>Every convergence claim of the course, measured over many seeds with 95% "
        "confidence intervals; each study below shows its findings, figures (mean with 95% CI "
        "bands across replicates) and tables.</p></header>",
        '<nav><h2>Contents</h2><ol><li><a href="#claims">Claims</a></li>',
    ]
    h += [
        f'<li><a href="#{_slug("study-" + p.name)}">{html.escape(p.title)}</a></li>' for p in pages
    ]
    h.append("</ol></nav>")
    h += _claims_html(out, claims, ids)
    for page in pages:
        h += _study_html(out, page)
    h += ["</body>", "</html>"]
    return "\n".join(h) + "\n"


def build_index(out_dir: str | os.PathLike = "reports") -> list[Path]:
    """Write ``index.md`` and ``index.html`` of the reports tree ``out_dir``.

    The claims table is collected from every study folder's ``claims.csv``, so it always
    matches the study sections below it (``convstudy claims`` writes the same rows to the
    top-level ``claims.csv``, which the index links). Raises ``ValueError`` when ``out_dir``
    is not a folder.
    """
    out = Path(out_dir)
    if not out.is_dir():
        raise ValueError(
            f"The 'out' parameter of build_index must be an existing reports folder. "
            f"Got {str(out)!r} instead (run `convstudy run` or `convstudy reproduce` first)."
        )
    claims = collect_checks(out)
    pages = _study_order([read_study_folder(f) for f in find_study_folders(out)], claims)
    md = atomic_write_text(out / "index.md", render_index_md(out, pages, claims))
    page = atomic_write_text(out / "index.html", render_index_html(out, pages, claims))
    return [md, page]
