"""What a scenario requires on each hop, as plain data for reports (the expected sequence diagram)."""

from __future__ import annotations

from typing import Any

from harness.protocol.hops import HOPS
from harness.scenario.model import Check, FieldExpect, HopExpect, Scenario


def _check(field: str, check: Check) -> str:
    only = f" (only {', '.join(sorted(check.modes))})" if check.modes else ""
    return f"{field}: {check.describe()}{only}"


def _fields(kind: str, fields: tuple[FieldExpect, ...]) -> list[str]:
    return [_check(f"{kind} {f.name}", c) for f in fields for c in f.checks]


def _hop(expect: HopExpect) -> dict[str, Any]:
    if not expect.reached:
        return {"reached": False}
    out: dict[str, Any] = {"reached": True}
    for key in ("method", "path", "query"):
        value = getattr(expect, key)
        if value is not None:
            out[key] = value.raw
    if expect.status is not None:
        out["status"] = expect.status
    if expect.status_class is not None:
        out["status"] = f"{expect.status_class}xx"
    out["checks"] = _fields("header", expect.headers) + _fields("json", expect.json)
    if expect.model is not None:  # details of the mock FastTrack, judged against it only
        m = expect.model
        out["checks"] += [f"{c} (model)" for c in ([f"status: {m.status}"] if m.status is not None else [])
                          + _fields("header", m.headers) + _fields("json", m.json)]
    return out


def outline(scenario: Scenario) -> list[dict[str, Any]]:
    """Per step: the request the client sends and, per hop, what must be seen there (templates unrendered)."""
    return [{
        "name": step.name,
        "modes": sorted(step.modes) if step.modes else None,
        "request": {"method": step.request.method, "path": step.request.path.raw,
                    "websocket": step.request.websocket is not None},
        "hops": {hop: _hop(step.expect[hop]) for hop in HOPS if hop in step.expect},
    } for step in scenario.steps]
