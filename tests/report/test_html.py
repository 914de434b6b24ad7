"""``reports/index.html`` (harness.report.html): one self-contained offline page rendered from the result document.

The last two tests open the page in headless Chromium when ``/usr/bin/chromium`` (or ``chromium`` on PATH) exists,
and are skipped with the reason otherwise.
"""

from __future__ import annotations

import copy
import html as htmllib
import json
import re
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from harness import cli
from harness.report import html, json_report, output
from harness.report.table import column_title
from harness.results import document

EXTERNAL = re.compile(r"(?i)\b(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}")
# Attributes through which a page loads or links to something.
RESOURCE_ATTRS = {"src", "href", "srcset", "action", "formaction", "poster", "data", "xlink:href", "background",
                  "manifest", "ping", "cite", "longdesc", "codebase", "archive", "usemap", "icon", "lowsrc"}


@pytest.fixture(scope="module")
def doc(full_run_doc: dict[str, Any]) -> dict[str, Any]:
    return full_run_doc


@pytest.fixture(scope="module")
def page(doc: dict[str, Any]) -> str:
    return html.render(doc)


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text inside <style> and <script>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.code: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        if tag in ("style", "script"):
            self._in = tag

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in:
            self.code.append(data)


def _parse(text: str) -> Tags:
    p = Tags()
    p.feed(text)
    p.close()
    return p


@pytest.fixture(scope="module")
def parsed(page: str) -> Tags:
    return _parse(page)


def _cells(p: Tags) -> list[dict[str, str]]:
    return [a for t, a in p.tags if t == "td" and "cell" in a.get("class", "").split()]


