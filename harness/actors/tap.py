"""Recording tap: a transparent reverse proxy between a gateway and a real FastTrack.

Hop 2 is recorded as the gateway sent it (raw headers in wire order, duplicates, body) and forwarded with the
same headers, ``Host`` included, so a FastTrack that checks the keypair signature (which covers the host the
gateway addressed) still can. Hop 3 is recorded as FastTrack answered and relayed unchanged.

A WebSocket upgrade is carried too: the handshake is recorded like an HTTP exchange (hop 2 as the gateway
sent it, hop 3 FastTrack's handshake answer), then frames are relayed both ways and recorded (what FastTrack
received and sent), and a close from either side is passed on with its code.
"""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import WSCloseCode, WSMsgType, web
from multidict import CIMultiDict
from yarl import URL

from harness.actors import intake
from harness.actors.intake import Intake
from harness.actors.journal import Attribution
from harness.protocol.headers import Headers
from harness.protocol.hops import Exchange, HopRecord

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

    def _target(self, request: web.Request, websocket: bool = False) -> URL:
        base = self.upstream.with_scheme({"http": "ws", "https": "wss"}.get(self.upstream.scheme, "ws")) \
            if websocket else self.upstream
        target = base.with_path(base.path.rstrip("/") + request.rel_url.raw_path, encoded=True)
        return target.with_query(request.rel_url.raw_query_string) if request.rel_url.raw_query_string else target

    async def handle(self, request: web.Request) -> web.StreamResponse:
        assert self._http is not None
        got = await intake.receive(request, self.attribution)
        if got.stream:
            return await self.stream(request, got)
        exchange = Exchange(got.hop2)
        target = self._target(request)
        forward = CIMultiDict(got.upstream.headers.without("Content-Length", "Transfer-Encoding", "Connection").pairs)
        try:
            async with self._http.request(request.method, target, headers=forward, data=got.upstream.body or None,
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
        got.file(self.attribution, exchange)
        return resp

    async def stream(self, request: web.Request, got: Intake) -> web.StreamResponse:
        """Carry a WebSocket: FastTrack's handshake answer is hop 3; frames are relayed and recorded both ways
        until either side closes, whose close (and code) is passed on to the other."""
        assert self._http is not None
        exchange = Exchange(got.hop2, finished=asyncio.Event())
        got.file(self.attribution, exchange)
        protocols = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        forward = CIMultiDict(got.hop2.headers.without(*_HANDSHAKE, "Content-Length", "Transfer-Encoding").pairs)
        try:
            try:
                upstream = await self._http.ws_connect(self._target(request, websocket=True), headers=forward,
                                                       protocols=protocols, autoping=True)
            except aiohttp.WSServerHandshakeError as exc:  # FastTrack refused the upgrade: relay its answer
                answer = Headers.of(list(exc.headers.items()) if exc.headers else [])
                exchange.response = HopRecord.response("fasttrack_to_gateway", exc.status, exc.message, answer, b"")
                return web.Response(status=exc.status, reason=exc.message,
                                    headers=CIMultiDict(answer.without(*_NOT_RELAYED, "Content-Length").pairs))
            except (aiohttp.ClientError, TimeoutError) as exc:
                exchange.error = f"tap: FastTrack at {self.upstream} failed: {type(exc).__name__}: {exc}"
                return web.Response(status=502, text=exchange.error)
            async with upstream:
                # aiohttp keeps the handshake response only privately; it is what FastTrack answered (hop 3).
                shake = upstream._response
                answer = Headers.from_raw(shake.raw_headers)
                exchange.response = HopRecord.response("fasttrack_to_gateway", shake.status, shake.reason or "",
                                                       answer, b"")
                ws = web.WebSocketResponse(protocols=[upstream.protocol] if upstream.protocol else (), autoping=True)
                for name, value in answer.without(*_HANDSHAKE, *_NOT_RELAYED, "Content-Length", "Date", "Server"):
                    ws.headers.add(name, value)
                await ws.prepare(request)
                await _relay(ws, upstream, exchange)
                return ws
        finally:
            assert exchange.finished is not None
            exchange.finished.set()


_HANDSHAKE = ("Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Extensions",
              "Sec-WebSocket-Protocol", "Sec-WebSocket-Accept")


async def _relay(gateway: web.WebSocketResponse, fasttrack: aiohttp.ClientWebSocketResponse,
                 exchange: Exchange) -> None:
    """Frames both ways until one side closes; the other is then closed with the same code."""

    async def up() -> None:  # gateway -> FastTrack: what FastTrack received
        await _pump(gateway, fasttrack, exchange.ws_received)
        exchange.ws_close_code = gateway.close_code
        await fasttrack.close(code=gateway.close_code or WSCloseCode.OK)

    async def down() -> None:  # FastTrack -> gateway: what FastTrack sent
        await _pump(fasttrack, gateway, exchange.ws_sent)
        await gateway.close(code=fasttrack.close_code or WSCloseCode.OK)

    tasks = [asyncio.create_task(up()), asyncio.create_task(down())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _pump(source: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
                sink: web.WebSocketResponse | aiohttp.ClientWebSocketResponse, log: list[tuple[str, str]]) -> None:
    """Text and binary frames from ``source`` to ``sink``, each logged (kind, text or hex), until ``source``
    closes."""
    async for msg in source:
        if msg.type == WSMsgType.TEXT:
            log.append(("text", msg.data))
            await sink.send_str(msg.data)
        elif msg.type == WSMsgType.BINARY:
            log.append(("binary", msg.data.hex()))
            await sink.send_bytes(msg.data)
