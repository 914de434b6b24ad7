"""The scenario client: sends hop 1 from its own loopback address and records hops 1 and 4 as on the wire."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
from yarl import URL

from harness.protocol.headers import Headers
from harness.protocol.hops import HopRecord

USER_AGENT = "harness-client/0.1"


@dataclass
class Sent:
    hop1: HopRecord
    hop4: HopRecord


class ScenarioClient:
    def __init__(self, base_url: str, source_ip: str, *, timeout: float = 30.0) -> None:
        self.base_url = URL(base_url)
        self.source_ip = source_ip
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ScenarioClient:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(local_addr=(self.source_ip, 0)),
            cookie_jar=aiohttp.DummyCookieJar(),  # the scenario says which cookies go where
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
        data: bytes | AsyncIterator[bytes] | None = body
        sent_body = body or b""
        if body_stream_size is not None:
            data = _pattern_stream(body_stream_size)
            sent_body = _pattern_bytes(min(body_stream_size, 64 * 1024))
        async with self._session.request(method, target, headers=_multi(headers), data=data,
                                         allow_redirects=False) as resp:
            received = await resp.read()
            hop4 = HopRecord.response("gateway_to_client", resp.status, resp.reason or "",
                                      Headers.from_raw(resp.raw_headers), received)
            written = _written(resp.request_info)
        hop1 = HopRecord.request("client_to_gateway", method, target.raw_path, target.raw_query_string, written,
                                 sent_body)
        if body_stream_size is not None:
            hop1.body_size = body_stream_size
        return Sent(hop1, hop4)


def _written(info: aiohttp.RequestInfo) -> Headers:
    """The request's headers as aiohttp wrote them (its own Host, Accept, Content-Length ... included):
    ``request_info`` is a view of the very header map the request line was written with."""
    return Headers.of(info.headers.items())


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


@dataclass
class WsSession:
    hop1: HopRecord
    hop4: HopRecord  # the handshake answer (101, or whatever refused the upgrade)
    received: list[tuple[str, str]]  # (kind, text or hex) the client got back
    close_code: int | None = None  # the close the client received while it waited for one (None: none came)


async def _ws_exchange(session: aiohttp.ClientSession, target: URL, headers: list[tuple[str, str]],
                       send: list[tuple[str, str]], timeout: float, close_wait: float | None
                       ) -> tuple[Headers, HopRecord, list[tuple[str, str]], int | None]:
    received: list[tuple[str, str]] = []
    close_code = None
    async with session.ws_connect(target, headers=_multi(headers), autoping=True,
                                  timeout=aiohttp.ClientWSTimeout(ws_receive=timeout)) as ws:
        handshake = ws._response  # aiohttp keeps the 101 response; its headers are hop 4 of the handshake
        written = _written(handshake.request_info)
        hop4 = HopRecord.response("gateway_to_client", handshake.status, handshake.reason or "",
                                  Headers.from_raw(handshake.raw_headers), b"")
        for kind, value in send:
            if kind == "text":
                await ws.send_str(value)
            else:
                await ws.send_bytes(bytes.fromhex(value))
            msg = await ws.receive()  # the echo: each message is answered before the next is sent
            if msg.type == aiohttp.WSMsgType.TEXT:
                received.append(("text", msg.data))
            elif msg.type == aiohttp.WSMsgType.BINARY:
                received.append(("binary", msg.data.hex()))
            else:
                break
        if close_wait is not None and not ws.closed:
            close_code = await _await_close(ws, received, close_wait)
        await ws.close()
    return written, hop4, received, close_code


async def _await_close(ws: aiohttp.ClientWebSocketResponse, received: list[tuple[str, str]],
                       wait: float) -> int | None:
    """Wait (bounded: a close that is never relayed never comes) for the gateway to close the stream; frames
    that arrive meanwhile are kept. The close's code, or None when none came within ``wait`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while (left := deadline - loop.time()) > 0:
        try:
            msg = await ws.receive(timeout=left)
        except TimeoutError:
            return None
        if msg.type == aiohttp.WSMsgType.TEXT:
            received.append(("text", msg.data))
        elif msg.type == aiohttp.WSMsgType.BINARY:
            received.append(("binary", msg.data.hex()))
        elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
            return ws.close_code
        else:
            return None
    return None


async def websocket(client: ScenarioClient, path: str, query: str, headers: list[tuple[str, str]],
                    send: list[tuple[str, str]], close_wait: float | None = None) -> WsSession:
    """Open ``path`` as a WebSocket through the gateway, exchange ``send`` (each answered before the next),
    then close from the client (with ``close_wait``: first wait that long for the gateway to close it)."""
    assert client._session is not None
    target = URL(str(client.base_url) + path + (f"?{query}" if query else ""), encoded=True)
    try:
        written, hop4, received, close_code = await _ws_exchange(client._session, target, headers, send,
                                                                 client.timeout, close_wait)
    except aiohttp.WSServerHandshakeError as exc:  # the gateway did not upgrade: its answer is hop 4
        hop4 = HopRecord.response("gateway_to_client", exc.status, exc.message or "",
                                  Headers.of((exc.headers or {}).items()), b"")
        written, received, close_code = _written(exc.request_info), [], None
    hop1 = HopRecord.request("client_to_gateway", "GET", target.raw_path, target.raw_query_string, written, b"")
    return WsSession(hop1, hop4, received, close_code)
