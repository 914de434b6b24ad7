"""Executable diagrams (harness.scenario.mermaid): PR #3353's two diagrams, verbatim, run as scenarios.

They load into the same model as YAML scenarios, pass in their own cells, fail at the right arrow in the crossed
ones, and every arrow the harness cannot map or placeholder it cannot bind is a ScenarioError at file:line:column.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import cli
from harness.engine.matrix_run import Options, run_matrix
from harness.engine.selection import DEFAULT_SCENARIOS, select
from harness.errors import ScenarioError, ScenarioErrors
from harness.protocol.hops import HOPS
from harness.scenario.loader import discover, display_path, load_all, load_scenario
from harness.scenario.mermaid import parse_diagram_scenario

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT.parent / "shared" / "seed" / "pr-3353-deprecate-sso-header.txt"
AS_IS = DEFAULT_SCENARIOS / "diagram-pr3353-as-is.mmd"
TO_BE = DEFAULT_SCENARIOS / "diagram-pr3353-to-be.mmd"
POLICY = {"as-is": frozenset({"24.09.0"}), "to-be": frozenset({"25.1.0"})}


def diagram_lines(text: str) -> list[str]:
    """The lines of each ``sequenceDiagram`` in ``text``, up to the first line that is not part of it."""
    out: list[str] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip() == "sequenceDiagram":
            out.append(line)
            out += [x for x in _takewhile_indented(lines[i + 1:])]
    return out


def _takewhile_indented(lines: list[str]) -> list[str]:
    taken = []
    for x in lines:
        if not x.startswith("    "):
            break
        taken.append(x)
    return taken


# --- the shipped diagrams -----------------------------------------------------------------------------------------

def test_shipped_diagrams_are_the_seed_diagrams_verbatim():
    if not SEED.is_file():
        pytest.skip(f"the seed is not beside the repository ({SEED})")
    seed = diagram_lines(SEED.read_text(encoding="utf-8"))
    ours = diagram_lines(AS_IS.read_text(encoding="utf-8")) + diagram_lines(TO_BE.read_text(encoding="utf-8"))
    assert len(seed) == 18 and ours == seed


def test_discover_and_load_all_include_the_diagrams_with_their_own_ids():
    files = discover(DEFAULT_SCENARIOS)
    assert AS_IS in files and TO_BE in files
    by_id = {s.id: s for s in load_all(files)}
    assert {"diagram-pr3353-as-is", "diagram-pr3353-to-be", "pr3353-as-is", "pr3353-to-be"} <= set(by_id)
    assert [p.name for p in discover(DEFAULT_SCENARIOS, "diagram-*")] == [AS_IS.name, TO_BE.name]


def test_every_arrow_is_a_hop_expectation_of_the_same_model():
    for path, mode in ((AS_IS, "as-is"), (TO_BE, "to-be")):
        sc = load_scenario(path, path.name)
        assert sc.modes == (mode,) and sc.file == path.name and sc.login
        assert sc.steps[0].name == "pipeline login"
        for step in sc.steps:
            assert list(step.expect) == list(HOPS)
            assert all(e.reached for e in step.expect.values())
            assert step.request.method == "POST"
            lines = [e.where.line for e in step.expect.values()]
            assert lines == sorted(lines) and len(set(lines)) == 4  # one arrow per hop, in diagram order
        login, call = sc.steps
        assert login.request.path.raw == "/pipeline/login/" and login.request.session == "header"
        assert str(login.expect["gateway_to_fasttrack"].path) == "/login/"
        assert call.request.path.raw == "/pipeline/api/pipelines/"
        assert str(call.expect["gateway_to_fasttrack"].path) == "/api/pipelines/"
        assert call.expect["fasttrack_to_gateway"].status == call.expect["gateway_to_client"].status == 200


def test_as_is_client_repeats_the_sso_header_it_received():
    sc = load_scenario(AS_IS)
    login, call = sc.steps
    cap = login.captures[0]
    assert (cap.hop, cap.header, cap.secret) == ("gateway_to_client", "X-BackendAI-SSO", True)
    assert call.request.headers == (("X-BackendAI-SSO", _t("${" + cap.name + "}")),)
    assert call.request.session == "header"
    sid = next(f for f in call.expect["client_to_gateway"].headers if f.name == "X-BackendAI-SessionID")
    assert sid.checks[0].kind == "equals" and str(sid.checks[0].value) == "${session_id}"  # bound in the header
    sso = next(f for f in call.expect["gateway_to_fasttrack"].headers if f.name == "X-BackendAI-SSO")
    assert sso.checks[0].kind == "present"  # '...' means present


def test_to_be_token_is_captured_once_and_the_client_sends_what_it_received():
    sc = load_scenario(TO_BE)
    login, call = sc.steps
    assert [(c.name, c.hop, c.json) for c in login.captures] == [
        ("AUTH_TOKEN", "fasttrack_to_gateway", "token"), ("AUTH_TOKEN_received", "gateway_to_client", "token")]
    # Same step: captures bind after the step, so the gateway's copy is checked present; later ones are equal.
    assert login.expect["gateway_to_client"].json[0].checks[0].kind == "present"
    assert call.request.session == "none"
    assert call.request.headers == (("Authorization", _t("Bearer ${AUTH_TOKEN_received}")),)
    auth = call.expect["client_to_gateway"].headers[0]
    assert auth.name == "Authorization" and str(auth.checks[0].value) == "Bearer ${AUTH_TOKEN}"
    implied = {f.name: f.checks[0].kind for f in call.expect["gateway_to_fasttrack"].headers}
    assert implied == {"Authorization": "equals", "X-BackendAI-SSO": "absent", "X-BackendAI-SessionID": "absent"}


def _t(raw: str):
    from harness.scenario.template import Template

    return Template(raw)


def test_diagrams_pass_in_their_own_cells_and_fail_at_the_right_arrow_in_the_crossed_ones():
    sel = select(["as-is", "to-be"], ["24.09.0", "25.1.0"], "diagram-pr3353-*")
    assert sorted(s.id for s in sel.scenarios) == ["diagram-pr3353-as-is", "diagram-pr3353-to-be"]
    result = asyncio.run(run_matrix(sel.gateways, sel.fasttracks, sel.scenarios, POLICY, Options(timeout=10.0)))
    got = {(c.gateway, c.fasttrack): (c.verdict, c.scenarios[0]) for c in result.cells}
    assert {k: v[0] for k, v in got.items()} == {
        ("as-is", "24.09.0"): "compatible", ("as-is", "25.1.0"): "incompatible",
        ("to-be", "24.09.0"): "incompatible", ("to-be", "25.1.0"): "compatible"}
    assert got[("as-is", "24.09.0")][1].outcome == "pass" and got[("to-be", "25.1.0")][1].outcome == "pass"

    as_is = got[("as-is", "25.1.0")][1]
    f = as_is.failures[0]
    assert (as_is.id, f.step, f.hop, f.what, f.name, f.kind) == (
        "diagram-pr3353-as-is", "pipeline login", "fasttrack_to_gateway", "header", "X-BackendAI-SSO", "present")
    arrow = _line_of(AS_IS, "Backend.AI FastTrack-->>-Backend.AI Gateway: 200 OK (")
    assert (f.where.file, f.where.line) == (display_path(AS_IS), arrow)
    assert f.where.text is not None and f.where.text[f.where.col - 1:].startswith("Backend.AI FastTrack-->>")

    to_be = got[("to-be", "24.09.0")][1]
    f = to_be.failures[0]
    assert (to_be.id, f.step, f.hop, f.what, f.expected) == (
        "diagram-pr3353-to-be", "pipeline login", "fasttrack_to_gateway", "status", "200")
    assert f.actual.startswith("401") and f.fasttrack_reason  # FastTrack's own words, from its problem body
    arrow = _line_of(TO_BE, "Backend.AI FastTrack-->>-Backend.AI Gateway: 200 OK {")
    assert (f.where.file, f.where.line) == (display_path(TO_BE), arrow)


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in line)


# --- errors: file:line:column, key and a caret ------------------------------------------------------------------------

HEADER = """\
---
id: unit-diagram
title: Unit diagram
modes: [to-be]
bind:
  /pipeline/.../: /pipeline/api/
  /.../: /api/
