"""Scenario model: what the client sends per step and what must be seen on each of the four hops."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from harness.errors import SourceSpan
from harness.scenario.template import Template

_NOWHERE = SourceSpan("")

CheckKind = Literal["present", "absent", "equals", "not_equals", "regex", "jwt", "keypair_signature", "bearer"]
SessionCarrier = Literal["header", "cookie", "both", "none", "unknown"]


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
    value: Template | None = None  # equals / not_equals / bearer / keypair access key
    pattern: re.Pattern[str] | None = None  # regex, compiled at load time
    jwt: JwtSpec | None = None
    modes: frozenset[str] | None = None  # apply only on gateways matching one of these modes
    allow_duplicates: bool = False

    def describe(self) -> str:
        if self.kind in ("present", "absent"):
            return self.kind
        if self.kind == "regex" and self.pattern is not None:
            return f"regex /{self.pattern.pattern}/"
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
    headers: tuple[FieldExpect, ...] = ()
    json: tuple[FieldExpect, ...] = ()
    body_size: int | None = None
    where: SourceSpan = _NOWHERE


@dataclass(frozen=True, slots=True)
class Capture:
    name: str
    hop: str
    header: str | None = None
    json: str | None = None  # dot path into the JSON body
    secret: bool = True
    where: SourceSpan = _NOWHERE


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

    def render(self, values: dict[str, object]) -> tuple[str, str]:
        return self.kind, self.value.render(values)


@dataclass(frozen=True, slots=True)
class WebSocketSpec:
    """Open the step's path as a WebSocket, send these messages one by one (each answered by the mock
    FastTrack's echo), then close from the client."""

    send: tuple[WsMessage, ...] = ()


@dataclass(frozen=True, slots=True)
class WebSocketExpect:
    client_received: tuple[WsMessage, ...] | None = None
    fasttrack_received: tuple[WsMessage, ...] | None = None
    close_code: int | None = None  # the client's close, as FastTrack saw it relayed
    where: SourceSpan = _NOWHERE


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
