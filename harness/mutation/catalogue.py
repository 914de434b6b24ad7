"""Deviant gateways for mutation testing of the scenarios (issue #6, item 4).

A mutant is the reference gateway of one profile (its *base*) with exactly one deviation: a header dropped,
renamed or duplicated, a wrong JWT claim, algorithm or lifetime, a credential forwarded or overwritten where it
must not be, cookies leaking across requests, a response header or status rewritten, a path or query mangled, a
session check skipped. The suite must tell each one from its base: run in the base profile's required cells
(with the base's scenarios and policy), at least one cell must stop being ``compatible``, and at least one
failing scenario must first fail on the mutant's *intended hop*, the hop where the deviation is visible.

Mutants are data plus small pure functions over what :mod:`harness.protocol.gateway_rules` decided; they plug
into :class:`harness.actors.gateway.ReferenceGateway` through its :class:`~harness.actors.gateway.Mutation`
hooks, so the gateway itself is never copied. ``python -m harness mutate`` (:mod:`harness.mutation.run`) runs them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt

from harness.actors.gateway import Mutation
from harness.engine.targets import ReferenceLauncher
from harness.protocol import gateway_rules as rules
from harness.protocol import signing
from harness.protocol.fasttrack_models import VERSION_HEADER
from harness.protocol.generations import ACT_AS, GatewayProfile, resolve, route_matches
from harness.protocol.headers import Headers
from harness.protocol.hops import Hop

PlanFn = Callable[[rules.ClientRequest, rules.Session | None, rules.UpstreamPlan, rules.GatewayConfig],
                  rules.UpstreamPlan]
RelayFn = Callable[[rules.Relay], rules.Relay]


@dataclass(frozen=True)
class Mutant(Mutation):
    """One deviation from the reference gateway of profile ``base``.

    ``change``: the profile the mutant runs instead of the base's (the expectations stay the base's);
    ``upstream``: rewrites hop 2 as the gateway sends it; ``reply``: rewrites the gateway's own reply (its 401);
    ``downstream``: rewrites hop 4 as the gateway relays it."""

    id: str
    base: str  # the profile id whose scenarios and support policy judge the mutant
    description: str
    hop: Hop  # where the suite must catch it: the first failing hop of at least one failing scenario
    change: Callable[[GatewayProfile], GatewayProfile] | None = None
    upstream: PlanFn | None = None
    reply: Callable[[rules.Reply], rules.Reply] | None = None
    downstream: RelayFn | None = None
    # The header the deviation removes or changes, when it is one the contract names at ``hop``: the mutant then
    # counts as caught at its hop only by a failure on that header (tests/mutation/test_catalogue.py audits that every
    # header the scenarios' contract checks name on hops 2 and 4 has such a mutant).
    header: str | None = None

    @property
    def base_profile(self) -> GatewayProfile:
        return resolve(self.base)

    def profile(self, profile: GatewayProfile) -> GatewayProfile:
        return self.change(profile) if self.change is not None else profile

    def plan(self, req: rules.ClientRequest, session: rules.Session | None, plan: rules.UpstreamPlan | rules.Reply,
             config: rules.GatewayConfig) -> rules.UpstreamPlan | rules.Reply:
        if isinstance(plan, rules.Reply):
            return self.reply(plan) if self.reply is not None else plan
        return self.upstream(req, session, plan, config) if self.upstream is not None else plan

    def relay(self, relay: rules.Relay) -> rules.Relay:
        return self.downstream(relay) if self.downstream is not None else relay

    def launcher(self) -> ReferenceLauncher:
        """A matrix row labelled with the mutant's id, judged as its base profile."""
        return ReferenceLauncher(self.base_profile, mutation=self, name=self.id)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "base": self.base, "description": self.description, "intended_hop": self.hop,
                "header": self.header}


# --- profile changes ------------------------------------------------------------------------------------------------

def with_fields(**fields: Any) -> Callable[[GatewayProfile], GatewayProfile]:
    def fn(profile: GatewayProfile) -> GatewayProfile:
        return dataclasses.replace(profile, **fields)
    return fn


