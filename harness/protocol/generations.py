"""Gateway profiles: each release generation of the webserver's ``/pipeline/`` proxy, as data.

Facts come from ``shared/reference/protocol-history.md`` (§1-§6, cited there as ``tag:path:line``) and were
checked on the wire against real releases (``real-webserver-peers.md``: 23.9.10 = G3, 24.9.14 = G4,
25.1.1 = G5, 25.19.2 = G6d-like). Adding a generation is adding an entry here; the rules that read these
fields live in :mod:`harness.protocol.gateway_rules`.

Tags are scenario modes. Each profile names its credential era (``anon``: FastTrack's own token, the
gateway adds no credential; ``sso``: the gateway mints ``X-BackendAI-SSO``; ``bearer``: the client's
``Authorization: Bearer`` reaches FastTrack). Facet tags are derived from the fields (:func:`facets`), so a
scenario can say *why* an expectation differs instead of listing generations:

  gate-all | gate-none | gate-login            which requests need a webserver session (else 401)
  sign-all | sign-none | sign-login            which requests are keypair-signed (client Authorization replaced)
  login-exact | login-suffix                   the login route: ``login/`` only, or any ``…login/``
  sid-never | sid-cookie-fallback | sid-or-empty | sid-login   how X-BackendAI-SessionID travels upstream
  jwt | no-jwt, jwt-1h | jwt-max-age, claim-cookie | claim-header   the minted JWT
  errors-problem-json | errors-verbatim        how an upstream 4xx/5xx reaches the client
  bodiless-chunked | bodiless-empty            framing of a bodiless request upstream
  hop-filter | hop-relay                       hop-by-hop response headers dropped, or relayed
  cookies-per-request | cookies-pooled         a fresh cookie jar per request, or pooled jars that keep
                                               earlier clients' cookies (25.12.0+)
  bearer-overwritten | bearer-forwarded        a client Authorization: Bearer on a non-login route is
                                               replaced by the keypair signature (G2-G4), or reaches FastTrack
  bearer-passthrough, proposal                 the transitional design proposal
  act-as-dropped | act-as-forwarded            a client X-BackendAI-Act-As is dropped (whitelist, §3.3), or
                                               forwarded on every HTTP pipeline route (26.9.6 observed)
  sid-manager-token                            the session id handed to the client is the manager's
                                               login-session token (26.4.0+; older lines mint their own)
  cookie-secure                                the session cookie carries Secure (26.4.3+ default)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal, get_args

from packaging.version import InvalidVersion, Version

# Which pipeline requests a rule applies to. "login-exact" is G5's ``POST /pipeline/{path:login/$}``;
# "login-suffix" is G6's ``POST /pipeline/{path:.*login/$}``; "except-login-suffix" is everything else.
RouteSet = Literal["all", "none", "login-exact", "login-suffix", "except-login-suffix"]

ACT_AS = "X-BackendAI-Act-As"
_LOGIN_EXACT = re.compile(r"^login/$")
_LOGIN_SUFFIX = re.compile(r"^.*login/$")


def route_matches(route: RouteSet, method: str, path: str) -> bool:
    """``path`` is the text after ``/pipeline/`` (no leading slash), as aiohttp's ``{path}`` capture."""
    if route == "all":
        return True
    if route == "none":
        return False
    if route == "except-login-suffix":
        return not route_matches("login-suffix", method, path)
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
Framing = Literal["chunked-octet-stream", "empty-text-plain"]  # bodiless requests upstream
ErrorRelay = Literal["problem-json", "verbatim"]  # upstream 4xx/5xx towards the client
CookieJar = Literal["per-request", "pooled"]
SidSource = Literal["webserver", "manager-token"]
# A header line repeated under the same spelling (peer-findings W3): the webserver's decrypt_payload middleware
# checks every request's headers with the trafaret ``extra_config_headers`` (X-BackendAI-Version, -Encoded and
# -SessionID declared, anything else an extra key), and a repeated extra key is "... key was shadowed", before any
# handler runs. "server-error": the DataError is not caught, aiohttp's plain 500 (up to 25.12.1); "bad-request":
# #5449 turns it into InvalidAPIParameters, a 400 (25.13.0 on); "first-line": no refusal, the first line is used
# (what no release does: the mutant of the contract check).
DuplicateHeaders = Literal["server-error", "bad-request", "first-line"]


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
    bodiless_framing: Framing = "chunked-octet-stream"
    upstream_errors: ErrorRelay = "problem-json"
    filter_hop_by_hop: bool = False
    # Requests in this set that carry a client ``Authorization: Bearer …`` are forwarded as G5+ forwards its
    # anonymous routes: no session check, no signature, no JWT, no session id (the transitional proposal).
    bearer_passthrough: RouteSet = "none"
    # "pooled" (#5223, 25.12.0+): one aiohttp session per (endpoint, domain, access_key) serves many requests, and
    # its cookie jar keeps every client cookie it was given: anonymous requests of one client carry cookies that
    # other clients sent before (observed with 25.19.2: another user's AIOHTTP_SESSION reached FastTrack).
    cookie_jar: CookieJar = "per-request"
    # Client headers forwarded on every HTTP pipeline route besides the HEADERS_TO_FORWARD whitelist
    # (Accept-Language, Authorization): 26.9.6 forwards X-BackendAI-Act-As (real-webserver-peers, "The 26.x line").
    extra_forwarded: tuple[str, ...] = ()
    # Where the session id handed to the client comes from: minted by the webserver (uuid4 hex), or the manager's
    # login-session token (26.4.0+, #10489: /server/login fails without it; protocol-history §3.6).
    sid_source: SidSource = "webserver"
    duplicate_headers: DuplicateHeaders = "server-error"
    cookie_secure: bool = False  # Set-Cookie AIOHTTP_SESSION ... Secure (security.cookie_secure default, 26.4.3+)
    # G1b+ route ``GET /pipeline/{path:stream/.*$}`` to the WebSocket handler (scenarios/websocket-stream.yaml).
    stream_route: bool = False
    aliases: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    proposal: bool = False  # not a release: a design proposal, labelled as such in reports
    notes: str = ""
    tags: tuple[str, ...] = field(default=())  # era tags given here; facet tags are appended from the fields

    def __post_init__(self) -> None:
        # Profiles are data typed with Literals; check them at import too, so a typo in a new entry fails loudly
        # with the profile and the field named, not as a silent "never matches".
        for name, kind in (("session_required", RouteSet), ("signed", RouteSet), ("bearer_passthrough", RouteSet),
                           ("sid", SidRule), ("bodiless_framing", Framing), ("upstream_errors", ErrorRelay),
                           ("cookie_jar", CookieJar), ("sid_source", SidSource),
                           ("duplicate_headers", DuplicateHeaders)):
            value, allowed = getattr(self, name), get_args(kind)
            if value not in allowed:
                raise ValueError(f"gateway profile {self.id!r}: {name}={value!r} is not one of {allowed}")
        object.__setattr__(self, "tags", tuple(dict.fromkeys((*self.tags, *facets(self)))))

    def names(self) -> tuple[str, ...]:
        return (self.id, self.generation, *self.aliases)

    def modes(self) -> frozenset[str]:
        """What a scenario's or a check's ``modes`` may name to apply to this profile: its names and its tags."""
        return frozenset((*self.names(), *self.tags))


