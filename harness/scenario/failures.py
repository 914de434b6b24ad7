"""A check failure as a structure, the root causes of a cell, and the one renderer of both as text.

A :class:`Failure` says which step and hop, what was checked (``what``: header, json, status, request line,
body size, capture, websocket, exchange, request; ``name``: the header, JSON path, capture, ... or ``""``), the
check kind, expected and actual, FastTrack's own reason when it gave one (the ``detail``/``title`` of the problem
body it rejected the request with) and where the check is written. Reports read these fields; text is made only
here (:func:`one_line`, :func:`render`, :meth:`Cause.text`), never parsed back.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.errors import SourceSpan
from harness.protocol.hops import HOPS, HopRecord

NOWHERE = SourceSpan("")


@dataclass(frozen=True, slots=True)
class Failure:
    step: str
    hop: str
    what: str  # header | json | status | request line | body size | capture | websocket | exchange | request
    name: str  # the header name, JSON path, capture name, ...; "" for status
    kind: str  # the check kind: present, absent, equals, not_equals, regex, jwt, keypair_signature, bearer, count
    expected: str
    actual: str
    where: SourceSpan = NOWHERE  # the scenario's source position of the check
    fasttrack_reason: str | None = None  # FastTrack's own words when it rejected the step's request

    @property
    def subject(self) -> str:
        """What was checked, e.g. ``header X-BackendAI-SSO`` or ``status``."""
        return f"{self.what} {self.name}" if self.name else self.what

    def key(self) -> tuple[str, str, str, str, str | None]:
        """What a root cause groups on: hop, what (and its name), check kind, FastTrack's reason."""
        return self.hop, self.what, self.name, self.kind, self.fasttrack_reason

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "hop": self.hop, "what": self.what, "name": self.name, "kind": self.kind,
                "expected": self.expected, "actual": self.actual, "fasttrack_reason": self.fasttrack_reason,
                "where": self.where.to_json()}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Failure:
        return cls(str(d.get("step", "")), str(d.get("hop", "")), str(d.get("what", "")), str(d.get("name", "")),
                   str(d.get("kind", "")), str(d.get("expected", "")), str(d.get("actual", "")),
                   SourceSpan.from_json(d.get("where")), d.get("fasttrack_reason"))


def said(reason: str | None) -> str:
    return f' (FastTrack: "{reason}")' if reason else ""


def one_line(f: Failure) -> str:
    return (f"step '{f.step}', {f.hop}: {f.subject} ({f.kind}): expected {f.expected}, got {f.actual}"
            + said(f.fasttrack_reason))


def render(f: Failure) -> list[str]:
    """The failure as a few lines: what failed, where it is written, the source line with a caret."""
    lines = [one_line(f)]
    if f.where.file:
        lines.append(f"  at {f.where}")
        lines += [f"  {x}" for x in f.where.caret()]
    return lines


def fasttrack_reason(record: HopRecord | None) -> str | None:
    """FastTrack's own words for refusing a request: the ``detail`` (else ``title``) of its problem body."""
    if record is None or record.status is None or record.status < 400 or record.body[:1] != b"{":
        return None
    try:
        doc = json.loads(record.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if isinstance(doc, dict):
        for key in ("detail", "title"):
            value = doc.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
    return None


# --- root causes --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Cause:
    """One group of failures shared by ``len(scenarios)`` of a cell's ``of`` failing scenarios."""

    hop: str
    what: str
    name: str
    kind: str
    fasttrack_reason: str | None
    expected: str  # the most common (expected, actual) of the group
    actual: str
    scenarios: tuple[str, ...]
    of: int

    @property
    def subject(self) -> str:
        return f"{self.what} {self.name}" if self.name else self.what

    def text(self) -> str:
        return (f"{len(self.scenarios)} of {self.of} failing scenarios: {self.hop} {self.subject}: expected "
                f"{self.expected}, got {self.actual}{said(self.fasttrack_reason)}")

    def to_json(self) -> dict[str, Any]:
        return {"count": len(self.scenarios), "of": self.of, "hop": self.hop, "what": self.what, "name": self.name,
                "kind": self.kind, "expected": self.expected, "actual": self.actual,
                "fasttrack_reason": self.fasttrack_reason, "scenarios": list(self.scenarios)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Cause:
        return cls(str(d.get("hop", "")), str(d.get("what", "")), str(d.get("name", "")), str(d.get("kind", "")),
                   d.get("fasttrack_reason"), str(d.get("expected", "")), str(d.get("actual", "")),
                   tuple(str(s) for s in d.get("scenarios") or ()), int(d.get("of") or 0))


def _first_hop(failures: Sequence[Failure]) -> list[Failure]:
    """The failures at the earliest hop that failed: later hops mostly show its consequences."""
    order: dict[str, int] = {h: i for i, h in enumerate(HOPS)}
    first = min(order.get(f.hop, len(order)) for f in failures)
    return [f for f in failures if order.get(f.hop, len(order)) == first]


def causes(failing: Iterable[tuple[str, Sequence[Failure]]]) -> list[Cause]:
    """Root causes of a cell from its failing scenarios (id, failures): the failures at each scenario's first
    failing hop, grouped by :meth:`Failure.key`, the group shared by the most scenarios first (then hop order, then
    first seen)."""
    failing = [(sid, fs) for sid, fs in failing if fs]
    groups: dict[tuple[str, str, str, str, str | None], list[tuple[str, Failure]]] = {}
    for sid, fs in failing:
        for f in _first_hop(fs):
            members = groups.setdefault(f.key(), [])
            if not any(s == sid for s, _ in members):
                members.append((sid, f))
    order: dict[str, int] = {h: i for i, h in enumerate(HOPS)}
    ranked = sorted(enumerate(groups.items()), key=lambda e: (-len(e[1][1]), order.get(e[1][0][0], len(order)), e[0]))
    out = []
    for _, (key, members) in ranked:
        pairs = Counter((f.expected, f.actual) for _, f in members)
        best = max(pairs.values())
        expected, actual = next(p for p in ((f.expected, f.actual) for _, f in members) if pairs[p] == best)
        out.append(Cause(key[0], key[1], key[2], key[3], key[4], expected, actual,
                         tuple(s for s, _ in members), len(failing)))
    return out


CAUSES_IN_REASON = 2  # the reason names this many groups; matrix.json's ``causes`` lists them all


def reason(cs: Sequence[Cause]) -> str:
    """A cell's reason: its largest root-cause groups, then how many more there are."""
    text = "; ".join(c.text() for c in cs[:CAUSES_IN_REASON])
    more = len(cs) - CAUSES_IN_REASON
    return text + (f"; and {more} more cause{'s' if more > 1 else ''}" if more > 0 else "")
