"""What the webserver's ``/pipeline/`` proxy does with one request: a pure function of profile, request and
session. The aiohttp gateway in :mod:`harness.actors.gateway` only performs the I/O this plans.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, quote_plus

from harness.protocol import problems, signing, sso_jwt
from harness.protocol.generations import GatewayProfile, route_matches
from harness.protocol.headers import Headers, mimetype
from harness.protocol.signing import SigningInput

SESSION_HEADER = "X-BackendAI-SessionID"
SSO_HEADER = "X-BackendAI-SSO"
SESSION_COOKIE = "AIOHTTP_SESSION"
# The only client headers the webserver copies (a whitelist since #503).
HEADERS_TO_FORWARD = ("Accept-Language", "Authorization")
HOP_BY_HOP = ("Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "TE", "Trailers",
              "Transfer-Encoding", "Upgrade")


@dataclass(frozen=True, slots=True)
class ClientRequest:
    method: str
    path: str  # text after "/pipeline/", no leading slash
    query: tuple[tuple[str, str], ...]  # parsed (decoded) pairs, re-encoded on the way up
    headers: Headers
    cookies: dict[str, str]
    peer_ip: str
    host: str  # the Host the client addressed
    scheme: str
    has_body: bool


@dataclass(frozen=True, slots=True)
class Session:
    """An authenticated webserver session (what ``get_api_session`` needs)."""

    sid: str
    access_key: str
    secret_key: str


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    jwt_secret: str
    session_max_age: int = 604800
    domain: str = "default"


@dataclass(frozen=True, slots=True)
class Reply:
    """A response the gateway makes itself."""

    status: int
    reason: str
    headers: Headers
    body: bytes


@dataclass(frozen=True, slots=True)
class UpstreamPlan:
    method: str
    rel_url: str  # path + "?" + query, as sent
    headers: Headers  # without Host and body framing (the HTTP client adds those)
    stream_body: bool
    # Pooled client sessions (G6b+): the pool whose cookie jar this request used and must update with the
    # client's cookies afterwards; None when every request has a fresh cookie jar.
    pool: str | None = None
    signed: SigningInput | None = None  # what the keypair signature of a signed request covers


# Jars of pooled client sessions, by pool key: cookie name -> value (update_cookies semantics: the latest wins).
Jars = Mapping[str, Mapping[str, str]]


def pool_key(profile: GatewayProfile, signed: bool, session: Session | None) -> str | None:
    """#5223 ClientPool: sessions are pooled per (endpoint, domain, access_key); anonymous ones share ""."""
    if profile.cookie_jar != "pooled":
        return None
    return session.access_key if signed and session is not None else ""


def upstream_cookies(req: ClientRequest, pool: str | None, jars: Jars | None) -> dict[str, str]:
    """What the session's cookie jar sends after ``update_cookies(request.cookies)``: with a pooled session,
    cookies earlier requests (of any client using the same pool) left in the jar are sent too."""
    if pool is None or jars is None:
        return dict(req.cookies)
    return {**jars.get(pool, {}), **req.cookies}


def session_key(req: ClientRequest) -> str | None:
    """``RedisStorage.load_session``: a non-empty header wins (even if unknown), else the cookie."""
    sid = req.headers.get(SESSION_HEADER)
    if sid:
        return sid
    return req.cookies.get(SESSION_COOKIE) or None


def unauthorized() -> Reply:
    return problem_reply(401, "Unauthorized", problems.AUTH_FAILED)


def problem_reply(status: int, reason: str, problem: Mapping[str, object]) -> Reply:
    # aiohttp's HTTPException path appends the charset (protocol-history §3.5).
    return Reply(status, reason, Headers.of([("Content-Type", f"{problems.PROBLEM_JSON}; charset=utf-8")]),
                 problems.body(problem))


# yarl's query-part quoter (what the SDK's URL building uses): unreserved characters, the sub-delimiters
# !$'()*, and ?/:@ stay as they are, a space becomes "+", everything else (including + & = ;) is escaped.
# Observed on the wire with 24.9.14: "filter=a/b?c&d=e" arrives upstream as "filter=a/b?c%26d%3De".
_QUERY_SAFE = "!$'()*,?/:@"


