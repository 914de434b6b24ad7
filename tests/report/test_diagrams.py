"""Observed sequence diagrams (harness.report.diagrams): Mermaid and SVG, from the result document alone."""

from __future__ import annotations

import copy
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.engine.selection import select
from harness.report import diagrams

# The Mermaid arrow each hop is drawn as.
ARROW = {"client_to_gateway": "C->>G:", "gateway_to_fasttrack": "G->>F:", "fasttrack_to_gateway": "F-->>G:",
         "gateway_to_client": "G-->>C:"}
ENTITY = re.compile(r"#(?:\d+|[a-z]+);")


@pytest.fixture(scope="module")
def doc(full_run_doc: dict[str, Any]) -> dict[str, Any]:
    return full_run_doc


def _scenarios(doc: dict[str, Any], outcome: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(c, s) for c in doc["cells"] for s in c["scenarios"] if s["outcome"] == outcome]


def _rect_blocks(text: str) -> list[list[str]]:
    blocks: list[list[str]] = []
    cur: list[str] | None = None
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("rect rgb("):
            cur = []
        elif s == "end" and cur is not None:
            blocks.append(cur)
            cur = None
        elif cur is not None:
            cur.append(s)
    return blocks


def _hop(step_name: str, hops: dict[str, Any], failures: list[dict[str, Any]] | None = None,
         outcome: str = "fail", note: str | None = None) -> dict[str, Any]:
    return {"name": step_name, "outcome": outcome, "note": note, "failures": failures or [], "hops": hops}


def _req(hop: str, method: str, path: str, headers: list[list[str]]) -> dict[str, Any]:
    return {"hop": hop, "method": method, "path": path, "query": "", "headers": headers, "body_size": 0, "body": ""}


def _resp(hop: str, status: int, reason: str, headers: list[list[str]]) -> dict[str, Any]:
    return {"hop": hop, "status": status, "reason": reason, "headers": headers, "body_size": 0, "body": ""}


def _failure(step: str, hop: str, what: str, name: str, kind: str, expected: str, actual: str) -> dict[str, Any]:
    return {"step": step, "hop": hop, "what": what, "name": name, "kind": kind, "expected": expected,
            "actual": actual, "fasttrack_reason": None, "where": {"file": "s.yaml", "line": 1, "col": 1, "text": None}}


def test_same_input_gives_the_same_text(doc: dict[str, Any]) -> None:
    for cell in doc["cells"]:
        for sc in cell["scenarios"]:
            assert diagrams.mermaid(sc) == diagrams.mermaid(copy.deepcopy(sc))
            assert diagrams.svg(sc) == diagrams.svg(copy.deepcopy(sc))


def test_no_timestamps_or_run_ids_leak_into_diagrams(doc: dict[str, Any]) -> None:
    for cell in doc["cells"]:
        for sc in cell["scenarios"]:
            text = diagrams.mermaid(sc) + diagrams.svg(sc)
            assert doc["started_at"] not in text
            dates = {v for step in sc["steps"] for rec in step["hops"].values() for k, v in rec["headers"]
                     if k.lower() == "date"}
            assert not any(d in text for d in dates)


def test_participants_are_named_as_in_the_pr(doc: dict[str, Any]) -> None:
    _, sc = next((c, s) for c in doc["cells"] for s in c["scenarios"])
    text = diagrams.mermaid(sc)
    assert text.startswith("sequenceDiagram\n")
    assert "participant C as Client" in text
    assert "participant G as Backend.AI Gateway" in text
    assert "participant F as Backend.AI FastTrack" in text


def test_a_crossed_cell_marks_its_failing_arrow(doc: dict[str, Any]) -> None:
    failing = _scenarios(doc, "fail")
    assert failing, "the matrix has off-policy (crossed) cells, so some scenario must fail"
    for _cell, sc in failing:
        text = diagrams.mermaid(sc)
        blocks = _rect_blocks(text)
        assert blocks, text
        firsts = {(f["step"], f["hop"]): f for f in reversed(sc["failures"])}  # the first failure of each hop
        for f in firsts.values():
            if f["hop"] not in ARROW:
                continue
            # The failing hop's arrow sits in a red block, with a ❌ note that names the failed check.
            block = next((b for b in blocks if b[0].startswith(ARROW[f["hop"]])), None)
            assert block is not None, (f, text)
            note = " ".join(x for x in block if x.startswith("Note over"))
            assert "❌" in note
            assert diagrams.mermaid_text(diagrams.check_label(f)) in note


