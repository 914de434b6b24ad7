"""A real release's differences from its reference profile are matched to documented findings on the failure's
structure (hop, what was checked and its name, step), never on its text."""

from __future__ import annotations

from harness.judge import findings
from harness.judge.findings import Difference, Finding
from harness.results.document import subject


def _failure(what: str, name: str, hop: str = "gateway_to_fasttrack", step: str = "call") -> dict[str, str]:
    return {"step": step, "hop": hop, "what": what, "name": name, "kind": "absent"}


FINDING = Finding("F1", "t", ("25.19.*",), "bearer-session-header", "gateway_to_fasttrack", "header Cookie", "e",
                  step="call")


def _diff(failure: dict[str, str] | None) -> Difference:
    return Difference("25.1.0", "bearer-session-header", "fail", "pass", failure, None)


def test_a_finding_matches_hop_what_name_and_step() -> None:
    assert FINDING.matches("25.19.2", _diff(_failure("header", "cookie")))  # header names are case-insensitive
    assert not FINDING.matches("25.19.2", _diff(_failure("header", "Cookie2")))  # not a prefix match
    assert not FINDING.matches("25.19.2", _diff(_failure("json", "Cookie")))
    assert not FINDING.matches("25.19.2", _diff(_failure("header", "Cookie", hop="gateway_to_client")))
    assert not FINDING.matches("25.19.2", _diff(_failure("header", "Cookie", step="login")))
    assert not FINDING.matches("25.1.1", _diff(_failure("header", "Cookie")))
    assert not FINDING.matches("25.19.2", _diff(None))


def test_compare_takes_the_first_failure_as_a_structure() -> None:
    def doc(outcome: str, failures: list[dict[str, object]]) -> dict[str, object]:
        return {"cells": [{"gateway": "row", "fasttrack": "25.1.0", "scenarios": [
            {"id": "bearer-session-header", "outcome": outcome, "failures": failures, "error": None}]}]}

    full = {**_failure("header", "Cookie"), "expected": "absent", "actual": "'x'", "where": {"file": "s.yaml"}}
    diffs = findings.compare(doc("fail", [full]), "row", doc("pass", []), "row", "25.19.2", [FINDING])
    assert [(d.peer_failure, d.finding) for d in diffs] == [(_failure("header", "Cookie"), "F1")]
    assert subject(_failure("status", "")) == "status"