# yarl keeps these literal in a path segment (RFC 3986 pchar plus "/"); everything else is percent-encoded.
_PATH_SAFE = "/:@!$&'()*+,;=-._~"


def rel_url(req: ClientRequest) -> str:
    # The {path} capture is percent-decoded; the SDK's yarl URL encodes it again on the way up.
    path = "/" + quote(req.path, safe=_PATH_SAFE)
    # The SDK rebuilds the query from the parsed multidict: a space comes back as "+".
    query = "&".join(f"{quote_plus(k, safe=_QUERY_SAFE)}={quote_plus(v, safe=_QUERY_SAFE)}" for k, v in req.query)
    return f"{path}?{query}" if req.query else path


def plan(profile: GatewayProfile, req: ClientRequest, session: Session | None, *, now: datetime,
         endpoint_authority: str, config: GatewayConfig, jars: Jars | None = None) -> UpstreamPlan | Reply:
    """Decide the upstream request (hop 2) for a client request (hop 1), or the gateway's own reply."""
    passthrough = route_matches(profile.bearer_passthrough, req.method, req.path) and is_bearer(
        req.headers.get("Authorization"))
    needs_session = not passthrough and route_matches(profile.session_required, req.method, req.path)
    signed = not passthrough and route_matches(profile.signed, req.method, req.path)
    if (needs_session or signed) and session is None:
        return unauthorized()

    client = req.headers
    sent_ct = client.get("Content-Type")
    out: list[tuple[str, str]] = []
    xfwd = {
        "X-Forwarded-Host": client.get("X-Forwarded-Host") or req.host,
        "X-Forwarded-Proto": client.get("X-Forwarded-Proto") or req.scheme,
        # Copied, not appended: a client can set it (protocol-history §6.6).
        "X-Forwarded-For": client.get("X-Forwarded-For") or req.peer_ip,
    }
    out += [(name, xfwd[name]) for name in profile.forwarded_proxy_headers]
    api_version = client.get("X-BackendAI-Version") or profile.api_version
    out += [
        ("User-Agent", f"Backend.AI Web Server {profile.webserver_version}"),
        ("X-BackendAI-Domain", config.domain),
        ("X-BackendAI-Version", api_version),
    ]
    if sent_ct is not None:
        out.append(("Content-Type", sent_ct))
    if (cl := client.get("Content-Length")) is not None:
        out.append(("Content-Length", cl))
    auth_slot: int | None = None
    for name in (*HEADERS_TO_FORWARD, *profile.extra_forwarded):
        value = client.get(name)
        if value is None:
            continue
        if signed and name == "Authorization":
            auth_slot = len(out)  # the SDK signs later, overwriting the copied value in its place
        out.append((name, value))

    if signed:
        assert session is not None
        if profile.jwt is not None:
            out.append((SSO_HEADER, client.get(SSO_HEADER) or _mint_jwt(profile, req, session, now, config)))
        sid_value = _sid_to_forward(profile, req)
        if sid_value is not None:
            out.append((SESSION_HEADER, sid_value))

    date = now.astimezone(UTC).isoformat()
    out.append(("Date", date))
    if sent_ct is None:
        default_ct = "application/octet-stream"
        if profile.bodiless_framing == "empty-text-plain" and not req.has_body:
            default_ct = "text/plain"
        out.append(("Content-Type", default_ct))
    url = rel_url(req)
    inp: SigningInput | None = None
    if signed:
        assert session is not None
        inp = SigningInput(req.method, url, date, endpoint_authority,
                                   mimetype(sent_ct) if sent_ct else out[-1][1], api_version)
        signature = ("Authorization", signing.authorization_header(inp, session.access_key, session.secret_key))
        if auth_slot is None:
            out.append(signature)
        else:
            out[auth_slot] = signature
    out += [("Accept", "*/*"), ("Accept-Encoding", "gzip, deflate")]
    pool = pool_key(profile, signed, session)
    cookies = upstream_cookies(req, pool, jars)
    if cookies:
        out.append(("Cookie", "; ".join(f"{k}={v}" for k, v in cookies.items())))
    stream = req.has_body or profile.bodiless_framing == "chunked-octet-stream"
    return UpstreamPlan(req.method.upper(), url, Headers.of(out), stream, pool, inp if signed else None)


