"""FastTrack version models and their authentication rules (pure).

FastTrack is not public. Every model here is a MODEL, built from the texts of PR #3353 (AS-IS / TO-BE
diagrams), PR #1350 ("a token contains aiohttp_session ...") and PR #2051 ("will break compatibility
between FastTrack older than version 24.03.3"). Reports say so. Each model announces its version in
``X-BackendAI-FastTrack-Version`` on every response, success or error.
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
from harness.protocol.headers import Headers, mimetype

VERSION_HEADER = "X-BackendAI-FastTrack-Version"
AUTH_FAILED_TYPE = "https://fasttrack.harness.invalid/probs/auth-failed"
_LOGIN_PATH = re.compile(r"^.*login/$")


@dataclass(frozen=True, slots=True)
class FastTrackModel:
    id: str
    version: str
    title: str
    accepts: tuple[Literal["sso", "bearer"], ...]
    modelled_on: str
    # For SSO: where the JWT's aiohttp_session claim must match. "header" = the non-empty
    # X-BackendAI-SessionID (24.03.3+, after #2051).
    sso_session_source: Literal["header"] = "header"
    model: bool = True

    @property
    def disclaimer(self) -> str:
        return f"FastTrack {self.version} is a model (FastTrack is not public), based on {self.modelled_on}."


SSO_24_09 = FastTrackModel(
    id="24.09.0",
    version="24.09.0",
    title="AS-IS FastTrack: X-BackendAI-SSO JWT on every request",
    accepts=("sso",),
    modelled_on="PR #3353 AS-IS diagram, PR #1350 and PR #2051 texts",
)

BEARER_25_1 = FastTrackModel(
    id="25.1.0",
    version="25.1.0",
    title="TO-BE FastTrack: keypair-signed login, then Authorization: Bearer",
    accepts=("bearer",),
    modelled_on="PR #3353 TO-BE diagram and description",
)

MODELS: tuple[FastTrackModel, ...] = (SSO_24_09, BEARER_25_1)


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
    """Opaque bearer tokens, deterministic from a seed and a counter per (access key, session)."""

    seed: str = "harness"
    _tokens: dict[str, str] = field(default_factory=dict)
    _counter: dict[str, int] = field(default_factory=dict)

    def issue(self, access_key: str, sid: str) -> str:
        label = f"{access_key}:{sid}"
        n = self._counter.get(label, 0)
        self._counter[label] = n + 1
        token = "ftk_" + hmac.new(self.seed.encode(), f"{label}:{n}".encode(), hashlib.sha256).hexdigest()[:40]
        self._tokens[token] = access_key
        return token

    def owner(self, token: str) -> str | None:
        return self._tokens.get(token)


@dataclass
class Context:
    directory: Directory
    tokens: TokenStore
    jwt_secret: str
    now: int  # epoch seconds from the injected clock


def is_login(req: UpstreamRequest) -> bool:
    return req.method.upper() == "POST" and bool(_LOGIN_PATH.match(req.path))


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
    sid, dup = _single(req, "X-BackendAI-SessionID")
    if dup:
        return None, dup
    if not sid:
        return None, "X-BackendAI-SessionID missing or empty"
    if decoded.claims.get("aiohttp_session") != sid:
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
    reason = signing.verify(auth, inp, ctx.directory.secrets())
    if reason:
        return None, f"keypair signature rejected: {reason}"
    cred = signing.parse_authorization(auth)
    assert cred is not None
    return cred.access_key, None


def _check_bearer(req: UpstreamRequest, ctx: Context) -> tuple[str | None, str | None]:
    auth, dup = _single(req, "Authorization")
    if dup:
        return None, dup
    if not auth:
        return None, "Authorization missing"
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None, f"Authorization is not a Bearer token (scheme {scheme!r})"
    owner = ctx.tokens.owner(token.strip())
    if owner is None:
        return None, "bearer token was not issued by this FastTrack"
    return owner, None


def decide(model: FastTrackModel, req: UpstreamRequest, ctx: Context, override: Override | None = None) -> Decision:
    """Authenticate hop 2 and build hop 3."""
    login = is_login(req)
    reasons: list[str] = []
    user: str | None = None
    issued: tuple[tuple[str, str], ...] = ()
    payload: dict[str, Any] = {"fasttrack": model.version, "method": req.method, "path": req.path}
    if "sso" in model.accepts:
        user, reason = _check_sso(model, req, ctx)
        if user is not None and login:
            # AS-IS: login answers with the token the client must send back (PR #3353 AS-IS diagram).
            issued = (("X-BackendAI-SSO", req.headers.get("X-BackendAI-SSO") or ""),)
        elif reason:
            reasons.append(reason)
    if user is None and "bearer" in model.accepts:
        user, reason = (_check_signed_login if login else _check_bearer)(req, ctx)
        if user is not None and login:
            payload["token"] = ctx.tokens.issue(user, req.headers.get("X-BackendAI-SessionID") or "")
        elif reason:
            reasons.append(reason)
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
