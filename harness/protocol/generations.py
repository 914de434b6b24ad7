"""Gateway profiles: each release generation of the webserver's ``/pipeline/`` proxy, as data.

Facts come from ``shared/reference/protocol-history.md`` (cited there as ``tag:path:line``) and were checked on
the wire against real releases (``real-webserver-peers.md``). Adding a generation is adding an entry here; the
rules that read these fields live in :mod:`harness.protocol.gateway_rules`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

# Which pipeline requests a rule applies to. "login-exact" is G5's ``POST /pipeline/{path:login/$}``;
# "login-suffix" is G6's ``POST /pipeline/{path:.*login/$}``.
RouteSet = Literal["all", "none", "login-exact", "login-suffix"]

_LOGIN_EXACT = re.compile(r"^login/$")
_LOGIN_SUFFIX = re.compile(r"^.*login/$")


def route_matches(route: RouteSet, method: str, path: str) -> bool:
    """``path`` is the text after ``/pipeline/`` (no leading slash), as aiohttp's ``{path}`` capture."""
    if route == "all":
        return True
    if route == "none":
        return False
    if method.upper() != "POST":
        return False
    pattern = _LOGIN_EXACT if route == "login-exact" else _LOGIN_SUFFIX
    return bool(pattern.match(path))


@dataclass(frozen=True, slots=True)
class JwtRule:
    """How the G2-G4 gateway mints ``X-BackendAI-SSO`` when the client sent none."""

    lifetime: Literal["1h", "session-max-age"]
    # Where the ``aiohttp_session`` claim comes from: G2/G3 the AIOHTTP_SESSION cookie (``null`` without one),
    # G4 the client's X-BackendAI-SessionID header ("" without one).
    claim_session: Literal["cookie", "header-or-empty"]
    algorithm: str = "HS256"


# How ``X-BackendAI-SessionID`` travels upstream on signed routes:
#   header-or-cookie  G2/G3: client header, else the cookie value, omitted when neither
#   header-or-empty   G4: client header, else "" (always sent)
#   client-header     G5+: the client's header if present (login route only)
#   none              G0/G1: never
SidRule = Literal["none", "header-or-cookie", "header-or-empty", "client-header"]


@dataclass(frozen=True, slots=True)
class GatewayProfile:
    id: str
    generation: str
    title: str
    releases: str
    webserver_version: str  # representative release for User-Agent
    api_version: str  # SDK default X-BackendAI-Version
    session_required: RouteSet  # requests answered 401 without an authenticated webserver session
    signed: RouteSet  # requests signed with the session keypair (client Authorization overwritten)
    sid: SidRule
    jwt: JwtRule | None  # minted on signed routes unless the client sent X-BackendAI-SSO
    forwarded_proxy_headers: tuple[str, ...] = ("X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-For")
    bodiless_framing: Literal["chunked-octet-stream", "empty-text-plain"] = "chunked-octet-stream"
    upstream_errors: Literal["problem-json", "verbatim"] = "problem-json"
    filter_hop_by_hop: bool = False
    aliases: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    proposal: bool = False  # not a release: a design proposal, labelled as such in reports
    notes: str = ""
    tags: tuple[str, ...] = field(default=())

    def names(self) -> tuple[str, ...]:
        return (self.id, self.generation, *self.aliases)


G4 = GatewayProfile(
    id="as-is",
    generation="G4",
    title="AS-IS: JWT in X-BackendAI-SSO (PR #3353 'AS-IS')",
    releases="24.03.3-24.03.11 (backport of #2051), 24.09.0b1-24.09.14, 24.12.0-24.12.1",
    webserver_version="24.09.14",
    api_version="v8.20240915",
    session_required="all",
    signed="all",
    sid="header-or-empty",
    jwt=JwtRule(lifetime="session-max-age", claim_session="header-or-empty"),
    aliases=("G4",),
    sources=("24.03.3:src/ai/backend/web/proxy.py:209-224", "24.09.0:src/ai/backend/web/proxy.py:211-226"),
    tags=("sso",),
)

G5 = GatewayProfile(
    id="to-be",
    generation="G5",
    title="TO-BE: FastTrack token as Authorization: Bearer (PR #3353)",
    releases="25.1.0-25.1.1",
    webserver_version="25.1.1",
    api_version="v8.20240915",
    session_required="login-exact",
    signed="login-exact",
    sid="client-header",
    jwt=None,
    aliases=("G5",),
    sources=("25.1.0:src/ai/backend/web/server.py:657-666,703-709", "25.1.0:src/ai/backend/web/proxy.py:203-208"),
    tags=("bearer",),
)

PROFILES: tuple[GatewayProfile, ...] = (G4, G5)


def by_name() -> dict[str, GatewayProfile]:
    table: dict[str, GatewayProfile] = {}
    for profile in PROFILES:
        for name in profile.names():
            table[name] = profile
    return table


def resolve(name: str) -> GatewayProfile:
    try:
        return by_name()[name]
    except KeyError:
        known = ", ".join(p.id for p in PROFILES)
        raise KeyError(f"unknown gateway profile {name!r} (known: {known})") from None
