"""harness.report.redact: stable tags, readable JWTs, hidden signatures, and nothing secret in written reports."""

from __future__ import annotations

import json
import re

import jwt
import pytest

from harness import matrix
from harness.catalog import select
from harness.engine.matrix_run import Options, run_matrix
from harness.protocol.fasttrack_models import BEARER_25_1
from harness.protocol.generations import G5
from harness.report.output import write_reports
from harness.report.redact import Redactor, tag
from harness.scenario.loader import parse_scenario

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

SECRET = "0c30af5f006765147ed91258c499549c"
OTHER = "2a7cbed5dacc8a08"


def test_tag_is_stable_and_distinct():
    assert tag(SECRET) == tag(SECRET)
    assert tag(SECRET) != tag(OTHER)
    assert tag(SECRET).startswith("‹secret:") and SECRET not in tag(SECRET)


def test_known_secrets_are_replaced_by_their_tag_everywhere():
    r = Redactor({SECRET, OTHER})
    text = f"sid={SECRET}; again {SECRET}; other={OTHER}"
    assert r.text(text) == f"sid={tag(SECRET)}; again {tag(SECRET)}; other={tag(OTHER)}"


def test_longest_secret_wins_over_a_contained_shorter_one():
    short, long = "abcdef12", "abcdef1234567890"
    r = Redactor({short, long})
    assert r.text(f"x {long} y {short}") == f"x {tag(long)} y {tag(short)}"


def test_very_short_values_are_not_treated_as_secrets():
    r = Redactor({"abc", ""})
    assert r.text("abc abc") == "abc abc"


def test_jwt_keeps_header_and_payload_and_loses_signature():
    token = jwt.encode({"aiohttp_session": "s", "access_key": "AK"}, "k" * 32, algorithm="HS256")
    header, payload, signature = token.split(".")
    out = Redactor(set()).text(f"X-BackendAI-SSO: {token}")
    assert out == f"X-BackendAI-SSO: {header}.{payload}.‹signature›"
    assert signature not in out
    # a JWT listed as a secret is not turned into an opaque tag
    assert Redactor({token}).text(token) == f"{header}.{payload}.‹signature›"


def test_hmac_signature_is_hidden_and_access_key_tagged_when_secret():
    sig = "0738228f6659100c8f6a7b67cd338ee0099f54745a16e52f8d67a6c59b3c1b65"
    value = f"BackendAI signMethod=HMAC-SHA256, credential=AKHARNESSABCDEF1234:{sig}"
    assert Redactor(set()).text(value) == "BackendAI signMethod=HMAC-SHA256, credential=AKHARNESSABCDEF1234:‹signature›"
    out = Redactor({"AKHARNESSABCDEF1234", value}).text(value)
    assert sig not in out and "AKHARNESSABCDEF1234" not in out
    assert out == f"BackendAI signMethod=HMAC-SHA256, credential={tag('AKHARNESSABCDEF1234')}:‹signature›"


def test_bearer_tokens_are_tagged_even_when_not_listed():
    out = Redactor(set()).text('{"Authorization": "Bearer ftk_abcdef0123456789"}')
    assert out == '{"Authorization": "Bearer ' + tag("ftk_abcdef0123456789") + '"}'
    # idempotent: a second pass leaves tags alone
    assert Redactor(set()).text(out) == out


def test_document_walks_nested_structures_and_leaves_non_strings():
    doc = {"a": [SECRET, {"b": f"x={SECRET};", "n": 3, "none": None, "t": True}], "headers": [["Cookie", SECRET]]}
    out = Redactor({SECRET}).document(doc)
    assert out == {"a": [tag(SECRET), {"b": f"x={tag(SECRET)};", "n": 3, "none": None, "t": True}],
                   "headers": [["Cookie", tag(SECRET)]]}
    assert doc["a"][0] == SECRET  # the input is not mutated


def test_disabled_redactor_is_identity():
    doc = {"a": [SECRET, "Bearer tok_1234567"]}
    r = Redactor({SECRET}, enabled=False)
    assert r.document(doc) is doc
    assert r.text(SECRET) == SECRET


CREDENTIAL_SCENARIOS = {"pr3353-as-is", "pr3353-to-be", "client-sso-header", "client-authorization"}


async def test_end_to_end_no_secret_reaches_any_written_report(tmp_path):
    sel = select(None, None)  # every gateway profile x every FastTrack model
    # For speed, the scenarios that move every kind of credential: the PR #3353 pair (minted JWT, session id,
    # keypair signature, FastTrack-issued SSO and bearer tokens) plus, when shipped, the client-supplied ones.
    scenarios = [s for s in sel.scenarios if s.id in CREDENTIAL_SCENARIOS]
    assert {"pr3353-as-is", "pr3353-to-be"} <= {s.id for s in scenarios}
    result = await run_matrix(sel.gateways, sel.fasttracks, scenarios, matrix.load_policy(),
                              Options(concurrency=16, timeout=10.0))
    secrets = result.secrets()
    assert len(secrets) >= 10
    raw = json.dumps(result.to_json(), ensure_ascii=False)
    # the check below is meaningful: unredacted, the document does carry secrets (session ids, tokens, keys...)
    assert any(s in raw for s in secrets)
    assert "Bearer ftk_" in raw and "credential=" in raw

    doc = Redactor(secrets, enabled=True).document(result.to_json())  # as cmd_run does
    paths = write_reports(doc, tmp_path)
    assert {p.name for p in paths} >= {"matrix.json", "matrix.md", "junit.xml"}
    written = {p.name: p.read_text(encoding="utf-8") for p in tmp_path.rglob("*") if p.is_file()}
    for name, text in written.items():
        leaked = sorted(s for s in secrets if s in text)
        assert not leaked, f"{name} leaks {len(leaked)} secret value(s), e.g. {leaked[0][:12]}..."
        assert Options().jwt_secret not in text, f"{name} leaks the gateway/FastTrack JWT secret"
    report = written["matrix.json"]
    assert "‹secret:" in report and "‹signature›" in report
    assert "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." in report  # JWT headers stay readable


UNCAPTURED = """\
id: uncaptured-token
title: a pipeline login whose FastTrack token the scenario does not capture
modes: [to-be]
steps:
  - name: pipeline login
    request: {method: POST, path: /pipeline/login/, json: {}}
    expect:
      gateway_to_client: {status: 200, json: {token: present}}
"""


async def test_uncaptured_fasttrack_token_in_a_body_is_redacted(tmp_path):
    scenario = parse_scenario(UNCAPTURED, "uncaptured.yaml")
    result = await run_matrix([G5], [BEARER_25_1], [scenario], {"to-be": frozenset({"25.1.0"})},
                              Options(timeout=10.0))
    assert result.cells[0].verdict == "compatible"  # the login worked and its body carried a token
    raw = json.dumps(result.to_json())
    assert re.search(r"ftk_[0-9a-f]{16,}", raw)
    write_reports(Redactor(result.secrets()).document(result.to_json()), tmp_path)
    for p in tmp_path.iterdir():
        assert not re.search(r"ftk_[0-9a-f]{16,}", p.read_text(encoding="utf-8")), p.name
