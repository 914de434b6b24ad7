"""What reaches FastTrack's end of hop 2, read once for every actor there: the mock FastTrack, a fault column
and the recording tap all journal the same request, attributed to its run the same way."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from harness.actors.journal import Attribution, RunJournal
from harness.protocol.fasttrack_models import UpstreamRequest
from harness.protocol.headers import Headers
from harness.protocol.hops import Exchange, HopRecord


@dataclass(frozen=True, slots=True)
class Intake:
    upstream: UpstreamRequest  # the request as received: raw headers in wire order, raw path and query, body
    hop2: HopRecord  # the same, as the journal records it
    journal: RunJournal | None  # the run it belongs to (by X-Forwarded-For); None: unattributed
    stream: bool  # a WebSocket upgrade (the stream route)

    def file(self, attribution: Attribution, exchange: Exchange) -> None:
        """Journal ``exchange`` with its run, or apart as unattributed (never dropped)."""
        (self.journal.exchanges if self.journal is not None else attribution.unattributed).append(exchange)


async def receive(request: web.Request, attribution: Attribution) -> Intake:
    body = await request.read()
    headers = Headers.from_raw(request.raw_headers)
    up = UpstreamRequest(request.method, request.rel_url.raw_path, request.rel_url.raw_query_string, headers, body)
    hop2 = HopRecord.request("gateway_to_fasttrack", up.method, up.path, up.query_string, headers, body)
    return Intake(up, hop2, attribution.find(headers.get("X-Forwarded-For")),
                  request.headers.get("Upgrade", "").lower() == "websocket")
