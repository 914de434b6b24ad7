"""What a step's client sends and what the mock FastTrack is told to answer, rendered from the scenario's
templates with the run's values. Pure: the engine sends it (harness.engine.runner)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from harness.protocol.accounts import derive
from harness.protocol.fasttrack_models import Override
from harness.protocol.gateway_rules import SESSION_COOKIE, SESSION_HEADER
from harness.scenario.model import RequestSpec, Upstream
from harness.scenario.template import Template

_SESSION_OF = {"first": "session_id", "second": "second_session_id"}  # the anonymous client has none


@dataclass(frozen=True, slots=True)
class Request:
    path: str
    query: str  # encoded, without '?'
    headers: tuple[tuple[str, str], ...]  # in the order they are sent, the session carrier's last
    body: bytes | None


def request(spec: RequestSpec, variables: dict[str, object], rid: str, actor: str = "first") -> Request:
    """``spec`` for the user ``actor`` of run ``rid``: placeholders filled, the session carried as the step says
    (an ``unknown`` session is a value derived from the run, never a live one). Raises
    :class:`~harness.scenario.template.UndefinedPlaceholder` for a value the run does not have."""
    path = spec.path.render(variables)
    query = "&".join(f"{quote(k, safe='')}={quote(v.render(variables), safe='')}" for k, v in spec.query)
    headers = [(k, v.render(variables)) for k, v in spec.headers]
    sid = variables.get(_SESSION_OF[actor]) if actor in _SESSION_OF else None
    carrier = spec.session
    if carrier == "unknown":
        headers.append((SESSION_HEADER, derive("unknown-session", rid, 32)))
    elif sid and carrier in ("header", "both"):
        headers.append((SESSION_HEADER, str(sid)))
    if sid and carrier in ("cookie", "both"):
        headers.append(("Cookie", f"{SESSION_COOKIE}={sid}"))
    body: bytes | None = None
    if spec.json is not None:
        body = json.dumps(_json(spec.json, variables)).encode()
        if not any(k.lower() == "content-type" for k, _ in headers):
            headers.append(("Content-Type", "application/json"))
    elif spec.text is not None:
        body = spec.text.render(variables).encode()
    return Request(path, query, tuple(headers), body)


def override(upstream: Upstream | None, variables: dict[str, object]) -> Override | None:
    """What the mock FastTrack answers instead of its model for a step with ``request.upstream`` (else None)."""
    if upstream is None:
        return None
    return Override(upstream.status, tuple((k, v.render(variables)) for k, v in upstream.headers),
                    upstream.body.encode() if upstream.body is not None else None)


def _json(value: Any, variables: dict[str, object]) -> Any:
    if isinstance(value, str):
        return Template(value).render(variables)
    if isinstance(value, dict):
        return {k: _json(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [_json(v, variables) for v in value]
    return value