def facets(p: GatewayProfile) -> tuple[str, ...]:
    """Behaviour tags derived from a profile's fields (see the module docstring)."""
    out = [
        {"all": "gate-all", "none": "gate-none"}.get(p.session_required, "gate-login"),
        {"all": "sign-all", "none": "sign-none"}.get(p.signed, "sign-login"),
    ]
    if p.signed in ("login-exact", "login-suffix"):
        out.append(p.signed)
    out.append({"none": "sid-never", "header-or-cookie": "sid-cookie-fallback", "header-or-empty": "sid-or-empty",
                "client-header": "sid-login"}[p.sid])
    if p.jwt is None:
        out.append("no-jwt")
    else:
        out += ["jwt", "jwt-1h" if p.jwt.lifetime == "1h" else "jwt-max-age",
                "claim-cookie" if p.jwt.claim_session == "cookie" else "claim-header"]
    out.append("errors-problem-json" if p.upstream_errors == "problem-json" else "errors-verbatim")
    out.append("bodiless-chunked" if p.bodiless_framing == "chunked-octet-stream" else "bodiless-empty")
    out.append("hop-filter" if p.filter_hop_by_hop else "hop-relay")
    out.append("cookies-pooled" if p.cookie_jar == "pooled" else "cookies-per-request")
    out.append("stream-route" if p.stream_route else "no-stream-route")
    # What happens to a client ``Authorization: Bearer`` on a non-login route.
    overwritten = p.signed == "all" and p.bearer_passthrough == "none"
    out.append("bearer-overwritten" if overwritten else "bearer-forwarded")
    if p.bearer_passthrough != "none":
        out.append("bearer-passthrough")
    out.append("act-as-forwarded" if ACT_AS in p.extra_forwarded else "act-as-dropped")
    if p.sid_source == "manager-token":
        out.append("sid-manager-token")
    if p.cookie_secure:
        out.append("cookie-secure")
    if p.proposal:
        out.append("proposal")
    return tuple(out)


