"""The manager's ``POST /auth/authorize`` contract and the webserver's ``POST /server/login`` answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.protocol.accounts import Directory

MANAGER_VERSION = {"version": "v8.20240915", "manager": "harness-mock"}


@dataclass(frozen=True, slots=True)
class ManagerContract:
    """What the manager answers; fields that later releases require are switched on per release (§3.6)."""

    response_type: bool = True  # 25.9+ requires it; older webservers ignore the extra key
    session_token: bool = False  # 26.4+


def authorize(directory: Directory, body: Any, contract: ManagerContract = ManagerContract()
              ) -> tuple[int, dict[str, Any]]:
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
        data["session_token"] = "mgr-" + user.access_key
    return 200, {"data": data}


def login_success(data: dict[str, Any]) -> dict[str, Any]:
    return {"authenticated": True,
            "data": {"access_key": data["access_key"], "role": data["role"], "status": data["status"]}}


def login_failure(status: int, problem: dict[str, Any]) -> dict[str, Any]:
    return {"authenticated": False,
            "data": {"type": problem.get("type"), "title": problem.get("title"), "details": f"manager said {status}"}}
