"""Report writers (matrix.json, matrix.md, junit.xml, terminal) rendered from a synthetic result document."""

from __future__ import annotations

import contextlib
import io
import json
import re
import xml.etree.ElementTree as ET

from harness.engine.events import CellFinished, RunFinished, RunStarted, ScenarioFinished
from harness.errors import SourceSpan
from harness.report import json_report, junit, markdown, table, terminal
from harness.results.document import read
from harness.results.model import CellResult, RunResult, ScenarioResult
from harness.scenario.failures import Failure, one_line

FAIL = Failure("pipeline login", "gateway_to_fasttrack", "header", "X-BackendAI-SSO", "present", "present", "absent",
               SourceSpan("s.yaml", 12, 9, "        X-BackendAI-SSO: present"))


def scenario(id_: str, outcome: str, error: str | None = None) -> ScenarioResult:
    r = ScenarioResult(id_, f"title {id_}", f"{id_}.yaml", outcome)  # type: ignore[arg-type]
    if outcome == "fail":
        r.failures = [FAIL]
    r.error = error
    r.duration_ms = 12.5
    return r


def document() -> dict:
    cells = [
        CellResult("as-is", "24.09.0", True, "compatible", "24.09.0", None, [scenario("a", "pass")]),
        CellResult("as-is", "25.1.0", False, "incompatible", "25.1.0",
                   "a: step 'pipeline login', gateway_to_fasttrack: header X-BackendAI-SSO: present: expected present, "
                   "got absent", [scenario("a", "fail")]),
        CellResult("to-be", "24.09.0", True, "incompatible", "24.09.0", "b: ...", [scenario("b", "fail")]),
        CellResult("to-be", "25.1.0", True, "error", None, "b: gateway unreachable",
                   [scenario("b", "error", error="gateway at http://127.0.0.1:9 unreachable"),
                    scenario("c", "skip")]),
    ]
    run = RunResult(cells, gateways=[{"id": "as-is", "generation": "G4", "releases": "24.09"},
                                     {"id": "to-be", "generation": "G5", "releases": "25.1"}],
                    fasttracks=[{"id": "24.09.0", "accepts": ["sso"], "modelled_on": "PR #3353 AS-IS"},
                                {"id": "25.1.0", "accepts": ["bearer"], "modelled_on": "PR #3353 TO-BE"}],
                    scenarios=[{"id": "a"}, {"id": "b"}, {"id": "c"}], started_at="2026-11-26T08:00:00+00:00")
    return run.to_json()


def test_result_document_shape():
    doc = document()
    assert doc["schema"] == "harness/matrix@2"
    cell = doc["cells"][1]
    assert set(cell) >= {"gateway", "fasttrack", "fasttrack_version", "verdict", "required", "reason", "counts",
                         "scenarios"}
    assert cell["counts"] == {"pass": 0, "fail": 1, "error": 0, "skip": 0}
    sc = cell["scenarios"][0]
    assert sc["outcome"] == "fail" and sc["reason"] == one_line(FAIL)
    assert sc["failures"] == [FAIL.to_json()]


def test_json_round_trip(tmp_path):
    doc = document()
    path = json_report.write(doc, tmp_path / "m.json")
    assert read(path, whole=True) == doc
    doc["notice"] = "‹secret:abc› ×"
    assert "‹secret:abc› ×" in json_report.write(doc, tmp_path / "u.json").read_text(encoding="utf-8")  # not \u-escaped


def test_junit_cases_per_cell_and_scenario():
    root = ET.fromstring(junit.render(document()).split("\n", 1)[1])
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert list(suites) == ["as-is x 24.09.0", "as-is x 25.1.0", "to-be x 24.09.0", "to-be x 25.1.0"]
    ok = suites["as-is x 24.09.0"]
    assert (ok.get("tests"), ok.get("failures"), ok.get("errors"), ok.get("skipped")) == ("1", "0", "0", "0")
    assert ok.find("testcase").get("time") == "0.013"  # type: ignore[union-attr]
    # a failure in a cell that is not required is an expected incompatibility: skipped, not failed
    optional = suites["as-is x 25.1.0"].find("testcase/skipped")
    assert optional is not None and optional.get("message", "").startswith("expected incompatibility")
    failure = suites["to-be x 24.09.0"].find("testcase/failure")
    assert failure is not None
    msg = failure.get("message", "")
    for part in ("pipeline login", "gateway_to_fasttrack", "X-BackendAI-SSO", "expected present", "got absent"):
        assert part in msg
    assert "s.yaml:12:9" in (failure.text or "")
    assert "  12 |         X-BackendAI-SSO: present\n" in (failure.text or "")  # the scenario line, with a caret
    err_suite = suites["to-be x 25.1.0"]
    assert (err_suite.get("tests"), err_suite.get("errors"), err_suite.get("skipped")) == ("2", "1", "1")
    assert err_suite.find("testcase/error").get("message") == "gateway at http://127.0.0.1:9 unreachable"  # type: ignore[union-attr]