G0 = GatewayProfile(
    id="G0",
    generation="G0",
    title="G0: webserver login required, then forwarded anonymously (#503)",
    releases="22.06.0b2-b4, 22.09.0b1-22.09.23, 23.03.0a1-23.03.2",
    webserver_version="23.03.2",
    api_version="v6.20230315",
    session_required="all",
    signed="none",
    sid="none",
    jwt=None,
    sources=("22.06.0b2:src/ai/backend/web/server.py:601-605", "22.06.0b2:src/ai/backend/web/proxy.py:144-152",
             "23.03.2:src/ai/backend/web/proxy.py:158-161"),
    notes="Modelled at its 23.03 state: X-Forwarded-Host/Proto exist only since 22.09.13/23.03.0a1 and the "
          "X-BackendAI-SessionID header is accepted only since 22.09.5 (cookie only before).",
    tags=("anon",),
)

G1A = GatewayProfile(
    id="G1a",
    generation="G1a",
    title="G1a: no webserver-login check, forwarded anonymously (#1275)",
    releases="23.03.3",
    webserver_version="23.03.3",
    api_version="v6.20230315",
    session_required="none",
    signed="none",
    sid="none",
    jwt=None,
    sources=("23.03.3:src/ai/backend/web/proxy.py:158-167",),
    tags=("anon",),
)

G1B = GatewayProfile(
    id="G1b",
    generation="G1b",
    title="G1b: as G1a, plus the anonymous WebSocket route stream/ (#1294)",
    releases="23.03.4-23.03.9",
    webserver_version="23.03.4",
    api_version="v6.20230315",
    session_required="none",
    signed="none",
    sid="none",
    jwt=None,
    stream_route=True,
    aliases=("G1",),
    sources=("23.03.3:src/ai/backend/web/proxy.py:158-167", "23.03.4:src/ai/backend/web/server.py:660",
             "23.03.4:src/ai/backend/web/proxy.py:357-364"),
    notes="Same HTTP contract as G1a; differs only by the WebSocket route (not exercised yet).",
    tags=("anon",),
)

G2 = GatewayProfile(
    id="G2",
    generation="G2",
    title="G2: every request signed + X-BackendAI-SSO JWT (exp 1 h, claim from the cookie) (#1350)",
    releases="23.03.10-23.03.12 (backport a24cd2c103), 23.09.0a1-a4",
    webserver_version="23.03.10",
    api_version="v7.20230615",
    session_required="all",
    signed="all",
    sid="header-or-cookie",
    jwt=JwtRule(lifetime="1h", claim_session="cookie"),
    stream_route=True,
    sources=("23.03.10:src/ai/backend/web/proxy.py:163", "23.03.10:src/ai/backend/web/proxy.py:206-224"),
    tags=("sso",),
)

G3 = GatewayProfile(
    id="G3",
    generation="G3",
    title="G3: as G2, JWT exp = session max_age (#1556)",
    releases="23.09.0b1-23.09.11, 24.03.0dev0-24.03.2",
    webserver_version="23.09.10",
    api_version="v7.20230615",
    session_required="all",
    signed="all",
    sid="header-or-cookie",
    jwt=JwtRule(lifetime="session-max-age", claim_session="cookie"),
    stream_route=True,
    sources=("23.09.0b1:src/ai/backend/web/proxy.py:209-226", "24.03.3:src/ai/backend/web/config.py:130"),
    notes="Observed on the wire with 23.9.10: claim null for header-only clients.",
    tags=("sso",),
)

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
    stream_route=True,
    aliases=("G4",),
    sources=("24.03.3:src/ai/backend/web/proxy.py:209-224", "24.09.0:src/ai/backend/web/proxy.py:211-226"),
    tags=("sso",),
)

