"""The report index and the claims table, on a tiny reports tree."""

from __future__ import annotations

import base64
import html as html_module
import json
import re
import shutil
import subprocess
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pandas as pd
import pytest

from convstudy.cli import main
from convstudy.report import (
    _block_html,
    _inline_html,
    build_index,
    claims_summary,
    collect_checks,
    read_study_folder,
)


@pytest.fixture(scope="module")
def tree(tmp_path_factory, make_tiny_study) -> Path:
    """A reports tree from `convstudy reproduce` of a passing and a failing tiny study."""
    root = tmp_path_factory.mktemp("report")
    good = make_tiny_study(root / "user")
    bad = make_tiny_study(root / "user", name="tiny_wrong", expected=(5.0, 6.0))
    out = root / "reports"
    assert main(["reproduce", str(good), str(bad), "--out", str(out), "--quick", "--quiet"]) == 0
    return out


@pytest.fixture
def tree_copy(tree, tmp_path) -> Path:
    out = tmp_path / "reports"
    shutil.copytree(tree, out, ignore=shutil.ignore_patterns(".cache"))
    return out


class _Links(HTMLParser):
    """Every (tag, attribute, value) of href/src attributes, every id, every tag, and the
    hrefs inside each claims-table row (``<tr id="check-...">``)."""

    def __init__(self):
        super().__init__()
        self.links: list[tuple[str, str, str]] = []
        self.ids: set[str] = set()
        self.tags: list[str] = []
        self.rows: dict[str, set[str]] = {}
        self._row: str | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "tr" and (attrs.get("id") or "").startswith("check-"):
            self._row = attrs["id"]
            self.rows[self._row] = set()
        for name in ("href", "src"):
            if name in attrs:
                self.links.append((tag, name, attrs[name]))
                if self._row and name == "href":
                    self.rows[self._row].add(attrs[name])

    def handle_endtag(self, tag):
        if tag == "tr":
            self._row = None


def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def _unresolved(root: Path, links, ids) -> list[str]:
    bad = []
    for _tag, _attr, value in links:
        url = urlparse(value)
        if value.startswith("data:image/png;base64,"):  # an embedded figure
            continue
        if url.scheme or url.netloc:
            bad.append(f"{value} (not relative)")
        elif value.startswith("#"):
            if value[1:] not in ids:
                bad.append(f"{value} (no such id)")
        elif not (root / unquote(url.path)).is_file():
            bad.append(f"{value} (no such file)")
    return bad


# --------------------------------------------------------------------------- index.html


def test_every_link_and_image_of_index_html_resolves(tree):
    page = _parse(tree / "index.html")
    assert page.links, "the index links nothing"
    assert _unresolved(tree, page.links, page.ids) == []
    text = (tree / "index.html").read_text()
    assert "http://" not in text and "https://" not in text
    assert "script" not in page.tags and "link" not in page.tags  # self-contained: inline CSS
    assert "style" in page.tags


def test_index_html_shows_every_figure_and_links_every_table(tree):
    page = _parse(tree / "index.html")
    images = {v for tag, attr, v in page.links if tag == "img" and attr == "src"}
    hrefs = {v for _tag, attr, v in page.links if attr == "href"}
    embedded = {base64.b64decode(v.split(",", 1)[1]) for v in images}
    assert all(v.startswith("data:image/png;base64,") for v in images)  # the page travels alone
    for study in ("tiny", "tiny_wrong"):
        for png in (tree / study / "figures").glob("*.png"):
            assert png.read_bytes() in embedded
            assert f"{study}/figures/{png.name}" in hrefs
            assert not png.with_suffix(".svg").exists()  # SVG only on request (--svg)
        for table in (tree / study / "tables").iterdir():
            assert f"{study}/tables/{table.name}" in hrefs
        assert f"{study}/README.md" in hrefs


def test_claims_table_is_on_top_with_verdicts_and_evidence(tree):
    text = (tree / "index.html").read_text()
    assert text.index('id="claims"') < text.index('id="study-tiny"')
    page = _parse(tree / "index.html")
    assert page.rows == {
        "check-tiny-mean": {"#study-tiny", "tiny/figures/means.png", "tiny/tables/means.md"},
        "check-tiny-wrong-mean": {
            "#study-tiny-wrong",
            "tiny_wrong/figures/means.png",
            "tiny_wrong/tables/means.md",
        },
    }
    assert '<span class="verdict not-reproduced">not reproduced</span>' in text
    assert '<span class="verdict reproduced">reproduced</span>' in text


def test_index_is_deterministic(tree_copy):
    first = {p.name: p.read_bytes() for p in build_index(tree_copy)}
    second = {p.name: p.read_bytes() for p in build_index(tree_copy)}
    assert first == second


def test_missing_evidence_is_not_linked(tree_copy):
    (tree_copy / "tiny" / "figures" / "means.png").unlink()
    build_index(tree_copy)
    page = _parse(tree_copy / "index.html")
    assert _unresolved(tree_copy, page.links, page.ids) == []
    assert "figure (missing)" in (tree_copy / "index.html").read_text()


def test_build_index_needs_a_folder(tmp_path):
    with pytest.raises(ValueError, match="existing reports folder"):
        build_index(tmp_path / "absent")


# --------------------------------------------------------------------------- index.md


def test_every_link_of_index_md_resolves(tree):
    text = (tree / "index.md").read_text()
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    assert "tiny/figures/means.png" in targets and "claims.md" in targets
    for target in targets:
        assert not urlparse(target).scheme
        assert (tree / unquote(target)).is_file(), target
    claims_md = (tree / "claims.md").read_text()
    for target in re.findall(r"\]\(([^)\s]+)\)", claims_md):
        assert (tree / unquote(target)).is_file(), target