def test_markdown_table_reasons_and_failures():
    md = markdown.render(document())
    assert md.startswith("# Backend.AI gateway × FastTrack compatibility matrix")
    assert "FastTrack is not public" in md and "harness 0.1.0" in md
    assert "| as-is (G4)" in md and "✅ **required** 1/1" in md
    assert "| ❌ 0/1" in md and "⚠️ **required** 0/2" in md
    assert "n/m: scenarios passed / scenarios run" in md  # the legend explains the counts
    assert "## Why cells are not compatible" in md
    # required cells first, then the others
    assert md.index("- **to-be × 24.09.0: incompatible") < md.index("- as-is × 25.1.0: incompatible — a: step")
    # diagrams only for the failing scenarios of required cells
    assert "### b in to-be × 24.09.0: fail" in md and "### a in as-is × 25.1.0" not in md
    assert "- step 'pipeline login', gateway_to_fasttrack: header X-BackendAI-SSO (present): expected present, " \
           "got absent (s.yaml:12:9)" in md
    assert "- error: gateway at http://127.0.0.1:9 unreachable" in md
    assert "`index.html`" in md and "`matrix.json`" in md  # where the rest is


def test_markdown_is_deterministic():
    assert markdown.render(document()) == markdown.render(json.loads(json.dumps(document())))


def test_column_titles_follow_the_observed_version():
    doc = document()
    assert table.column_title(doc, "24.09.0") == "FastTrack 24.09.0"
    assert table.column_title(doc, "25.1.0") == "FastTrack 25.1.0"
    for c in doc["cells"]:
        if c["fasttrack"] == "25.1.0":
            c["fasttrack_version"] = "25.1.3"
    assert table.column_title(doc, "25.1.0") == "FastTrack 25.1.3 (25.1.0)"
    for c in doc["cells"]:
        c["fasttrack_version"] = None
    assert table.column_title(doc, "24.09.0") == "FastTrack 24.09.0 (version not observed)"
    doc["cells"][0]["fasttrack_version"], doc["cells"][2]["fasttrack_version"] = "24.09.0", "24.09.1"
    assert table.column_title(doc, "24.09.0") == "FastTrack 24.09.0 (version not observed)"


def test_matrix_rows_and_missing_cells():
    doc = document()
    doc["cells"] = doc["cells"][:3]
    headers, rows = table.matrix_rows(doc, symbols=False)
    assert headers == ["gateway", "FastTrack 24.09.0", "FastTrack 25.1.0"]
    assert rows[0] == ["as-is (G4)", "compatible (required) 1/1", "incompatible 0/1"]
    assert rows[1][2] == "—"


def test_reason_lines_skip_compatible_cells_required_first():
    lines = [table.reason_line(c) for c in table.not_compatible(document())]
    assert len(lines) == 3 and not any(line.startswith("as-is × 24.09.0") for line in lines)
    assert [line.split(":")[0] for line in lines] == ["to-be × 24.09.0", "to-be × 25.1.0", "as-is × 25.1.0"]


def test_row_titles_do_not_repeat_the_generation():
    assert table.row_title("G0", {"id": "G0", "generation": "G0"}) == "G0"
    assert table.row_title("as-is", {"id": "as-is", "generation": "G4"}) == "as-is (G4)"
    assert table.row_title("real", None) == "real"  # a row only cells name


def test_terminal_render_fits_and_summarises_cells_nobody_requires():
    doc = document()
    doc["cells"][1]["reason"] = "x" * 400
    out = terminal.render(doc, 80)
    assert all(len(line) <= 80 for line in out.splitlines()), out
    assert "✓ 1/1 R" in out and "✗ 0/1" in out and "✅" not in out
    assert "R: required by the policy" in out and "n/m: scenarios passed" in out
    assert "to-be × 25.1.0: error — b: gateway unreachable" in out  # required: in full
    assert "x" * 50 not in out and "1 cells the policy does not require are incompatible" in out
    verbose = terminal.render(doc, 100, verbose=True, report="out/matrix.md")
    assert all(len(line) <= 100 for line in verbose.splitlines())
    assert "as-is × 25.1.0: incompatible — xxx" in verbose and "… (see out/matrix.md)" in verbose
    assert verbose.rstrip().endswith("FastTrack is not public: every FastTrack profile here is a model "
                                     "(see fasttracks[].model).")