TRANSITIONAL = GatewayProfile(
    id="transitional",
    generation="G4.5",
    title="PROPOSAL: G4, but a client Authorization: Bearer on a non-login route is forwarded as G5 does",
    releases="none (design proposal, not a release)",
    webserver_version="24.12.1",
    api_version="v8.20240915",
    session_required="all",
    signed="all",
    sid="header-or-empty",
    jwt=JwtRule(lifetime="session-max-age", claim_session="header-or-empty"),
    bearer_passthrough="except-login-suffix",
    stream_route=True,
    proposal=True,
    sources=("PR #3353 AS-IS and TO-BE diagrams (both client styles through one gateway)",),
    notes="Lets AS-IS clients (session + X-BackendAI-SSO) and TO-BE clients (Authorization: Bearer) share one "
          "gateway while FastTrack accepts both (the transitional FastTrack model): clients migrate one by one.",
    tags=("sso", "bearer"),
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
    stream_route=True,
    aliases=("G5",),
    sources=("25.1.0:src/ai/backend/web/server.py:657-666,703-709", "25.1.0:src/ai/backend/web/proxy.py:203-208"),
    tags=("bearer",),
)

G6 = GatewayProfile(
    id="G6",
    generation="G6",
    title="G6: as G5, login route is any path ending in login/ (#3574)",
    releases="25.2.0-25.11.4 (G6a)",
    webserver_version="25.11.4",
    api_version="v8.20240915",
    session_required="login-suffix",
    signed="login-suffix",
    sid="client-header",
    jwt=None,
    stream_route=True,
    aliases=("G6a",),
    sources=("25.2.0:src/ai/backend/web/server.py:709",),
    tags=("bearer",),
)

G6B = GatewayProfile(
    id="G6b",
    generation="G6b",
    title="G6b-like: as G6, pooled client sessions whose cookie jars keep earlier clients' cookies (#5223)",
    releases="25.12.0-25.13.2",
    webserver_version="25.13.2",
    api_version="v9.20250722",
    session_required="login-suffix",
    signed="login-suffix",
    sid="client-header",
    jwt=None,
    cookie_jar="pooled",
    stream_route=True,
    sources=("25.12.0:src/ai/backend/web/auth.py:52,80-95", "25.1.0:src/ai/backend/web/proxy.py:184",
             "real-webserver-peers: 25.19.2 ft_api_noauth / ft_api_bogus_sid carried a Cookie the client never sent"),
    notes="Modelled at 25.12's state for a repeated header line (500, as 25.12.1 answered): from 25.13.0 the "
          "webserver catches the header check's error and answers 400 (#5449, 25.13.0:src/ai/backend/web/proxy.py:"
          "136-139), so 25.13.0-25.13.2 differ from this profile there (peer-findings D1). The cookie leak is "
          "inferred from aiohttp CookieJar semantics and observed with 25.19.2.",
    tags=("bearer",),
)

G6C = GatewayProfile(
    id="G6c",
    generation="G6c",
    title="G6c-like: hop-by-hop response filter, bodiless requests as Content-Length 0 + text/plain (#5709)",
    releases="25.13.3-25.13.4",
    webserver_version="25.13.4",
    api_version="v9.20250722",
    session_required="login-suffix",
    signed="login-suffix",
    sid="client-header",
    jwt=None,
    bodiless_framing="empty-text-plain",
    filter_hop_by_hop=True,
    cookie_jar="pooled",
    duplicate_headers="bad-request",
    stream_route=True,
    sources=("25.13.3:src/ai/backend/web/proxy.py:36,239", "25.13.3:src/ai/backend/web/server.py:682-683",
             "25.13.0:src/ai/backend/web/proxy.py:136-139 (#5449: a repeated header line is a 400)"),
    tags=("bearer",),
)

G6D = GatewayProfile(
    id="G6d",
    generation="G6d",
    title="G6d-like: as G6c, upstream 4xx/5xx relayed verbatim instead of problem+json (#5774)",
    releases="25.14.0-25.15.12; same HTTP contract in G6e (25.16.0rc1-26.4.4rc3) and G6f (26.4.4rc4-26.8.1, main)",
    webserver_version="25.19.2",
    api_version="v9.20250722",
    session_required="login-suffix",
    signed="login-suffix",
    sid="client-header",
    jwt=None,
    bodiless_framing="empty-text-plain",
    upstream_errors="verbatim",
    filter_hop_by_hop=True,
    cookie_jar="pooled",
    duplicate_headers="bad-request",
    stream_route=True,
    aliases=("G6e", "G6f"),
    sources=("25.14.0:src/ai/backend/client/request.py:612", "25.14.0:src/ai/backend/web/proxy.py:219",
             "26.8.1:src/ai/backend/web/proxy.py:365-392"),
    notes="Observed on the wire with 25.19.2 (G6e). G6e/G6f differ only for WebSocket upgrades.",
    tags=("bearer",),
)

