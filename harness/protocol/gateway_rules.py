"""What the webserver's ``/pipeline/`` proxy does with one request: a pure function of profile, request and
session. The aiohttp gateway in :mod:`harness.actors.gateway` only performs the I/O this plans.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, quote_plus

from harness.protocol import manager_rules, problems, signing, sso_jwt
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
    # Pooled client sessions (G6b+): the pool whose cookie jar this request used, and the cookies the jar keeps
    # afterwards (``update_cookies(request.cookies)``); None when every request has a fresh cookie jar.
    pool: str | None = None
    signed: SigningInput | None = None  # what the keypair signature of a signed request covers
    jar_update: Mapping[str, str] | None = None  # merged into jars[pool] once the request is sent


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


# The headers ``extra_config_headers`` declares (ai/backend/common/web/session): trafaret reads their first line
# and skips the others; every other name is an extra key, and an extra key seen twice is "... key was shadowed".
DECLARED_HEADERS = ("X-BackendAI-Version", "X-BackendAI-Encoded", SESSION_HEADER)


def repeated_header(headers: Headers) -> str | None:
    """The first header name that a request carries twice and the webserver's header check refuses. trafaret
    compares the names as plain strings: the same spelling twice is refused (a declared name only in its declared
    spelling is exempt), ``Authorization`` next to ``authorization`` are two keys and pass (the first line is
    then forwarded)."""
    seen: set[str] = set()
    for name, _ in headers:
        if name in seen and name not in DECLARED_HEADERS:
            return name
        seen.add(name)
    return None


def header_check(profile: GatewayProfile, headers: Headers) -> Reply | None:
    """The decrypt_payload middleware, before any handler (every route, session or none): the gateway's own
    answer to a repeated header line (``duplicate_headers``), or None to go on."""
    name = repeated_header(headers)
    if name is None or profile.duplicate_headers == "first-line":
        return None
    if profile.duplicate_headers == "server-error":  # the DataError escapes: aiohttp's own 500 page
        return Reply(500, "Internal Server Error", Headers.of([("Content-Type", "text/plain; charset=utf-8")]),
                     b"500 Internal Server Error\n\nServer got itself in trouble")
    msg = f"Invalid request headers: {{'{name}': DataError('{name} key was shadowed')}}"
    return problem_reply(400, "Bad Request", {**problems.INVALID_HEADERS, "msg": msg})


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
    api_version = client.get("X-BackendAI-Version") or profile.api_version
    out = sdk_headers(profile, req, config, profile.forwarded_proxy_headers, api_version)
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
    return UpstreamPlan(req.method.upper(), url, Headers.of(out), stream, pool, inp if signed else None,
                        dict(req.cookies) if pool is not None else None)


def forwarded(req: ClientRequest) -> dict[str, str]:
    """X-Forwarded-* as the SDK sends them: the client's own value, else what the gateway saw. Copied, not
    appended: a client can set X-Forwarded-For (protocol-history §6.6)."""
    client = req.headers
    return {
        "X-Forwarded-Host": client.get("X-Forwarded-Host") or req.host,
        "X-Forwarded-Proto": client.get("X-Forwarded-Proto") or req.scheme,
        "X-Forwarded-For": client.get("X-Forwarded-For") or req.peer_ip,
    }


def sdk_headers(profile: GatewayProfile, req: ClientRequest, config: GatewayConfig, forwarded_names: Iterable[str],
                api_version: str) -> list[tuple[str, str]]:
    """What the webserver's client SDK puts first on every request it makes (pipeline, stream, manager)."""
    xfwd = forwarded(req)
    return [*((name, xfwd[name]) for name in forwarded_names),
            ("User-Agent", f"Backend.AI Web Server {profile.webserver_version}"),
            ("X-BackendAI-Domain", config.domain),
            ("X-BackendAI-Version", api_version)]


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

def plan_stream(profile: GatewayProfile, req: ClientRequest, *, now: datetime, config: GatewayConfig) -> UpstreamPlan:
    """The upgrade request the webserver opens to FastTrack: anonymous in every generation, so no cookies,
    Authorization, X-BackendAI-SessionID or X-BackendAI-SSO; the SDK headers and X-Forwarded-* only."""
    out = sdk_headers(profile, req, config, profile.forwarded_proxy_headers,
                      req.headers.get("X-BackendAI-Version") or profile.api_version)
    out.append(("Date", now.astimezone(UTC).isoformat()))
    return UpstreamPlan("GET", rel_url(req), Headers.of(out), stream_body=False)


# --- POST /server/login ---------------------------------------------------------------------------------------

FORWARDED_ALL = ("X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-For")


@dataclass(frozen=True, slots=True)
class LoginPlan:
    """What the gateway sends the manager for a login: its SDK headers and the keypair authorize payload."""

    headers: Headers
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class LoginAnswer:
    """The gateway's answer to the client (a JSON body), and the session it created, if any: its id goes out
    as the session header and the session cookie."""

    status: int
    body: Mapping[str, Any]
    session: Session | None = None
    cookie_secure: bool = False


def plan_login(profile: GatewayProfile, req: ClientRequest, body: object, *, now: datetime,
               config: GatewayConfig) -> LoginPlan | LoginAnswer:
    """The manager request for a login, or the gateway's own answer to a body that is not a login."""
    if not isinstance(body, dict) or "username" not in body or "password" not in body:
        return LoginAnswer(400, {"authenticated": False, "data": {
            "type": "https://api.backend.ai/probs/invalid-api-params", "title": "Invalid API parameters"}})
    headers = sdk_headers(profile, req, config, FORWARDED_ALL, profile.api_version)
    headers.append(("Date", now.isoformat()))
    return LoginPlan(Headers.of(headers), {"type": "keypair", "domain": config.domain, **body})


def login_answer(profile: GatewayProfile, status: int, answer: object, new_sid: Callable[[], str]) -> LoginAnswer:
    """The client's answer from the manager's: a session on success, whose id is the manager's login-session
    token from 26.4 (``sid_source: manager-token``) and else one the gateway mints (``new_sid``, called only
    then)."""
    if status != 200 or not isinstance(answer, dict) or "data" not in answer:
        return LoginAnswer(200, manager_rules.login_failure(status, answer if isinstance(answer, dict) else {}))
    data: dict[str, Any] = answer["data"]
    if profile.sid_source == "manager-token":
        # Without it the real webserver's AuthSuccessResponse validation fails (real-webserver-peers "The 26.x
        # line").
        token = data.get("session_token")
        if not isinstance(token, str) or not token:
            return LoginAnswer(400, {"authenticated": False, "data": {
                "type": "https://api.backend.ai/probs/schema-validation-failed",
                "title": "Failed to validate the manager's response (AuthSuccessResponse: session_token)"}})
        sid = token
    else:
        sid = new_sid()
    return LoginAnswer(200, manager_rules.login_success(data), Session(sid, data["access_key"], data["secret_key"]),
                       profile.cookie_secure)