# --------------------------------------------------------------------------- parsing, claims


def test_study_page_is_read_from_study_json_not_readme(tree, tmp_path):
    folder = shutil.copytree(tree / "tiny", tmp_path / "tiny")
    page = read_study_folder(folder)
    assert page.title == "Tiny study: sample means"
    assert page.description == ["Means of Gaussian draws, one condition per mu (a test fixture)."]
    assert page.run.startswith("Run: 4 replicates per condition, seed 0")
    assert len(page.findings) == 1 and page.findings[0].startswith("At mu = 1 the mean")
    assert page.figures == [("means", "Mean of the draws per mu with its 95% CI.")]
    assert page.tables == [("means", "Mean of the draws per mu with its 95% CI.")]
    assert page.has_readme and page.runs_files == ["runs.parquet"]
    record = json.loads((folder / "study.json").read_text())
    assert record["checks"][0]["id"] == "tiny-mean" and record["run"]["replicates"] == 4
    # the README is a rendering: changing it changes nothing the report shows
    (folder / "README.md").write_text("# Something else\n\nunrelated text\n")
    assert read_study_folder(folder) == replace(page)


def test_inline_markdown_is_escaped_and_rebased():
    got = _inline_html("a <b> & `x<y>` **bold** *it* [fig](figures/f.png) [w](#x)", "st")
    assert got == (
        "a &lt;b&gt; &amp; <code>x&lt;y&gt;</code> <strong>bold</strong> <em>it</em> "
        '<a href="st/figures/f.png">fig</a> <a href="#x">w</a>'
    )
    assert _inline_html("w_star and w_0 stay", "") == "w_star and w_0 stay"
    assert _inline_html('``w0="random"`` and :mod:`a`', "") == (
        "<code>w0=&quot;random&quot;</code> and <code>a</code>"
    )


def test_description_lists_stay_lists():
    got = _block_html("Methods:\n- one\n  wrapped\n- two\nAfter.", "st")
    assert got == "<p>Methods:</p><ul><li>one wrapped</li><li>two</li></ul><p>After.</p>"


def test_verdicts_are_recomputed_from_the_intervals(tree_copy):
    path = tree_copy / "tiny_wrong" / "claims.csv"
    frame = pd.read_csv(path)
    frame["verdict"] = "reproduced"  # a hand-set flag must not survive
    frame.to_csv(path, index=False)
    checks = collect_checks(tree_copy).set_index("id")
    assert checks.loc["tiny_wrong-mean", "verdict"] == "not reproduced"
    assert checks.loc["tiny-mean", "verdict"] == "reproduced"
    assert claims_summary(checks) == (
        "2 checks of 1 claim: 1 reproduced, 0 within tolerance, 1 not reproduced, 0 inconclusive."
    )


def test_top_level_claims_match_the_studies(tree):
    top = pd.read_csv(tree / "claims.csv")
    collected = collect_checks(tree)
    assert top["id"].tolist() == collected["id"].tolist()
    assert top["estimate"].tolist() == pytest.approx(collected["estimate"].tolist(), rel=1e-12)


# --------------------------------------------------------------------------- real browser

_CHECK_SCRIPT = """
<img src="missing-on-purpose.png" alt="negative control">
<script>
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var bad = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                .map(function (i) { return i.getAttribute("src"); });
  var out = document.createElement("pre");
  out.id = "imgcheck";
  out.textContent = JSON.stringify({n: imgs.length, bad: bad});
  document.body.appendChild(out);
});
</script>
"""


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed")
def test_index_html_renders_in_headless_chromium_with_every_image_loaded(tree_copy):
    """Chromium loads index.html (plus one deliberately missing image, the negative control
    that proves the check can fail) and reports which <img> did not load."""
    html = (tree_copy / "index.html").read_text()
    probe = tree_copy / "_imgcheck.html"  # same folder: the same relative paths
    probe.write_text(html.replace("</body>", _CHECK_SCRIPT + "</body>"))
    proc = subprocess.run(
        [
            shutil.which("chromium"),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=10000",
            "--dump-dom",
            probe.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    match = re.search(r'<pre id="imgcheck">(.*?)</pre>', proc.stdout)
    assert match, proc.stderr[-2000:]
    result = json.loads(html_module.unescape(match[1]))
    n_figures = len(list(tree_copy.glob("*/figures/*.png")))
    assert result["n"] == n_figures + 1
    assert result["bad"] == ["missing-on-purpose.png"]


def test_a_quick_report_says_so_at_its_top(tree_copy):
    md = (tree_copy / "index.md").read_text()  # the tree comes from --quick
    assert md.splitlines()[2].startswith("> **This report comes from a quick run")
    assert "This report comes from a quick run" in (tree_copy / "index.html").read_text()
    for name in ("tiny", "tiny_wrong"):
        record_path = tree_copy / name / "study.json"
        record = json.loads(record_path.read_text())
        record["run"]["quick"] = False
        record["caveats"] = ["A caveat a reader must know."]
        record_path.write_text(json.dumps(record))
    build_index(tree_copy)
    md = (tree_copy / "index.md").read_text()
    assert "quick run" not in md
    assert "### Caveats" in md and "A caveat a reader must know." in md


def test_study_record_holds_the_design_and_software(tree):
    record = json.loads((tree / "tiny" / "study.json").read_text())
    assert record["design"]["conditions"][1] == {"mu": 1.0, "n_draws": 100}  # quick size
    assert set(record["run"]["software"]) >= {"convstudy", "python", "numpy", "numba"}
    readme = (tree / "tiny" / "README.md").read_text()
    assert "## Design" in readme and "| mu |" in readme.replace("   ", " ").replace("  ", " ")