G6G = GatewayProfile(
    id="G6g",
    generation="G6g",
    title="G6g-like: as G6d, a client X-BackendAI-Act-As is forwarded on login and anonymous routes",
    releases="26.9.0-26.9.6 (inferred: first tag not verified; 26.8.1 forwards only Accept-Language, Authorization)",
    webserver_version="26.9.6",
    api_version="v9.20250722",
    session_required="login-suffix",
    signed="login-suffix",
    sid="client-header",
    jwt=None,
    bodiless_framing="empty-text-plain",
    upstream_errors="verbatim",
    filter_hop_by_hop=True,
    cookie_jar="pooled",
    duplicate_headers="bad-request",
    stream_route=True,
    extra_forwarded=(ACT_AS,),
    sid_source="manager-token",
    cookie_secure=True,
    aliases=("26.9",),
    sources=("real-webserver-peers.md 'The 26.x line': 26.9.6 on the wire, differences 1-4 from 25.19.2",
             "26.8.1:src/ai/backend/web/proxy.py:37-40 (HTTP_HEADERS_TO_FORWARD without Act-As)",
             "26.4.0:src/ai/backend/web/server.py:443 (session id = manager session_token)",
             "#11105 (security.cookie_secure, 26.4.3)"),
    notes="The session id is the manager's session_token from 26.4.0 and the cookie Secure from 26.4.3, so "
          "26.4-26.8 releases share those two with G6g; they are not visible on the pipeline hop and are modelled "
          "only here. Which 26.9 tag first forwards Act-As is inferred (observed: 26.9.6).",
    tags=("bearer",),
)

PROFILES: tuple[GatewayProfile, ...] = (G0, G1A, G1B, G2, G3, G4, TRANSITIONAL, G5, G6, G6B, G6C, G6D, G6G)

# protocol-history §2 (release -> generation, by code fingerprint of every tag) as lower bounds: a release
# belongs to the last row whose first version it reaches. Pre-releases sort before their release (PEP 440).
RELEASE_MAP: tuple[tuple[str, str], ...] = (
    ("22.06.0b2", "G0"),
    ("23.03.3", "G1a"),
    ("23.03.4", "G1b"),
    ("23.03.10", "G2"),
    ("23.09.0a1", "G2"),   # main: 23.09.0a1-a4
    ("23.09.0b1", "G3"),
    ("24.03.3rc1", "as-is"),
    ("25.1.0", "to-be"),
    ("25.2.0", "G6"),
    ("25.12.0", "G6b"),
    ("25.13.3", "G6c"),
    ("25.14.0", "G6d"),    # G6d, G6e (25.16.0rc1-26.4.4rc3), G6f (26.4.4rc4-26.8.x): one HTTP contract
    ("26.9.0", "G6g"),     # inferred from 26.9.6 (real-webserver-peers "The 26.x line")
)



def by_name(profiles: tuple[GatewayProfile, ...] | None = None) -> dict[str, GatewayProfile]:
    """Every id, generation and alias -> its profile; two profiles claiming one name is an error."""
    table: dict[str, GatewayProfile] = {}
    for profile in PROFILES if profiles is None else profiles:
        for name in profile.names():
            other = table.get(name)
            if other is not None and other is not profile:
                raise ValueError(f"gateway profiles {other.id!r} and {profile.id!r} both claim the name {name!r}")
            table[name] = profile
    return table


def resolve(name: str) -> GatewayProfile:
    try:
        return by_name()[name]
    except KeyError:
        known = ", ".join(p.id for p in PROFILES)
        raise KeyError(f"unknown gateway profile {name!r} (known: {known})") from None


def generation_of(version: str) -> GatewayProfile | None:
    """The profile a webserver release belongs to by :data:`RELEASE_MAP`; None before the pipeline proxy."""
    try:
        v = Version(version)
    except InvalidVersion:
        return None
    found = None
    for first, profile_id in RELEASE_MAP:
        if v >= Version(first):
            found = profile_id
    return None if found is None else resolve(found)