def with_jwt(**fields: Any) -> Callable[[GatewayProfile], GatewayProfile]:
    def fn(profile: GatewayProfile) -> GatewayProfile:
        assert profile.jwt is not None
        return dataclasses.replace(profile, jwt=dataclasses.replace(profile.jwt, **fields))
    return fn


# --- small transformations of hop 2 -------------------------------------------------------------------------------

def _headers(plan: rules.UpstreamPlan, headers: Headers) -> rules.UpstreamPlan:
    return dataclasses.replace(plan, headers=headers)


def drop_header(name: str, *, login_only: bool = False) -> PlanFn:
    def fn(req: rules.ClientRequest, session: rules.Session | None, plan: rules.UpstreamPlan,
           config: rules.GatewayConfig) -> rules.UpstreamPlan:
        if login_only and not route_matches("login-suffix", req.method, req.path):
            return plan
        return _headers(plan, plan.headers.without(name))
    return fn


def rename_header(old: str, new: str) -> PlanFn:
    def fn(req: rules.ClientRequest, session: rules.Session | None, plan: rules.UpstreamPlan,
           config: rules.GatewayConfig) -> rules.UpstreamPlan:
        return _headers(plan, Headers(tuple((new if k.lower() == old.lower() else k, v) for k, v in plan.headers)))
    return fn


def duplicate_header(name: str) -> PlanFn:
    """Every line of ``name`` is sent twice (e.g. a copied client value next to the gateway's own)."""
    def fn(req: rules.ClientRequest, session: rules.Session | None, plan: rules.UpstreamPlan,
           config: rules.GatewayConfig) -> rules.UpstreamPlan:
        out: list[tuple[str, str]] = []
        for k, v in plan.headers:
            out += [(k, v), (k, v)] if k.lower() == name.lower() else [(k, v)]
        return _headers(plan, Headers(tuple(out)))
    return fn


def replace_header(name: str, value: Callable[[str], str]) -> PlanFn:
    def fn(req: rules.ClientRequest, session: rules.Session | None, plan: rules.UpstreamPlan,
           config: rules.GatewayConfig) -> rules.UpstreamPlan:
        return _headers(plan, Headers(tuple((k, value(v) if k.lower() == name.lower() else v)
                                            for k, v in plan.headers)))
    return fn


def remint_jwt(**claims: Any) -> PlanFn:
    """The JWT the gateway minted, re-signed with some claims changed (None: left out; ``_secret``: signed with
    that key instead); a client's own X-BackendAI-SSO is left."""
    def fn(req: rules.ClientRequest, session: rules.Session | None, plan: rules.UpstreamPlan,
           config: rules.GatewayConfig) -> rules.UpstreamPlan:
        if req.headers.get(rules.SSO_HEADER) is not None:
            return plan

        def remint(token: str) -> str:
            header = jwt.get_unverified_header(token)
            payload = jwt.decode(token, options={"verify_signature": False})
            changed = {k: v for k, v in claims.items() if not k.startswith("_")}
            payload = {k: v for k, v in {**payload, **changed}.items() if v is not None}  # None: left out
            return jwt.encode(payload, key=str(claims.get("_secret", config.jwt_secret)), algorithm=header["alg"])
        return replace_header(rules.SSO_HEADER, remint)(req, session, plan, config)
    return fn


def set_header(name: str, value: str) -> PlanFn:
    """``name`` is sent with ``value`` (replacing what the gateway, or its HTTP client, would send)."""
    def fn(req: rules.ClientRequest, session: rules.Session | None, plan: rules.UpstreamPlan,
           config: rules.GatewayConfig) -> rules.UpstreamPlan:
        return _headers(plan, plan.headers.without(name).with_added(name, value))
    return fn


def bodiless_length(req: rules.ClientRequest, session: rules.Session | None, plan: rules.UpstreamPlan,
                    config: rules.GatewayConfig) -> rules.UpstreamPlan:
    """A bodiless request goes upstream with ``Content-Length: 0``, not chunked (its Content-Type unchanged)."""
    return plan if req.has_body else set_header("Content-Length", "0")(req, session, plan, config)


def anonymous_only(inner: PlanFn) -> PlanFn:
    """``inner`` on every route but the login route."""
    def fn(req: rules.ClientRequest, session: rules.Session | None, plan: rules.UpstreamPlan,
           config: rules.GatewayConfig) -> rules.UpstreamPlan:
        return plan if route_matches("login-suffix", req.method, req.path) else inner(req, session, plan, config)
    return fn


