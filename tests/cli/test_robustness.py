"""Bad input and bad moments: bounds, one-line errors with documented exit codes, results written whole, a
scenario that breaks at run time confined to its own cells (issue 13)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import cli
from harness.engine import workers
from harness.engine.matrix_run import Options
from harness.engine.selection import DEFAULT_SCENARIOS, select
from harness.errors import ScenarioError
from harness.judge import support_policy
from harness.report import output
from harness.results.document import SCHEMA
from harness.scenario.loader import load_scenario, parse_scenario
from harness.scenario.yamlnodes import MAX_DEPTH, MAX_NODES

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

SMALL = ["--gateway", "to-be", "--fasttrack", "25.1.0", "--scenario", "pr3353-to-be", "--quiet"]


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def small_doc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("small")
    assert cli.main(["run", *SMALL, "--out", str(out)]) == 0
    return out / "matrix.json"


@pytest.mark.parametrize("option", [
    ["--timeout", "0"], ["--timeout", "-1"], ["--timeout", "nan"], ["--timeout", "inf"], ["--timeout", "x"],
    ["--ready-timeout", "inf"], ["--concurrency", "0"], ["--concurrency", "100000"], ["--jobs", "0"],
    ["--fasttrack-listen", "nonsense"], ["--fasttrack-listen", "127.0.0.1:99999"], ["--manager-listen", "10.0.0.1:80"],
    ["--gateway-url", "not a url"], ["--gateway-url", "http://127.0.0.1:99999"], ["--fasttrack-url", "ftp://x"],
])
def test_bad_options_are_one_line_usage_errors(option, tmp_path, capsys):
    assert cli.main(["run", *SMALL, "--out", str(tmp_path), *option]) == 2
    assert option[0] in one_line_error(capsys)


def test_jobs_are_capped_at_the_core_count():
    from harness.cli.options import jobs

    assert jobs("100000") == workers.available_cores() == jobs("auto")


@pytest.mark.parametrize("out", ["file", "file/below", "/proc", "/proc/harness"])
def test_an_unusable_out_is_refused_before_the_run(out, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    target = out if out.startswith("/") else str(tmp_path / out)
    assert cli.main(["run", *SMALL, "--out", target]) == 2
    assert "--out" in one_line_error(capsys)


def test_reports_replace_the_previous_ones_together_or_not_at_all(tmp_path, small_doc):
    doc = json.loads(small_doc.read_text(encoding="utf-8"))
    written = output.write_reports(doc, tmp_path)
    before = {p.name: p.read_bytes() for p in written}

    def broken(doc: dict, path: Path) -> Path:
        path.write_text("half")
        raise OSError(28, "No space left on device")

    original = output.WRITERS["html"]
    output.WRITERS["html"] = ("index.html", broken)
    try:
        with pytest.raises(Exception, match="No space left"):
            output.write_reports({**doc, "started_at": "later"}, tmp_path)
    finally:
        output.WRITERS["html"] = original
    assert {p.name: p.read_bytes() for p in written} == before  # nothing replaced, nothing 0-byte
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(before)  # no temporary file left


def test_yaml_alias_bomb_and_deep_nesting_are_refused_with_file_and_line(tmp_path):
    bomb = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    bomb += [f"{k}: &{k} [{','.join([f'*{p}'] * 10)}]" for p, k in zip("abcde", "bcdef", strict=True)]
    with pytest.raises(ScenarioError, match=f"more than {MAX_NODES} values") as err:
        parse_scenario("\n".join(bomb) + "\n", "bomb.yaml")
    assert err.value.line >= 1 and err.value.file == "bomb.yaml"
    with pytest.raises(ScenarioError, match=f"more than {MAX_DEPTH} levels") as err:
        parse_scenario("x: " + "[" * 500 + "]" * 500 + "\n", "deep.yaml")
    assert err.value.line == 1


def test_deep_json_in_a_diagram_label_is_refused(tmp_path):
    src = (DEFAULT_SCENARIOS / "diagram-pr3353-to-be.mmd").read_text(encoding="utf-8")
    deep = "[" * 5000 + "]" * 5000
    broken = src.replace("POST /pipeline/login/", f"POST /pipeline/login/ {deep}", 1)
    path = tmp_path / "scenarios" / "deep.mmd"
    path.parent.mkdir()
    path.write_text(broken, encoding="utf-8")
    with pytest.raises(ScenarioError, match="nested") as err:
        load_scenario(path)
    assert err.value.line > 1


@pytest.mark.parametrize(("text", "message"), [
    ("required:\n  G0: [{a: 1}]\n", "got a mapping"),
    ("required:\n  G0: [[23.03.0]]\n", "got a list"),
])
def test_policy_items_of_the_wrong_kind_are_usage_errors(text, message, tmp_path, capsys):
    policy = tmp_path / "policy.yaml"
    policy.write_text(text)
    assert cli.main(["run", *SMALL, "--out", str(tmp_path / "o"), "--policy", str(policy)]) == 2
    err = capsys.readouterr().err
    assert message in err and f"{policy}:2:" in err and "Traceback" not in err


STEP = """id: unit
title: Unit
modes: [to-be]
steps:
  - name: one
    request:
      method: POST
      path: /pipeline/login/
{extra}
"""


@pytest.mark.parametrize(("extra", "message", "line"), [
    ("      json: {when: 2026-12-01}", "a JSON body cannot hold a date", 9),
    ("      headers: {X-A: \"a\\r\\nX-Injected: 1\"}", "line break", 9),
    ("      headers: {\"Bad Name\": x}", "not a valid HTTP header name", 9),
    ("    expect:\n      gateway_to_fasttrack:\n        headers:\n          X-BackendAI-SSO:\n            jwt: "
     "{secret: s, algorithm: {a: 1}}", "'algorithm' must be a non-empty string or list of strings", 13),
])
def test_what_cannot_run_is_refused_at_load(extra, message, line):
    with pytest.raises(ScenarioError, match=message) as err:
        parse_scenario(STEP.format(extra=extra), "unit.yaml")
    # Reported at its own line, beside any other error of the step (a step without expect is one too).
    assert any(message in e.message and e.line == line for e in getattr(err.value, "errors", [err.value]))


BROKEN_AT_RUN_TIME = """id: broken-frame
title: a binary frame whose placeholder is not hex
modes: [bearer]
steps:
  - name: send a frame
    modes: [stream-route]
    request:
      method: GET
      path: /pipeline/stream/runs/1/
      session: none
      websocket:
        send: [{binary: "${username}"}]
    expect:
      gateway_to_client: {status: 101}
