"""harness.protocol.gateway_rules: what the G4 (as-is) and G5 (to-be) gateways send upstream, and how they relay.

The first tests replay client requests recorded against real 24.9.14 (G4) and 25.1.1 (G5) webservers
(shared/reference/real-webserver-peers.md) and compare the planned hop 2 with the recorded one header by header.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.protocol import gateway_rules as rules
from harness.protocol import problems, signing, sso_jwt
from harness.protocol.generations import G4, G5, resolve
from harness.protocol.headers import Headers

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

AK = "AKIAIOSFODNN7EXAMPLE"
SK = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
FT = "127.0.0.1:18500"
PEER_CONFIG = rules.GatewayConfig(jwt_secret="peer-test-jwt-secret")
CONFIG = rules.GatewayConfig(jwt_secret="unit-test-jwt-secret-long-enough-for-hs256")
NOW = datetime(2026, 11, 26, 7, 0, 0, 123456, tzinfo=UTC)
SID = "0123456789abcdef0123456789abcdef"
SESSION = rules.Session(SID, AK, SK)
G6b, G6g = resolve("G6b"), resolve("G6g")


def client(method: str, path: str, headers: list[tuple[str, str]] | None = None, *, cookies: dict | None = None,
           query: tuple = (), has_body: bool = False, peer: str = "127.0.0.1") -> rules.ClientRequest:
    return rules.ClientRequest(method, path, query, Headers.of(headers or []), cookies or {}, peer,
                               "127.0.0.1:18090", "http", has_body)


def plan(profile, req, session=SESSION, *, now=NOW, config=CONFIG) -> rules.UpstreamPlan:
    out = rules.plan(profile, req, session, now=now, endpoint_authority=FT, config=config)
    assert isinstance(out, rules.UpstreamPlan), out
    return out


# --- real wire vectors -------------------------------------------------------------------------------------------

PROBE_HEADERS = [("Host", "127.0.0.1:18090"), ("Accept", "application/json"), ("User-Agent", "probe/1.0")]

G4_LOGIN_WIRE = [
    ("X-Forwarded-Host", "127.0.0.1:18090"), ("X-Forwarded-Proto", "http"), ("X-Forwarded-For", "127.0.0.1"),
    ("User-Agent", "Backend.AI Web Server 24.09.14"), ("X-BackendAI-Domain", "default"),
    ("X-BackendAI-Version", "v8.20240915"), ("Content-Type", "application/json"), ("Content-Length", "32"),
    ("X-BackendAI-SSO", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjE3OTYyODI2MTcsImlzcyI6IkJhY2tlbmQuQUkgV2Vic2Vyd"
     "mVyIiwiaWF0IjoxNzk1Njc3ODE3LCJhaW9odHRwX3Nlc3Npb24iOiJmMDM3MmJkOWNhNDE0YmJjYmI1MTRlNDNhYTEyNmY5OSIsImFjY2Vzc19rZ"
     "XkiOiJBS0lBSU9TRk9ETk43RVhBTVBMRSJ9.TNwloJbB-BakHnFLIghOEcgIPECG4gs7fx-0ICRoJ5k"),
    ("X-BackendAI-SessionID", "f0372bd9ca414bbcbb514e43aa126f99"), ("Date", "2026-11-26T07:23:37.176611+00:00"),
    ("Authorization", "BackendAI signMethod=HMAC-SHA256, credential=AKIAIOSFODNN7EXAMPLE:"
     "55729d4c73e634fcb00b1c7c27ac5bb625f504ea0b63be79d2b904c7ee1ef236"),
    ("Accept", "*/*"), ("Accept-Encoding", "gzip, deflate"),
]

G4_BEARER_WIRE = [
    ("X-Forwarded-Host", "127.0.0.1:18090"), ("X-Forwarded-Proto", "http"), ("X-Forwarded-For", "127.0.0.1"),
    ("User-Agent", "Backend.AI Web Server 24.09.14"), ("X-BackendAI-Domain", "default"),
    ("X-BackendAI-Version", "v8.20240915"),
    ("Authorization", "BackendAI signMethod=HMAC-SHA256, credential=AKIAIOSFODNN7EXAMPLE:"
     "5252b5051e8e04e229efa2248b693ebe832852f27738c7db68e2f2696895f5ae"),
    ("X-BackendAI-SSO", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjE3OTYyODI2MTgsImlzcyI6IkJhY2tlbmQuQUkgV2Vic2Vyd"
     "mVyIiwiaWF0IjoxNzk1Njc3ODE4LCJhaW9odHRwX3Nlc3Npb24iOiJmMDM3MmJkOWNhNDE0YmJjYmI1MTRlNDNhYTEyNmY5OSIsImFjY2Vzc19rZ"
     "XkiOiJBS0lBSU9TRk9ETk43RVhBTVBMRSJ9.rVSCWbJAx6xgeF-bpb4pielld2vPxWCjDKArC-t6kN8"),
    ("X-BackendAI-SessionID", "f0372bd9ca414bbcbb514e43aa126f99"), ("Date", "2026-11-26T07:23:38.032957+00:00"),
    ("Content-Type", "application/octet-stream"), ("Accept", "*/*"), ("Accept-Encoding", "gzip, deflate"),
]

G5_LOGIN_WIRE = [
    ("X-Forwarded-Host", "127.0.0.1:18090"), ("X-Forwarded-Proto", "http"), ("X-Forwarded-For", "127.0.0.1"),
    ("User-Agent", "Backend.AI Web Server 25.1.1"), ("X-BackendAI-Domain", "default"),
    ("X-BackendAI-Version", "v8.20240915"), ("Content-Type", "application/json"), ("Content-Length", "32"),
    ("X-BackendAI-SessionID", "58c06f594eb046bf90af8bad997e8828"), ("Date", "2026-11-26T07:24:59.946102+00:00"),
    ("Authorization", "BackendAI signMethod=HMAC-SHA256, credential=AKIAIOSFODNN7EXAMPLE:"
     "89a76d1e35d8bc7cf3130ac01a8775fe322bd9f24604945335a46a20ab50a06c"),
    ("Accept", "*/*"), ("Accept-Encoding", "gzip, deflate"),
]

G5_BEARER_WIRE = [
    ("X-Forwarded-Host", "127.0.0.1:18090"), ("X-Forwarded-Proto", "http"), ("X-Forwarded-For", "127.0.0.1"),
    ("User-Agent", "Backend.AI Web Server 25.1.1"), ("X-BackendAI-Domain", "default"),
    ("X-BackendAI-Version", "v8.20240915"), ("Authorization", "Bearer fasttrack-issued-sso-token-0123456789"),
    ("Date", "2026-11-26T07:25:00.796312+00:00"), ("Content-Type", "application/octet-stream"),
    ("Accept", "*/*"), ("Accept-Encoding", "gzip, deflate"),
]


def _login_request(sid: str) -> rules.ClientRequest:
    return client("POST", "login/", [*PROBE_HEADERS, ("Content-Type", "application/json"),
                                     ("X-BackendAI-SessionID", sid), ("Content-Length", "32")], has_body=True)


def _bearer_request(sid: str) -> rules.ClientRequest:
    return client("GET", "api/whatever/", [*PROBE_HEADERS, ("X-BackendAI-SessionID", sid),
                                           ("Authorization", "Bearer fasttrack-issued-sso-token-0123456789")])


def test_g4_login_matches_real_24_9_14_wire_exactly():
    sid = "f0372bd9ca414bbcbb514e43aa126f99"
    out = plan(G4, _login_request(sid), rules.Session(sid, AK, SK),
               now=datetime.fromisoformat("2026-11-26T07:23:37.176611+00:00"), config=PEER_CONFIG)
    assert (out.method, out.rel_url) == ("POST", "/login/")
    assert list(out.headers) == G4_LOGIN_WIRE  # includes the byte-exact JWT and HMAC signature


def test_g4_signed_call_with_client_bearer_has_real_24_9_14_header_set():
    sid = "f0372bd9ca414bbcbb514e43aa126f99"
    out = plan(G4, _bearer_request(sid), rules.Session(sid, AK, SK),
               now=datetime.fromisoformat("2026-11-26T07:23:38.032957+00:00"), config=PEER_CONFIG)
    assert (out.method, out.rel_url, out.stream_body) == ("GET", "/api/whatever/", True)
    assert Counter(out.headers) == Counter(G4_BEARER_WIRE)


def test_g4_signed_call_with_client_bearer_matches_real_wire_order():
    sid = "f0372bd9ca414bbcbb514e43aa126f99"
    out = plan(G4, _bearer_request(sid), rules.Session(sid, AK, SK),
               now=datetime.fromisoformat("2026-11-26T07:23:38.032957+00:00"), config=PEER_CONFIG)
    assert list(out.headers) == G4_BEARER_WIRE


def test_g5_login_matches_real_25_1_1_wire_exactly():
    sid = "58c06f594eb046bf90af8bad997e8828"
    out = plan(G5, _login_request(sid), rules.Session(sid, AK, SK),
               now=datetime.fromisoformat("2026-11-26T07:24:59.946102+00:00"), config=PEER_CONFIG)
    assert (out.method, out.rel_url) == ("POST", "/login/")
    assert list(out.headers) == G5_LOGIN_WIRE


def test_g5_anonymous_call_matches_real_25_1_1_wire_exactly():
    out = plan(G5, _bearer_request("58c06f594eb046bf90af8bad997e8828"), None,
               now=datetime.fromisoformat("2026-11-26T07:25:00.796312+00:00"), config=PEER_CONFIG)
    assert (out.method, out.rel_url, out.stream_body) == ("GET", "/api/whatever/", True)
    assert list(out.headers) == G5_BEARER_WIRE


# --- header sets per route ----------------------------------------------------------------------------------------

COMMON = {"X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-For", "User-Agent", "X-BackendAI-Domain",
          "X-BackendAI-Version", "Date", "Content-Type", "Accept", "Accept-Encoding"}


@pytest.mark.parametrize(("method", "path"), [("POST", "login/"), ("GET", "api/x/"), ("POST", "api/login/"),
                                              ("DELETE", "api/x/1/")])
def test_g4_signs_every_route_with_jwt_and_sid(method, path):
    out = plan(G4, client(method, path, [("X-BackendAI-SessionID", SID)]))
    assert set(out.headers.names()) == COMMON | {"X-BackendAI-SSO", "X-BackendAI-SessionID", "Authorization"}
    assert out.headers.values("X-BackendAI-SessionID") == [SID]
    auth = out.headers.get("Authorization")
    inp = signing.SigningInput(method, "/" + path, NOW.isoformat(), FT, "application/octet-stream", G4.api_version)
    assert signing.verify(auth, inp, access_key=AK, secret_key=SK) is None
    decoded, reason = sso_jwt.verify(out.headers.get("X-BackendAI-SSO") or "", secret=CONFIG.jwt_secret,
                                     algorithms=["HS256"], now=int(NOW.timestamp()))
    assert reason is None and decoded is not None
    assert decoded.claims["aiohttp_session"] == SID and decoded.claims["access_key"] == AK
    assert decoded.claims["exp"] - decoded.claims["iat"] == CONFIG.session_max_age


def test_g5_login_is_signed_without_jwt():
    out = plan(G5, client("POST", "login/", [("X-BackendAI-SessionID", SID)]))
    assert set(out.headers.names()) == COMMON | {"X-BackendAI-SessionID", "Authorization"}
    assert out.headers.get("Authorization", "").startswith(f"BackendAI signMethod=HMAC-SHA256, credential={AK}:")


@pytest.mark.parametrize(("method", "path"), [("GET", "api/x/"), ("POST", "api/pipelines/"), ("GET", "login/"),
                                              ("POST", "login"), ("POST", "api/login/"), ("PUT", "login/")])
def test_g5_non_login_routes_are_anonymous(method, path):
    req = client(method, path, [("X-BackendAI-SessionID", SID), ("X-BackendAI-SSO", "client-sso")])
    out = plan(G5, req, session=None)
    assert set(out.headers.names()) == COMMON
    # Even with a session, nothing is signed and no session id travels on these routes.
    assert set(plan(G5, req).headers.names()) == COMMON


@pytest.mark.parametrize(("profile", "method", "path"), [
    (G4, "POST", "login/"), (G4, "GET", "api/x/"), (G4, "POST", "api/login/"), (G5, "POST", "login/"),
])
def test_401_problem_without_session(profile, method, path):
    out = rules.plan(profile, client(method, path), None, now=NOW, endpoint_authority=FT, config=CONFIG)
    assert isinstance(out, rules.Reply)
    assert out.status == 401
    assert out.headers.values("Content-Type") == ["application/problem+json; charset=utf-8"]
    assert json.loads(out.body) == {"type": "https://api.backend.ai/probs/auth-failed", "title": "Unauthorized access"}


@pytest.mark.parametrize(("profile", "method", "path"), [(G4, "GET", "api/x/"), (G4, "POST", "login/"),
                                                         (G5, "POST", "login/")])
def test_client_authorization_is_overwritten_on_signed_routes(profile, method, path):
    req = client(method, path, [("X-BackendAI-SessionID", SID), ("Authorization", "Bearer client-token")])
    values = plan(profile, req).headers.values("Authorization")
    assert len(values) == 1
    assert values[0].startswith(f"BackendAI signMethod=HMAC-SHA256, credential={AK}:")


def test_client_authorization_is_verbatim_on_anonymous_routes():
    req = client("POST", "api/pipelines/", [("Authorization", "Bearer  client token, odd")])
    assert plan(G5, req, None).headers.values("Authorization") == ["Bearer  client token, odd"]


def test_g4_client_sso_passes_through_verbatim_and_nothing_is_minted():
    req = client("GET", "api/x/", [("X-BackendAI-SessionID", SID), ("X-BackendAI-SSO", "client-supplied-sso-token")])
    assert plan(G4, req).headers.values("X-BackendAI-SSO") == ["client-supplied-sso-token"]


def test_g4_mints_a_fresh_jwt_per_request():
    req = client("GET", "api/x/", [("X-BackendAI-SessionID", SID)])
    a = plan(G4, req, now=NOW).headers.get("X-BackendAI-SSO")
    b = plan(G4, req, now=datetime(2026, 11, 26, 7, 0, 1, tzinfo=UTC)).headers.get("X-BackendAI-SSO")
    assert a and b and a != b


def test_g5_drops_client_sso_everywhere():
    req = client("POST", "login/", [("X-BackendAI-SessionID", SID), ("X-BackendAI-SSO", "client-supplied-sso-token")])
    assert "X-BackendAI-SSO" not in plan(G5, req).headers
    assert "X-BackendAI-SSO" not in plan(G5, client("GET", "api/", [("X-BackendAI-SSO", "x")]), None).headers


# --- session id rules ---------------------------------------------------------------------------------------------

def test_session_key_header_wins_even_if_cookie_differs_and_empty_header_falls_back():
    assert rules.session_key(client("GET", "x", [("X-BackendAI-SessionID", "h")], cookies={"AIOHTTP_SESSION": "c"})) \
        == "h"
    assert rules.session_key(client("GET", "x", [("X-BackendAI-SessionID", "")], cookies={"AIOHTTP_SESSION": "c"})) \
        == "c"
    assert rules.session_key(client("GET", "x", cookies={"AIOHTTP_SESSION": "c"})) == "c"
    assert rules.session_key(client("GET", "x", cookies={"AIOHTTP_SESSION": ""})) is None
    assert rules.session_key(client("GET", "x")) is None


def test_g4_cookie_only_client_gets_empty_sid_and_empty_claim():
    req = client("POST", "login/", cookies={"AIOHTTP_SESSION": SID})
    out = plan(G4, req)
    assert out.headers.values("X-BackendAI-SessionID") == [""]
    decoded = sso_jwt.unverified(out.headers.get("X-BackendAI-SSO") or "")
    assert decoded is not None and decoded.claims["aiohttp_session"] == ""
    assert out.headers.values("Cookie") == [f"AIOHTTP_SESSION={SID}"]


def test_g5_login_forwards_sid_only_if_client_sent_the_header():
    assert "X-BackendAI-SessionID" not in plan(G5, client("POST", "login/", cookies={"AIOHTTP_SESSION": SID})).headers
    out = plan(G5, client("POST", "login/", [("X-BackendAI-SessionID", SID)]))
    assert out.headers.values("X-BackendAI-SessionID") == [SID]


def test_all_client_cookies_are_forwarded_in_one_header():
    req = client("GET", "api/x/", cookies={"AIOHTTP_SESSION": SID, "pipeline-token": "t"})
    for profile, session in ((G4, SESSION), (G5, None)):
        assert plan(profile, req, session).headers.values("Cookie") == [f"AIOHTTP_SESSION={SID}; pipeline-token=t"]


# --- URL, forwarding whitelist, proxy headers, framing --------------------------------------------------------------

def test_query_is_re_encoded_from_parsed_pairs():
    req = client("GET", "api/whatever/", query=(("page", "2"), ("q", "a b")))
    assert plan(G5, req, None).rel_url == "/api/whatever/?page=2&q=a+b"
    req = client("GET", "api/x/", query=(("k", "a&b=c"), ("k", "ü")))
    assert plan(G5, req, None).rel_url == "/api/x/?k=a%26b%3Dc&k=%C3%BC"
    assert plan(G5, client("GET", "api/x/"), None).rel_url == "/api/x/"


@pytest.mark.parametrize(("decoded", "encoded"), [("api/a b/", "/api/a%20b/"), ("api/\u00fc/", "/api/%C3%BC/")])
def test_decoded_path_is_re_encoded_upstream(decoded, encoded):
    assert plan(G5, client("GET", decoded), None).rel_url == encoded


def test_signed_query_is_part_of_the_signature():
    req = client("GET", "api/whatever/", [("X-BackendAI-SessionID", SID)], query=(("q", "a b"),))
    out = plan(G4, req)
    inp = signing.SigningInput("GET", "/api/whatever/?q=a+b", NOW.isoformat(), FT, "application/octet-stream",
                               G4.api_version)
    assert signing.verify(out.headers.get("Authorization"), inp, access_key=AK, secret_key=SK) is None


HOSTILE = [("Connection", "keep-alive, X-Hop"), ("Keep-Alive", "timeout=5"), ("TE", "trailers"), ("X-Hop", "1"),
           ("X-Custom-Header", "c"), ("Upgrade", "websocket"), ("Proxy-Authorization", "Basic eA=="),
           ("Transfer-Encoding", "chunked"), ("Trailers", "x"), ("User-Agent", "evil/1.0"), ("Accept", "text/html"),
           ("Host", "evil.example"), ("X-BackendAI-Domain", "other"), ("X-BackendAI-FastTrack-Version", "99"),
           ("Origin", "http://o"), ("Referer", "http://r")]


@pytest.mark.parametrize(("profile", "method", "path", "session"), [
    (G4, "POST", "login/", SESSION), (G4, "GET", "api/x/", SESSION), (G5, "POST", "login/", SESSION),
    (G5, "GET", "api/x/", None),
])
def test_hop_by_hop_and_unknown_client_headers_are_not_forwarded(profile, method, path, session):
    req = client(method, path, [*HOSTILE, ("X-BackendAI-SessionID", SID), ("Accept-Language", "ko-KR")])
    out = plan(profile, req, session)
    names = {n.lower() for n in out.headers.names()}
    for name in ("connection", "keep-alive", "te", "x-hop", "x-custom-header", "upgrade", "proxy-authorization",
                 "transfer-encoding", "trailers", "host", "origin", "referer", "x-backendai-fasttrack-version"):
        assert name not in names
    assert out.headers.values("User-Agent") == [f"Backend.AI Web Server {profile.webserver_version}"]
    assert out.headers.values("Accept") == ["*/*"]
    assert out.headers.values("X-BackendAI-Domain") == ["default"]
    assert out.headers.values("Accept-Language") == ["ko-KR"]


def test_x_forwarded_headers_default_to_the_connection():
    out = plan(G5, client("GET", "api/", peer="127.9.9.9"), None)
    assert out.headers.values("X-Forwarded-For") == ["127.9.9.9"]
    assert out.headers.values("X-Forwarded-Host") == ["127.0.0.1:18090"]
    assert out.headers.values("X-Forwarded-Proto") == ["http"]


@pytest.mark.parametrize(("profile", "session"), [(G4, SESSION), (G5, None)])
def test_x_forwarded_headers_are_copied_from_client_not_appended(profile, session):
    req = client("GET", "api/", [("X-BackendAI-SessionID", SID), ("X-Forwarded-For", "10.0.0.1, 10.0.0.2"),
                                 ("X-Forwarded-Host", "public.example"), ("X-Forwarded-Proto", "https")],
                 peer="127.9.9.9")
    out = plan(profile, req, session)
    assert out.headers.values("X-Forwarded-For") == ["10.0.0.1, 10.0.0.2"]
    assert out.headers.values("X-Forwarded-Host") == ["public.example"]
    assert out.headers.values("X-Forwarded-Proto") == ["https"]


def test_client_api_version_overrides_and_is_signed():
    req = client("GET", "api/", [("X-BackendAI-SessionID", SID), ("X-BackendAI-Version", "v7.20230615")])
    out = plan(G4, req)
    assert out.headers.values("X-BackendAI-Version") == ["v7.20230615"]
    inp = signing.SigningInput("GET", "/api/", NOW.isoformat(), FT, "application/octet-stream", "v7.20230615")
    assert signing.verify(out.headers.get("Authorization"), inp, access_key=AK, secret_key=SK) is None


def test_client_content_type_is_copied_raw_and_signed_by_mimetype():
    req = client("POST", "login/", [("X-BackendAI-SessionID", SID), ("Content-Type", "Application/JSON; charset=UTF-8"),
                                    ("Content-Length", "2")], has_body=True)
    out = plan(G4, req)
    assert out.headers.values("Content-Type") == ["Application/JSON; charset=UTF-8"]
    assert out.headers.values("Content-Length") == ["2"]
    inp = signing.SigningInput("POST", "/login/", NOW.isoformat(), FT, "application/json", G4.api_version)
    assert signing.verify(out.headers.get("Authorization"), inp, access_key=AK, secret_key=SK) is None


def test_date_is_iso_8601_utc():
    out = plan(G5, client("GET", "api/"), None, now=datetime.fromisoformat("2026-11-26T16:00:00.5+09:00"))
    assert out.headers.values("Date") == ["2026-11-26T07:00:00.500000+00:00"]


# --- relay (hop 3 -> hop 4) ------------------------------------------------------------------------------------------

UPSTREAM = Headers.of([("Content-Type", "application/json; charset=utf-8"), ("X-BackendAI-FastTrack-Version", "25.1.0"),
                       ("X-BackendAI-SSO", "ft-token"), ("Set-Cookie", "ft=1; Path=/"), ("Server", "Python/3.11"),
                       ("Transfer-Encoding", "chunked"), ("X-Mock-Upstream", "fasttrack")])


@pytest.mark.parametrize("profile", [G4, G5])
@pytest.mark.parametrize("status", [400, 401, 403, 404, 500, 503])
def test_relay_converts_upstream_errors_to_problem_json_dropping_headers(profile, status):
    body = json.dumps({"type": "https://fasttrack.example/probs/x", "title": "T", "detail": "d"}, indent=4).encode()
    assert rules.needs_error_body(profile, status)
    out = rules.relay(profile, status, "Reason", UPSTREAM, body)
    assert (out.status, out.reason) == (status, "Reason")
    assert list(out.headers) == [("Content-Type", "application/problem+json")]
    assert out.body is not None
    assert out.body == json.dumps({"type": "https://fasttrack.example/probs/x", "title": "T", "detail": "d"}).encode()


@pytest.mark.parametrize("raw", [b"plain text error", b"[1, 2]", b"\xff\xfe", b""])
def test_relay_wraps_non_object_error_bodies_as_generic_error(raw):
    out = rules.relay(G4, 502, "Bad Gateway", UPSTREAM, raw)
    assert out.body is not None
    doc = json.loads(out.body)
    assert doc["type"] == problems.GENERIC_ERROR_TYPE
    assert doc["title"] == "Generic Error (could not parse error string)"
    assert doc["content"] == raw.decode("utf-8", "replace")


@pytest.mark.parametrize("profile", [G4, G5])
@pytest.mark.parametrize("status", [200, 201, 204, 302, 304])
def test_relay_streams_success_removing_only_server_and_framing(profile, status):
    assert not rules.needs_error_body(profile, status)
    out = rules.relay(profile, status, "OK", UPSTREAM, b"")
    assert out.body is None
    assert out.status == status
    assert "Server" not in out.headers and "Transfer-Encoding" not in out.headers
    assert list(out.headers) == [p for p in UPSTREAM if p[0] not in ("Server", "Transfer-Encoding")]


# --- property: forwarding is a whitelist -----------------------------------------------------------------------------

ALLOWED = COMMON | {"X-BackendAI-SSO", "X-BackendAI-SessionID", "Authorization", "Accept-Language", "Content-Length",
                    "Cookie"}
NAMES = st.one_of(st.sampled_from([n for n, _ in HOSTILE] + ["X-BackendAI-SSO", "X-BackendAI-SessionID",
                                                              "Authorization", "Accept-Language", "Content-Type",
                                                              "Content-Length", "X-Forwarded-For", "Cookie"]),
                  st.from_regex(r"\AX-[A-Za-z0-9-]{1,12}\Z"))
VALUES = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20)


@settings(max_examples=150, derandomize=True, deadline=None)
@given(headers=st.lists(st.tuples(NAMES, VALUES), max_size=12), profile=st.sampled_from([G4, G5]),
       route=st.sampled_from([("POST", "login/"), ("GET", "api/x/"), ("POST", "api/login/")]))
def test_only_whitelisted_headers_go_upstream_and_never_twice(headers, profile, route):
    req = client(*route, headers)
    out = rules.plan(profile, req, SESSION, now=NOW, endpoint_authority=FT, config=CONFIG)
    assert isinstance(out, rules.UpstreamPlan)
    names = out.headers.names()
    assert set(names) <= ALLOWED, set(names) - ALLOWED
    for name in ("Authorization", "X-BackendAI-SSO", "X-BackendAI-SessionID", "Date", "X-Forwarded-For",
                 "Content-Type", "User-Agent"):
        assert len(out.headers.values(name)) <= 1, name
    if profile is G4:
        assert (out.headers.get("Authorization") or "").startswith("BackendAI signMethod=HMAC-SHA256")


# --- POST /server/login and the pooled cookie jar, as pure decisions -------------------------------------------

def test_login_plan_is_the_sdk_headers_and_the_keypair_payload():
    req = client("POST", "", [("X-Forwarded-For", "10.0.0.9")], peer="127.0.0.7")
    plan = rules.plan_login(G5, req, {"username": "u", "password": "p"}, now=NOW, config=CONFIG)
    assert isinstance(plan, rules.LoginPlan)
    assert plan.headers.pairs == (
        ("X-Forwarded-Host", "127.0.0.1:18090"), ("X-Forwarded-Proto", "http"),
        ("X-Forwarded-For", "10.0.0.9"),  # the client's own value, copied
        ("User-Agent", f"Backend.AI Web Server {G5.webserver_version}"), ("X-BackendAI-Domain", CONFIG.domain),
        ("X-BackendAI-Version", G5.api_version), ("Date", NOW.isoformat()))
    assert plan.payload == {"type": "keypair", "domain": CONFIG.domain, "username": "u", "password": "p"}


@pytest.mark.parametrize("body", [None, [], {"username": "u"}, {"password": "p"}, "login"])
def test_a_body_that_is_not_a_login_is_answered_400_without_asking_the_manager(body):
    answer = rules.plan_login(G5, client("POST", ""), body, now=NOW, config=CONFIG)
    assert isinstance(answer, rules.LoginAnswer) and answer.status == 400 and answer.session is None
    assert answer.body["data"]["type"] == "https://api.backend.ai/probs/invalid-api-params"


def test_login_answer_mints_a_session_id_only_on_success_and_26x_takes_the_managers_token():
    minted: list[str] = []

    def new_sid() -> str:
        minted.append(SID)
        return SID

    data = {"access_key": AK, "secret_key": SK, "role": "user", "status": "active", "session_token": "t" * 32}
    failed = rules.login_answer(G5, 401, {"type": "x", "title": "no"}, new_sid)
    assert (failed.status, failed.session, minted) == (200, None, [])
    assert failed.body["authenticated"] is False and failed.body["data"]["details"] == "manager said 401"
    ok = rules.login_answer(G5, 200, {"data": data}, new_sid)
    assert ok.session == rules.Session(SID, AK, SK) and minted == [SID] and not ok.cookie_secure
    g6g = rules.login_answer(G6g, 200, {"data": data}, new_sid)
    assert g6g.session is not None and g6g.session.sid == "t" * 32 and g6g.cookie_secure and minted == [SID]
    missing = rules.login_answer(G6g, 200, {"data": {k: v for k, v in data.items() if k != "session_token"}},
                                 new_sid)
    assert missing.status == 400 and missing.session is None


def test_a_pooled_session_plan_says_what_its_cookie_jar_keeps():
    req = client("GET", "api/pipelines/", cookies={"AIOHTTP_SESSION": SID})
    pooled = rules.plan(G6b, req, None, now=NOW, endpoint_authority=FT, config=CONFIG, jars={})
    assert isinstance(pooled, rules.UpstreamPlan)
    assert (pooled.pool, pooled.jar_update) == ("", {"AIOHTTP_SESSION": SID})
    fresh = rules.plan(G5, req, None, now=NOW, endpoint_authority=FT, config=CONFIG)
    assert isinstance(fresh, rules.UpstreamPlan) and (fresh.pool, fresh.jar_update) == (None, None)
    # the next anonymous request through that pool carries what the jar kept (W1)
    later = rules.plan(G6b, client("GET", "api/pipelines/"), None, now=NOW, endpoint_authority=FT, config=CONFIG,
                       jars={"": pooled.jar_update})
    assert isinstance(later, rules.UpstreamPlan) and later.headers.get("Cookie") == f"AIOHTTP_SESSION={SID}"


# --- a repeated header line (the decrypt_payload middleware's header check, W3) ----------------------------------

@pytest.mark.parametrize(("lines", "refused"), [
    ([("Authorization", "Bearer a"), ("Authorization", "Bearer b")], "Authorization"),
    ([("X-BackendAI-SSO", "a"), ("Accept", "*/*"), ("X-BackendAI-SSO", "b")], "X-BackendAI-SSO"),
    ([("Accept-Language", "en"), ("Accept-Language", "ko")], "Accept-Language"),
    # a declared name, in its declared spelling: its first line is read, the others skipped
    ([("X-BackendAI-SessionID", "a"), ("X-BackendAI-SessionID", "b")], None),
    # trafaret compares names as plain strings (checked in-process against the 23.9.10 and 25.19.2 venvs)
    ([("Authorization", "Bearer a"), ("authorization", "Bearer b")], None),
    ([("x-backendai-sessionid", "a"), ("x-backendai-sessionid", "b")], "x-backendai-sessionid"),
])
def test_the_header_check_refuses_a_name_repeated_in_the_same_spelling(lines, refused):
    assert rules.repeated_header(Headers.of(lines)) == refused


def test_a_repeated_header_is_500_up_to_25_12_and_400_from_25_13_and_forwarded_by_none():
    twice = Headers.of([("Authorization", "Bearer a"), ("Authorization", "Bearer b")])
    by_profile = {p: rules.header_check(resolve(p), twice) for p in ("G0", "as-is", "to-be", "G6b", "G6c", "G6g")}
    assert {p: r.status for p, r in by_profile.items() if r is not None} == {
        "G0": 500, "as-is": 500, "to-be": 500, "G6b": 500, "G6c": 400, "G6g": 400}
    assert by_profile["G0"].body == b"500 Internal Server Error\n\nServer got itself in trouble"  # aiohttp's page
    assert json.loads(by_profile["G6c"].body)["msg"] == (
        "Invalid request headers: {'Authorization': DataError('Authorization key was shadowed')}")  # as 25.13.4
    assert rules.header_check(resolve("G6d"), Headers.of([("Authorization", "Bearer a")])) is None
