"""harness.scenario.matchers: every check kind, duplicate header lines, modes, JSON paths and whole-hop evaluation."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from harness.errors import SourceSpan
from harness.protocol import signing, sso_jwt
from harness.protocol.headers import Headers
from harness.protocol.hops import HopRecord
from harness.scenario import matchers
from harness.scenario.failures import Failure, causes, fasttrack_reason, one_line, reason, render
from harness.scenario.matchers import EvalContext, evaluate_check, evaluate_hop, json_path
from harness.scenario.model import Check, FieldExpect, HopExpect, JwtSpec
from harness.scenario.template import Template

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

SECRETS = {"AKUNIT": "unit-secret-key"}
JWT_SECRET = "unit-jwt-secret-long-enough-for-hs256-xx"
NOW = 1_800_000_000


def ctx(modes=("as-is", "G4", "sso"), **variables) -> EvalContext:
    base = {"session_id": "sid-1", "access_key": "AKUNIT", "jwt_secret": JWT_SECRET, "session_max_age": 604800}
    base.update(variables)
    return EvalContext(base, frozenset(modes), SECRETS.get, NOW)


def check(kind, value=None, **kw) -> Check:
    return Check(kind, SourceSpan("unit.yaml", 1), value=Template(value) if value is not None else None, **kw)


# --- present / absent ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("values", "present_ok", "absent_ok"), [
    ([], False, True), (["x"], True, False), (["", ""], True, False), ([""], True, False),
])
def test_present_and_absent_count_lines(values, present_ok, absent_ok):
    assert (evaluate_check(check("present"), values, ctx(), None) is None) is present_ok
    assert (evaluate_check(check("absent"), values, ctx(), None) is None) is absent_ok


def test_absent_failure_shows_every_line():
    assert evaluate_check(check("absent"), ["a"], ctx(), None) == ("absent", "'a'")
    assert evaluate_check(check("absent"), ["a", "b"], ctx(), None) == ("absent", "2 lines ['a', 'b']")


# --- equals / not_equals / regex / bearer -------------------------------------------------------------------------

def test_equals_renders_placeholders():
    c = check("equals", "${session_id}")
    assert evaluate_check(c, ["sid-1"], ctx(), None) is None
    assert evaluate_check(c, ["sid-2"], ctx(), None) == ("'sid-1'", "'sid-2'")
    assert evaluate_check(c, [], ctx(), None) == ("'sid-1'", "absent")
    assert evaluate_check(c, ["SID-1"], ctx(), None) is not None  # values are case-sensitive


def test_not_equals():
    c = check("not_equals", "Bearer client-must-not-pass")
    assert evaluate_check(c, ["BackendAI signMethod=..."], ctx(), None) is None
    assert evaluate_check(c, ["Bearer client-must-not-pass"], ctx(), None) == (
        "not 'Bearer client-must-not-pass'", "'Bearer client-must-not-pass'")
    assert evaluate_check(c, [], ctx(), None) is not None


def test_regex_placeholders_match_their_run_value_literally():
    c = Check("regex", SourceSpan("u", 1), value=Template("^AIOHTTP_SESSION=${session_id};"),
              pattern=re.compile("^AIOHTTP_SESSION=x;"))
    assert evaluate_check(c, ["AIOHTTP_SESSION=a.b; Path=/"], ctx(session_id="a.b"), None) is None
    assert evaluate_check(c, ["AIOHTTP_SESSION=axb; Path=/"], ctx(session_id="a.b"), None) is not None  # '.' literal
    assert evaluate_check(c, ["AIOHTTP_SESSION=other; Path=/"], ctx(session_id="a.b"), None) == (
        "/^AIOHTTP_SESSION=a\\.b;/", "'AIOHTTP_SESSION=other; Path=/'")
    assert evaluate_check(c, ["AIOHTTP_SESSION=; Path=/"], ctx(session_id=None), None) is None  # none: empty
    unset = Check("regex", SourceSpan("u", 1), value=Template("^${nowhere}$"), pattern=re.compile("^x$"))
    assert "has no value" in evaluate_check(unset, ["x"], ctx(), None)[1]


def test_regex_searches():
    c = Check("regex", SourceSpan("u", 1), pattern=re.compile(r"^Backend\.AI Web Server "))
    assert evaluate_check(c, ["Backend.AI Web Server 24.09.14"], ctx(), None) is None
    assert evaluate_check(c, ["harness-client/0.1"], ctx(), None) == (
        r"/^Backend\.AI Web Server /", "'harness-client/0.1'")
    assert evaluate_check(Check("regex", SourceSpan("u", 1), pattern=re.compile("ab")), ["xxabxx"], ctx(), None) is None


def test_bearer():
    c = check("bearer", "${tok}")
    assert evaluate_check(c, ["Bearer ftk_1"], ctx(tok="ftk_1"), None) is None
    assert evaluate_check(c, ["bearer ftk_1"], ctx(tok="ftk_1"), None) == ("'Bearer ftk_1'", "'bearer ftk_1'")
    assert evaluate_check(c, ["Bearer ftk_2"], ctx(tok="ftk_1"), None) is not None


def test_unbound_placeholder_is_a_failure_not_a_crash():
    c = check("equals", "${later_capture}")
    expected, actual = evaluate_check(c, ["x"], ctx(), None) or ("", "")
    assert "later_capture" in actual
    expected, _ = evaluate_check(c, [], ctx(), None) or ("", "")
    assert "later_capture" in expected


# --- duplicated lines ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("c", [
    check("equals", "v"), check("not_equals", "w"), check("bearer", "v"),
    Check("regex", SourceSpan("u", 1), pattern=re.compile("v")),
], ids=["equals", "not_equals", "bearer", "regex"])
def test_duplicated_header_lines_fail_a_value_check(c):
    value = "Bearer v" if c.kind == "bearer" else "v"
    assert evaluate_check(c, [value], ctx(), None) is None
    problem = evaluate_check(c, [value, value], ctx(), None)
    assert problem is not None
    assert problem[0].startswith("exactly one line") and problem[1] == f"2 lines {[value, value]!r}"


def test_allow_duplicates_requires_every_line_to_hold():
    c = check("equals", "v", allow_duplicates=True)
    assert evaluate_check(c, ["v", "v", "v"], ctx(), None) is None
    assert evaluate_check(c, ["v", "w"], ctx(), None) == ("'v'", "'w'")


# --- keypair signature --------------------------------------------------------------------------------------------

DATE = "2026-11-26T07:22:27.187077+00:00"


def signed_record(ak="AKUNIT", sk="unit-secret-key", *, path="/login/", query="", method="POST") -> HopRecord:
    rel = f"{path}?{query}" if query else path
    inp = signing.SigningInput(method, rel, DATE, "127.0.0.1:9", "application/json", "v8.20240915")
    auth = signing.authorization_header(inp, ak, sk)
    headers = Headers.of([("Host", "127.0.0.1:9"), ("Date", DATE), ("Content-Type", "application/json; charset=utf-8"),
                          ("X-BackendAI-Version", "v8.20240915"), ("Authorization", auth)])
    return HopRecord.request("gateway_to_fasttrack", method, path, query, headers, b"{}")


def test_keypair_signature_check():
    c = check("keypair_signature", "${access_key}")
    rec = signed_record(query="q=a+b")
    auth = rec.headers.values("Authorization")
    assert evaluate_check(c, auth, ctx(), rec) is None
    # the same header against a request whose path differs
    other = HopRecord.request("gateway_to_fasttrack", "POST", "/other/", "q=a+b", rec.headers, b"")
    expected, actual = evaluate_check(c, auth, ctx(), other) or ("", "")
    assert expected == "a valid keypair signature by AKUNIT" and "does not match" in actual
    # signed by another key
    rec2 = signed_record(ak="AKOTHER", sk="x")
    assert "AKOTHER" in (evaluate_check(c, rec2.headers.values("Authorization"), ctx(), rec2) or ("", ""))[1]
    # no secret known for the expected key
    assert evaluate_check(check("keypair_signature", "AKNOBODY"), auth, ctx(), rec) == (
        "a valid keypair signature by AKNOBODY", "no secret key known for AKNOBODY")
    # no request to verify against (e.g. on a response hop)
    assert evaluate_check(c, auth, ctx(), None) == ("a valid keypair signature by AKUNIT",
                                                    "no request recorded to verify against")
    assert evaluate_check(c, ["Bearer x"], ctx(), rec) == ("a valid keypair signature by AKUNIT",
                                                           "not a Backend.AI keypair signature")


# --- jwt ----------------------------------------------------------------------------------------------------------

def jwt_check(**kw) -> Check:
    spec = JwtSpec(secret=Template("${jwt_secret}"), algorithms=("HS256",),
                   claims=kw.pop("claims", (("iss", Template("Backend.AI Webserver")),
                                            ("aiohttp_session", Template("${session_id}")),
                                            ("access_key", Template("${access_key}")))),
                   lifetime=kw.pop("lifetime", Template("${session_max_age}")), **kw)
    return Check("jwt", SourceSpan("u", 1), jwt=spec)


def token(sid="sid-1", ak="AKUNIT", iat=NOW - 5, lifetime=604800, secret=JWT_SECRET) -> str:
    return sso_jwt.mint(iat=iat, lifetime=lifetime, aiohttp_session=sid, access_key=ak, secret=secret)


def test_jwt_check_passes_for_a_gateway_minted_token():
    assert evaluate_check(jwt_check(), [token()], ctx(), None) is None


@pytest.mark.parametrize(("tok", "expected_part", "actual_part"), [
    (token(sid="other"), "claim aiohttp_session = 'sid-1'", "'other'"),
    (token(sid=None), "claim aiohttp_session = 'sid-1'", "None"),
    (token(ak="AKX"), "claim access_key = 'AKUNIT'", "'AKX'"),
    (token(lifetime=3600), "exp - iat = 604800", "3600"),
    (token(secret="wrong-secret-wrong-secret-wrong-secret"), "a JWT valid", "signature does not verify"),
    (token(iat=NOW - 700000), "a JWT valid", "JWT expired"),
    ("not-a-jwt", "a JWT valid", "not a JWT"),
])
def test_jwt_check_failures(tok, expected_part, actual_part):
    expected, actual = evaluate_check(jwt_check(), [tok], ctx(), None) or ("", "")
    assert expected_part in expected and actual_part in actual


def test_jwt_null_claim_and_absent_claims():
    null_claim = jwt_check(claims=(("aiohttp_session", None),), lifetime=None)
    assert evaluate_check(null_claim, [token(sid=None)], ctx(), None) is None
    assert evaluate_check(null_claim, [token(sid="")], ctx(), None) == ("claim aiohttp_session = None", "''")
    absent = jwt_check(claims=(), lifetime=None, absent_claims=("secret_key",))
    assert evaluate_check(absent, [token()], ctx(), None) is None
    assert evaluate_check(jwt_check(claims=(), lifetime=None, absent_claims=("iat",)), [token()], ctx(), None) == (
        "no claim iat", f"iat = {NOW - 5!r}")
    missing = jwt_check(claims=(("sub", Template("x")),), lifetime=None)
    assert evaluate_check(missing, [token()], ctx(), None) == ("claim sub = 'x'", "claim absent")


# --- modes, json paths, whole hops ----------------------------------------------------------------------------------

def test_applies():
    assert matchers.applies(None, ctx())
    assert matchers.applies(frozenset({"sso", "bearer"}), ctx())
    assert not matchers.applies(frozenset({"to-be"}), ctx())


@pytest.mark.parametrize(("path", "expected"), [
    ("token", "t"), ("data.user", "u"), ("data.list.1", 20), ("data.list.9", None), ("data.nope", None),
    ("data.user.deeper", None), ("data", {"user": "u", "list": [10, 20]}), ("token.0", None),
])
def test_json_path(path, expected):
    doc = {"token": "t", "data": {"user": "u", "list": [10, 20]}}
    got = json_path(doc, path)
    if expected is None:
        assert got is matchers._MISSING
    else:
        assert got == expected


def response(status=200, headers=(), body=b"") -> HopRecord:
    return HopRecord.response("fasttrack_to_gateway", status, "OK", Headers.of(list(headers)), body)


def test_mode_filtered_checks_only_apply_on_matching_gateways():
    only_to_be = Check("absent", SourceSpan("u", 2), modes=frozenset({"to-be"}))
    expect = HopExpect(headers=(FieldExpect("X-BackendAI-SSO", (only_to_be,)),), where=SourceSpan("u", 1))
    rec = response(headers=[("X-BackendAI-SSO", "t")])
    assert evaluate_hop("s", "fasttrack_to_gateway", expect, rec, ctx(modes=("as-is",)), 1) == []
    fails = evaluate_hop("s", "fasttrack_to_gateway", expect, rec, ctx(modes=("to-be",)), 1)
    assert [(f.what, f.name, f.kind, f.expected, f.actual, f.where) for f in fails] == [
        ("header", "X-BackendAI-SSO", "absent", "absent", "'t'", SourceSpan("u", 2))]


def test_header_names_are_case_insensitive_in_hop_checks():
    expect = HopExpect(headers=(FieldExpect("x-backendai-sso", (check("equals", "t"),)),))
    assert evaluate_hop("s", "fasttrack_to_gateway", expect, response(headers=[("X-BackendAI-SSO", "t")]), ctx(), 1) \
        == []


def test_json_checks_on_a_hop():
    body = json.dumps({"token": "ftk", "n": 5, "ok": True, "none": None}).encode()
    expect = HopExpect(json=(
        FieldExpect("token", (check("present"),)), FieldExpect("n", (check("equals", "5"),)),
        FieldExpect("ok", (check("equals", "true"),)), FieldExpect("none", (check("equals", "null"),)),
        FieldExpect("missing", (check("absent"),)),
    ))
    assert evaluate_hop("s", "gateway_to_client", expect, response(body=body), ctx(), 0) == []
    bad = evaluate_hop("s", "gateway_to_client", expect, response(body=b"<html>"), ctx(), 0)
    assert {(f.what, f.name, f.actual) for f in bad} == {("json", n, "body is not JSON")
                                                         for n in ("token", "n", "ok", "none", "missing")}


def test_request_line_status_and_size_checks():
    rec = HopRecord.request("gateway_to_fasttrack", "POST", "/login/", "a=1", Headers(), b"12345")
    good = HopExpect(method=Template("POST"), path=Template("/login/"), query=Template("a=1"), body_size=5)
    assert evaluate_hop("s", "gateway_to_fasttrack", good, rec, ctx(), 1) == []
    bad = HopExpect(method=Template("GET"), path=Template("/${session_id}/"), query=Template(""), body_size=4)
    fails = evaluate_hop("s", "gateway_to_fasttrack", bad, rec, ctx(), 1)
    assert [(f.subject, f.expected, f.actual) for f in fails] == [
        ("request line method", "'GET'", "'POST'"), ("request line path", "'/sid-1/'", "'/login/'"),
        ("request line query", "''", "'a=1'"), ("body size", "4", "5")]
    assert all(f.step == "s" and f.hop == "gateway_to_fasttrack" for f in fails)
    status = evaluate_hop("s", "fasttrack_to_gateway", HopExpect(status=200), response(status=401), ctx(), 1)
    assert [(f.subject, f.kind, f.expected, f.actual) for f in status] == [("status", "equals", "200", "401 OK")]
    refused = response(status=401, body=b'{"title": "Unauthorized", "detail": "Authorization is not a Bearer token"}')
    said = evaluate_hop("s", "fasttrack_to_gateway", HopExpect(status=200), refused, ctx(), 1,
                        fasttrack_reason(refused))
    assert [(f.actual, f.fasttrack_reason) for f in said] == [("401 OK", "Authorization is not a Bearer token")]


def test_reached_and_observed():
    rec = HopRecord.request("gateway_to_fasttrack", "GET", "/", "", Headers(), b"")
    not_reached = HopExpect(reached=False)
    assert evaluate_hop("s", "gateway_to_fasttrack", not_reached, None, ctx(), 0) == []
    fails = evaluate_hop("s", "gateway_to_fasttrack", not_reached, rec, ctx(), 2)
    assert [(f.expected, f.actual) for f in fails] == [("no request", "2 request(s)")]
    twice = evaluate_hop("s", "gateway_to_fasttrack", HopExpect(), rec, ctx(), 2)
    assert [(f.expected, f.actual) for f in twice] == [("exactly one request", "2 requests")]
    missing = evaluate_hop("s", "fasttrack_to_gateway", HopExpect(), None, ctx(), 0)
    assert [(f.what, f.actual) for f in missing] == [("exchange", "nothing crossed this hop")]
    no_response = evaluate_hop("s", "fasttrack_to_gateway", HopExpect(reached=False), response(status=200), ctx(), 1)
    assert [(f.expected, f.actual) for f in no_response] == [("no response", "status 200")]


def test_failure_one_line_render_and_json():
    f = Failure("login", "gateway_to_fasttrack", "header", "X", "present", "present", "absent",
                SourceSpan("a.yaml", 3, 9, "        X: present"), "X missing")
    assert one_line(f) == ("step 'login', gateway_to_fasttrack: header X (present): expected present, got absent "
                           '(FastTrack: "X missing")')
    assert render(f) == [one_line(f), "  at a.yaml:3:9", "     3 |         X: present", " " * 17 + "^"]
    assert f.to_json() == {"step": "login", "hop": "gateway_to_fasttrack", "what": "header", "name": "X",
                           "kind": "present", "expected": "present", "actual": "absent",
                           "fasttrack_reason": "X missing",
                           "where": {"file": "a.yaml", "line": 3, "col": 9, "text": "        X: present"}}
    assert Failure.from_json(f.to_json()) == f


def _f(sid: str, hop: str, what: str, said: str | None = None, actual: str = "absent") -> tuple[str, Failure]:
    return sid, Failure("step", hop, what, "X", "present", "present", actual, SourceSpan("a.yaml"), said)


def test_root_causes_group_by_hop_what_kind_and_fasttrack_reason_largest_first():
    failing = [
        ("a", [_f("a", "gateway_to_fasttrack", "header")[1], _f("a", "gateway_to_client", "status")[1]]),
        ("b", [_f("b", "fasttrack_to_gateway", "status", "no")[1]]),
        ("c", [_f("c", "fasttrack_to_gateway", "status", "no", "x")[1], _f("c", "fasttrack_to_gateway", "json")[1]]),
        ("d", [_f("d", "fasttrack_to_gateway", "status", "no", "x")[1]]),
        ("e", [_f("e", "fasttrack_to_gateway", "status", "other")[1]]),
    ]
    cs = causes(failing)
    # only each scenario's first failing hop counts (a's hop-4 status is a consequence of its hop-2 header)
    assert [(c.hop, c.what, c.fasttrack_reason, c.scenarios) for c in cs] == [
        ("fasttrack_to_gateway", "status", "no", ("b", "c", "d")),
        ("gateway_to_fasttrack", "header", None, ("a",)),
        ("fasttrack_to_gateway", "json", None, ("c",)),  # ties: hop order, then first seen
        ("fasttrack_to_gateway", "status", "other", ("e",)),
    ]
    assert cs[0].actual == "x"  # the most common actual of the group
    assert cs[0].text() == ('3 of 5 failing scenarios: fasttrack_to_gateway status X: expected present, got x '
                            '(FastTrack: "no")')
    text = reason(cs)
    assert text.startswith("3 of 5 failing scenarios: ") and "; 1 of 5 failing scenarios: gateway_to_fasttrack" in text
    assert text.endswith("; and 2 more causes")


# --- properties ---------------------------------------------------------------------------------------------------

HEADER_VALUES = st.text(max_size=40)


@settings(max_examples=200, derandomize=True, deadline=None)
@given(want=HEADER_VALUES, got=HEADER_VALUES)
def test_equals_passes_only_on_exact_equality(want, got):
    assume("${" not in want)
    c = check("equals", want)
    assert (evaluate_check(c, [got], ctx(), None) is None) is (got == want)
    assert evaluate_check(c, [want], ctx(), None) is None
    assert evaluate_check(c, [want, want], ctx(), None) is not None  # duplicated line


@settings(max_examples=200, derandomize=True, deadline=None)
@given(pattern=st.text(max_size=15), values=st.lists(HEADER_VALUES, min_size=1, max_size=3))
def test_regex_never_raises(pattern, values):
    try:
        compiled = re.compile(pattern)
    except (re.error, OverflowError):
        assume(False)
        return
    c = Check("regex", SourceSpan("u", 1), pattern=compiled, allow_duplicates=True)
    result = evaluate_check(c, values, ctx(), None)
    assert (result is None) is all(compiled.search(v) for v in values)