def forward_client_header(name: str) -> PlanFn:
    """A client header outside the whitelist reaches FastTrack (appended as the client sent it)."""
    def fn(req: rules.ClientRequest, session: rules.Session | None, plan: rules.UpstreamPlan,
           config: rules.GatewayConfig) -> rules.UpstreamPlan:
        value = req.headers.get(name)
        if value is None or name in plan.headers:
            return plan
        return _headers(plan, plan.headers.with_added(name, value))
    return fn


# Set by the HTTP client itself, or hop-by-hop: never copied even by a gateway without a whitelist.
_NOT_COPIED = frozenset({"host", "content-length", "transfer-encoding", "connection", "keep-alive", "te", "upgrade",
                         "cookie"})


def forward_all_client_headers(req: rules.ClientRequest, session: rules.Session | None, plan: rules.UpstreamPlan,
                               config: rules.GatewayConfig) -> rules.UpstreamPlan:
    """No whitelist: every end-to-end client header the gateway does not set itself reaches FastTrack."""
    extra = [(k, v) for k, v in req.headers if k.lower() not in _NOT_COPIED and k not in plan.headers]
    return _headers(plan, Headers((*plan.headers.pairs, *extra)))


def overwrite_client_authorization(req: rules.ClientRequest, session: rules.Session | None,
                                   plan: rules.UpstreamPlan, config: rules.GatewayConfig) -> rules.UpstreamPlan:
    """On an anonymous route, the client's Authorization is replaced by the webserver's own credential: a
    keypair signature when the request carries a known session, nothing otherwise."""
    if "Authorization" not in req.headers or route_matches("login-suffix", req.method, req.path):
        return plan
    headers = [(k, v) for k, v in plan.headers if k.lower() != "authorization"]
    if session is not None:
        headers.append(("Authorization", f"BackendAI signMethod=HMAC-SHA256, credential={session.access_key}:"
                                         + "0" * 64))
    return _headers(plan, Headers(tuple(headers)))


def append_peer_to_forwarded_for(req: rules.ClientRequest, session: rules.Session | None,
                                 plan: rules.UpstreamPlan, config: rules.GatewayConfig) -> rules.UpstreamPlan:
    """A client X-Forwarded-For is appended to (``client, peer``) instead of copied."""
    if req.headers.get("X-Forwarded-For") is None:
        return plan
    return replace_header("X-Forwarded-For", lambda v: f"{v}, {req.peer_ip}")(req, session, plan, config)


def keep_prefix(req: rules.ClientRequest, session: rules.Session | None, plan: rules.UpstreamPlan,
                config: rules.GatewayConfig) -> rules.UpstreamPlan:
    """``/pipeline/`` is not stripped: ``/pipeline/api/x/`` goes upstream as ``/pipeline/api/x/``."""
    return dataclasses.replace(plan, rel_url="/pipeline" + plan.rel_url)


def drop_query(req: rules.ClientRequest, session: rules.Session | None, plan: rules.UpstreamPlan,
               config: rules.GatewayConfig) -> rules.UpstreamPlan:
    return dataclasses.replace(plan, rel_url=plan.rel_url.partition("?")[0])


def resign(**wrong: Any) -> PlanFn:
    """The keypair signature computed over a signing string with one input wrong (the Authorization line is
    replaced by the signature of the changed input; every header the gateway sends stays as it was). Each value
    is a function of the right input's field, e.g. ``rel_url=lambda u: u.partition("?")[0]``."""
    def fn(req: rules.ClientRequest, session: rules.Session | None, plan: rules.UpstreamPlan,
           config: rules.GatewayConfig) -> rules.UpstreamPlan:
        if plan.signed is None or session is None:
            return plan
        inp = dataclasses.replace(plan.signed, **{k: f(getattr(plan.signed, k)) for k, f in wrong.items()})
        value = signing.authorization_header(inp, session.access_key, session.secret_key)
        return replace_header("Authorization", lambda _: value)(req, session, plan, config)
    return fn


