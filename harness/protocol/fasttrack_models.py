"""FastTrack version models and their authentication rules (pure).

FastTrack is not public. Every model here is a MODEL, built from the texts of PR #3353 (AS-IS / TO-BE
diagrams), PR #1350 ("a token contains aiohttp_session ..."), PR #2051 ("will break compatibility
between FastTrack older than version 24.03.3"), issue #3573 (the login needs X-BackendAI-SessionID) and
the WebUI's dormant legacy pipeline client (``POST /auth-token/``, ``Authorization: Token``;
protocol-history §7). Reports say so. Each model announces its version in ``X-BackendAI-FastTrack-Version``
on every response, success or error.

Credentials a model may accept:
  token   pre-SSO: ``POST /auth-token/`` answers ``{"token": …}``, then ``Authorization: Token <t>``
  sso     the gateway's X-BackendAI-SSO JWT, bound to the webserver session (by cookie or by header)
  bearer  keypair-signed ``POST …login/`` with X-BackendAI-SessionID answers ``{"token": …}``, then
          ``Authorization: Bearer <t>``
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.protocol import signing, sso_jwt
from harness.protocol.accounts import Directory
from harness.protocol.headers import Headers, mimetype, parse_cookie_header

VERSION_HEADER = "X-BackendAI-FastTrack-Version"
AUTH_FAILED_TYPE = "https://fasttrack.harness.invalid/probs/auth-failed"
_LOGIN_PATH = re.compile(r"^.*login/$")
_AUTH_TOKEN_PATH = re.compile(r"^.*/auth-token/$")
SESSION_COOKIE = "AIOHTTP_SESSION"
_NUMERIC_DATES = ("iat", "nbf")  # exp is checked by sso_jwt.verify
Credential = Literal["token", "sso", "bearer"]


@dataclass(frozen=True, slots=True)
class FastTrackModel:
    id: str
    version: str
    title: str
    accepts: tuple[Credential, ...]
    modelled_on: str
    # For SSO: what the JWT's aiohttp_session claim is bound to. "header" = the non-empty
    # X-BackendAI-SessionID (24.03.3+, after #2051); "cookie" = the AIOHTTP_SESSION cookie (before #2051).
    sso_session_source: Literal["header", "cookie"] = "header"
    model: bool = True
    proposal: bool = False  # not a release: a design proposal

    @property
    def disclaimer(self) -> str:
        what = "a design proposal" if self.proposal else "a model"
        return f"FastTrack {self.version} is {what} (FastTrack is not public), based on {self.modelled_on}."


TOKEN_23_03 = FastTrackModel(
    id="23.03.0",
    version="23.03.0",
    title="Pre-SSO FastTrack: own token from POST /auth-token/, then Authorization: Token",
    accepts=("token",),
    modelled_on="the WebUI's legacy pipeline client (POST /pipeline/auth-token/, 'Authorization: Token <t>', "
                "protocol-history §7) and G0/G1 forwarding the client Authorization verbatim",
)

SSO_23_09 = FastTrackModel(
    id="23.09.0",
    version="23.09.0",
    title="Pre-24.03.3 SSO FastTrack: JWT aiohttp_session bound to the AIOHTTP_SESSION cookie",
    accepts=("sso",),
    sso_session_source="cookie",
    modelled_on="PR #1350 text (the token 'contains aiohttp_session'; G2/G3 put the cookie value there) and "
                "PR #2051 text ('will break compatibility between FastTrack older than version 24.03.3')",
)

SSO_24_09 = FastTrackModel(
    id="24.09.0",
    version="24.09.0",
    title="AS-IS FastTrack: X-BackendAI-SSO JWT on every request",
    accepts=("sso",),
    modelled_on="PR #3353 AS-IS diagram, PR #1350 and PR #2051 texts",
)

DUAL_24_12 = FastTrackModel(
    id="24.12.0-dual",
    version="24.12.0-dual",
    title="PROPOSAL: transitional FastTrack accepting the SSO JWT or a Bearer token",
    accepts=("sso", "bearer"),
    modelled_on="the 24.09.0 and 25.1.0 models combined (a design proposal for a safe upgrade, not a release)",
    proposal=True,
)

BEARER_25_1 = FastTrackModel(
    id="25.1.0",
    version="25.1.0",
    title="TO-BE FastTrack: keypair-signed login, then Authorization: Bearer",
    accepts=("bearer",),
    modelled_on="PR #3353 TO-BE diagram and description",
)

MODELS: tuple[FastTrackModel, ...] = (TOKEN_23_03, SSO_23_09, SSO_24_09, DUAL_24_12, BEARER_25_1)


def resolve(name: str) -> FastTrackModel:
    for m in MODELS:
        if name in (m.id, m.version):
            return m
    raise KeyError(f"unknown FastTrack profile {name!r} (known: {', '.join(m.id for m in MODELS)})")


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    """Hop 2 as FastTrack received it."""

    method: str
    path: str
    query_string: str
    headers: Headers
    body: bytes

    @property
    def rel_url(self) -> str:
        return f"{self.path}?{self.query_string}" if self.query_string else self.path


@dataclass(frozen=True, slots=True)
class Override:
    """A response a scenario step asks FastTrack to give once authentication has passed."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    status: int
    headers: Headers
    body: bytes
    user: str | None = None  # access key the request was authenticated as
    reason: str | None = None  # why authentication failed


