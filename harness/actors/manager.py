"""Mock Backend.AI manager: the ``GET /`` version probe and ``POST /auth/authorize`` (§3.6)."""

from __future__ import annotations

from aiohttp import web

from harness.protocol.accounts import Directory
from harness.protocol.manager_rules import MANAGER_VERSION, ManagerContract, authorize


class MockManager:
    def __init__(self, directory: Directory, contract: ManagerContract | None = None) -> None:
        self.directory = directory
        self.contract = contract or ManagerContract()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self.version)
        app.router.add_post("/auth/authorize", self.authorize)
        return app

    async def version(self, request: web.Request) -> web.Response:
        return web.json_response(MANAGER_VERSION)

    async def authorize(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        status, payload = authorize(self.directory, body, self.contract)
        return web.json_response(payload, status=status)