---
sequenceDiagram
"""
LOGIN = """\
    Client->>+Backend.AI Gateway: POST /pipeline/login/ (X-BackendAI-SessionID: ...)
    Backend.AI Gateway-->>+Backend.AI FastTrack: POST /login/ (X-BackendAI-SessionID: ...)
    Backend.AI FastTrack-->>-Backend.AI Gateway: 200 OK {"token": "AUTH_TOKEN"}
    Backend.AI Gateway-->>-Client: 200 OK {"token": "AUTH_TOKEN"}
"""
CALL = """\
    Client->>+Backend.AI Gateway: POST /pipeline/.../ (Authorization: "Bearer AUTH_TOKEN")
    Backend.AI Gateway-->>+Backend.AI FastTrack: POST /.../ (Authorization: "Bearer AUTH_TOKEN")
    Backend.AI FastTrack-->>-Backend.AI Gateway: 200 OK
    Backend.AI Gateway->>-Client: 200 OK
"""


def error_at(text: str, needle: str, match: str, occurrence: int = 1) -> ScenarioError:
    """Parse ``text``; the error must be at the ``occurrence``-th line containing ``needle``, column of needle."""
    with pytest.raises(ScenarioError, match=match) as info:
        parse_diagram_scenario(text, "scenarios/unit.mmd")
    err = info.value
    hits = [(n, line) for n, line in enumerate(text.splitlines(), 1) if needle in line]
    line_no, line = hits[occurrence - 1]
    assert (err.file, err.line, err.column) == ("scenarios/unit.mmd", line_no, line.index(needle) + 1), err.render()
    rendered = err.render().splitlines()
    assert rendered[0].startswith(f"scenarios/unit.mmd:{line_no}:{line.index(needle) + 1}: error: ")
    assert rendered[1].endswith(line.rstrip()) and rendered[2].index("^") == len(rendered[1]) - len(line) + \
        line.index(needle)
    return err


def test_the_unit_diagram_itself_loads():
    sc = parse_diagram_scenario(HEADER + LOGIN + CALL, "scenarios/unit.mmd")
    assert [s.name for s in sc.steps] == ["step 1: POST /pipeline/login/", "step 2: POST /pipeline/.../"]


def test_unknown_participant():
    text = HEADER + LOGIN.replace("+Backend.AI FastTrack: POST", "+Backend.AI Pipelines: POST") + CALL
    error_at(text, "Backend.AI Pipelines", r"unknown participant 'Backend\.AI Pipelines'")


def test_arrow_between_participants_without_a_hop():
    text = HEADER + "    Client->>Backend.AI FastTrack: POST /x/\n"
    error_at(text, "Client->>Backend.AI FastTrack", "no hop goes from Client to Backend.AI FastTrack")


def test_arrow_out_of_order():
    lines = LOGIN.splitlines()
    text = HEADER + "\n".join([lines[0], lines[2], lines[1], lines[3]]) + "\n" + CALL
    err = error_at(text, "Backend.AI FastTrack-->>-Backend.AI Gateway", r"fasttrack_to_gateway\) is out of order")
    assert err.key == "steps[0]"


def test_a_fifth_arrow_in_a_step():
    text = HEADER + LOGIN + "    Backend.AI Gateway-->>Client: 200 OK\n" + CALL
    err = error_at(text, "Backend.AI Gateway-->>Client: 200 OK", "one arrow too many: step 1 is complete")
    assert "line 13" in err.message


def test_a_diagram_that_stops_mid_step():
    text = HEADER + LOGIN + "\n".join(CALL.splitlines()[:2]) + "\n"
    error_at(text, "Backend.AI Gateway-->>+Backend.AI FastTrack: POST /.../", "ends in the middle of step 2")


@pytest.mark.parametrize(("written", "at", "match"), [
    ("FETCH /pipeline/login/ (X-BackendAI-SessionID: ...)", "FETCH", "cannot read a request"),
    ("POST pipeline/login/ (X-BackendAI-SessionID: ...)", "POST pipeline", "cannot read a request"),
    ("POST /pipeline/login/ (X-BackendAI-SessionID ...)", "X-BackendAI-SessionID ...", "expected 'Name: value'"),
    ("POST /pipeline/login/ (X-BackendAI-SessionID: ...) maybe", "maybe", "cannot read the label from here"),
    ("POST /pipeline/login/ (X-BackendAI-SessionID: ...", "(", r"unclosed '\('"),
])
def test_unparseable_request_labels(written, at, match):
    text = HEADER + LOGIN.replace("POST /pipeline/login/ (X-BackendAI-SessionID: ...)", written, 1) + CALL
    error_at(text, at, match)


def test_unparseable_response_labels():
    text = HEADER + LOGIN.replace('200 OK {"token": "AUTH_TOKEN"}', "OK then", 1) + CALL
    error_at(text, "OK then", "cannot read a response")
    text = HEADER + LOGIN.replace('{"token": "AUTH_TOKEN"}', '{"token": AUTH_TOKEN}', 1) + CALL
    error_at(text, '{"token": AUTH_TOKEN}', "cannot read the JSON body")


def test_placeholder_used_by_the_client_before_any_response_captured_it():
    text = HEADER + LOGIN + CALL.replace('"Bearer AUTH_TOKEN")\n', '"Bearer FOO_TOKEN")\n', 1)
    err = error_at(text, "FOO_TOKEN", "FOO_TOKEN is used in a request before any response captured it")
    assert err.key == "steps[1].client_to_gateway"


def test_placeholder_first_seen_inside_a_larger_value_cannot_be_captured():
    text = HEADER + LOGIN.replace('200 OK {"token": "AUTH_TOKEN"}', '200 OK (X-Token: "tok AUTH_TOKEN")', 1) + CALL
    error_at(text, 'AUTH_TOKEN")', "captured here, and a capture is a whole value")


def test_the_client_cannot_send_an_elided_header_nobody_gave_it():
    text = HEADER + LOGIN + CALL.replace('(Authorization: "Bearer AUTH_TOKEN")\n', "(X-BackendAI-SSO: ...)\n", 1)
    error_at(text, "X-BackendAI-SSO: ...", r"the client cannot send 'X-BackendAI-SSO: \.\.\.'")


def test_an_elided_path_needs_a_binding_and_a_binding_must_be_used():
    text = HEADER.replace("  /.../: /api/\n", "") + LOGIN + CALL
    error_at(text, "/.../ (Authorization", r"the path '/\.\.\./' is elided", occurrence=2)
    text = HEADER.replace("bind:\n", "bind:\n  NOT_USED: x\n") + LOGIN + CALL
    error_at(text, "NOT_USED", "'NOT_USED' is bound but the diagram never uses it")


def test_header_errors_keep_the_file_line_numbers():
    text = HEADER.replace("modes: [to-be]", "modes: [to-bee]") + LOGIN + CALL
    error_at(text, "to-bee", "unknown mode 'to-bee'")
    text = HEADER.replace("title: Unit diagram\n", "title: Unit diagram\nsteps:\n  - nam: x\n") + LOGIN + CALL
    err = error_at(text, "nam: x", "unknown key 'nam'")
    assert err.key == "steps[0].nam"


def test_malformed_front_matter_points_into_the_file():
    error_at(HEADER.replace("  /.../: /api/", "  /.../: [/api/"), "---", "malformed YAML", occurrence=2)  # at the end
    with pytest.raises(ScenarioError, match="malformed YAML") as info:
        parse_diagram_scenario(HEADER.replace("modes: [to-be]", "modes: [to-be]]") + LOGIN, "scenarios/unit.mmd")
    assert (info.value.line, info.value.column, info.value.source_line) == (4, 15, "modes: [to-be]]")


def test_implied_checks_must_be_negative():
    implied = "steps:\n  - implied:\n      gateway_to_fasttrack: {headers: {Authorization: present}}\n"
    text = HEADER.replace("bind:\n", implied + "bind:\n") + LOGIN + CALL
    error_at(text, "present}}", "implied checks are negative")


def test_no_front_matter_or_no_sequence_diagram():
    error_at("sequenceDiagram\n" + LOGIN, "sequenceDiagram", "starts with a YAML front matter")
    error_at(HEADER.replace("sequenceDiagram", "flowchart LR") + LOGIN, "flowchart", "expected 'sequenceDiagram'")
    error_at(HEADER + "    loop every minute\n" + LOGIN, "loop", "'loop' blocks are not executable")


def test_a_broken_diagram_makes_the_cli_exit_2_with_file_line_and_caret(tmp_path, capsys):
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    shutil.copy(TO_BE, scenarios / TO_BE.name)
    broken = scenarios / TO_BE.name
    text = broken.read_text(encoding="utf-8").replace("Backend.AI FastTrack-->>-Backend.AI Gateway: 200 OK {",
                                                      "Backend.AI Fasttrack-->>-Backend.AI Gateway: 200 OK {")
    broken.write_text(text, encoding="utf-8")
    line = _line_of(broken, "Backend.AI Fasttrack-->>")
    code = cli.main(["run", "--quiet", "--out", str(tmp_path / "out"), "--scenarios-dir", str(scenarios)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{broken}:{line}:5: error: unknown participant 'Backend.AI Fasttrack'" in err
    assert re.search(r"\n {11}\^", err)  # the caret under column 5 ("  NN | " gutter + 4 spaces)
    assert not (tmp_path / "out").exists()


def test_json_placeholders_point_at_their_column_and_bodies_are_checked_field_by_field():
    body_first = 'POST /pipeline/.../ {"p": "X_ID"} (A'
    text = HEADER + LOGIN + CALL.replace("POST /pipeline/.../ (Authorization", body_first, 1)
    error_at(text, '(A: "Bearer', "cannot read the label from here")  # the header list comes before the body
    text = HEADER + LOGIN + CALL.replace('(Authorization: "Bearer AUTH_TOKEN")\n', '{"p": "X_ID", "n": 2}\n', 1)
    error_at(text, "X_ID", "X_ID is used in a request before any response captured it")
    text = text.replace("bind:\n", 'bind:\n  X_ID: "${access_key}"\n')
    call = parse_diagram_scenario(text, "scenarios/unit.mmd").steps[1]
    assert call.request.json == {"p": "${access_key}", "n": 2}
    assert [(f.name, f.checks[0].kind, str(f.checks[0].value)) for f in call.expect["client_to_gateway"].json] == [
        ("p", "equals", "${access_key}"), ("n", "equals", "2")]


# --- robustness: any text is a Scenario or a ScenarioError ------------------------------------------------------------

@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mangled_diagrams_load_or_fail_with_a_scenario_error(data):
    text = TO_BE.read_text(encoding="utf-8")
    lines = text.splitlines()
    i = data.draw(st.integers(0, len(lines) - 1))
    line = lines[i]
    j = data.draw(st.integers(0, len(line)))
    k = data.draw(st.integers(j, min(len(line), j + 12)))
    insert = data.draw(st.text(alphabet=st.sampled_from(list('()"{}[]:,. ->+A_Z$\\/x0')), max_size=6))
    lines[i] = line[:j] + insert + line[k:]
    try:
        parse_diagram_scenario("\n".join(lines) + "\n", "scenarios/fuzz.mmd")
    except ScenarioError as exc:  # always a position in the file, with the line shown under a caret
        assert exc.file == "scenarios/fuzz.mmd" and exc.line >= 1 and exc.column >= 1
        assert exc.source_line == lines[exc.line - 1]


# --- pytest: a diagram is collected and judged like a YAML scenario ---------------------------------------------------


def test_pytest_collects_diagrams_and_judges_the_four_cells(pytester: pytest.Pytester) -> None:
    (pytester.path / "scenarios").mkdir()
    for path in (AS_IS, TO_BE):
        shutil.copy(path, pytester.path / "scenarios" / path.name)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    (pytester.path / "policy.yaml").write_text('required:\n  as-is: ["24.09.0"]\n  to-be: ["25.1.0"]\n')
    four = "as-is-24.09.0 or as-is-25.1.0 or to-be-24.09.0 or to-be-25.1.0"
    collected = pytester.runpytest("--collect-only", "-q", "--harness-policy", "policy.yaml", "scenarios", "-k", four)
    assert "scenarios/diagram-pr3353-as-is.mmd::diagram-pr3353-as-is[as-is-24.09.0]" in collected.outlines
    (pytester.path / "none.json").write_text('{"schema": "harness/baseline@1", "cells": []}')  # records nothing
    result = pytester.runpytest("--harness-policy", "policy.yaml", "--harness-baseline", "none.json", "scenarios",
                                "-k", four)
    result.assert_outcomes(passed=2, xfailed=2)
    (pytester.path / "policy.yaml").write_text('required:\n  to-be: ["24.09.0"]\n')
    failed = pytester.runpytest("--harness-policy", "policy.yaml", "scenarios", "-k", "to-be-24.09.0]")
    failed.assert_outcomes(failed=1)
    out = failed.stdout.str()
    assert "fasttrack_to_gateway: status (equals): expected 200, got 401" in out
    assert f"at scenarios/{TO_BE.name}:{_line_of(TO_BE, 'FastTrack-->>-Backend.AI Gateway: 200 OK {')}:" in out


def test_aliases_and_a_step_the_gateway_answers_by_itself():
    text = HEADER + """\
    participant C as Client
    participant G as Backend.AI Gateway
    participant F as Backend.AI FastTrack
    %% a comment, a note and autonumber are ignored
    autonumber
    Note over C,G: no session
    C->>G: GET /pipeline/api/?page=2
    G-->>C: 401 Unauthorized {"error": true}
    C->>+G: POST /pipeline/login/ (X-BackendAI-SessionID: ...)
    G-->>+F: POST /login/
    F-->>-G: 200 OK
    G-->>-C: 200 OK