@dataclass
class TokenStore:
    """Opaque tokens, deterministic from a seed and a counter per (kind, access key, session)."""

    seed: str = "harness"
    _tokens: dict[str, tuple[str, str]] = field(default_factory=dict)
    _counter: dict[str, int] = field(default_factory=dict)

    def issue(self, access_key: str, sid: str, kind: str = "bearer") -> str:
        label = f"{access_key}:{sid}" if kind == "bearer" else f"{kind}:{access_key}:{sid}"
        n = self._counter.get(label, 0)
        self._counter[label] = n + 1
        prefix = "ftk_" if kind == "bearer" else f"ft{kind[0]}_"
        token = prefix + hmac.new(self.seed.encode(), f"{label}:{n}".encode(), hashlib.sha256).hexdigest()[:40]
        self._tokens[token] = (access_key, kind)
        return token

    def owner(self, token: str, kind: str = "bearer") -> str | None:
        found = self._tokens.get(token)
        return found[0] if found is not None and found[1] == kind else None


@dataclass
class Context:
    directory: Directory
    tokens: TokenStore
    jwt_secret: str
    now: int  # epoch seconds from the injected clock


def is_login(req: UpstreamRequest) -> bool:
    return req.method.upper() == "POST" and bool(_LOGIN_PATH.match(req.path))


def is_auth_token(req: UpstreamRequest) -> bool:
    return req.method.upper() == "POST" and bool(_AUTH_TOKEN_PATH.match(req.path))


def _json(status: int, model: FastTrackModel, payload: dict[str, Any],
          extra: tuple[tuple[str, str], ...] = ()) -> tuple[int, Headers, bytes]:
    ct = "application/problem+json" if status >= 400 else "application/json"
    headers = Headers.of([("Content-Type", ct), (VERSION_HEADER, model.version), *extra])
    return status, headers, json.dumps(payload).encode()


def _single(req: UpstreamRequest, name: str) -> tuple[str | None, str | None]:
    values = req.headers.values(name)
    if len(values) > 1:
        return None, f"{name} sent {len(values)} times"
    return (values[0] if values else None), None


def _check_sso(model: FastTrackModel, req: UpstreamRequest, ctx: Context) -> tuple[str | None, str | None]:
    token, dup = _single(req, "X-BackendAI-SSO")
    if dup:
        return None, dup
    if not token:
        return None, "X-BackendAI-SSO missing"
    decoded, reason = sso_jwt.verify(token, secret=ctx.jwt_secret, algorithms=["HS256"], now=ctx.now)
    if reason or decoded is None:
        return None, f"X-BackendAI-SSO rejected: {reason}"
    for name in _NUMERIC_DATES:
        # Gateways mint integer iat/exp and no nbf (sso_jwt.mint). A time claim that is present but not a
        # NumericDate (RFC 7519: a JSON number) would otherwise be skipped by the time checks; PyJWT refuses it.
        value = decoded.claims.get(name)
        if name in decoded.claims and (isinstance(value, bool) or not isinstance(value, (int, float))):
            return None, f"X-BackendAI-SSO rejected: claim {name} is not a NumericDate ({value!r})"
    nbf = decoded.claims.get("nbf")
    if isinstance(nbf, float) and ctx.now < nbf:  # sso_jwt.verify compares integer nbf only
        return None, f"X-BackendAI-SSO rejected: JWT not yet valid (nbf {nbf}, now {ctx.now})"
    claim = decoded.claims.get("aiohttp_session")
    if model.sso_session_source == "cookie":
        cookie = parse_cookie_header(req.headers.values("Cookie")).get(SESSION_COOKIE)
        if not cookie:
            return None, (f"JWT aiohttp_session ({claim!r}) is bound to the {SESSION_COOKIE} cookie, "
                          "but no such cookie was sent")
        if claim != cookie:
            return None, f"JWT aiohttp_session ({claim!r}) does not match the {SESSION_COOKIE} cookie"
    else:
        sid, dup = _single(req, "X-BackendAI-SessionID")
        if dup:
            return None, dup
        if not sid:
            return None, "X-BackendAI-SessionID missing or empty"
        if claim != sid:
            return None, "JWT aiohttp_session does not match X-BackendAI-SessionID"
    ak = decoded.claims.get("access_key")
    if not isinstance(ak, str) or ctx.directory.by_access_key(ak) is None:
        return None, "JWT access_key is not a known keypair"
    return ak, None