def test_a_passing_scenario_has_no_failure_marks(doc: dict[str, Any]) -> None:
    passing = _scenarios(doc, "pass")
    assert passing
    for _cell, sc in passing:
        text = diagrams.mermaid(sc)
        assert "❌" not in text and "rect rgb(" not in text
        assert 'class="arrow fail"' not in diagrams.svg(sc)
        # Every recorded hop became one arrow, requests solid and responses dashed.
        for step in sc["steps"]:
            for hop in step["hops"]:
                assert ARROW[hop] in text


def test_auth_headers_are_shown_and_other_headers_are_not(doc: dict[str, Any]) -> None:
    for _cell, sc in _scenarios(doc, "pass") + _scenarios(doc, "fail"):
        text = diagrams.mermaid(sc)
        for step in sc["steps"]:
            for rec in step["hops"].values():
                for name, _value in rec["headers"]:
                    if name in diagrams.AUTH_HEADERS:
                        assert f"{name}#58; " in text
        assert "User-Agent" not in text and "Content-Length" not in text


def test_redacted_values_stay_redacted(doc: dict[str, Any]) -> None:
    for cell in doc["cells"]:
        for sc in cell["scenarios"]:
            text = diagrams.mermaid(sc)
            tags = set(re.findall(r"‹secret#58;[0-9a-f]{6}›", text))
            for t in tags:  # every secret tag shown is one the document already had: nothing recovered
                assert t.replace("#58;", ":") in str(sc)


def test_headers_the_failures_mention_are_shown_even_when_absent() -> None:
    fails = [_failure("login", "gateway_to_fasttrack", "header", "X-Forwarded-For", "equals", "'127.64.0.9'",
                      "absent")]
    sc = {"id": "x", "outcome": "fail", "failures": fails, "steps": [_hop("login", {
        "client_to_gateway": _req("client_to_gateway", "POST", "/pipeline/login/", [["User-Agent", "t"]]),
        "gateway_to_fasttrack": _req("gateway_to_fasttrack", "POST", "/login/",
                                     [["Authorization", "Bearer ‹secret:aaaaaa›"]]),
        "fasttrack_to_gateway": _resp("fasttrack_to_gateway", 200, "OK", []),
        "gateway_to_client": _resp("gateway_to_client", 200, "OK", [["X-Forwarded-For", "10.0.0.1"]]),
    }, fails)]}
    text = diagrams.mermaid(sc)
    assert ("G->>F: POST /login/<br/>Authorization#58; Bearer ‹secret#58;aaaaaa›<br/>X-Forwarded-For#58; (absent)"
            in text)
    assert "X-Forwarded-For#58; 10.0.0.1" in text  # a mentioned header is shown wherever it crossed
    assert "User-Agent" not in text


def test_a_step_that_never_reached_fasttrack_shows_the_gateway_answering() -> None:
    fails = [_failure("call", "gateway_to_client", "status", "", "equals", "200", "401 Unauthorized")]
    sc = {"id": "x", "outcome": "fail", "failures": fails, "steps": [_hop("call", {
        "client_to_gateway": _req("client_to_gateway", "GET", "/pipeline/api/", []),
        "gateway_to_client": _resp("gateway_to_client", 401, "Unauthorized", []),
    }, fails)]}
    text = diagrams.mermaid(sc)
    assert "G->>F" not in text and "F-->>G" not in text
    assert "Note over G: nothing forwarded to FastTrack" in text
    lines = text.splitlines()
    assert lines.index(next(x for x in lines if "Note over G:" in x)) < lines.index(
        next(x for x in lines if x.strip().startswith("G-->>C:")))
    svg = diagrams.svg(sc)
    assert 'data-hop="gateway_to_client"' in svg and 'data-hop="gateway_to_fasttrack"' not in svg


def test_an_errored_scenario_without_steps_still_renders() -> None:
    sc = {"id": "x", "outcome": "error", "error": "gateway unreachable: connect refused", "failures": [], "steps": []}
    assert "Note over C,F: ⚠ error#58; gateway unreachable#58; connect refused" in diagrams.mermaid(sc)
    assert "gateway unreachable" in diagrams.svg(sc)


def test_a_step_without_hops_shows_its_note() -> None:
    fails = [_failure("call", "client_to_gateway", "request", "placeholders", "bound", "all placeholders bound",
                      "${tok} unbound")]
    sc = {"id": "x", "outcome": "fail", "failures": fails,
          "steps": [_hop("call", {}, fails, note="placeholder ${tok} has no value")]}
    text = diagrams.mermaid(sc)
    assert "placeholder $#123;tok#125; has no value" in text
    assert "❌" in text


