"""Contract vs model checks: the ``model:`` section of a response hop, what it may hold, and how a run against a
real FastTrack judges only the contract (model checks and steps that need control of FastTrack are not
applicable, never a pass or a failure)."""

from __future__ import annotations

import pytest

from harness.engine.selection import DEFAULT_SCENARIOS
from harness.errors import ScenarioError
from harness.protocol.headers import Headers
from harness.protocol.hops import HopRecord
from harness.scenario.loader import discover, load_all, parse_scenario
from harness.scenario.matchers import EvalContext, evaluate_hop

HEAD = """\
id: unit
title: Unit scenario
modes: [to-be]
steps:
  - name: first
    request: {method: POST, path: /pipeline/login/}
    expect:
"""


def load(expect: str, capture: str = "") -> object:
    return parse_scenario(HEAD + expect + capture, "unit.yaml")


def error(expect: str, capture: str = "") -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        load(expect, capture)
    return info.value


def test_a_model_section_holds_the_mocks_details_apart_from_the_contract() -> None:
    sc = load("""\
      fasttrack_to_gateway:
        status: 200
        json: {token: present}
        model:
          headers: {Content-Type: {equals: application/json}}
          json: {user: {equals: "${access_key}"}}
""")
    step = sc.steps[0]  # type: ignore[attr-defined]
    hop = step.expect["fasttrack_to_gateway"]
    assert hop.count() == 2 and hop.model is not None and hop.model.count() == 2
    assert step.count_checks() == (3, 2)  # and that the FastTrack hop was reached


@pytest.mark.parametrize("hop, line", [("client_to_gateway", 10), ("gateway_to_fasttrack", 10)])
def test_model_on_what_a_client_or_gateway_sends_is_a_load_error(hop: str, line: int) -> None:
    err = error(f"""\
      {hop}:
        headers: {{Authorization: present}}
        model:
          headers: {{Authorization: {{keypair_signature: {{access_key: "${{access_key}}"}}}}}}
""")
    assert (err.file, err.line) == ("unit.yaml", line)
    assert "contract check" in str(err) and err.key == f"steps[0].expect.{hop}.model"


def test_the_version_header_is_never_a_model_detail() -> None:
    err = error("""\
      fasttrack_to_gateway:
        model:
          headers: {X-BackendAI-FastTrack-Version: present}
""")
    assert err.line == 10 and "version header" in str(err)


def test_an_empty_model_section_and_unknown_keys_are_load_errors() -> None:
    assert "at least one check" in str(error("      gateway_to_client:\n        model: {}\n"))
    assert "unknown key 'method'" in str(error("      gateway_to_client:\n        model: {method: GET}\n"))


def test_a_capture_from_a_request_hop_cannot_be_a_model_detail() -> None:
    err = error("      gateway_to_client: {status: 200}\n",
                "    capture:\n      x: {from: gateway_to_fasttrack, header: Authorization, model: true}\n")
    assert err.line == 10 and "never a model detail" in str(err)


def test_every_shipped_scenario_loads_and_keeps_a_contract_check() -> None:
    scenarios = load_all(discover(DEFAULT_SCENARIOS))
    counts = {sc.id: sc.count_checks() for sc in scenarios}
    assert all(contract > 0 for contract, _ in counts.values()), counts
    assert counts["pr3353-to-be"][1] > 0  # the mock's echo of who it authenticated


def _ctx(judge_model: bool = True) -> EvalContext:
    return EvalContext({"access_key": "AK"}, frozenset({"to-be"}), lambda ak: None, 0, judge_model)


def _response(content_type: str, body: bytes = b'{"token": "t"}') -> HopRecord:
    return HopRecord.response("fasttrack_to_gateway", 200, "OK", Headers.of([("Content-Type", content_type)]), body)


def _hop(yaml_hop: str) -> object:
    return load(yaml_hop).steps[0].expect["fasttrack_to_gateway"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("sent, wanted, ok", [
    ("application/json; charset=utf-8", "application/json", True),
    ("Application/JSON", "application/json", True),
    ("application/json; charset=utf-8", "application/json; charset=utf-8", True),
    ("application/json", "application/json; charset=utf-8", False),  # parameters given: the exact line
    ("text/plain; charset=utf-8", "application/json", False),
    ("", "application/json", False),
])
def test_content_type_compares_by_media_type_unless_parameters_are_given(sent: str, wanted: str, ok: bool) -> None:
    hop = _hop(f"      fasttrack_to_gateway:\n        headers: {{Content-Type: {{equals: \"{wanted}\"}}}}\n")
    fails = evaluate_hop("first", "fasttrack_to_gateway", hop, _response(sent), _ctx(), 1)  # type: ignore[arg-type]
    assert (not fails) is ok


def test_model_checks_are_judged_against_the_mock_only() -> None:
    hop = _hop("      fasttrack_to_gateway:\n        json: {token: present}\n"
               "        model: {json: {user: {equals: \"${access_key}\"}}}\n")
    record = _response("application/json")  # no 'user' echo: a real FastTrack need not echo
    assert evaluate_hop("first", "fasttrack_to_gateway", hop, record, _ctx(), 1)  # type: ignore[arg-type]
    assert not evaluate_hop("first", "fasttrack_to_gateway", hop, record, _ctx(False), 1)  # type: ignore[arg-type]


def test_steps_that_need_control_of_fasttrack_or_its_model_details_arenot_applicable() -> None:
    from harness.judge.steps import not_applicable

    ok = "    expect: {gateway_to_client: {status: 200}}\n"
    sc = parse_scenario(HEAD.replace("    request: {method: POST, path: /pipeline/login/}\n    expect:\n", f"""\
    request: {{method: POST, path: /pipeline/login/, upstream: {{status: 500}}}}
{ok}    capture:
      echo: {{from: gateway_to_client, json: user, model: true}}
  - name: second
    request: {{method: GET, path: /pipeline/x/, fasttrack_clock_offset: 60}}
{ok}  - name: third
    request: {{method: GET, path: "/pipeline/${{echo}}/"}}
{ok}  - name: fourth
    request: {{method: GET, path: /pipeline/y/}}
{ok}"""), "unit.yaml")
    first, second, third, fourth = sc.steps
    assert "injects FastTrack's answer" in (not_applicable(first, set()) or "")
    assert "clock ahead" in (not_applicable(second, set()) or "")
    assert "${echo}" in (not_applicable(third, {"echo"}) or "") and not_applicable(third, set()) is None
    assert not_applicable(fourth, {"echo"}) is None
    assert first.count_checks() == (1, 1)  # the status; the model capture


def test_a_diagram_marks_the_mocks_details_under_implied_model() -> None:
    from harness.scenario.mermaid import parse_diagram_scenario

    text = (DEFAULT_SCENARIOS / "diagram-pr3353-to-be.mmd").read_text()
    call = "    json: {name: demo}\n    implied:\n"
    assert call in text
    sc = parse_diagram_scenario(text.replace(call, call + '      gateway_to_client: {model: {json: {user: '
                                             '{equals: "${access_key}"}}}}\n'), "x.mmd")
    assert sc.count_checks()[1] == 1 and sc.steps[1].expect["gateway_to_client"].model is not None
    with pytest.raises(ScenarioError, match="contract check"):
        parse_diagram_scenario(text.replace(call, call + "      client_to_gateway: {model: {headers: "
                                            "{Authorization: present}}}\n"), "x.mmd")