def _check_signed_login(req: UpstreamRequest, ctx: Context) -> tuple[str | None, str | None]:
    sid, dup = _single(req, "X-BackendAI-SessionID")
    if dup:
        return None, dup
    if not sid:
        return None, "X-BackendAI-SessionID missing or empty on login"
    auth, dup = _single(req, "Authorization")
    if dup:
        return None, dup
    inp = signing.SigningInput(
        method=req.method,
        rel_url=req.rel_url,
        date=req.headers.get("Date") or "",
        host=req.headers.get("Host") or "",
        content_type=mimetype(req.headers.get("Content-Type")),
        api_version=req.headers.get("X-BackendAI-Version") or "",
    )
    reason = signing.verify(auth, inp, ctx.directory.secret_for)
    if reason:
        return None, f"keypair signature rejected: {reason}"
    cred = signing.parse_authorization(auth)
    assert cred is not None
    return cred.access_key, None


def _check_issued(req: UpstreamRequest, ctx: Context, kind: str) -> tuple[str | None, str | None]:
    """``Authorization: <Scheme> <token>`` with a token this FastTrack issued: ``Bearer`` (25.1 era, scheme
    case-insensitive) or the pre-SSO ``Token`` (exact scheme, as the legacy WebUI sent it)."""
    auth, dup = _single(req, "Authorization")
    if dup:
        return None, dup
    if not auth:
        return None, "Authorization missing"
    scheme, _, token = auth.partition(" ")
    bearer = kind == "bearer"
    if (scheme.lower() != "bearer" if bearer else scheme != "Token") or not token:
        wanted = "Bearer token" if bearer else "FastTrack Token"
        return None, f"Authorization is not a {wanted} (scheme {scheme!r})"
    owner = ctx.tokens.owner(token.strip(), kind=kind)
    if owner is None:
        return None, f"{'bearer ' if bearer else ''}token was not issued by this FastTrack"
    return owner, None


def _check_bearer(req: UpstreamRequest, ctx: Context) -> tuple[str | None, str | None]:
    return _check_issued(req, ctx, "bearer")


def _check_password(req: UpstreamRequest, ctx: Context) -> tuple[str | None, str | None]:
    """``POST /auth-token/``: the legacy WebUI sent ``{username, password, access_key, secret_key}``; the model
    checks username, password and access key against the manager's directory."""
    try:
        body = json.loads(req.body.decode("utf-8") or "null")
    except (UnicodeDecodeError, ValueError):
        body = None
    if not isinstance(body, dict):
        return None, "auth-token request body is not a JSON object"
    user = ctx.directory.by_name(str(body.get("username")))
    if user is None or body.get("access_key") != user.access_key or body.get("password") != user.password:
        return None, "auth-token: unknown username, wrong password or access_key"
    return user.access_key, None


def _check_token(req: UpstreamRequest, ctx: Context) -> tuple[str | None, str | None]:
    return _check_issued(req, ctx, "token")


def decide(model: FastTrackModel, req: UpstreamRequest, ctx: Context, override: Override | None = None) -> Decision:
    """Authenticate hop 2 and build hop 3.

    A model accepting several credentials tries each; on a login it answers with every credential whose
    check passed (the transitional model: X-BackendAI-SSO header *and* ``{"token": …}``).
    """
    login = is_login(req)
    reasons: list[str] = []
    user: str | None = None
    issued: tuple[tuple[str, str], ...] = ()
    payload: dict[str, Any] = {"fasttrack": model.version, "method": req.method, "path": req.path}
    if "token" in model.accepts:
        if is_auth_token(req):
            user, reason = _check_password(req, ctx)
            if user is not None:
                payload["token"] = ctx.tokens.issue(user, "", kind="token")
        else:
            user, reason = _check_token(req, ctx)
        if reason:
            reasons.append(reason)
    if user is None and "sso" in model.accepts:
        user, reason = _check_sso(model, req, ctx)
        if user is not None and login:
            # AS-IS: login answers with the token the client must send back (PR #3353 AS-IS diagram).
            issued = (("X-BackendAI-SSO", req.headers.get("X-BackendAI-SSO") or ""),)
        elif reason:
            reasons.append(reason)
    if "bearer" in model.accepts and (user is None or login):
        bearer_user, reason = (_check_signed_login if login else _check_bearer)(req, ctx)
        if bearer_user is not None and login:
            payload["token"] = ctx.tokens.issue(bearer_user, req.headers.get("X-BackendAI-SessionID") or "")
        elif reason and user is None:
            reasons.append(reason)
        user = user or bearer_user
    if user is None:
        reason = "; ".join(reasons)
        status, headers, body = _json(401, model, {"type": AUTH_FAILED_TYPE, "title": "Unauthorized", "detail": reason})
        return Decision(status, headers, body, None, reason)
    if override is not None:
        extra = Headers.of([(VERSION_HEADER, model.version), *override.headers])
        body = override.body if override.body is not None else json.dumps(
            {"fasttrack": model.version, "status": override.status}).encode()
        if "Content-Type" not in extra:
            extra = Headers.of([("Content-Type", "application/json"), *extra.pairs])
        return Decision(override.status, extra, body, user)
    payload["user"] = user
    status, headers, body = _json(200, model, payload, issued)
    return Decision(status, headers, body, user)