"""


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_scenario_that_breaks_at_run_time_is_an_error_of_its_own_cells_only(jobs, tmp_path):
    directory = tmp_path / "scenarios"
    directory.mkdir()
    shutil.copy(DEFAULT_SCENARIOS / "pr3353-to-be.yaml", directory)
    (directory / "broken-frame.yaml").write_text(BROKEN_AT_RUN_TIME)
    sel = select(["to-be", "G6"], ["25.1.0", "24.09.0"], "*", directory)
    result = workers.run(sel.gateways, sel.fasttracks, sel.scenarios, support_policy.load_policy(),
        Options(), jobs=jobs)
    assert len(result.cells) == 4
    for cell in result.cells:
        outcomes = {s.id: s for s in cell.scenarios}
        assert outcomes["broken-frame"].outcome == "error"
        error = outcomes["broken-frame"].error or ""
        assert "broken-frame.yaml:5" in error and "send a frame" in error and "gateway" not in error
        if cell.gateway == "to-be":  # the other scenario of the cell is judged as always
            assert outcomes["pr3353-to-be"].outcome == ("pass" if cell.fasttrack == "25.1.0" else "fail")
        assert cell.verdict == "error" and cell.reason and cell.reason.startswith("broken-frame")


@pytest.mark.parametrize("doc", [
    '{"x":', "[]", '{"schema": "SCHEMA", "cells": [1], "gateways": [], "fasttracks": [], "scenarios": []}',
    '{"schema": "SCHEMA", "cells": [{"gateway": "a", "fasttrack": "b", "verdict": "x", "scenarios": '
    '[{"id": "s", "outcome": "fail", "failures": [3]}]}], "gateways": [], "fasttracks": [], "scenarios": []}',
])
@pytest.mark.parametrize("command", ["report", "merge", "diff", "gate"])
def test_malformed_documents_are_usage_errors(doc, command, tmp_path, capsys):
    path = tmp_path / "doc.json"
    path.write_text(doc.replace("SCHEMA", SCHEMA))
    out = ["--out", str(tmp_path / "o")]
    argv = {"report": ["report", str(path), *out], "merge": ["report", "merge", str(path), *out],
            "diff": ["diff", str(path), str(path)], "gate": ["gate", "--run", str(path), "--baseline", str(path)]}
    if command == "gate" and '"failures": [3]' in doc:  # the gate reads no failure: it judges the document
        assert cli.main(argv[command]) == 3 and "Traceback" not in capsys.readouterr().err
        return
    assert cli.main(argv[command]) == 2
    assert str(path) in one_line_error(capsys)


def test_gate_output_paths_are_checked_before_anything_runs(small_doc, tmp_path, capsys, monkeypatch):
    (tmp_path / "file").write_text("x")
    base = ["gate", "--run", str(small_doc), "--baseline", str(small_doc)]
    for extra, env in ((["--summary", str(tmp_path / "file" / "s.md")], None), ([], "/proc/harness-summary"),
                       (["--update-baseline", "--baseline", "/proc/harness-baseline.json"], None)):
        if env:
            monkeypatch.setenv("GITHUB_STEP_SUMMARY", env)
        assert cli.main([*base, *extra]) == 2
        one_line_error(capsys)
        monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


def test_a_reader_that_goes_away_keeps_the_exit_code(small_doc):
    argv = [sys.executable, "-m", "harness", "gate", "--run", str(small_doc), "--baseline", str(small_doc),
            "--json"]
    expected = subprocess.run(argv, capture_output=True, text=True, timeout=60).returncode
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # `| head` that has read enough
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == expected and "Traceback" not in err and "BrokenPipe" not in err


def test_merging_a_partial_document_gives_a_partial_document(small_doc, tmp_path):
    from harness.compare import merge

    doc = json.loads(small_doc.read_text(encoding="utf-8"))
    other = {**doc, "partial": True, "interrupted": "SIGTERM", "cells": []}
    merged = merge.merge([("full", doc), ("stopped", other)])
    assert merged["partial"] is True and merged["interrupted"] == "SIGTERM"
    assert "partial" not in merge.merge([("full", doc)])


def test_the_recording_tap_honours_the_timeout(tmp_path):
    """A real FastTrack that accepts connections and never answers: each tapped exchange ends after --timeout
    (here 1 s), not after a fixed 30 s."""
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # connections complete in the backlog; nothing is ever read or answered
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        code = cli.main(["run", "--gateway", "to-be", "--scenario", "pr3353-to-be", "--fasttrack-url", url,
                         "--fasttrack-name", "silent", "--timeout", "1", "--quiet", "--out", str(tmp_path)])
    doc = json.loads((tmp_path / "matrix.json").read_text(encoding="utf-8"))
    (cell,) = doc["cells"]
    assert code == 3 or not cell["required"]
    assert cell["verdict"] == "error"
    assert doc["duration_s"] < 25, "the tap waited its own 30 s instead of --timeout"
