"""harness.actors.manager: the mock manager answers each contract as the real manager does (a real aiohttp server)."""

from __future__ import annotations

import re

from aiohttp.test_utils import TestClient, TestServer

from harness.actors.manager import MockManager
from harness.protocol import manager_rules
from harness.protocol.accounts import Directory


async def _mock_manager(contract: manager_rules.ManagerContract) -> tuple[TestClient, Directory]:
    directory = Directory("harness")
    client = TestClient(TestServer(MockManager(directory, contract).app()))
    await client.start_server()
    return client, directory


async def test_26_4_manager_answers_token_user_id_health_and_logout() -> None:
    client, directory = await _mock_manager(manager_rules.V26_4)
    try:
        user = directory.create("u@harness.test")
        body = {"type": "keypair", "domain": "default", "username": user.username, "password": user.password}
        first = (await (await client.post("/auth/authorize", json=body)).json())["data"]
        second = (await (await client.post("/auth/authorize", json=body)).json())["data"]
        assert re.fullmatch(r"[0-9a-f]{32}", first["session_token"]) and first["session_token"] != \
            second["session_token"]
        assert re.fullmatch(r"[0-9a-f-]{36}", first["user_id"]) and first["user_id"] == second["user_id"]
        assert (await client.get("/health/readyz")).status == 200
        assert (await client.post("/auth/logout", json={"session_token": first["session_token"]})).status == 200
    finally:
        await client.close()


async def test_classic_manager_has_no_session_token_nor_health() -> None:
    client, directory = await _mock_manager(manager_rules.CLASSIC)
    try:
        user = directory.create("u@harness.test")
        body = {"type": "keypair", "username": user.username, "password": user.password}
        data = (await (await client.post("/auth/authorize", json=body)).json())["data"]
        assert "session_token" not in data and data["response_type"] == "success"
        assert (await client.get("/health/readyz")).status == 404
    finally:
        await client.close()
