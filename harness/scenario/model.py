"""Scenario model: what the client sends per step and what must be seen on each of the four hops."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from harness.errors import SourceSpan
from harness.scenario.template import Template

_NOWHERE = SourceSpan("")

CheckKind = Literal["present", "absent", "equals", "not_equals", "regex", "jwt", "keypair_signature", "bearer"]
SessionCarrier = Literal["header", "cookie", "both", "none", "unknown"]
# Who sends a step: the run's user, the second user of a ``users: 2`` scenario (logged in at the same time, from
# its own client and address), or a client of nobody (its own address, no session, no credential).
Actor = Literal["first", "second", "anonymous"]
ACTORS: tuple[Actor, ...] = ("first", "second", "anonymous")


@dataclass(frozen=True, slots=True)
class JwtSpec:
    secret: Template
    algorithms: tuple[str, ...]
    claims: tuple[tuple[str, Template | None], ...]  # None: the claim must be JSON null
    lifetime: Template | None  # exp - iat, seconds
    absent_claims: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Check:
    kind: CheckKind
    where: SourceSpan  # where the check is written, for failures
    value: Template | None = None  # equals / not_equals / bearer / keypair access key / a regex with ${...}
    pattern: re.Pattern[str] | None = None  # regex, compiled at load time (placeholders as "x": syntax only)
    jwt: JwtSpec | None = None
    modes: frozenset[str] | None = None  # apply only on gateways matching one of these modes
    allow_duplicates: bool = False

    def describe(self) -> str:
        if self.kind in ("present", "absent"):
            return self.kind
        if self.kind == "regex" and self.pattern is not None:
            return f"regex /{self.value.raw if self.value is not None else self.pattern.pattern}/"
        if self.kind == "jwt":
            return "jwt"
        return f"{self.kind} {self.value}" if self.value is not None else self.kind


@dataclass(frozen=True, slots=True)
class FieldExpect:
    """Checks on one header (``name`` a header name) or one JSON body field (``name`` a dot path)."""

    name: str
    checks: tuple[Check, ...]


@dataclass(frozen=True, slots=True)
class HopExpect:
    reached: bool = True
    method: Template | None = None
    path: Template | None = None
    query: Template | None = None
    status: int | None = None
    status_class: int | None = None  # ``status: 4xx``: any status of that hundred (4)
    headers: tuple[FieldExpect, ...] = ()
    json: tuple[FieldExpect, ...] = ()
    body_size: int | None = None
    where: SourceSpan = _NOWHERE
    # Details of the harness's mock FastTrack (its echoes, problem type, extra headers), not of the contract:
    # judged against the mock only, "not applicable" against a real FastTrack. Response hops only.
    model: HopExpect | None = None

    def count(self, modes: frozenset[str] | None = None) -> int:
        """Checks on this hop's fields, the model part excluded (whether a FastTrack hop was reached is counted by
        :meth:`Step.count_checks`); with ``modes``, only those that apply to a gateway with these modes."""
        plain = sum(v is not None for v in (self.method, self.path, self.query, self.status, self.status_class,
                                             self.body_size))
        return plain + sum(1 for f in (*self.headers, *self.json) for c in f.checks
                           if modes is None or c.modes is None or c.modes & modes)


@dataclass(frozen=True, slots=True)
class Capture:
    name: str
    hop: str
    header: str | None = None
    json: str | None = None  # dot path into the JSON body
    secret: bool = True
    where: SourceSpan = _NOWHERE
    model: bool = False  # taken from a mock-only detail (e.g. its echo): unavailable against a real FastTrack


@dataclass(frozen=True, slots=True)
class Upstream:
    """Ask FastTrack to answer this step with a given status (after authentication passed)."""

    status: int
    headers: tuple[tuple[str, Template], ...] = ()
    body: str | None = None


@dataclass(frozen=True, slots=True)
class WsMessage:
    kind: Literal["text", "binary"]
    value: Template  # text, or the bytes as hex for binary

    def render(self, values: Mapping[str, object]) -> tuple[str, str]:
        return self.kind, self.value.render(values)


@dataclass(frozen=True, slots=True)
class WebSocketSpec:
    """Open the step's path as a WebSocket, send these messages one by one (each answered by the mock
    FastTrack's echo), then close from the client; with ``fasttrack_closes``, the mock FastTrack closes the stream
    with that code after its last echo, and the client waits up to ``close_wait`` seconds for that close."""

    send: tuple[WsMessage, ...] = ()
    fasttrack_closes: int | None = None
    close_wait: float = 2.0


@dataclass(frozen=True, slots=True)
class WebSocketExpect:
    client_received: tuple[WsMessage, ...] | None = None
    fasttrack_received: tuple[WsMessage, ...] | None = None
    close_code: int | None = None  # the client's close, as FastTrack saw it relayed
    client_close_code: int | None = None  # FastTrack's close, as the client saw it relayed
    where: SourceSpan = _NOWHERE
    model: frozenset[str] = frozenset()  # which of the above are the mock's details (its echo: client_received)
    relayed: bool = False  # the client received exactly what FastTrack sent (whatever that was): the contract

    def count(self, model: bool) -> int:
        keys = [k for k in ("client_received", "fasttrack_received", "close_code", "client_close_code")
                if getattr(self, k) is not None]
        return sum((k in self.model) == model for k in keys) + (self.relayed and not model)


@dataclass(frozen=True, slots=True)
class RequestSpec:
    method: str
    path: Template
    session: SessionCarrier = "header"
    query: tuple[tuple[str, Template], ...] = ()
    headers: tuple[tuple[str, Template], ...] = ()
    json: object | None = None
    text: Template | None = None
    body_bytes: int | None = None  # a generated binary body of this size, streamed
    upstream: Upstream | None = None
    # Seconds FastTrack's clock runs ahead of the gateway's during this step (JWT expiry without sleeping).
    fasttrack_clock_offset: int = 0
    websocket: WebSocketSpec | None = None


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    request: RequestSpec
    expect: dict[str, HopExpect]
    captures: tuple[Capture, ...] = ()
    modes: frozenset[str] | None = None
    where: SourceSpan = _NOWHERE
    websocket: WebSocketExpect | None = None
    actor: Actor = "first"

    @property
    def needs_fasttrack_control(self) -> str | None:
        """Why this step can only run against the mock FastTrack (None: it can run against any)."""
        if self.request.upstream is not None:
            return "it injects FastTrack's answer (upstream:)"
        if self.request.fasttrack_clock_offset:
            return "it runs FastTrack's clock ahead (fasttrack_clock_offset:)"
        if self.request.websocket is not None and self.request.websocket.fasttrack_closes is not None:
            return "it makes FastTrack close the stream (websocket.fasttrack_closes:)"
        return None

    def count_checks(self, modes: frozenset[str] | None = None) -> tuple[int, int]:
        """(contract, model) checks of this step: every hop check, WebSocket expectation and capture; with
        ``modes``, only those that apply to a gateway with these modes."""
        # On a FastTrack hop, reached or not is itself a check; the client's hops are always observed.
        contract = sum(h.count(modes) + (name in ("gateway_to_fasttrack", "fasttrack_to_gateway"))
                       for name, h in self.expect.items())
        model = sum(h.model.count(modes) for h in self.expect.values() if h.model is not None)
        if self.websocket is not None:
            contract += self.websocket.count(False)
            model += self.websocket.count(True)
        for cap in self.captures:
            contract, model = (contract, model + 1) if cap.model else (contract + 1, model)
        return contract, model


@dataclass(frozen=True, slots=True)
class Scenario:
    id: str
    title: str
    file: str
    modes: tuple[str, ...]
    steps: tuple[Step, ...]
    description: str = ""
    source: str = ""
    login: bool = True
    tags: tuple[str, ...] = field(default=())

    def count_checks(self) -> tuple[int, int]:
        """(contract, model) checks over all steps, whatever their modes."""
        counts = [s.count_checks() for s in self.steps]
        return sum(c for c, _ in counts), sum(m for _, m in counts)
    users: int = 1  # 2: a second user is logged in for the whole run (steps with ``as: second``)

    @property
    def security(self) -> bool:
        """A failure of this scenario is a security failure (tag ``security``)."""
        return "security" in self.tags
