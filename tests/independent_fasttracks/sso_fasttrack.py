"""An independent SSO-era FastTrack (24.03.3+), written from PR #3353's AS-IS diagram and the texts of PR #1350
and #2051 (it does not import harness):

    Gateway-->>FastTrack: POST /login/ (X-BackendAI-SessionID: ..., X-BackendAI-SSO: ...)
    FastTrack-->>Gateway: 200 OK (X-BackendAI-SSO: ...)
    Gateway-->>FastTrack: POST /.../ (X-BackendAI-SessionID: ..., X-BackendAI-SSO: ...)
    FastTrack-->>Gateway: 200 OK

Every HTTP request needs exactly one X-BackendAI-SSO: an HS256 JWT signed with this FastTrack's own secret
(``--secret``), issued by "Backend.AI Webserver", not expired, whose ``aiohttp_session`` is the request's
non-empty X-BackendAI-SessionID (#2051) and whose ``access_key`` is an account of the harness's accounts file
(``--accounts``). A login answers with the X-BackendAI-SSO it was given. Streams are anonymous WebSockets.
Every answer carries ``X-BackendAI-FastTrack-Version`` (``--version``, default 24.9.0).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import jwt
from aiohttp import WSMsgType, web

VERSION_HEADER = "X-BackendAI-FastTrack-Version"


def make_app(accounts_file: Path, secret: str, version: str) -> web.Application:
    known: set[str] = set()

    def account(access_key: object) -> bool:
        if access_key not in known and accounts_file.exists():
            known.update(a["access_key"] for a in json.loads(accounts_file.read_text(encoding="utf-8"))["accounts"])
        return access_key in known

    def answer(status: int, payload: dict[str, object], headers: dict[str, str] | None = None) -> web.Response:
        return web.json_response(payload, status=status, headers={VERSION_HEADER: version, **(headers or {})})

    def refused(request: web.Request) -> str | None:
        tokens = request.headers.getall("X-BackendAI-SSO", [])
        sids = request.headers.getall("X-BackendAI-SessionID", [])
        if len(tokens) != 1:
            return "exactly one X-BackendAI-SSO needed"
        if len(sids) != 1 or not sids[0]:
            return "X-BackendAI-SessionID needed"
        try:
            claims = jwt.decode(tokens[0], secret, algorithms=["HS256"], issuer="Backend.AI Webserver",
                                options={"require": ["exp", "iat"]})
        except jwt.PyJWTError as exc:
            return f"X-BackendAI-SSO: {exc}"
        if claims.get("aiohttp_session") != sids[0]:
            return "the token belongs to another session"
        if not account(claims.get("access_key")):
            return "unknown access key"
        return None

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket" and request.path.startswith("/stream/"):
            ws = web.WebSocketResponse()
            ws.headers[VERSION_HEADER] = version
            await ws.prepare(request)
            async for msg in ws:
                if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    await ws.send_str("ack")
            return ws
        await request.read()
        problem = refused(request)
        if problem:
            return answer(401, {"error": problem})
        if request.method == "POST" and request.path.endswith("login/"):
            return answer(200, {"ok": True}, {"X-BackendAI-SSO": request.headers["X-BackendAI-SSO"]})
        return answer(200, {"ok": True})

    app = web.Application(client_max_size=1 << 30)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--accounts", type=Path, required=True)
    p.add_argument("--secret", required=True)
    p.add_argument("--version", default="24.9.0")
    args = p.parse_args()
    web.run_app(make_app(args.accounts, args.secret, args.version), host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
