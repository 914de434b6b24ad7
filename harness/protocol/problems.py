"""The problem+json bodies the webserver itself answers with (the same JSON in every generation)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

PROBLEM_JSON = "application/problem+json"

AUTH_FAILED = {"type": "https://api.backend.ai/probs/auth-failed", "title": "Unauthorized access"}
BAD_GATEWAY = {"type": "https://api.backend.ai/probs/bad-gateway", "title": "The proxy target server is inaccessible."}
INTERNAL_ERROR = {"type": "https://api.backend.ai/probs/internal-server-error", "title": "Something has gone wrong."}
INVALID_HEADERS = {"type": "https://api.backend.ai/probs/generic-bad-request",
                   "title": "Invalid or Missing API Parameters.",
                   "error_code": "api_parsing_invalid-parameters"}  # InvalidAPIParameters (25.13.0+, #5449), as 25.13.4
GENERIC_ERROR_TYPE = "https://api.backend.ai/probs/generic-error"


def body(problem: Mapping[str, Any]) -> bytes:
    return json.dumps(problem).encode()


def from_upstream_error(raw: bytes) -> dict[str, Any]:
    """What ``BackendAPIError.data`` holds for an upstream error body (re-serialised JSON, else generic)."""
    try:
        data = json.loads(raw.decode())
    except (UnicodeDecodeError, ValueError):
        data = None
    if isinstance(data, dict):
        return data
    return {
        "type": GENERIC_ERROR_TYPE,
        "title": "Generic Error (could not parse error string)",
        "content": raw.decode("utf-8", "replace"),
    }
