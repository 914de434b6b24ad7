"""The manager's ``POST /auth/authorize`` contract and the webserver's ``POST /server/login`` answer.

Which contract a webserver needs depends on its release (protocol-history §3.6, §6.8; real-webserver-peers
"The 26.x line"):

  classic  ``data`` = access_key, secret_key, role, status, plus response_type/type (required from 25.9.0,
           ignored before)
  26.4     as classic, plus ``session_token`` (a uuid4 hex, new per login; the webserver's session id from
           26.4.0, #10489) and ``user_id`` (a UUID); the manager answers ``GET /health/readyz`` (every worker
           probes it; three failures make /server/login 503) and ``POST /auth/logout``
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from typing import Any

from packaging.version import InvalidVersion, Version

from harness.protocol.accounts import Directory

MANAGER_VERSION = {"version": "v8.20240915", "manager": "harness-mock"}
HEALTH_PATH = "/health/readyz"
FIRST_SESSION_TOKEN_RELEASE = "26.4.0"


@dataclass(frozen=True, slots=True)
class ManagerContract:
    """What the mock manager answers; the fields later releases require are switched on per contract."""

    id: str = "classic"
    response_type: bool = True  # 25.9+ requires it; older webservers ignore the extra key
    session_token: bool = False  # 26.4+: session_token and user_id in the authorize answer
    health: bool = False  # 26.x: GET /health/readyz answered 200
    logout: bool = False  # 26.x: POST /auth/logout


CLASSIC = ManagerContract()
V26_4 = ManagerContract("26.4", session_token=True, health=True, logout=True)
CONTRACTS: dict[str, ManagerContract] = {c.id: c for c in (CLASSIC, V26_4)}
# ``--manager-contract``: auto picks by the webserver version when the harness knows it (a release), else classic.
CHOICES: tuple[str, ...] = ("auto", *CONTRACTS)


def for_version(version: str | None) -> ManagerContract:
    """The contract a webserver release needs; classic when the version is unknown or unparsable."""
    try:
        return V26_4 if version and Version(version) >= Version(FIRST_SESSION_TOKEN_RELEASE) else CLASSIC
    except InvalidVersion:
        return CLASSIC


def choose(choice: str, version: str | None = None) -> ManagerContract:
    """``choice`` is one of :data:`CHOICES`; ``auto`` is :func:`for_version`."""
    return for_version(version) if choice == "auto" else CONTRACTS[choice]


def _digest(seed: str, label: str) -> bytes:
    return hmac.new(seed.encode(), label.encode(), hashlib.sha256).digest()[:16]


def session_token(seed: str, username: str, n: int) -> str:
    """The n-th login's session token, as the real manager mints it (``uuid4().hex``: 32 lowercase hex digits),
    but seeded so runs are deterministic."""
    return uuid.UUID(bytes=_digest(seed, f"manager-session:{username}:{n}"), version=4).hex


def user_id(seed: str, username: str) -> str:
    return str(uuid.UUID(bytes=_digest(seed, f"manager-user:{username}"), version=4))


def authorize(directory: Directory, body: Any, contract: ManagerContract = CLASSIC, *, token: str | None = None
              ) -> tuple[int, dict[str, Any]]:
    """``token``: the session token this login gets (required by the 26.4 contract)."""
    if not isinstance(body, dict) or body.get("type") != "keypair":
        return 400, {"type": "https://api.backend.ai/probs/invalid-api-params", "title": "Invalid API parameters"}
    user = directory.by_name(str(body.get("username", "")))
    if user is None or body.get("password") != user.password:
        return 401, {"type": "https://api.backend.ai/probs/auth-failed", "title": "Authentication failed"}
    data: dict[str, Any] = {
        "access_key": user.access_key,
        "secret_key": user.secret_key,
        "role": user.role,
        "status": user.status,
    }
    if contract.response_type:
        data["response_type"] = "success"
        data["type"] = "keypair"
    if contract.session_token:
        assert token is not None, "the 26.4 contract mints a session token per login"
        data["session_token"] = token
        data["user_id"] = user_id(directory.seed, user.username)
    return 200, {"data": data}


def login_success(data: dict[str, Any]) -> dict[str, Any]:
    return {"authenticated": True,
            "data": {"access_key": data["access_key"], "role": data["role"], "status": data["status"]}}


def login_failure(status: int, problem: dict[str, Any]) -> dict[str, Any]:
    return {"authenticated": False,
            "data": {"type": problem.get("type"), "title": problem.get("title"), "details": f"manager said {status}"}}
