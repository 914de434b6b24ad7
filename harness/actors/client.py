"""The scenario client: sends hop 1 from its own loopback address and records hops 1 and 4 as on the wire."""

from __future__ import annotations

import types
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
from yarl import URL

from harness.protocol.headers import Headers
from harness.records import HopRecord

USER_AGENT = "harness-client/0.1"


@dataclass
class Sent:
    hop1: HopRecord
    hop4: HopRecord


async def _on_headers_sent(session: aiohttp.ClientSession, ctx: types.SimpleNamespace,
                           params: aiohttp.TraceRequestHeadersSentParams) -> None:
    if ctx.trace_request_ctx is not None:
        ctx.trace_request_ctx["headers"] = Headers.of(params.headers.items())


class ScenarioClient:
    def __init__(self, base_url: str, source_ip: str, *, timeout: float = 30.0) -> None:
        self.base_url = URL(base_url)
        self.source_ip = source_ip
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ScenarioClient:
        trace = aiohttp.TraceConfig()
        trace.on_request_headers_sent.append(_on_headers_sent)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(local_addr=(self.source_ip, 0)),
            cookie_jar=aiohttp.DummyCookieJar(),  # the scenario says which cookies go where
            trace_configs=[trace],
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            headers={"User-Agent": USER_AGENT},
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def send(self, method: str, path: str, query: str, headers: list[tuple[str, str]],
                   body: bytes | None = None, body_stream_size: int | None = None) -> Sent:
        assert self._session is not None
        target = URL(str(self.base_url) + path + (f"?{query}" if query else ""), encoded=True)
        trace_ctx: dict[str, Headers] = {}
        data: bytes | AsyncIterator[bytes] | None = body
        sent_body = body or b""
        if body_stream_size is not None:
            data = _pattern_stream(body_stream_size)
            sent_body = _pattern_bytes(min(body_stream_size, 64 * 1024))
        async with self._session.request(method, target, headers=_multi(headers), data=data,
                                         allow_redirects=False, trace_request_ctx=trace_ctx) as resp:
            received = await resp.read()
            hop4 = HopRecord.response("gateway_to_client", resp.status, resp.reason or "",
                                      Headers.from_raw(resp.raw_headers), received)
        hop1 = HopRecord.request("client_to_gateway", method, target.raw_path, target.raw_query_string,
                                 trace_ctx.get("headers", Headers.of(headers)), sent_body)
        if body_stream_size is not None:
            hop1.body_size = body_stream_size
        return Sent(hop1, hop4)


def _multi(pairs: list[tuple[str, str]]) -> aiohttp.typedefs.LooseHeaders:
    from multidict import CIMultiDict

    return CIMultiDict(pairs)


def _pattern_bytes(n: int) -> bytes:
    block = bytes(range(256))
    return (block * (n // 256 + 1))[:n]


async def _pattern_stream(n: int, chunk: int = 64 * 1024) -> AsyncIterator[bytes]:
    """A deterministic binary body, generated as it is sent (never held whole in memory)."""
    block = _pattern_bytes(chunk)
    sent = 0
    while sent < n:
        part = block[: min(chunk, n - sent)]
        sent += len(part)
        yield part
