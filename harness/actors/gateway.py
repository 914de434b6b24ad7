"""Reference gateway: the webserver's ``POST /server/login`` and ``/pipeline/`` proxy, one profile per server.

All decisions come from :mod:`harness.protocol.gateway_rules`; this module only moves bytes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler
from multidict import CIMultiDict
from yarl import URL

from harness.protocol import gateway_rules as rules
from harness.protocol import problems
from harness.protocol.accounts import derive
from harness.protocol.clock import Clock
from harness.protocol.generations import GatewayProfile
from harness.protocol.headers import Headers

PIPELINE_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
CHUNK = 8192


class Mutation:
    """A deliberate deviation from the profile, for mutation testing of the scenarios
    (:mod:`harness.mutation.catalogue`).

    Every hook is a no-op here: a gateway without a mutation is the reference."""

    def profile(self, profile: GatewayProfile) -> GatewayProfile:
        """The profile the gateway really runs (expectations still come from the launcher's profile)."""
        return profile

    def plan(self, req: rules.ClientRequest, session: rules.Session | None, plan: rules.UpstreamPlan | rules.Reply,
             config: rules.GatewayConfig) -> rules.UpstreamPlan | rules.Reply:
        """Hop 2 as sent upstream, or the gateway's own reply."""
        return plan

    def relay(self, relay: rules.Relay) -> rules.Relay:
        """Hop 4: how the upstream response reaches the client."""
        return relay


class ReferenceGateway:
    def __init__(self, profile: GatewayProfile, *, fasttrack_url: str, manager_url: str,
                 config: rules.GatewayConfig, clock: Clock, seed: str = "harness",
                 mutation: Mutation | None = None) -> None:
        self.mutation = mutation or Mutation()
        self.profile = self.mutation.profile(profile)
        self.fasttrack_url = URL(fasttrack_url)
        self.manager_url = URL(manager_url)
        self.config = config
        self.clock = clock
        self.seed = seed
        self.sessions: dict[str, rules.Session] = {}
        self.jars: dict[str, dict[str, str]] = {}  # cookie jars of pooled client sessions (cookie_jar: pooled)
        self._logins: dict[str, int] = {}
        self._http: aiohttp.ClientSession | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1 << 30, middlewares=[self._header_check])
        app.router.add_post("/server/login", self.login)
        if self.profile.stream_route:  # registered before the generic GET, as in the webserver (G1b+)
            app.router.add_get("/pipeline/{path:stream/.*}", self.stream)
        for method in PIPELINE_METHODS:
            app.router.add_route(method, "/pipeline/{path:.*}", self.pipeline)
        app.on_startup.append(self._open)
        app.on_cleanup.append(self._close)
        app.on_response_prepare.append(self._drop_server_header)
        return app

    async def _open(self, app: web.Application) -> None:
        # No cookie jar: cookies travel only as the planner writes them, never from one client to another.
        self._http = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False,
                                           timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))

    async def _close(self, app: web.Application) -> None:
        if self._http is not None:
            await self._http.close()

    @web.middleware
    async def _header_check(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """The webserver checks every request's headers in a middleware, before login, pipeline or stream."""
        reply = rules.header_check(self.profile, Headers.from_raw(request.raw_headers))
        if reply is not None:
            return web.Response(status=reply.status, reason=reply.reason, body=reply.body,
                                headers=CIMultiDict(reply.headers.pairs))
        return await handler(request)

    @staticmethod
    async def _drop_server_header(request: web.Request, response: web.StreamResponse) -> None:
        response.headers.popall("Server", None)

    @property
    def http(self) -> aiohttp.ClientSession:
        assert self._http is not None, "gateway not started"
        return self._http

    def _new_sid(self, username: str) -> str:
        n = self._logins.get(username, 0)
        self._logins[username] = n + 1
        return derive(self.seed, f"sid:{self.profile.id}:{username}:{n}", 32)

    async def login(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        plan = rules.plan_login(self.profile, self.client_request(request), body, now=self.clock.now(),
                                config=self.config)
        if isinstance(plan, rules.LoginPlan):
            try:
                async with self.http.get(self.manager_url / "") as probe:
                    await probe.read()
                async with self.http.post(self.manager_url / "auth/authorize", json=dict(plan.payload),
                                          headers=CIMultiDict(plan.headers.pairs)) as r:
                    status, answer = r.status, await r.json(content_type=None)
            except (aiohttp.ClientError, ValueError):
                return self._problem(502, "Bad Gateway", problems.BAD_GATEWAY)
            assert isinstance(body, dict)
            username = str(body["username"])
            plan = rules.login_answer(self.profile, status, answer, lambda: self._new_sid(username))
        reply, session = plan, plan.session
        if session is None:
            return web.json_response(dict(reply.body), status=reply.status)
        self.sessions[session.sid] = session
        resp = web.json_response(dict(reply.body), status=reply.status, headers={rules.SESSION_HEADER: session.sid})
        resp.set_cookie(rules.SESSION_COOKIE, session.sid, max_age=self.config.session_max_age, httponly=True,
                        path="/", secure=reply.cookie_secure or None)
        return resp

    @staticmethod
    def _problem(status: int, reason: str, problem: Mapping[str, object]) -> web.Response:
        reply = rules.problem_reply(status, reason, problem)
        return web.Response(status=reply.status, reason=reply.reason, body=reply.body,
                            headers=CIMultiDict(reply.headers.pairs))

    def client_request(self, request: web.Request) -> rules.ClientRequest:
        return rules.ClientRequest(
            method=request.method,
            path=request.match_info.get("path", ""),
            query=tuple(request.query.items()),
            headers=Headers.from_raw(request.raw_headers),
            cookies=dict(request.cookies),
            peer_ip=request.remote or "",
            host=request.host,
            scheme=request.scheme,
            has_body=request.body_exists,
        )

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """``GET /pipeline/stream/...``: an anonymous WebSocket to FastTrack, frames relayed both ways, close
        relayed; a refused upstream handshake becomes 502 (protocol-history §5)."""
        plan = rules.plan_stream(self.profile, self.client_request(request), now=self.clock.now(), config=self.config)
        url = URL(str(self.fasttrack_url.with_scheme("ws").with_path("")) + plan.rel_url, encoded=True)
        try:
            upstream = await self.http.ws_connect(url, headers=CIMultiDict(plan.headers.pairs), autoping=True)
        except (aiohttp.ClientError, TimeoutError):
            return self._problem(502, "Bad Gateway", problems.BAD_GATEWAY)
        down = web.WebSocketResponse(autoping=True)
        await down.prepare(request)
        async with upstream:
            upward = asyncio.create_task(_pump(down, upstream, close_dst=True))
            await _pump(upstream, down, close_dst=False)
            await upward  # ends when the client closes
        return down

    async def pipeline(self, request: web.Request) -> web.StreamResponse:
        req = self.client_request(request)
        key = rules.session_key(req)
        session = self.sessions.get(key) if key else None
        plan = rules.plan(self.profile, req, session, now=self.clock.now(),
                          endpoint_authority=self.fasttrack_url.raw_authority, config=self.config, jars=self.jars)
        plan = self.mutation.plan(req, session, plan, self.config)
        if isinstance(plan, rules.Reply):
            return web.Response(status=plan.status, reason=plan.reason, body=plan.body,
                                headers=CIMultiDict(plan.headers.pairs))
        if plan.pool is not None and plan.jar_update is not None:
            self.jars.setdefault(plan.pool, {}).update(plan.jar_update)
        url = URL(str(self.fasttrack_url.with_path("")) + plan.rel_url, encoded=True)
        data: Any = request.content if plan.stream_body else b""
        try:
            async with self.http.request(plan.method, url, headers=CIMultiDict(plan.headers.pairs), data=data,
                                         allow_redirects=False) as up:
                up_headers = Headers.from_raw(up.raw_headers)
                error_body = await up.read() if rules.needs_error_body(self.profile, up.status) else b""
                out = self.mutation.relay(rules.relay(self.profile, up.status, up.reason or "", up_headers,
                                                      error_body))
                if out.body is not None:
                    return web.Response(status=out.status, reason=out.reason, body=out.body,
                                        headers=CIMultiDict(out.headers.pairs))
                resp = web.StreamResponse(status=out.status, reason=out.reason, headers=CIMultiDict(out.headers.pairs))
                await resp.prepare(request)
                async for chunk in up.content.iter_chunked(CHUNK):
                    await resp.write(chunk)
                await resp.write_eof()
                return resp
        except (TimeoutError, aiohttp.ClientConnectionError, aiohttp.ClientResponseError):
            return self._problem(502, "Bad Gateway", problems.BAD_GATEWAY)
        except Exception:  # the webserver maps anything else inside the proxy to 500 problem+json
            return self._problem(500, "Internal Server Error", problems.INTERNAL_ERROR)


async def _pump(src: aiohttp.ClientWebSocketResponse | web.WebSocketResponse,
                dst: aiohttp.ClientWebSocketResponse | web.WebSocketResponse, *, close_dst: bool) -> None:
    """Relay text and binary frames one way. When ``src`` ends, the webserver's WebSocketProxy closes the
    upstream connection in both directions but never the client's: a close FastTrack starts is not relayed
    (the client's stream stays open until the client closes it; seen with every real release)."""
    async for msg in src:
        if msg.type == aiohttp.WSMsgType.TEXT:
            await dst.send_str(msg.data)
        elif msg.type == aiohttp.WSMsgType.BINARY:
            await dst.send_bytes(msg.data)
    if close_dst and not dst.closed:
        await dst.close(code=src.close_code or 1000)