def test_characters_mermaid_chokes_on_are_escaped() -> None:
    nasty = 'a;b#c:d%%e<f>g"h{i}j`k\\l'
    fails = [_failure("s;#:", "fasttrack_to_gateway", "header", "X-Odd", "equals", nasty, nasty)]
    sc = {"id": "x", "outcome": "fail", "failures": fails, "steps": [_hop("s;#:", {
        "client_to_gateway": _req("client_to_gateway", "POST", f"/pipeline/{nasty}", [["Authorization", nasty]]),
        "gateway_to_fasttrack": _req("gateway_to_fasttrack", "POST", f"/{nasty}", [["X-BackendAI-SSO", nasty]]),
        "fasttrack_to_gateway": _resp("fasttrack_to_gateway", 418, nasty, [["X-Odd", nasty]]),
        "gateway_to_client": _resp("gateway_to_client", 418, nasty, []),
    }, fails, note=nasty)]}
    for line in diagrams.mermaid(sc, title=nasty).splitlines()[1:]:
        s = line.strip()
        if s in ("end",) or s.startswith(("rect rgb(", "participant ")):
            continue
        if s.startswith("title "):
            head, label = "title", s.removeprefix("title ")
        else:
            head, sep, label = s.partition(": ")
            assert sep, s
            assert re.fullmatch(r"(Note (over|right of) [CGF](,[CGF])?|[CGF]-?->>[CGF])", head), s
        plain = ENTITY.sub("", label.replace("<br/>", ""))
        assert not set(plain) & set(';#:%<>"{}`\\'), s


def test_svg_is_well_formed_and_marks_failing_arrows_red(doc: dict[str, Any]) -> None:
    failing = _scenarios(doc, "fail")
    assert failing
    for _cell, sc in failing:
        root = ET.fromstring(diagrams.svg(sc, standalone=True))
        ns = "{http://www.w3.org/2000/svg}"
        assert root.tag == f"{ns}svg"
        groups = root.findall(f"{ns}g")
        failed_hops = {g.get("data-hop") for g in groups if "fail" in (g.get("class") or "").split()}
        assert {f["hop"] for f in sc["failures"] if f["hop"] in ARROW and f["step"] == sc["steps"][-1]["name"]
                and f["hop"] in sc["steps"][-1]["hops"]} <= failed_hops
        for g in groups:
            colour = g.find(f"{ns}line").get("stroke")  # type: ignore[union-attr]
            assert (colour == "#c62828") == ("fail" in (g.get("class") or "").split())
        labels = [t.text or "" for t in root.iter(f"{ns}text")]
        assert {"Client", "Backend.AI Gateway", "Backend.AI FastTrack"} <= set(labels)


def test_inline_svg_has_no_namespace_url() -> None:
    sc = {"id": "x", "outcome": "pass", "failures": [], "steps": []}
    assert "http" not in diagrams.svg(sc)


@given(st.text(max_size=300))
def test_shortening_only_removes_characters(value: str) -> None:
    out = diagrams.short(value)
    assert len(out) <= max(len(" ".join(value.split())), diagrams.VALUE_MAX)
    rest = iter(" ".join(value.split()))
    assert all(ch in rest for ch in out.replace("…", "")), (value, out)


@given(st.sampled_from(["‹secret:1a2b3c›", "‹signature›"]), st.text(alphabet="abc xyz=,", max_size=120))
def test_shortening_keeps_redaction_tags_whole(tag: str, padding: str) -> None:
    out = diagrams.short(f"{padding}{tag}{padding}")
    assert tag in out


def test_expected_diagram_has_every_arrow_the_scenario_checks():
    from harness.scenario.outline import outline

    (scenario,) = select(["as-is"], ["24.09.0"], "pr3353-as-is").scenarios
    text = diagrams.expected_mermaid({"expected": outline(scenario)})
    arrows = [line for line in text.splitlines() if "->>" in line]
    assert len(arrows) == 8  # the AS-IS diagram: two requests, four hops each
    assert "C->>G: POST /pipeline/login/" in text and "F-->>G: 200" in text
    assert "header X-BackendAI-SSO#58; jwt" in text
    assert text == diagrams.expected_mermaid({"expected": outline(scenario)})  # deterministic