def _failing(doc: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    out = [(i, c) for i, c in enumerate(doc["cells"]) if c["verdict"] == "incompatible" and c["reason"]]
    assert out, "the matrix has off-policy (crossed) cells, so some cell must be incompatible"
    return out


def _packed(page: str) -> dict[str, str]:
    m = re.search(r'<script type="application/json" id="packed">(.*?)</script>', page, re.S)
    assert m, "the page embeds its details"
    return {k: html.unpack(v) for k, v in json.loads(m[1]).items()}


def _detail(page: str, i: int) -> str:
    if '<script type="application/json" id="packed">' in page:  # the page as written: details packed
        return _packed(page)[str(i)]
    start = page.index(f'<section class="detail" id="cell-{i}"')  # a DOM: the sections the script unpacked
    return page[start:page.index("</section>", start)]


def test_one_grid_cell_per_matrix_cell(doc: dict[str, Any], page: str, parsed: Tags) -> None:
    cells = _cells(parsed)
    assert len(cells) == len(doc["cells"])
    assert {(a["data-gateway"], a["data-fasttrack"]) for a in cells} == {
        (c["gateway"], c["fasttrack"]) for c in doc["cells"]}
    for a in cells:
        c = doc["cells"][int(a["data-cell"])]
        assert a["data-verdict"] == c["verdict"]
        assert f"v-{c['verdict']}" in a["class"].split()
        assert ("required" in a["class"].split()) == c["required"]
    # One packed detail section per cell, and one per-scenario block per scenario run.
    details = _packed(page)
    assert sorted(details, key=int) == [str(i) for i in range(len(doc["cells"]))]
    assert all(d.count('<section class="detail"') == 1 for d in details.values())
    assert sum(d.count('<details class="scenario') for d in details.values()) == sum(
        len(c["scenarios"]) for c in doc["cells"])


def test_the_page_is_light_and_names_its_harness(doc: dict[str, Any], page: str) -> None:
    assert len(page.encode("utf-8")) <= 3_000_000  # was 9.1 MB with every section and diagram inline
    assert f"harness {doc['harness']['version']}" in page


def test_the_grid_shows_each_cells_largest_root_cause(doc: dict[str, Any], parsed: Tags, page: str) -> None:
    for i, cell in _failing(doc):
        first = cell["causes"][0]
        start = page.index(f'data-cell="{i}"')
        td = htmllib.unescape(page[start:page.index("</td>", start)])
        assert f'<span class="why">{first["count"]} of {first["of"]} failing scenarios: {first["hop"]}' in td


def test_peer_comparison_and_findings_are_shown(doc: dict[str, Any]) -> None:
    peer = copy.deepcopy(doc)
    peer["peer"] = {"release": "25.19.2", "row": "webserver-25.19.2", "reference_profile": "G6d", "undocumented": 0,
                    "differences": [], "findings": [{"id": "W1-x", "kind": "weakness", "severity": "security",
                                                     "title": "cookies leak", "hop": "gateway_to_fasttrack",
                                                     "scenario": "s", "explanation": "e", "evidence": "v"}]}
    out = html.render(peer)
    assert 'id="peer"' in out and "versus reference profile G6d: same outcome" in out
    assert "<b>W1-x</b> (weakness, security): cookies leak" in out


def test_rows_are_gateways_and_columns_are_keyed_by_the_observed_version(doc: dict[str, Any], page: str,
                                                                       parsed: Tags) -> None:
    p = parsed
    rows = [a["data-gateway"] for t, a in p.tags if t == "tr" and "data-gateway" in a]
    assert rows == [g["id"] for g in doc["gateways"]]
    for f in doc["fasttracks"]:
        assert f">{htmllib.escape(column_title(doc, f['id']))}<" in page
    options = {a["value"] for t, a in p.tags if t == "option"}
    assert {g["id"] for g in doc["gateways"]} | {f["id"] for f in doc["fasttracks"]} | {
        "compatible", "incompatible", "unknown", "error"} <= options


def test_no_external_resources(parsed: Tags) -> None:
    p = parsed
    for tag, attrs in p.tags:
        assert tag not in ("link", "iframe", "object", "embed", "base"), tag
        for name, value in attrs.items():
            if name in RESOURCE_ATTRS or name.startswith("on"):  # title/aria-label/data-* are text, not references
                assert not EXTERNAL.search(value), (tag, name, value)
                assert not value.strip().lower().startswith(("http:", "https:", "//")), (tag, name, value)
            if name == "style":
                assert "url(" not in value, (tag, value)
        if tag in ("script", "img", "source", "audio", "video"):
            assert "src" not in attrs, (tag, attrs)
    code = "\n".join(p.code)
    assert code.strip()
    assert not EXTERNAL.search(code)
    assert "@import" not in code and "url(" not in code and "@font-face" not in code
    assert "import(" not in code and "fetch(" not in code and "XMLHttpRequest" not in code


def test_the_models_notice_is_shown(doc: dict[str, Any], page: str) -> None:
    assert htmllib.escape(doc["notice"]) in page
    for f in doc["fasttracks"]:
        if f.get("model"):
            assert htmllib.escape(f["disclaimer"]) in page


def test_a_failing_cell_shows_reason_hop_table_and_a_red_arrow(doc: dict[str, Any], page: str) -> None:
    for i, cell in _failing(doc):
        d = _detail(page, i)
        assert htmllib.escape(cell["reason"]) in d
        assert "<svg" in d and 'class="arrow fail"' in d
        for sc in cell["scenarios"]:
            for f in sc["failures"]:
                # The hop table names the failing hop, the check, what was expected and what was seen.
                assert f'<tr class="fail" data-hop="{f["hop"]}">' in d
                assert htmllib.escape(f["name"] or f["what"]) in d and htmllib.escape(f["expected"]) in d
                assert htmllib.escape(f["actual"]) in d


def test_rendering_is_deterministic_and_escapes_the_document(doc: dict[str, Any], page: str) -> None:
    assert html.render(copy.deepcopy(doc)) == page
    evil = copy.deepcopy(doc)
    evil["cells"][0]["reason"] = '<script>alert("x")</script>'
    evil["cells"][0]["verdict"] = "incompatible"
    out = html.render(evil)
    assert '<script>alert("x")</script>' not in out
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in out


def test_cells_naming_an_unlisted_profile_still_get_a_grid_cell(doc: dict[str, Any]) -> None:
    extra = copy.deepcopy(doc)
    cell = copy.deepcopy(extra["cells"][0])
    cell.update(gateway="not-listed", fasttrack="99.9.9", fasttrack_version=None)
    extra["cells"].append(cell)
    cells = _cells(_parse(html.render(extra)))
    assert len(cells) == len(extra["cells"])
    assert ("not-listed", "99.9.9") in {(a["data-gateway"], a["data-fasttrack"]) for a in cells}


def test_registered_as_a_report_format(doc: dict[str, Any], tmp_path: Path) -> None:
    assert output.WRITERS["html"] == ("index.html", html.write)
    src = json_report.write(doc, tmp_path / "matrix.json")
    cli.main(["report", str(src), "--out", str(tmp_path / "out"), "--format", "html"])
    assert (tmp_path / "out" / "index.html").read_text(encoding="utf-8") == html.render(document.read(src, whole=True))


# --- headless Chromium ------------------------------------------------------------------------------------------

def _chromium() -> str | None:
    if Path("/usr/bin/chromium").exists():
        return "/usr/bin/chromium"
    return shutil.which("chromium") or shutil.which("chromium-browser")


CHROMIUM = _chromium()
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=10000"]  # let the page unpack the section it opens before the DOM is taken


def _browse(tmp_path: Path, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *extra, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)


@pytest.fixture(scope="module")
def written(doc: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html-report")
    return html.write(doc, out / "index.html")


@needs_chromium
def test_chromium_renders_the_grid_and_a_diagram(doc: dict[str, Any], written: Path, tmp_path: Path) -> None:
    dom = ""
    for _ in range(2):  # a first start of a fresh profile occasionally exits before dumping
        proc = _browse(tmp_path, written.as_uri(), "--dump-dom")
        dom = proc.stdout
        if "</html>" in dom:
            break
    assert "</html>" in dom, proc.stderr[-2000:]
    assert len(re.findall(r'<td class="cell ', dom)) == len(doc["cells"])
    text = htmllib.unescape(dom)
    i, cell = _failing(doc)[0]
    assert cell["reason"] in text
    # The script ran: the filter summary is filled in and one cell's details are shown, with an SVG diagram.
    assert f"{len(doc['cells'])} of {len(doc['cells'])} cells match" in text
    shown = re.findall(r'<section class="detail" id="cell-(\d+)" data-cell="\d+">(.*?)</section>', dom, re.S)
    assert len(shown) == 1, [s[0] for s in shown]
    assert "<svg" in shown[0][1] and 'class="seq"' in shown[0][1]
    opened = doc["cells"][int(shown[0][0])]
    assert opened["verdict"] in ("incompatible", "error", "unknown")
    # the most interesting cell: no required cell fails here, so the one with the most failing runs
    if not any(c["required"] and c["verdict"] != "compatible" for c in doc["cells"]):
        assert opened["counts"]["fail"] == max(c["counts"]["fail"] for c in doc["cells"])
    # A cell asked for by the URL is the one shown; #cell-N-sJ also opens scenario J (closed by default).
    j = len(cell["scenarios"]) - 1
    dom = _browse(tmp_path, f"{written.as_uri()}#cell-{i}-s{j}", "--dump-dom").stdout
    assert re.search(rf'<section class="detail" id="cell-{i}" data-cell="{i}">', dom)
    assert 'class="arrow fail"' in _detail(dom, i)
    assert re.search(rf'<details class="scenario [^"]*" id="cell-{i}-s{j}" [^>]*\bopen\b', dom)


@needs_chromium
def test_chromium_clicks_and_filters(doc: dict[str, Any], written: Path, tmp_path: Path) -> None:
    i, cell = _failing(doc)[-1]
    gw = cell["gateway"]
    # Drive the page's own script as a user would: pick a gateway and an outcome, then click a cell.
    driver = (f"<script>var fg=document.getElementById('f-gateway');fg.value={json.dumps(gw)};"
              "fg.dispatchEvent(new Event('change'));var fo=document.getElementById('f-outcome');"
              "fo.value='incompatible';fo.dispatchEvent(new Event('change'));"
              f"document.querySelector('td.cell[data-cell=\"{i}\"] a').click();</script></body>")
    page = tmp_path / "driven.html"
    page.write_text(written.read_text(encoding="utf-8").replace("</body>", driver), encoding="utf-8")
    dom = _browse(tmp_path, page.as_uri(), "--dump-dom").stdout
    assert "</html>" in dom
    visible_rows = re.findall(r'<tr data-gateway="([^"]+)">', dom)
    assert visible_rows == [gw]
    want = sum(1 for c in doc["cells"] if c["gateway"] == gw and c["verdict"] == "incompatible")
    assert f"{want} of {len(doc['cells'])} cells match" in dom
    assert re.search(rf'<td class="cell [^"]*\bselected\b[^"]*" data-cell="{i}"', dom)
    shown = re.findall(r'<section class="detail" id="cell-(\d+)" data-cell="\d+">', dom)
    assert shown == [str(i)]


@needs_chromium
def test_chromium_screenshot_is_not_blank(written: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    proc = None
    for _ in range(2):
        proc = _browse(tmp_path, written.as_uri(), f"--screenshot={shot}", "--window-size=1400,1000")
        if shot.exists():
            break
    assert shot.exists(), proc.stderr[-2000:] if proc else ""
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1400, 1000)
    assert len(data) > 40_000, f"{len(data)} bytes: the page looks blank"


def test_the_document_in_the_page_is_the_redacted_one(doc: dict[str, Any], page: str) -> None:
    # Nothing is un-redacted: every secret tag in the page is one the document already had.
    in_doc = set(re.findall(r"‹secret:[0-9a-f]{6}›", json.dumps(doc, ensure_ascii=False)))
    assert set(re.findall(r"‹secret:[0-9a-f]{6}›", page)) <= in_doc
