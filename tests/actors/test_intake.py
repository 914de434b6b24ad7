"""harness.actors.intake: hop 2 read once, the same way, by every actor at FastTrack's end (loopback only)."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from harness.actors import faults, intake, server
from harness.actors.fasttrack import MockFastTrack
from harness.actors.journal import Attribution, RunJournal
from harness.actors.tap import RecordingTap
from harness.protocol import fasttrack_models
from harness.protocol.accounts import Directory
from harness.protocol.clock import SystemClock
from harness.protocol.hops import Exchange

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

CLIENT = "127.64.0.9"
RAW = ("POST /api/pipelines/?b=2&a=1 HTTP/1.1\r\nHost: fasttrack.test\r\nX-Forwarded-For: {xff}\r\n"
       "X-Dup: one\r\nx-dup: two\r\nContent-Length: 7\r\nConnection: close\r\n\r\n{{\"k\":1}}")


async def _send(port: int, xff: str) -> bytes:
    reader, writer = await asyncio.open_connection(server.LOOPBACK, port)
    writer.write(RAW.format(xff=xff).encode())
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return answer


async def test_receive_keeps_the_request_as_it_crossed_the_wire_and_finds_its_run():
    attribution, journal = Attribution(), RunJournal("r")
    attribution.register(CLIENT, journal)
    got: list[intake.Intake] = []

    async def handle(request: web.Request) -> web.Response:
        got.append(await intake.receive(request, attribution))
        got[-1].file(attribution, Exchange(got[-1].hop2))
        return web.Response()

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    srv = await server.start("intake", app)
    try:
        await _send(srv.port, f"{CLIENT}, 10.0.0.1")  # a proxy chain: the first address is the client's
        await _send(srv.port, "127.64.0.10")
    finally:
        await srv.stop()
    first, second = got
    assert first.journal is journal and second.journal is None and not first.stream
    assert (first.upstream.method, first.upstream.path, first.upstream.query_string) == ("POST", "/api/pipelines/",
                                                                                          "b=2&a=1")
    assert [p for p in first.hop2.headers.pairs if p[0].lower() == "x-dup"] == [("X-Dup", "one"), ("x-dup", "two")]
    assert first.upstream.body == first.hop2.body == b'{"k":1}'
    assert first.hop2.headers == first.upstream.headers and first.hop2.hop == "gateway_to_fasttrack"
    assert [e.request for e in journal.exchanges] == [first.hop2]
    assert [e.request for e in attribution.unattributed] == [second.hop2]  # kept apart, never dropped


async def test_the_mock_a_fault_column_and_the_tap_journal_the_same_hop_2():
    model, env = fasttrack_models.BEARER_25_1, {"directory": Directory("t"), "clock": SystemClock(), "jwt_secret": "s"}
    seen: dict[str, Exchange] = {}
    mock_attr, fault_attr, tap_attr = Attribution(), Attribution(), Attribution()
    mock = await server.start("mock", MockFastTrack(model, attribution=mock_attr, **env).app())
    fault = await server.start("fault", faults.FaultyFastTrack("version-missing", model, attribution=fault_attr,
                                                               **env).app())
    tap = await server.start("tap", RecordingTap(mock.url, attribution=tap_attr, timeout=10).app())
    try:
        for name, srv, attr in (("mock", mock, mock_attr), ("fault", fault, fault_attr), ("tap", tap, tap_attr)):
            journal = RunJournal(name)
            attr.register(CLIENT, journal)
            await _send(srv.port, CLIENT)
            (seen[name],) = journal.exchanges
    finally:
        for srv in (tap, fault, mock):
            await srv.stop()
    assert seen["mock"].request == seen["fault"].request == seen["tap"].request
    assert seen["mock"].request.body_size == 7
