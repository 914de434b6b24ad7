"""What crossed each hop, as recorded by the party that saw it on the wire (pure data)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from harness.protocol.headers import Headers

if TYPE_CHECKING:  # the records are plain data: the actors that fill them bring the event loop
    import asyncio

Hop = Literal["client_to_gateway", "gateway_to_fasttrack", "fasttrack_to_gateway", "gateway_to_client"]
HOPS: tuple[Hop, ...] = ("client_to_gateway", "gateway_to_fasttrack", "fasttrack_to_gateway", "gateway_to_client")
HOP_TITLES = {
    "client_to_gateway": "Client → Gateway",
    "gateway_to_fasttrack": "Gateway → FastTrack",
    "fasttrack_to_gateway": "FastTrack → Gateway",
    "gateway_to_client": "Gateway → Client",
}
# Bodies are kept up to this size per hop (JSON checks need whole bodies; reports show 4 KiB); the full
# size is always recorded. Bounds memory per run: 10 000 runs keep every hop for the reports.
BODY_KEEP = 16 * 1024


@dataclass(slots=True)
class HopRecord:
    hop: Hop
    headers: Headers
    method: str | None = None
    path: str | None = None
    query: str | None = None
    status: int | None = None
    reason: str | None = None
    body: bytes = b""
    body_size: int = 0

    @classmethod
    def request(cls, hop: Hop, method: str, path: str, query: str, headers: Headers, body: bytes) -> HopRecord:
        return cls(hop, headers, method=method, path=path, query=query, body=_kept(body), body_size=len(body))

    @classmethod
    def response(cls, hop: Hop, status: int, reason: str, headers: Headers, body: bytes) -> HopRecord:
        return cls(hop, headers, status=status, reason=reason, body=_kept(body), body_size=len(body))

    def __reduce__(self) -> tuple[Callable[..., HopRecord], tuple[Any, ...]]:
        # Positional, not the slots dataclass's field-by-field __setstate__ (3x slower): worker processes send
        # every recorded hop to the parent, which holds them all.
        return _unpickled, (self.hop, self.headers, self.method, self.path, self.query, self.status, self.reason,
                            self.body, self.body_size)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"hop": self.hop}
        if self.method is not None:
            out.update(method=self.method, path=self.path, query=self.query)
        if self.status is not None:
            out.update(status=self.status, reason=self.reason)
        out["headers"] = self.headers.as_lists()
        out["body_size"] = self.body_size
        out["body"] = self.body[:4096].decode("utf-8", "replace")
        return out


# Large bodies repeat across runs (a streamed upload's pattern, the same document from every cell): kept hops share
# one copy of each, up to a bounded number of distinct bodies.
_BODIES: dict[bytes, bytes] = {}
_BODIES_MAX = 4096
_BODY_SHARED_FROM = 1024


def _kept(body: bytes) -> bytes:
    kept = body[:BODY_KEEP]
    if len(kept) < _BODY_SHARED_FROM:
        return kept
    found = _BODIES.get(kept)
    if found is None and len(_BODIES) < _BODIES_MAX:
        found = _BODIES[kept] = kept
    return found or kept


def _unpickled(hop: Hop, headers: Headers, method: str | None, path: str | None, query: str | None,
               status: int | None, reason: str | None, body: bytes, body_size: int) -> HopRecord:
    """A hop record from a worker, its few recurring words shared again (hop name, method, reason, path)."""
    def shared(text: str | None) -> str | None:
        return sys.intern(text) if text is not None and len(text) <= 64 else text

    return HopRecord(HOPS[HOPS.index(hop)], headers, shared(method), shared(path), shared(query), status,
                     shared(reason), _kept(body), body_size)


@dataclass(slots=True)
class Exchange:
    """One request/response pair seen by an upstream party (FastTrack or a tap): hops 2 and 3."""

    request: HopRecord
    response: HopRecord | None = None
    note: str | None = None  # e.g. the FastTrack's authentication verdict
    error: str | None = None  # set by a tap when the real FastTrack could not be reached
    # WebSocket: messages FastTrack received (kind, text or hex) and the close code it saw from the gateway.
    ws_received: list[tuple[str, str]] = field(default_factory=list)
    ws_sent: list[tuple[str, str]] = field(default_factory=list)  # what FastTrack sent back, the same way
    ws_close_code: int | None = None
    finished: asyncio.Event | None = None  # a stream's exchange is complete only when this is set