SIGNING_INPUTS: dict[str, tuple[str, Callable[[str], str]]] = {
    # what the signing string gets wrong -> (SigningInput field, the wrong value from the right one)
    "method": ("method", lambda m: "GET" if m.upper() != "GET" else "POST"),
    "path": ("rel_url", lambda u: "/pipeline" + u),
    "query": ("rel_url", lambda u: u.partition("?")[0]),
    "date": ("date", lambda d: (datetime.fromisoformat(d) + timedelta(seconds=1)).isoformat()),
    "content-type": ("content_type", lambda ct: "text/plain" if ct != "text/plain" else "application/json"),
    "api-version": ("api_version", lambda v: "v0.00000000"),
    "host": ("host", lambda h: "fasttrack.invalid:9500"),
}


def json_as_text(value: str) -> str:
    return "text/plain; charset=utf-8" if value.lower().startswith("application/json") else value


# --- hop 4 ----------------------------------------------------------------------------------------------------------

def as_plain_json(reply: rules.Reply) -> rules.Reply:
    """The gateway's own error says ``application/json`` instead of ``application/problem+json``."""
    return dataclasses.replace(reply, headers=Headers.of([("Content-Type", "application/json")]))


def drop_response_header(name: str) -> RelayFn:
    def fn(relay: rules.Relay) -> rules.Relay:
        return dataclasses.replace(relay, headers=relay.headers.without(name))
    return fn


def duplicate_response_header(name: str) -> RelayFn:
    """Every line of ``name`` reaches the client twice (a relay that appends instead of replacing)."""
    def fn(relay: rules.Relay) -> rules.Relay:
        out: list[tuple[str, str]] = []
        for k, v in relay.headers:
            out += [(k, v), (k, v)] if k.lower() == name.lower() else [(k, v)]
        return dataclasses.replace(relay, headers=Headers(tuple(out)))
    return fn


def replace_response_header(name: str, value: Callable[[str], str]) -> RelayFn:
    def fn(relay: rules.Relay) -> rules.Relay:
        return dataclasses.replace(relay, headers=Headers(tuple((k, value(v) if k.lower() == name.lower() else v)
                                                                for k, v in relay.headers)))
    return fn


def add_response_header(name: str, value: str) -> RelayFn:
    """A header the gateway must not relay (or never sends) reaches the client."""
    def fn(relay: rules.Relay) -> rules.Relay:
        return dataclasses.replace(relay, headers=relay.headers.with_added(name, value))
    return fn


def rewrite_status(old: int, new: int, reason: str) -> RelayFn:
    def fn(relay: rules.Relay) -> rules.Relay:
        return dataclasses.replace(relay, status=new, reason=reason) if relay.status == old else relay
    return fn


# --- the catalogue --------------------------------------------------------------------------------------------------

G2F: Hop = "gateway_to_fasttrack"
G2C: Hop = "gateway_to_client"

