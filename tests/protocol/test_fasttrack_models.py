"""harness.protocol.fasttrack_models.decide for the 24.09.0 (SSO JWT) and 25.1.0 (signed login + bearer) models."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from harness.protocol import fasttrack_models as ftm
from harness.protocol import signing, sso_jwt
from harness.protocol.accounts import Directory
from harness.protocol.headers import Headers

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

JWT_SECRET = "unit-test-jwt-secret-long-enough-for-hs256"
NOW = 1_795_677_800
DATE = datetime.fromtimestamp(NOW, UTC).isoformat()
HOST = "127.0.0.1:18500"
SID = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def ctx() -> ftm.Context:
    directory = Directory("unit-seed")
    directory.create("alice")
    return ftm.Context(directory, ftm.TokenStore("unit-seed"), JWT_SECRET, NOW)


def alice(ctx: ftm.Context):
    user = ctx.directory.by_name("alice")
    assert user is not None
    return user


def req(method: str, path: str, headers: list[tuple[str, str]], query: str = "") -> ftm.UpstreamRequest:
    return ftm.UpstreamRequest(method, path, query, Headers.of([("Host", HOST), *headers]), b"{}")


def jwt_for(ctx, *, sid=SID, ak=None, iat=NOW - 10, lifetime=604800, secret=JWT_SECRET) -> str:
    return sso_jwt.mint(iat=iat, lifetime=lifetime, aiohttp_session=sid, access_key=ak or alice(ctx).access_key,
                        secret=secret)


def sso_headers(ctx, **kw) -> list[tuple[str, str]]:
    return [("X-BackendAI-SSO", jwt_for(ctx, **kw)), ("X-BackendAI-SessionID", SID)]


def signed_login_headers(ctx, *, ak=None, sk=None, sid: str | None = SID, path="/login/", method="POST",
                         ct="application/json", version="v8.20240915", query="") -> list[tuple[str, str]]:
    user = alice(ctx)
    rel = f"{path}?{query}" if query else path
    inp = signing.SigningInput(method, rel, DATE, HOST, ct, version)
    auth = signing.authorization_header(inp, ak or user.access_key, sk or user.secret_key)
    out = [("Date", DATE), ("Content-Type", ct), ("X-BackendAI-Version", version), ("Authorization", auth)]
    if sid is not None:
        out.append(("X-BackendAI-SessionID", sid))
    return out


def assert_version_header(decision: ftm.Decision, model: ftm.FastTrackModel) -> None:
    assert decision.headers.values("X-BackendAI-FastTrack-Version") == [model.version]


def assert_401(decision: ftm.Decision, model: ftm.FastTrackModel, reason_part: str) -> None:
    assert decision.status == 401
    assert decision.user is None
    assert decision.reason is not None and reason_part in decision.reason, decision.reason
    assert_version_header(decision, model)
    assert decision.headers.values("Content-Type") == ["application/problem+json"]
    body = json.loads(decision.body)
    assert body["type"] == ftm.AUTH_FAILED_TYPE and body["detail"] == decision.reason


# --- model table --------------------------------------------------------------------------------------------------

def test_resolve_and_models():
    assert ftm.resolve("24.09.0") is ftm.SSO_24_09
    assert ftm.resolve("25.1.0") is ftm.BEARER_25_1
    with pytest.raises(KeyError, match="unknown FastTrack profile 'nope'"):
        ftm.resolve("nope")
    assert all(m.model and m.version in m.disclaimer for m in ftm.MODELS)


@pytest.mark.parametrize(("method", "path", "login"), [
    ("POST", "/login/", True), ("post", "/login/", True), ("POST", "/api/login/", True), ("GET", "/login/", False),
    ("POST", "/login", False), ("POST", "/api/pipelines/", False), ("POST", "/login/x", False),
])
def test_is_login(method, path, login):
    assert ftm.is_login(ftm.UpstreamRequest(method, path, "", Headers(), b"")) is login


# --- 24.09.0: X-BackendAI-SSO -------------------------------------------------------------------------------------

M24 = ftm.SSO_24_09


def test_24_09_login_echoes_the_sso_token(ctx):
    headers = sso_headers(ctx)
    d = ftm.decide(M24, req("POST", "/login/", headers), ctx)
    assert d.status == 200 and d.reason is None
    assert d.user == alice(ctx).access_key
    assert_version_header(d, M24)
    assert d.headers.values("X-BackendAI-SSO") == [headers[0][1]]
    assert json.loads(d.body)["user"] == alice(ctx).access_key


def test_24_09_api_call_accepted_without_echo(ctx):
    d = ftm.decide(M24, req("POST", "/api/pipelines/", sso_headers(ctx)), ctx)
    assert d.status == 200 and d.user == alice(ctx).access_key
    assert "X-BackendAI-SSO" not in d.headers
    assert_version_header(d, M24)
    assert json.loads(d.body) == {"fasttrack": "24.09.0", "method": "POST", "path": "/api/pipelines/",
                                  "user": alice(ctx).access_key}


@pytest.mark.parametrize("path", ["/login/", "/api/pipelines/"])
@pytest.mark.parametrize(("case", "reason"), [
    ("no-sso", "X-BackendAI-SSO missing"),
    ("empty-sso", "X-BackendAI-SSO missing"),
    ("dup-sso", "X-BackendAI-SSO sent 2 times"),
    ("garbage-sso", "X-BackendAI-SSO rejected: not a JWT"),
    ("wrong-secret", "X-BackendAI-SSO rejected: JWT signature does not verify"),
    ("expired", "X-BackendAI-SSO rejected: JWT expired"),
    ("no-sid", "X-BackendAI-SessionID missing or empty"),
    ("empty-sid", "X-BackendAI-SessionID missing or empty"),
    ("dup-sid", "X-BackendAI-SessionID sent 2 times"),
    ("sid-mismatch", "JWT aiohttp_session does not match X-BackendAI-SessionID"),
    ("null-claim", "JWT aiohttp_session does not match X-BackendAI-SessionID"),
    ("unknown-ak", "JWT access_key is not a known keypair"),
    ("bearer-instead", "X-BackendAI-SSO missing"),
])
def test_24_09_rejections(ctx, path, case, reason):
    token = jwt_for(ctx)
    headers = {
        "no-sso": [("X-BackendAI-SessionID", SID)],
        "empty-sso": [("X-BackendAI-SSO", ""), ("X-BackendAI-SessionID", SID)],
        "dup-sso": [("X-BackendAI-SSO", token), ("X-BackendAI-SSO", token), ("X-BackendAI-SessionID", SID)],
        "garbage-sso": [("X-BackendAI-SSO", "client-supplied-sso-token"), ("X-BackendAI-SessionID", SID)],
        "wrong-secret": sso_headers(ctx, secret="another-secret-another-secret-another"),
        "expired": sso_headers(ctx, iat=NOW - 100, lifetime=100),
        "no-sid": [("X-BackendAI-SSO", token)],
        "empty-sid": [("X-BackendAI-SSO", token), ("X-BackendAI-SessionID", "")],
        "dup-sid": [("X-BackendAI-SSO", token), ("X-BackendAI-SessionID", SID), ("X-BackendAI-SessionID", SID)],
        "sid-mismatch": [("X-BackendAI-SSO", jwt_for(ctx, sid="other")), ("X-BackendAI-SessionID", SID)],
        "null-claim": [("X-BackendAI-SSO", jwt_for(ctx, sid=None)), ("X-BackendAI-SessionID", SID)],
        "unknown-ak": sso_headers(ctx, ak="AKUNKNOWN"),
        "bearer-instead": [("Authorization", "Bearer x"), ("X-BackendAI-SessionID", SID)],
    }[case]
    assert_401(ftm.decide(M24, req("POST", path, headers), ctx), M24, reason)


def test_24_09_errors_never_apply_the_override(ctx):
    override = ftm.Override(503, (("X-Extra", "1"),), b"nope")
    d = ftm.decide(M24, req("POST", "/api/x/", []), ctx, override)
    assert_401(d, M24, "X-BackendAI-SSO missing")
    assert "X-Extra" not in d.headers


# --- 25.1.0: signed login, then bearer ----------------------------------------------------------------------------

M25 = ftm.BEARER_25_1


def test_25_1_signed_login_issues_token_then_bearer_works(ctx):
    d = ftm.decide(M25, req("POST", "/login/", signed_login_headers(ctx)), ctx)
    assert d.status == 200 and d.user == alice(ctx).access_key
    assert_version_header(d, M25)
    assert "X-BackendAI-SSO" not in d.headers
    token = json.loads(d.body)["token"]
    assert token.startswith("ftk_")
    call = ftm.decide(M25, req("GET", "/api/pipelines/", [("Authorization", f"Bearer {token}")]), ctx)
    assert call.status == 200 and call.user == alice(ctx).access_key
    assert_version_header(call, M25)
    # scheme is case-insensitive
    assert ftm.decide(M25, req("GET", "/api/x/", [("Authorization", f"bearer {token}")]), ctx).status == 200


def test_25_1_signed_login_body_is_not_covered(ctx):
    headers = Headers.of([("Host", HOST), *signed_login_headers(ctx)])
    for body in (b"", b"{}", b'{"username": "someone-else"}', bytes(range(256))):
        d = ftm.decide(M25, ftm.UpstreamRequest("POST", "/login/", "", headers, body), ctx)
        assert d.status == 200, d.reason


def test_25_1_signed_login_on_suffix_path_with_query(ctx):
    headers = signed_login_headers(ctx, path="/api/login/", query="a=1&b=x+y")
    d = ftm.decide(M25, req("POST", "/api/login/", headers, query="a=1&b=x+y"), ctx)
    assert d.status == 200, d.reason


def test_25_1_tokens_are_distinct_per_login(ctx):
    tokens = {json.loads(ftm.decide(M25, req("POST", "/login/", signed_login_headers(ctx)), ctx).body)["token"]
              for _ in range(3)}
    assert len(tokens) == 3


@pytest.mark.parametrize(("case", "reason"), [
    ("no-sid", "X-BackendAI-SessionID missing or empty on login"),
    ("empty-sid", "X-BackendAI-SessionID missing or empty on login"),
    ("dup-sid", "X-BackendAI-SessionID sent 2 times"),
    ("no-auth", "keypair signature rejected: no Authorization header"),
    ("dup-auth", "Authorization sent 2 times"),
    ("bearer-auth", "keypair signature rejected: not a Backend.AI keypair signature"),
    ("wrong-secret", "keypair signature rejected: signature does not match"),
    ("unknown-ak", "keypair signature rejected: unknown access key 'AKUNKNOWN'"),
    ("signed-other-path", "keypair signature rejected: signature does not match"),
    ("signed-other-version", "keypair signature rejected: signature does not match"),
    ("sso-instead", "keypair signature rejected: no Authorization header"),
])
def test_25_1_login_rejections(ctx, case, reason):
    good = signed_login_headers(ctx)
    auth = next(v for k, v in good if k == "Authorization")
    no = lambda *names: [(k, v) for k, v in good if k not in names]  # noqa: E731
    headers = {
        "no-sid": signed_login_headers(ctx, sid=None),
        "empty-sid": signed_login_headers(ctx, sid=""),
        "dup-sid": [*good, ("X-BackendAI-SessionID", SID)],
        "no-auth": no("Authorization"),
        "dup-auth": [*good, ("Authorization", auth)],
        "bearer-auth": [*no("Authorization"), ("Authorization", "Bearer abc")],
        "wrong-secret": signed_login_headers(ctx, sk="wrong-secret"),
        "unknown-ak": signed_login_headers(ctx, ak="AKUNKNOWN"),
        "signed-other-path": signed_login_headers(ctx, path="/other/login/"),
        "signed-other-version": [*no("X-BackendAI-Version"), ("X-BackendAI-Version", "v7.20230615")],
        "sso-instead": [("X-BackendAI-SSO", jwt_for(ctx)), ("X-BackendAI-SessionID", SID)],
    }[case]
    assert_401(ftm.decide(M25, req("POST", "/login/", headers), ctx), M25, reason)


@pytest.mark.parametrize(("headers", "reason"), [
    ([], "Authorization missing"),
    ([("Authorization", "")], "Authorization missing"),
    ([("Authorization", "Basic dXNlcjpwdw==")], "Authorization is not a Bearer token (scheme 'Basic')"),
    ([("Authorization", "Bearer")], "Authorization is not a Bearer token"),
    ([("Authorization", "Bearer ftk_0000000000000000000000000000000000000000")],
     "bearer token was not issued by this FastTrack"),
    ([("Authorization", "Bearer a"), ("Authorization", "Bearer b")], "Authorization sent 2 times"),
])
def test_25_1_bearer_rejections(ctx, headers, reason):
    assert_401(ftm.decide(M25, req("GET", "/api/pipelines/", headers), ctx), M25, reason)


def test_25_1_duplicated_valid_bearer_is_rejected(ctx):
    token = json.loads(ftm.decide(M25, req("POST", "/login/", signed_login_headers(ctx)), ctx).body)["token"]
    d = ftm.decide(M25, req("GET", "/api/x/", [("Authorization", f"Bearer {token}")] * 2), ctx)
    assert_401(d, M25, "Authorization sent 2 times")


def test_25_1_token_from_another_store_is_rejected(ctx):
    other = ftm.TokenStore("other-seed").issue(alice(ctx).access_key, SID)
    assert_401(ftm.decide(M25, req("GET", "/api/x/", [("Authorization", f"Bearer {other}")]), ctx), M25,
               "not issued by this FastTrack")


def test_override_applies_after_authentication_and_keeps_version(ctx):
    override = ftm.Override(503, (("Retry-After", "1"),), b'{"x": 1}')
    d = ftm.decide(M24, req("POST", "/api/x/", sso_headers(ctx)), ctx, override)
    assert d.status == 503 and d.body == b'{"x": 1}' and d.user == alice(ctx).access_key
    assert_version_header(d, M24)
    assert d.headers.values("Retry-After") == ["1"]
    assert d.headers.values("Content-Type") == ["application/json"]
    default_body = ftm.decide(M24, req("POST", "/api/x/", sso_headers(ctx)), ctx, ftm.Override(418))
    assert json.loads(default_body.body) == {"fasttrack": "24.09.0", "status": 418}
    assert_version_header(default_body, M24)


def test_token_store_is_deterministic_per_seed():
    a, b = ftm.TokenStore("s"), ftm.TokenStore("s")
    first = a.issue("AK", "sid")
    assert first == b.issue("AK", "sid")
    assert a.issue("AK", "sid") != first  # a counter per (access key, session): every login gets a new token
    assert a.owner("nope") is None
    t = a.issue("AK2", "sid")
    assert a.owner(t) == "AK2" and b.owner(t) is None
