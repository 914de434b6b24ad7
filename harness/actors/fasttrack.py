"""Mock FastTrack: an aiohttp server around :func:`harness.protocol.fasttrack_models.decide`.

It journals hop 2 (raw request as received, read by :mod:`harness.actors.intake`) and hop 3 (the response as
sent, after aiohttp added its own headers) into the journal of the run the request belongs to.
"""

from __future__ import annotations

import asyncio

from aiohttp import WSMsgType, web
from multidict import CIMultiDict

from harness.actors import intake
from harness.actors.intake import Intake
from harness.actors.journal import Attribution
from harness.protocol.accounts import Directory
from harness.protocol.clock import Clock
from harness.protocol.fasttrack_models import (
    VERSION_HEADER,
    Context,
    Decision,
    FastTrackModel,
    TokenStore,
    decide,
)
from harness.protocol.headers import Headers
from harness.protocol.hops import Exchange, HopRecord


class MockFastTrack:
    def __init__(self, model: FastTrackModel, *, directory: Directory, attribution: Attribution, clock: Clock,
                 jwt_secret: str, seed: str = "harness") -> None:
        self.model = model
        self.directory = directory
        self.attribution = attribution
        self.clock = clock
        self.jwt_secret = jwt_secret
        self.tokens = TokenStore(seed=f"{seed}:{model.id}")

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1 << 30)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        got = await intake.receive(request, self.attribution)
        if got.stream:
            return await self.stream(request, got)
        decision = self.decision(got)
        resp = web.Response(status=decision.status, body=decision.body, headers=CIMultiDict(decision.headers.pairs))
        await resp.prepare(request)
        hop3 = HopRecord.response("fasttrack_to_gateway", resp.status, resp.reason, Headers.of(resp.headers.items()),
                                  decision.body)
        got.file(self.attribution, Exchange(got.hop2, hop3, decision.reason))
        return resp

    def decision(self, got: Intake) -> Decision:
        """The model's answer, with the clock and the override of the step the request belongs to."""
        journal = got.journal
        ahead = journal.clock_offset if journal else 0  # a step may run FastTrack's clock ahead (JWT expiry)
        ctx = Context(self.directory, self.tokens, self.jwt_secret, int(self.clock.now().timestamp()) + ahead)
        return decide(self.model, got.upstream, ctx, journal.override if journal else None)

    async def stream(self, request: web.Request, got: Intake) -> web.StreamResponse:
        """A pipeline stream. Model: FastTrack does not authenticate streams (no generation forwards a credential
        on the stream route); it echoes each message."""
        ws = web.WebSocketResponse(autoping=True)
        ws.headers[VERSION_HEADER] = self.model.version  # the handshake answer announces the version too
        await ws.prepare(request)
        hop3 = HopRecord.response("fasttrack_to_gateway", ws.status, ws.reason, Headers.of(ws.headers.items()), b"")
        exchange = Exchange(got.hop2, hop3, "stream accepted (the model does not authenticate streams)",
                            finished=asyncio.Event())
        got.file(self.attribution, exchange)
        try:
            await self._echo(ws, exchange, got.journal.ws_close if got.journal is not None else None)
        finally:
            assert exchange.finished is not None
            exchange.finished.set()
        return ws

    @staticmethod
    async def _echo(ws: web.WebSocketResponse, exchange: Exchange, close: tuple[int, int] | None) -> None:
        """Echo every frame; with ``close`` = (frames, code), close the stream itself after that many echoes."""
        if close is not None and close[0] == 0:
            await ws.close(code=close[1])
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                exchange.ws_received.append(("text", msg.data))
                exchange.ws_sent.append(("text", f"echo:{msg.data}"))
                await ws.send_str(f"echo:{msg.data}")
            elif msg.type == WSMsgType.BINARY:
                exchange.ws_received.append(("binary", msg.data.hex()))
                exchange.ws_sent.append(("binary", msg.data.hex()))
                await ws.send_bytes(msg.data)
            if close is not None and len(exchange.ws_received) == close[0]:
                await ws.close(code=close[1])
        exchange.ws_close_code = ws.close_code  # the close the gateway relayed from the client
