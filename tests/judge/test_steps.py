"""harness.judge.steps: a step judged from its recorded hops, without servers."""

from __future__ import annotations

from harness.judge import steps
from harness.protocol.headers import Headers
from harness.protocol.hops import HopRecord
from harness.results.model import StepResult
from harness.scenario.loader import parse_scenario
from harness.scenario.matchers import EvalContext

SCENARIO = """\
id: unit
title: unit
modes: [as-is]
steps:
  - name: login
    request: {method: POST, path: /pipeline/login/}
    expect:
      gateway_to_client: {status: 200, headers: {X-Token: present}}
    capture:
      token: {from: gateway_to_client, header: X-Token}
      echo: {from: gateway_to_client, json: user, model: true}
"""


def ectx(judge_model: bool = True) -> EvalContext:
    return EvalContext({}, frozenset({"as-is"}), lambda key: None, 0, judge_model)


def recorded(status: int, headers: list[tuple[str, str]], body: bytes = b"") -> StepResult:
    out = StepResult("login", "pass")
    out.hops["gateway_to_client"] = HopRecord.response("gateway_to_client", status, "", Headers.of(headers), body)
    return out


def test_failures_and_captures_of_one_step():
    (step,) = parse_scenario(SCENARIO, "unit.yaml").steps
    good = recorded(200, [("X-Token", "t")], b'{"user": "u"}')
    assert steps.failures(step, good, ectx()) == []
    assert steps.captured(step, good) == {"token": "t", "echo": "u"}
    assert steps.captured(step, good, judge_model=False) == {"token": "t"}  # a model detail, not judged
    bad = recorded(401, [], b"{}")
    found = steps.failures(step, bad, ectx())
    assert [(f.what, f.name) for f in found] == [("status", ""), ("header", "X-Token"), ("capture", "token"),
                                                 ("capture", "echo")]
    assert [f.name for f in steps.failures(step, bad, ectx(False)) if f.what == "capture"] == ["token"]
    assert steps.captured(step, bad) == {}


def test_an_answer_that_says_the_target_is_broken():
    def answer(status: int, body: bytes, ctype: str = "application/json") -> HopRecord:
        return HopRecord.response("fasttrack_to_gateway", status, "X", Headers.of([("Content-Type", ctype)]), body)

    assert steps.target_fault(None) is None
    assert "answered 503 X" in (steps.target_fault(answer(503, b"{}")) or "")
    assert "malformed JSON" in (steps.target_fault(answer(200, b'{"a"')) or "")
    assert steps.target_fault(answer(200, b'{"a"', "text/plain")) is None
    assert steps.target_fault(answer(200, b'{"a": 1}')) is None


def test_a_bad_gateway_the_step_did_not_expect_is_a_set_up_failure():
    (step,) = parse_scenario(SCENARIO, "unit.yaml").steps
    bad_gateway = HopRecord.response("gateway_to_client", 502, "", Headers.of([]), b'{"type": ".../probs/bad-gateway"}')
    assert steps.fasttrack_unreachable(step, bad_gateway)
    assert not steps.fasttrack_unreachable(step, HopRecord.response("gateway_to_client", 502, "", Headers.of([]), b""))
    expects_502 = parse_scenario(SCENARIO.replace("status: 200", "status: 502"), "unit.yaml").steps[0]
    assert not steps.fasttrack_unreachable(expects_502, bad_gateway)
