"""harness.results.redact: stable tags, readable JWTs, hidden signatures, and nothing secret in written reports."""

from __future__ import annotations

import base64
import contextlib
import json
import re
from pathlib import Path
from typing import Any

import jwt
import pytest

from harness.engine import workers
from harness.engine.matrix_run import Options, mock_columns, run_matrix
from harness.engine.selection import select
from harness.judge import support_policy
from harness.peers import builds
from harness.protocol.fasttrack_models import BEARER_25_1
from harness.protocol.generations import G5
from harness.pytest_plugin.plugin import format_failure
from harness.report.output import write_reports
from harness.results.redact import JWT_RE, Redactor, secret_shaped, tag
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
    result = await run_matrix(sel.gateways, sel.fasttracks, scenarios, support_policy.load_policy(),
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


# --- the default matrix (and a real release, marker 'peers'): no secret readable, no non-secret hidden ---------

def _runs(text: str) -> set[str]:
    """Every run of token characters, and the decoded claims of every JWT (where a secret could hide)."""
    runs = set(re.findall(r"[A-Za-z0-9_-]{6,}", text))
    for m in JWT_RE.finditer(text):
        with contextlib.suppress(ValueError):
            claims = base64.urlsafe_b64decode(m[2] + "=" * (-len(m[2]) % 4)).decode()
            runs |= set(re.findall(r"[A-Za-z0-9_-]{6,}", claims))
    return runs


class Finder:
    """Secrets found anywhere in a text: whole, joined to other token characters, or inside JWT claims (at every
    position of every distinct run of token characters, a secret starting there is looked up by its first six
    characters)."""

    def __init__(self, secrets: set[str]) -> None:
        self.starts: dict[str, list[str]] = {}
        self.pieces: dict[str, list[str]] = {}  # a secret with other characters: by its longest token piece
        for secret in secrets:
            piece = max(re.findall(r"[A-Za-z0-9_-]+", secret), key=len, default="")
            if piece != secret:
                self.pieces.setdefault(piece, []).append(secret)
            if len(piece) >= 6:
                self.starts.setdefault(piece[:6], []).append(piece)
        self.memo: dict[str, frozenset[str]] = {}

    def __call__(self, text: str) -> set[str]:
        found: set[str] = {s for piece, full in self.pieces.items() if len(piece) < 6 for s in full if s in text}
        for run in _runs(text):
            hit = self.memo.get(run)
            if hit is None:
                hit = self.memo[run] = frozenset(
                    piece for i in range(len(run) - 5) for piece in self.starts.get(run[i:i + 6], ())
                    if run.startswith(piece, i))
            for piece in hit:
                full = self.pieces.get(piece)
                found |= {s for s in full if s in text} if full else {piece}
        return found


def check_redaction(result: Any, tmp_path: Path) -> None:
    secrets = {s for s in result.secrets() if secret_shaped(s)}
    leaked = Finder(secrets)
    clear = result.to_json()
    raw = json.dumps(clear, ensure_ascii=False)
    assert any(secret in raw for secret in sorted(secrets)[:200]), "the clear run must carry secrets"
    redactor = Redactor(result.secrets())
    redacted = redactor.document(clear)
    write_reports(redacted, tmp_path)
    texts = {p.name: p.read_text(encoding="utf-8") for p in tmp_path.iterdir()}
    texts["pytest output"] = "\n".join(
        Redactor(s.secrets).text(format_failure(c, s)) for c in result.cells for s in c.scenarios
        if s.outcome == "fail")
    for name, text in texts.items():
        found = leaked(text)
        assert not found, f"{name} leaks {len(found)} secret(s), e.g. {sorted(found)[0][:10]}..."
    # Nothing that is not a secret is hidden: failures without a secret read the same, header names, numbers.
    hidden = []
    for c_clear, c_red in zip(clear["cells"], redacted["cells"], strict=True):
        for s_clear, s_red in zip(c_clear["scenarios"], c_red["scenarios"], strict=True):
            for f_clear, f_red in zip(s_clear["failures"], s_red["failures"], strict=True):
                for key in ("expected", "actual", "name", "hop", "kind"):
                    value = f_clear.get(key)
                    if isinstance(value, str) and not leaked(value) and f_red.get(key) != value:
                        hidden.append((key, value, f_red.get(key)))
            for st_clear, st_red in zip(s_clear["steps"], s_red["steps"], strict=True):
                for hop, rec in st_clear["hops"].items():
                    red = st_red["hops"][hop]
                    if [h[0] for h in rec.get("headers") or []] != [h[0] for h in red.get("headers") or []]:
                        hidden.append(("header names", hop, ""))
                    if rec.get("status") != red.get("status"):
                        hidden.append(("status", hop, ""))
    assert not hidden, f"{len(hidden)} non-secret value(s) hidden, e.g. {hidden[:3]}"
    # JWT claims stay readable: the claims of a redacted JWT decode, their numbers intact.
    claims = [json.loads(base64.urlsafe_b64decode(m[2] + "=" * (-len(m[2]) % 4)))
              for m in JWT_RE.finditer(texts["matrix.json"])] + [
        json.loads(base64.urlsafe_b64decode(m[1] + "=" * (-len(m[1]) % 4)))
        for m in re.finditer(r"eyJ[A-Za-z0-9_-]*\.(eyJ[A-Za-z0-9_-]*)\.‹signature›", texts["matrix.json"])]
    assert claims and all(isinstance(c.get("exp"), int) for c in claims if "exp" in c)


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_the_default_matrix_hides_every_secret_and_only_secrets(tmp_path):
    sel = select(None, None, "*")
    result = workers.run(sel.gateways, sel.fasttracks, sel.scenarios, support_policy.load_policy(),
        Options(),
                         jobs=workers.available_cores())
    check_redaction(result, tmp_path)


@pytest.mark.peers
def test_a_real_release_hides_every_secret_and_only_secrets(tmp_path):
    rel = builds.release("24.9.14")
    python, _ = builds.install(rel)
    sel = select(None, ["24.09.0", "25.1.0"], "pr3353-*")
    launcher = builds.PeerLauncher(rel, python)
    result = workers.run([launcher], mock_columns(sel.fasttracks), sel.scenarios, support_policy.load_policy(),
                         Options(manager_contract=rel.manager))
    check_redaction(result, tmp_path)


def test_joined_quoted_encoded_secrets_and_numbers():
    sid, ak = "0c30af5f006765147ed91258c499549c", "AKHARNESSABCDEF1234"
    r = Redactor({sid, ak, "pa ss/word!"})
    joined = r.text(f"req-{sid} {ak}_trace '{sid}' x{sid}y")
    assert joined == f"req-{tag(sid)} {tag(ak)}_trace '{tag(sid)}' x{tag(sid)}y"
    assert r.text("pa%20ss%2Fword%21") == tag("pa ss/word!")
    basic = base64.b64encode(f"{ak}:secret-part".encode()).decode()
    out = r.text(f"Basic {basic}")
    assert ak not in base64.b64decode(out.split()[1]).decode()
    assert Redactor({"604800", "3600"}).text("exp - iat = 604800, got 3600") == "exp - iat = 604800, got 3600"
    literal = "Bearer client-credential-not-for-streams"  # a scenario's literal, not a generated credential
    assert Redactor(set()).text(literal) == literal
    token = jwt.encode({"aiohttp_session": sid, "access_key": ak, "exp": 2, "iat": 1, "iss": "x"}, "k" * 32)
    header, _, _ = token.split(".")
    out = r.text(token)
    assert out.startswith(header + ".") and out.endswith(".‹signature›")
    claims = json.loads(base64.urlsafe_b64decode(out.split(".")[1] + "=="))
    assert claims == {"aiohttp_session": tag(sid), "access_key": tag(ak), "exp": 2, "iat": 1, "iss": "x"}


def test_two_runs_of_one_commit_redact_alike_and_merge(tmp_path):
    from harness.compare import merge

    sel = select(["G2", "G3", "to-be"], None, "*")
    docs = []
    for _ in range(2):
        result = workers.run(sel.gateways, sel.fasttracks, sel.scenarios, support_policy.load_policy(),
        Options(), jobs=1)
        docs.append(Redactor(result.secrets()).document(result.to_json()))
    assert [merge.cell_content(c) for c in docs[0]["cells"]] == [merge.cell_content(c) for c in docs[1]["cells"]]
    merged = merge.merge([("first", docs[0]), ("second", docs[1])])
    assert len(merged["cells"]) == len(docs[0]["cells"])