_LISTED: tuple[Mutant, ...] = (
    # Headers dropped, renamed, duplicated.
    Mutant("to-be~login-sid-dropped", "to-be", "X-BackendAI-SessionID is not forwarded on the login route", G2F,
           upstream=drop_header(rules.SESSION_HEADER, login_only=True), header=rules.SESSION_HEADER),
    Mutant("as-is~sso-renamed", "as-is", "X-BackendAI-SSO is sent as X-BackendAI-Sso-Token", G2F,
           upstream=rename_header(rules.SSO_HEADER, "X-BackendAI-Sso-Token"), header=rules.SSO_HEADER),
    Mutant("as-is~authorization-twice", "as-is", "the keypair signature is sent in two Authorization lines", G2F,
           upstream=duplicate_header("Authorization"), header="Authorization"),
    Mutant("as-is~x-forwarded-for-missing", "as-is", "X-Forwarded-For is not set", G2F,
           change=with_fields(forwarded_proxy_headers=("X-Forwarded-Host", "X-Forwarded-Proto"))),
    Mutant("G6~accept-language-dropped", "G6", "Accept-Language (whitelisted) is not forwarded", G2F,
           upstream=drop_header("Accept-Language"), header="Accept-Language"),
    Mutant("G1a~x-forwarded-host-dropped", "G1a", "X-Forwarded-Host is not set", G2F,
           change=with_fields(forwarded_proxy_headers=("X-Forwarded-Proto", "X-Forwarded-For")),
           header="X-Forwarded-Host"),
    Mutant("G1b~no-header-whitelist", "G1b", "every end-to-end client header is copied (no whitelist)", G2F,
           upstream=forward_all_client_headers),
    Mutant("G3~cookie-dropped", "G3", "the client's cookies are not forwarded upstream", G2F,
           upstream=drop_header("Cookie"), header="Cookie"),
    Mutant("as-is~x-forwarded-for-appended", "as-is", "a client X-Forwarded-For is appended to, not copied", G2F,
           upstream=append_peer_to_forwarded_for, header="X-Forwarded-For"),
    Mutant("G6c~content-type-changed", "G6c", "a JSON Content-Type goes upstream as text/plain", G2F,
           upstream=replace_header("Content-Type", json_as_text), header="Content-Type"),
    # The minted JWT: its algorithm, lifetime, secret and each claim the gateway takes from the session.
    Mutant("as-is~jwt-wrong-iss", "as-is", "the minted JWT says iss 'Backend.AI Web Server'", G2F,
           upstream=remint_jwt(iss="Backend.AI Web Server")),
    Mutant("as-is~jwt-hs384", "as-is", "the JWT is signed with HS384 instead of HS256", G2F,
           change=with_jwt(algorithm="HS384")),
    Mutant("G3~jwt-lifetime-1h", "G3", "the JWT lives 1 h (G2) where the session max_age is due", G2F,
           change=with_jwt(lifetime="1h")),
    Mutant("as-is~jwt-claim-from-cookie", "as-is", "the aiohttp_session claim comes from the cookie (G3)", G2F,
           change=with_jwt(claim_session="cookie")),
    Mutant("as-is~jwt-wrong-secret", "as-is", "the JWT is signed with another secret", G2F,
           upstream=remint_jwt(_secret="not-the-shared-secret-but-long-enough-for-hs256")),
    Mutant("as-is~jwt-other-access-key", "as-is", "the JWT's access_key claim is not the session's", G2F,
           upstream=remint_jwt(access_key="AKIAOTHERUSER0000000")),
    Mutant("as-is~jwt-other-session", "as-is", "the JWT's aiohttp_session claim is not the session's", G2F,
           upstream=remint_jwt(aiohttp_session="5ec0ffee5ec0ffee5ec0ffee5ec0ffee")),
    Mutant("as-is~jwt-no-exp", "as-is", "the JWT carries no exp claim", G2F, upstream=remint_jwt(exp=None)),
    Mutant("G3~jwt-no-iat", "G3", "the JWT carries no iat claim", G2F, upstream=remint_jwt(iat=None)),
    Mutant("as-is~sid-omitted", "as-is",
           "X-BackendAI-SessionID is omitted without a client header instead of sent as \"\" (G3)", G2F,
           change=with_fields(sid="header-or-cookie")),
    # Credentials where they must not be.
    Mutant("to-be~client-sso-forwarded", "to-be", "a client X-BackendAI-SSO reaches FastTrack in TO-BE", G2F,
           upstream=forward_client_header(rules.SSO_HEADER)),
    Mutant("G6~anonymous-routes-signed", "G6", "TO-BE non-login routes are signed (and need a session)", G2F,
           change=with_fields(signed="all")),
    Mutant("to-be~client-authorization-overwritten", "to-be",
           "the client's Authorization is replaced on the anonymous routes", G2F,
           upstream=overwrite_client_authorization),
    Mutant("transitional~no-bearer-passthrough", "transitional",
           "a client Authorization: Bearer is overwritten by the signature (plain G4)", G2F,
           change=with_fields(bearer_passthrough="none")),
    Mutant("G0~session-check-skipped", "G0", "requests without a session are forwarded instead of 401", G2F,
           change=with_fields(session_required="none")),
    # Cookies.
    Mutant("to-be~sid-cookie-fallback", "to-be",
           "the login sends the cookie's session id when the client sent no header (G3 rule)", G2F,
           change=with_fields(sid="header-or-cookie")),
    Mutant("to-be~login-suffix", "to-be", "any ...login/ is the login route (G6) instead of login/ only", G2F,
           change=with_fields(session_required="login-suffix", signed="login-suffix")),
    Mutant("G6~pooled-cookie-jar", "G6", "pooled client sessions: cookies stay in the jar across requests", G2F,
           change=with_fields(cookie_jar="pooled")),
    # Path, query, framing.
    Mutant("G6~prefix-not-stripped", "G6", "/pipeline/ is not stripped from the upstream path", G2F,
           upstream=keep_prefix),
    Mutant("G6c~query-dropped", "G6c", "the query string is dropped", G2F, upstream=drop_query),
    Mutant("G6c~bodiless-chunked", "G6c", "bodiless requests chunked as octet-stream (before #5709)", G2F,
           change=with_fields(bodiless_framing="chunked-octet-stream")),
    # The way back.
    Mutant("G6d~version-header-dropped", "G6d", "X-BackendAI-FastTrack-Version is not relayed to the client", G2C,
           downstream=drop_response_header(VERSION_HEADER), header=VERSION_HEADER),
    Mutant("G6d~upstream-401-as-200", "G6d", "an upstream 401 reaches the client as 200", G2C,
           downstream=rewrite_status(401, 200, "OK")),
    Mutant("G6d~version-header-twice", "G6d", "X-BackendAI-FastTrack-Version reaches the client twice", G2C,
           downstream=duplicate_response_header(VERSION_HEADER)),
    Mutant("G1b~version-header-twice", "G1b", "X-BackendAI-FastTrack-Version reaches the client twice", G2C,
           downstream=duplicate_response_header(VERSION_HEADER)),
    Mutant("as-is~sso-twice-to-client", "as-is", "the login's X-BackendAI-SSO reaches the client twice", G2C,
           downstream=duplicate_response_header(rules.SSO_HEADER), header=rules.SSO_HEADER),
    Mutant("to-be~set-cookie-dropped", "to-be", "an upstream Set-Cookie is not relayed to the client", G2C,
           downstream=drop_response_header("Set-Cookie"), header="Set-Cookie"),
    Mutant("G6~response-json-as-text", "G6", "a JSON answer reaches the client typed text/plain", G2C,
           downstream=replace_response_header("Content-Type", json_as_text), header="Content-Type"),
    Mutant("as-is~errors-verbatim", "as-is", "upstream 4xx/5xx relayed verbatim instead of problem+json", G2C,
           change=with_fields(upstream_errors="verbatim")),
    Mutant("G6c~hop-by-hop-relayed", "G6c", "hop-by-hop response headers are relayed (before #5709)", G2C,
           change=with_fields(filter_hop_by_hop=False)),
    Mutant("as-is~own-401-not-problem-json", "as-is", "the gateway's own 401 is typed application/json", G2C,
           reply=as_plain_json),
    # The 26.x session (scenarios/login-session-26.yaml).
    Mutant("G6g~session-cookie-not-secure", "G6g", "the session cookie lacks Secure (cookie_secure = false)", G2C,
           change=with_fields(cookie_secure=False)),
    Mutant("G6g~session-id-minted", "G6g", "the session id is minted by the webserver, not the manager's token",
           G2C, change=with_fields(sid_source="webserver")),
    # A repeated credential header (scenarios/duplicate-credentials.yaml, W3).
    Mutant("G6d~duplicate-header-forwarded", "G6d", "a credential header sent twice is not refused: its first line "
           "is forwarded", G2F, change=with_fields(duplicate_headers="first-line")),
    Mutant("G6d~duplicate-header-500", "G6d", "a credential header sent twice is answered 500 (as up to 25.12)",
           G2C, change=with_fields(duplicate_headers="server-error")),
)

