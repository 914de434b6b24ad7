"""W2 stated as the contract: a close FastTrack starts reaches the client. Every stream-route profile reproduces
the webserver's WebSocketProxy and fails that step at gateway_to_client, carrying the finding's id; a gateway
that relays the close passes it, so the check can fail and can pass."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from harness.actors import gateway
from harness.engine.matrix_run import Options, run_matrix
from harness.engine.selection import select
from harness.judge import support_policy
from harness.results.model import RunResult, ScenarioResult
from harness.scenario.loader import ScenarioError, load_scenario

STEP = "FastTrack ends the stream, and its close reaches the client"


def _stream(gateway_id: str, fasttrack: str = "25.1.0") -> ScenarioResult:
    sel = select([gateway_id], [fasttrack], "websocket-close")
    run: RunResult = asyncio.run(run_matrix(sel.gateways, sel.fasttracks, sel.scenarios, support_policy.load_policy(),
                                            Options(timeout=10.0)))
    return run.cells[0].scenarios[0]


def test_a_gateway_that_does_not_relay_fasttracks_close_fails_w2_at_the_client() -> None:
    res = _stream("to-be")
    assert res.outcome == "fail" and res.finding == "W2-stream-close-not-relayed"
    first = res.failures[0]
    assert (first.step, first.hop, first.subject) == (STEP, "gateway_to_client", "websocket close code")
    assert (first.expected, first.actual) == ("4000", "no close within 0.5 s")


def test_a_gateway_that_relays_fasttracks_close_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    relay = gateway._pump

    async def both_ways(src: aiohttp.ClientWebSocketResponse | aiohttp.web.WebSocketResponse,
                        dst: aiohttp.ClientWebSocketResponse | aiohttp.web.WebSocketResponse, *,
                        close_dst: bool) -> None:
        await relay(src, dst, close_dst=True)

    monkeypatch.setattr(gateway, "_pump", both_ways)
    res = _stream("G6d")
    assert res.outcome == "pass" and res.finding is None, res.failures


def _load(tmp_path: Path, websocket: str, expect: str) -> None:
    p = tmp_path / "s.yaml"
    p.write_text(f"""\
id: s
title: t
modes: [stream-route]
steps:
  - name: st
    request:
      method: GET
      path: /pipeline/stream/x/
      websocket: {websocket}
    expect:
      gateway_to_client: {{status: 101}}
      websocket: {expect}
""", encoding="utf-8")
    load_scenario(p)


@pytest.mark.parametrize(("websocket", "expect", "message"), [
    ("{fasttrack_closes: 4000}", "{relayed: true}", "give both"),
    ("{send: [{text: a}]}", "{client_close_code: 4000}", "give both"),
    ("{fasttrack_closes: 1006}", "{client_close_code: 1006}", "1000, 3000-4999"),
    ("{close_wait: 1}", "{relayed: true}", "needs 'fasttrack_closes'"),
    ("{fasttrack_closes: 4000, close_wait: 0}", "{client_close_code: 4000}", "more than 0"),
])
def test_a_close_check_needs_its_close(tmp_path: Path, websocket: str, expect: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        _load(tmp_path, websocket, expect)
    _load(tmp_path, "{fasttrack_closes: 4000, close_wait: 1.5}", "{client_close_code: 4000}")
