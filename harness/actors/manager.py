"""Mock Backend.AI manager: the ``GET /`` version probe and ``POST /auth/authorize`` (§3.6); with the 26.4
contract also ``GET /health/readyz`` and ``POST /auth/logout``."""

from __future__ import annotations

from aiohttp import web

from harness.protocol import manager_rules
from harness.protocol.accounts import Directory
from harness.protocol.manager_rules import MANAGER_VERSION, ManagerContract, authorize


class MockManager:
    def __init__(self, directory: Directory, contract: ManagerContract | None = None) -> None:
        self.directory = directory
        self.contract = contract or manager_rules.CLASSIC
        self._logins: dict[str, int] = {}
        self.logouts: list[str] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self.version)
        app.router.add_post("/auth/authorize", self.authorize)
        if self.contract.health:
            app.router.add_get(manager_rules.HEALTH_PATH, self.health)
        if self.contract.logout:
            app.router.add_post("/auth/logout", self.logout)
        return app

    async def version(self, request: web.Request) -> web.Response:
        return web.json_response(MANAGER_VERSION)

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "healthy"})

    async def logout(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("session_token"), str):
            self.logouts.append(body["session_token"])
        return web.json_response({})

    async def authorize(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        token = None
        if self.contract.session_token and isinstance(body, dict):
            name = str(body.get("username", ""))
            n = self._logins.get(name, 0)
            self._logins[name] = n + 1
            token = manager_rules.session_token(self.directory.seed, name, n)
        status, payload = authorize(self.directory, body, self.contract, token=token)
        if status == 200 and token is not None:
            self.directory.note_session_token(name, token)
        return web.json_response(payload, status=status)