_HEADERS: tuple[Mutant, ...] = (
    # Every other header the contract names on hops 2 and 4, removed, changed or let through (the audit in
    # tests/mutation/test_catalogue.py lists them from the scenarios).
    Mutant("to-be~x-forwarded-proto-missing", "to-be", "X-Forwarded-Proto is not set", G2F,
           change=with_fields(forwarded_proxy_headers=("X-Forwarded-Host", "X-Forwarded-For")),
           header="X-Forwarded-Proto"),
    Mutant("to-be~user-agent-changed", "to-be", "the SDK User-Agent is replaced by aiohttp's", G2F,
           upstream=replace_header("User-Agent", lambda _: "Python/3.12 aiohttp/3.10"), header="User-Agent"),
    Mutant("to-be~domain-dropped", "to-be", "X-BackendAI-Domain is not sent", G2F,
           upstream=drop_header("X-BackendAI-Domain"), header="X-BackendAI-Domain"),
    # (on the anonymous routes: on the signed login the keypair signature, which covers both, fails first)
    Mutant("to-be~api-version-changed", "to-be", "X-BackendAI-Version is not the SDK's", G2F,
           upstream=anonymous_only(replace_header("X-BackendAI-Version", lambda _: "v0.00000000")),
           header="X-BackendAI-Version"),
    Mutant("to-be~date-rfc1123", "to-be", "Date is sent in RFC 1123 form, not the SDK's ISO-8601", G2F,
           upstream=anonymous_only(replace_header("Date", lambda _: "Tue, 01 Dec 2026 00:00:00 GMT")), header="Date"),
    Mutant("to-be~host-changed", "to-be", "Host is not FastTrack's authority", G2F,
           upstream=anonymous_only(set_header("Host", "fasttrack.invalid:9500")), header="Host"),
    Mutant("to-be~accept-changed", "to-be", "Accept is not the SDK's */*", G2F,
           upstream=replace_header("Accept", lambda _: "application/json"), header="Accept"),
    *(Mutant(f"to-be~client-{name.lower()}-forwarded", "to-be", f"the client's {name} reaches FastTrack", G2F,
             upstream=forward_client_header(name), header=name)
      for name in ("TE", "Keep-Alive", "Origin", "Referer", "X-Custom-Header", "X-Hop", ACT_AS)),
    Mutant("G1a~client-sec-websocket-key-forwarded", "G1a",
           "without a stream route, the client's Sec-WebSocket-Key reaches FastTrack", G2F,
           upstream=forward_client_header("Sec-WebSocket-Key"), header="Sec-WebSocket-Key"),
    # (killed at hop 2, but as nothing recorded: FastTrack takes the request for a handshake that fails)
    Mutant("G1a~client-upgrade-forwarded", "G1a", "without a stream route, the client's Upgrade reaches FastTrack",
           G2F, upstream=forward_client_header("Upgrade")),
    Mutant("G1a~bodiless-not-chunked", "G1a", "bodiless requests sent with Content-Length: 0 instead of chunked",
           G2F, upstream=bodiless_length, header="Transfer-Encoding"),
    Mutant("G6c~content-length-dropped", "G6c", "Content-Length is not sent (bodies go chunked)", G2F,
           upstream=drop_header("Content-Length"), header="Content-Length"),
    Mutant("G6c~keep-alive-relayed", "G6c", "an upstream Keep-Alive reaches the client", G2C,
           downstream=add_response_header("Keep-Alive", "timeout=5"), header="Keep-Alive"),
    Mutant("G6c~proxy-authenticate-relayed", "G6c", "an upstream Proxy-Authenticate reaches the client", G2C,
           downstream=add_response_header("Proxy-Authenticate", "Basic"), header="Proxy-Authenticate"),
    Mutant("G6~upstream-note-dropped", "G6", "an end-to-end upstream header (X-Upstream-Note) is not relayed", G2C,
           downstream=drop_response_header("X-Upstream-Note"), header="X-Upstream-Note"),
)

_SIGNATURE: tuple[Mutant, ...] = tuple(
    # Every input of the keypair signature, wrong in the signing string, in each era that signs: every request
    # (G2-G4: as-is) and the login route (G5+: to-be, G6).
    Mutant(f"{base}~signature-{what}", base, f"the keypair signature's signing string has a wrong {what}", G2F,
           upstream=resign(**{field: wrong}))
    for base in ("as-is", "to-be", "G6") for what, (field, wrong) in SIGNING_INPUTS.items()
)


MUTANTS: tuple[Mutant, ...] = (*_LISTED, *_HEADERS, *_SIGNATURE)


def by_id() -> dict[str, Mutant]:
    return {m.id: m for m in MUTANTS}


def resolve_mutant(name: str) -> Mutant:
    try:
        return by_id()[name]
    except KeyError:
        raise KeyError(f"unknown mutant {name!r} (known: {', '.join(m.id for m in MUTANTS)})") from None
