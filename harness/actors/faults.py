"""Fault columns: a mock FastTrack that wraps a real model and breaks exactly one thing.

A fault column answers like its model (``decide`` authenticates, tokens are issued) except for the injected
fault. It journals hop 2 as every mock FastTrack does (through the same intake), and hop 3 as it actually went
on the wire. When the response could not be completed (hang, reset, slow body) the exchange says so in
``Exchange.error``, as the recording tap does for a real FastTrack that failed: the step is then ``error``, never
a pass. Response-level faults (5xx, malformed JSON, version header) send a complete HTTP response: how they are
judged is left to the runner and the verdict policy, exactly as for a real FastTrack behind the tap.

Faults:
  refused             nothing listens on the column's port: every connection is refused
  hang                the request is read, no response is ever started; the connection is aborted after ``stall``
  reset-mid-body      status, headers and half of the body, then a TCP reset (SO_LINGER 0)
  slow-body           status and headers at once, then the body one byte per tick, aborted after ``stall``
  status-5xx          503 with a JSON problem body on every request, authentication notwithstanding
  malformed-json      the model's answer, its JSON body cut in half (Content-Type still JSON)
  version-missing     no X-BackendAI-FastTrack-Version
  version-duplicated  X-BackendAI-FastTrack-Version twice
  version-garbled     X-BackendAI-FastTrack-Version that is not a version

WebSocket upgrades (the stream route) are passed to the wrapped model unchanged: the faults are HTTP faults.

``stall`` bounds how long a hanging or trickling connection is held. It must exceed the harness's own timeout
(``run --timeout``), so that the timeout is what ends the step; it also bounds shutdown (a gateway waits for its
in-flight upstream requests when it stops).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from aiohttp import web
from multidict import CIMultiDict

from harness.actors import intake, server
from harness.actors.fasttrack import MockFastTrack
from harness.actors.journal import Attribution
from harness.errors import UsageError
from harness.judge.support_policy import Policy, as_policy
from harness.protocol import fasttrack_models
from harness.protocol.accounts import Directory
from harness.protocol.clock import Clock
from harness.protocol.fasttrack_models import VERSION_HEADER, Decision, FastTrackModel
from harness.protocol.headers import Headers
from harness.protocol.hops import Exchange, HopRecord
from harness.results.document import FastTrackDoc

FAULTS: dict[str, str] = {
    "refused": "connection refused: nothing listens on FastTrack's port",
    "hang": "accepts the request and never answers",
    "reset-mid-body": "resets the connection in the middle of the response body",
    "slow-body": "sends the response body one byte per tick, never finishing within the timeout",
    "status-5xx": "answers 503 on every request",
    "malformed-json": "answers with a JSON body cut in half",
    "version-missing": "omits X-BackendAI-FastTrack-Version",
    "version-duplicated": "sends X-BackendAI-FastTrack-Version twice",
    "version-garbled": "sends an X-BackendAI-FastTrack-Version that is not a version",
}
DEFAULT_MODEL = fasttrack_models.BEARER_25_1
GARBLED_VERSION = "garbled/25.1.0 (not a version)"


@dataclass(frozen=True, slots=True)
class FaultSpec:
    name: str
    model: FastTrackModel

    @property
    def column_id(self) -> str:
        suffix = "" if self.model is DEFAULT_MODEL else f"@{self.model.id}"
        return f"fault-{self.name}{suffix}"


def parse(text: str) -> FaultSpec:
    """``NAME`` or ``NAME@MODEL`` (the model the fault wraps; default 25.1.0)."""
    name, _, model_id = text.partition("@")
    if name not in FAULTS:
        raise UsageError(f"unknown fault {name!r} (known: {', '.join(FAULTS)})")
    try:
        model = fasttrack_models.resolve(model_id) if model_id else DEFAULT_MODEL
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from None
    return FaultSpec(name, model)


def describe(spec: FaultSpec) -> FastTrackDoc:
    m = spec.model
    return {"id": spec.column_id, "version": m.version, "title": f"FAULT {spec.name}: {FAULTS[spec.name]} "
            f"(wraps the {m.id} model)", "accepts": list(m.accepts), "model": True, "fault": spec.name,
            "wraps": m.id, "modelled_on": f"the {m.id} model ({m.modelled_on}) with an injected fault",
            "disclaimer": f"{spec.column_id} injects the fault '{spec.name}' into the {m.id} model. {m.disclaimer}"}


def require_like_wrapped(policy: Mapping[str, frozenset[str]], columns: list[tuple[str, str]]) -> Policy:
    """The policy with each fault column (column id, wrapped model id) required wherever its model is: a fault in
    a FastTrack a gateway must support has to show in the exit code."""
    return as_policy(policy).with_columns({gateway: frozenset(col for col, wrapped in columns if wrapped in required)
                                           for gateway, required in policy.items()})


class FaultyFastTrack:
    """The HTTP faults. ``refused`` needs no server (see :func:`running`)."""

    def __init__(self, fault: str, model: FastTrackModel, *, directory: Directory, attribution: Attribution,
                 clock: Clock, jwt_secret: str, seed: str = "harness", stall: float = 10.0, tick: float = 0.05) -> None:
        if fault not in FAULTS or fault == "refused":
            raise ValueError(f"not an HTTP fault: {fault!r}")
        self.fault = fault
        self.inner = MockFastTrack(model, directory=directory, attribution=attribution, clock=clock,
                                   jwt_secret=jwt_secret, seed=seed)
        self.stall = stall
        self.tick = tick
        self.stopping = asyncio.Event()

    @property
    def model(self) -> FastTrackModel:
        return self.inner.model

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1 << 30)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        app.on_shutdown.append(self._stop)
        return app

    async def _stop(self, app: web.Application) -> None:
        self.stopping.set()

    async def _held(self, seconds: float) -> None:
        """Wait ``seconds`` or until the server stops, whichever comes first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        got = await intake.receive(request, self.inner.attribution)
        if got.stream:
            return await self.inner.stream(request, got)  # the faults are HTTP faults: streams go to the model as is
        decision = self.inner.decision(got)
        exchange = Exchange(got.hop2, None, decision.reason)
        got.file(self.inner.attribution, exchange)  # filed now: a step that times out still shows what reached it
        if self.fault == "hang":
            exchange.error = (f"fault 'hang': FastTrack {self.model.version} read the request and never answered "
                              f"(connection aborted after {self.stall:g} s)")
            await self._held(self.stall)
            _reset(request)
            return web.Response()  # never sent: the transport is gone
        if self.fault in ("reset-mid-body", "slow-body"):
            return await self._broken_body(request, decision, exchange)
        status, pairs, out_body = _mutate(self.fault, decision)
        resp = web.Response(status=status, body=out_body, headers=CIMultiDict(pairs))
        await resp.prepare(request)
        exchange.response = HopRecord.response("fasttrack_to_gateway", resp.status, resp.reason,
                                               Headers.of(resp.headers.items()), out_body)
        exchange.note = f"fault '{self.fault}' injected" + (f"; model said: {decision.reason}" if decision.reason
                                                            else "")
        return resp

    async def _broken_body(self, request: web.Request, decision: Decision, exchange: Exchange) -> web.StreamResponse:
        resp = web.StreamResponse(status=decision.status, headers=CIMultiDict(decision.headers.pairs))
        resp.content_length = len(decision.body)
        await resp.prepare(request)
        sent = b""
        if self.fault == "reset-mid-body":
            sent = decision.body[: len(decision.body) // 2]
            await resp.write(sent)
            exchange.error = (f"fault 'reset-mid-body': FastTrack {self.model.version} reset the connection after "
                              f"{len(sent)} of {len(decision.body)} body bytes")
        else:
            exchange.error = (f"fault 'slow-body': FastTrack {self.model.version} sent its body one byte per "
                              f"{self.tick:g} s and was cut off after {self.stall:g} s")
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.stall
            for i in range(len(decision.body) - 1):  # the last byte never comes
                if self.stopping.is_set() or loop.time() >= deadline:
                    break
                try:
                    await resp.write(decision.body[i:i + 1])
                except ConnectionError:  # the gateway gave up first
                    break
                sent = decision.body[: i + 1]
                await self._held(min(self.tick, max(0.0, deadline - loop.time())))
        exchange.response = HopRecord.response("fasttrack_to_gateway", resp.status, resp.reason,
                                               Headers.of(resp.headers.items()), sent)
        exchange.response.body_size = len(sent)
        _reset(request)
        return resp


def _mutate(fault: str, decision: Decision) -> tuple[int, list[tuple[str, str]], bytes]:
    pairs = list(decision.headers.pairs)
    version = [v for k, v in pairs if k.lower() == VERSION_HEADER.lower()]
    others = [(k, v) for k, v in pairs if k.lower() != VERSION_HEADER.lower()]
    if fault == "status-5xx":
        problem = {"type": "https://fasttrack.harness.invalid/probs/unavailable", "title": "Service Unavailable"}
        return 503, [("Content-Type", "application/problem+json"), *[(VERSION_HEADER, v) for v in version]], \
            json.dumps(problem).encode()
    if fault == "malformed-json":
        return decision.status, pairs, decision.body[: max(1, len(decision.body) // 2)]
    if fault == "version-missing":
        return decision.status, others, decision.body
    if fault == "version-duplicated":
        return decision.status, [*others, *[(VERSION_HEADER, v) for v in version * 2]], decision.body
    if fault == "version-garbled":
        return decision.status, [*others, (VERSION_HEADER, GARBLED_VERSION)], decision.body
    raise ValueError(f"not a response fault: {fault!r}")


def _reset(request: web.Request) -> None:
    """Abort the connection with a TCP RST (SO_LINGER on, timeout 0) instead of an orderly FIN."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def closed_port(host: str = server.LOOPBACK) -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def running(fault: str, model: FastTrackModel, *, directory: Directory, attribution: Attribution, clock: Clock,
                  jwt_secret: str, seed: str, host: str = server.LOOPBACK, port: int = 0,
                  stall: float = 10.0) -> AsyncIterator[server.RunningServer]:
    """The fault column's server while it runs (for ``refused``: an address where nothing listens)."""
    if fault == "refused":
        if port:
            raise UsageError("fault 'refused' cannot use a fixed listen address")
        runner = web.AppRunner(web.Application(), handle_signals=False)
        await runner.setup()  # no site: nothing listens
        srv = server.RunningServer(f"fault column refused ({model.id})", runner, host, closed_port(host))
    else:
        faulty = FaultyFastTrack(fault, model, directory=directory, attribution=attribution, clock=clock,
                                 jwt_secret=jwt_secret, seed=seed, stall=stall)
        srv = await server.start(f"fault column {fault} ({model.id})", faulty.app(), host, port)
    try:
        yield srv
    finally:
        await srv.stop()