def test_terminal_splits_a_matrix_wider_than_the_window():
    doc = document()
    doc["fasttracks"] = [{"id": f"{n}.0.0-a-long-column-name"} for n in range(8)]
    doc["cells"] = [dict(doc["cells"][0], fasttrack=f["id"]) for f in doc["fasttracks"]]
    out = terminal.render(doc, 80)
    assert all(len(line) <= 80 for line in out.splitlines())
    assert out.count("gateway ") >= 2  # more than one table


def test_terminal_shows_the_peer_verdict_and_findings():
    doc = document()
    doc["peer"] = {"release": "25.19.2", "row": "webserver-25.19.2", "reference_profile": "G6d", "undocumented": 1,
                   "differences": [{"fasttrack": "25.1.0", "scenario": "a", "peer_outcome": "fail",
                                    "reference_outcome": "pass", "finding": None, "reference_failure": None,
                                    "peer_failure": {"step": "s", "hop": "gateway_to_client", "what": "status",
                                                     "name": "", "kind": "equals"}}],
                   "findings": [{"id": "W1", "kind": "weakness", "severity": "security", "title": "cookies leak",
                                 "hop": "gateway_to_fasttrack", "scenario": "a", "explanation": "e", "evidence": "v"}]}
    out = terminal.render(doc, 100)
    assert "backend.ai-webserver 25.19.2 versus reference profile G6d: 1 differences, 1 undocumented" in out
    assert "25.1.0/a: release fail, reference pass at gateway_to_client status -> UNDOCUMENTED" in out
    assert "finding W1 (weakness, security): cookies leak" in out


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


def _finished(outcome: str, done: int, total: int) -> ScenarioFinished:
    return ScenarioFinished("as-is", "24.09.0", scenario("a", outcome, error="boom" if outcome == "error" else None),
                            done, total)


def test_progress_quiet_writes_nothing():
    s = _Stream(True)
    p = terminal.Progress(s, quiet=True)
    p(RunStarted(2))
    p(_finished("error", 1, 2))
    assert s.getvalue() == ""


def test_progress_off_a_tty_says_only_when_the_run_starts_and_ends():
    s = _Stream(False)
    p = terminal.Progress(s)
    p(RunStarted(3, 1))
    p(_finished("pass", 1, 3))
    p(_finished("error", 3, 3))
    p(RunFinished(RunResult([], [], [], [], duration_s=1.5)))
    assert s.getvalue() == "running 3 scenario runs in 1 cells\nfinished 0 scenario runs in 1.50 s\n"


def test_progress_on_a_tty_counts_cells_and_runs_on_one_line(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    s = _Stream(True)
    p = terminal.Progress(s)
    p(RunStarted(2, 2))
    p(_finished("pass", 1, 2))
    p(CellFinished(CellResult("as-is", "24.09.0", True)))
    p(_finished("fail", 2, 2))
    out = s.getvalue()
    assert "cells 0/2 · scenario runs 1/2 · as-is × 24.09.0: a pass" in out
    assert "cells 1/2 · scenario runs 2/2" in out and out.endswith("\r\x1b[K")  # the line is cleared at the end
    assert all(len(part) <= 80 for part in out.replace("\x1b[K", "").split("\r"))


def test_progress_default_stream_follows_sys_stderr():
    buf = _Stream(True)
    with contextlib.redirect_stderr(buf):
        terminal.Progress()(_finished("pass", 1, 2))
    assert "scenario runs 1/2" in buf.getvalue()


def test_the_default_matrix_reads_in_30_seconds(full_run_doc):
    doc = full_run_doc
    md = markdown.render(doc)
    assert len(md.encode("utf-8")) <= 65_536  # a PR comment
    assert "```mermaid" not in md or any(c["required"] and c["verdict"] != "compatible" for c in doc["cells"])
    for c in doc["cells"]:
        if c["verdict"] == "incompatible":
            assert re.match(r"\d+ of \d+ failing scenarios: ", c["reason"]), c["reason"]
    cells = {(c["gateway"], c["fasttrack"]): c for c in doc["cells"]}
    for key, header, said in ((("as-is", "25.1.0"), "Authorization", "is not a Bearer token"),
                              (("to-be", "24.09.0"), "X-BackendAI-SSO", "X-BackendAI-SSO missing")):
        reason = cells[key]["reason"]
        assert header in reason and f'(FastTrack: "{said}' in reason.replace("Authorization is", "is"), reason
    out = terminal.render(doc, 100)
    assert all(len(line) <= 100 for line in out.splitlines())