"""
    text = text.replace("bind:\n  /pipeline/.../: /pipeline/api/\n  /.../: /api/\n", "")
    denied, login = parse_diagram_scenario(text, "scenarios/unit.mmd").steps
    assert not denied.expect["gateway_to_fasttrack"].reached and not denied.expect["fasttrack_to_gateway"].reached
    assert denied.request.session == "none" and [(k, str(v)) for k, v in denied.request.query] == [("page", "2")]
    assert str(denied.expect["client_to_gateway"].query) == "page=2"
    assert denied.expect["gateway_to_client"].status == 401
    assert [(f.name, str(f.checks[0].value)) for f in denied.expect["gateway_to_client"].json] == [("error", "true")]
    assert login.request.session == "header" and login.expect["gateway_to_fasttrack"].headers == ()


def test_every_unreadable_label_of_a_diagram_is_reported_in_one_run():
    text = HEADER + LOGIN.replace("POST /pipeline/login/ (X-BackendAI-SessionID: ...)", "FETCH /pipeline/login/", 1) \
        .replace('200 OK {"token": "AUTH_TOKEN"}', "OK then", 1) \
        + "    loop every minute\n" + CALL.replace("200 OK\n", "200 OK {broken\n", 1) + "    end\n"
    with pytest.raises(ScenarioErrors) as info:
        parse_diagram_scenario(text, "scenarios/unit.mmd")
    lines = text.splitlines()
    assert [e.line for e in info.value.errors] == [
        n for n, line in enumerate(lines, 1) if "FETCH" in line or "OK then" in line or "loop every" in line
        or "200 OK {broken" in line]
    assert info.value.render().rstrip().endswith("4 errors")


def test_an_unreadable_line_stops_the_diagram_there_with_the_errors_before_it():
    text = HEADER + LOGIN.replace("POST /pipeline/login/ (X-BackendAI-SessionID: ...)", "FETCH /pipeline/login/", 1) \
        + "    Client to Gateway: GET /x/\n" + CALL
    with pytest.raises(ScenarioErrors) as info:
        parse_diagram_scenario(text, "scenarios/unit.mmd")
    assert [e.message.split(":")[0] for e in info.value.errors] == ["cannot read a request", "cannot read this line"]