def is_bearer(authorization: str | None) -> bool:
    scheme, _, token = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and bool(token.strip())


def _sid_to_forward(profile: GatewayProfile, req: ClientRequest) -> str | None:
    header = req.headers.get(SESSION_HEADER)
    if profile.sid == "header-or-cookie":
        return header or req.cookies.get(SESSION_COOKIE)
    if profile.sid == "header-or-empty":
        return header or ""
    if profile.sid == "client-header":
        return header
    return None


def _mint_jwt(profile: GatewayProfile, req: ClientRequest, session: Session, now: datetime,
              config: GatewayConfig) -> str:
    rule = profile.jwt
    assert rule is not None
    lifetime = 3600 if rule.lifetime == "1h" else config.session_max_age
    if rule.claim_session == "cookie":
        claim: str | None = req.cookies.get(SESSION_COOKIE)
    else:
        claim = req.headers.get(SESSION_HEADER) or ""
    return sso_jwt.mint(iat=int(now.timestamp()), lifetime=lifetime, aiohttp_session=claim,
                        access_key=session.access_key, secret=config.jwt_secret, algorithm=rule.algorithm)


@dataclass(frozen=True, slots=True)
class Relay:
    """How hop 3 becomes hop 4: either stream the upstream body with ``headers``, or send ``body``."""

    status: int
    reason: str
    headers: Headers
    body: bytes | None  # None: relay the upstream body as it streams


def relay(profile: GatewayProfile, status: int, reason: str, headers: Headers, body_if_error: bytes) -> Relay:
    if status // 100 not in (2, 3) and profile.upstream_errors == "problem-json":
        # BackendAPIError: upstream headers dropped, JSON re-serialised as problem+json (§3.5).
        problem = problems.from_upstream_error(body_if_error)
        return Relay(status, reason, Headers.of([("Content-Type", problems.PROBLEM_JSON)]),
                     json.dumps(problem).encode())
    drop = ["Server", "Transfer-Encoding"]  # the webserver pops Server; aiohttp re-frames the body itself
    if profile.filter_hop_by_hop:
        drop += HOP_BY_HOP
    return Relay(status, reason, headers.without(*drop), None)


def needs_error_body(profile: GatewayProfile, status: int) -> bool:
    return status // 100 not in (2, 3) and profile.upstream_errors == "problem-json"


# --- WebSocket: GET /pipeline/{path:stream/.*$} (G1b and later, protocol-history §5) ------------------------------

def is_stream_route(profile: GatewayProfile, method: str, path: str) -> bool:
    return profile.stream_route and method.upper() == "GET" and path.startswith("stream/")


def plan_stream(profile: GatewayProfile, req: ClientRequest, *, now: datetime, config: GatewayConfig) -> UpstreamPlan:
    """The upgrade request the webserver opens to FastTrack: anonymous in every generation, so no cookies,
    Authorization, X-BackendAI-SessionID or X-BackendAI-SSO; the SDK headers and X-Forwarded-* only."""
    client = req.headers
    xfwd = {
        "X-Forwarded-Host": client.get("X-Forwarded-Host") or req.host,
        "X-Forwarded-Proto": client.get("X-Forwarded-Proto") or req.scheme,
        "X-Forwarded-For": client.get("X-Forwarded-For") or req.peer_ip,
    }
    out = [(name, xfwd[name]) for name in profile.forwarded_proxy_headers]
    out += [
        ("User-Agent", f"Backend.AI Web Server {profile.webserver_version}"),
        ("X-BackendAI-Domain", config.domain),
        ("X-BackendAI-Version", client.get("X-BackendAI-Version") or profile.api_version),
        ("Date", now.astimezone(UTC).isoformat()),
    ]
    return UpstreamPlan("GET", rel_url(req), Headers.of(out), stream_body=False)
