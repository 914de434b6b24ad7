"""Recording tap: a transparent reverse proxy between a gateway and a real FastTrack.

Hop 2 is recorded as the gateway sent it (raw headers in wire order, duplicates, body) and forwarded with the
same headers, ``Host`` included, so a FastTrack that checks the keypair signature (which covers the host the
gateway addressed) still can. Hop 3 is recorded as FastTrack answered and relayed unchanged.
"""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from harness.actors.journal import Attribution
from harness.protocol.headers import Headers
from harness.records import Exchange, HopRecord

_NOT_RELAYED = ("Transfer-Encoding", "Connection", "Keep-Alive")


class RecordingTap:
    def __init__(self, upstream: str, *, attribution: Attribution, timeout: float = 30.0) -> None:
        self.upstream = URL(upstream)
        self.attribution = attribution
        self.timeout = timeout
        self._http: aiohttp.ClientSession | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1 << 30)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        app.on_startup.append(self._open)
        app.on_cleanup.append(self._close)
        return app

    async def _open(self, app: web.Application) -> None:
        self._http = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False,
                                           timeout=aiohttp.ClientTimeout(total=self.timeout))
        host, port = self.upstream.host or "127.0.0.1", self.upstream.port or 80
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError as exc:
            await self._http.close()
            raise OSError(f"FastTrack at {self.upstream} is unreachable: {exc.strerror or exc}") from None
        writer.close()

    async def _close(self, app: web.Application) -> None:
        if self._http is not None:
            await self._http.close()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        assert self._http is not None
        body = await request.read()
        headers = Headers.from_raw(request.raw_headers)
        hop2 = HopRecord.request("gateway_to_fasttrack", request.method, request.rel_url.raw_path,
                                 request.rel_url.raw_query_string, headers, body)
        journal = self.attribution.find(headers.get("X-Forwarded-For"))
        exchange = Exchange(hop2)
        target = self.upstream.with_path(self.upstream.path.rstrip("/") + request.rel_url.raw_path, encoded=True)
        target = target.with_query(request.rel_url.raw_query_string) if request.rel_url.raw_query_string else target
        forward = CIMultiDict(headers.without("Content-Length", "Transfer-Encoding", "Connection").pairs)
        try:
            async with self._http.request(request.method, target, headers=forward, data=body or None,
                                          allow_redirects=False,
                                          skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding",
                                                             "Content-Type")) as up:
                answer = await up.read()
                up_headers = Headers.from_raw(up.raw_headers)
                exchange.response = HopRecord.response("fasttrack_to_gateway", up.status, up.reason or "", up_headers,
                                                       answer)
                resp = web.Response(status=up.status, reason=up.reason, body=answer,
                                    headers=CIMultiDict(up_headers.without(*_NOT_RELAYED, "Content-Length").pairs))
        except (aiohttp.ClientError, TimeoutError) as exc:
            exchange.error = f"tap: FastTrack at {self.upstream} failed: {type(exc).__name__}: {exc}"
            resp = web.Response(status=502, text=exchange.error)
        (journal.exchanges if journal else self.attribution.unattributed).append(exchange)
        return resp
