"""An independent TO-BE FastTrack, written from PR #3353's TO-BE diagram alone (it does not import harness):

    Gateway-->>FastTrack: POST /login/ (X-BackendAI-SessionID: ...)   [keypair-signed by the gateway]
    FastTrack-->>Gateway: 200 OK {"token": "AUTH_TOKEN"}
    Gateway-->>FastTrack: POST /.../ (Authorization: "Bearer AUTH_TOKEN")
    FastTrack-->>Gateway: 200 OK

A login (a POST whose path ends in ``login/``) needs a non-empty X-BackendAI-SessionID and a valid Backend.AI
keypair signature (``Authorization: BackendAI signMethod=HMAC-SHA256, credential=AK:SIG``) by an account of the
accounts file the harness writes (``--accounts``); it answers ``{"token": ...}``. Every other route needs
``Authorization: Bearer <a token it issued>``. Streams (``/stream/...``) are WebSockets, not authenticated (no
gateway forwards a credential there); each frame is acknowledged. Every answer carries
``X-BackendAI-FastTrack-Version``.

Test switches: ``--no-version`` (announce nothing), ``--alternate-version V`` (every other answer announces V),
``--accept-all`` (no authentication at all: a FastTrack that must not come out compatible).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import itertools
import json
import re
import secrets
from datetime import datetime
from pathlib import Path

from aiohttp import WSMsgType, web

VERSION_HEADER = "X-BackendAI-FastTrack-Version"
AUTH_RE = re.compile(r"^BackendAI signMethod=HMAC-(?P<hash>[A-Za-z0-9]+), "
                     r"credential=(?P<ak>[^:\s]+):(?P<sig>[0-9a-f]+)$")


class Accounts:
    """Access key -> secret key, from the harness's accounts file (re-read when a key is not known yet)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.secrets: dict[str, str] = {}

    def secret(self, access_key: str) -> str | None:
        if access_key not in self.secrets and self.path.exists():
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            self.secrets = {a["access_key"]: a["secret_key"] for a in doc["accounts"]}
        return self.secrets.get(access_key)


def signature_problem(request: web.Request, accounts: Accounts) -> str | None:
    """Backend.AI's keypair signature: HMAC over method, path?query, Date, host, media type, API version and the
    hash of an empty body, keyed by HMAC(HMAC(secret, yyyymmdd), host)."""
    values = request.headers.getall("Authorization", [])
    if len(values) != 1:
        return "exactly one Authorization needed"
    m = AUTH_RE.match(values[0])
    if not m:
        return "not a keypair signature"
    hash_type, access_key = m["hash"].lower(), m["ak"]
    secret = accounts.secret(access_key)
    if secret is None:
        return "unknown access key"
    date, host = request.headers.get("Date", ""), request.headers.get("Host", "")
    try:
        day = datetime.fromisoformat(date).strftime("%Y%m%d")
        body_hash = hashlib.new(hash_type, b"").hexdigest()
    except ValueError:
        return "bad Date or hash"
    media = request.headers.get("Content-Type", "application/octet-stream").split(";")[0].strip().lower()
    query = request.rel_url.raw_query_string
    rel = request.rel_url.raw_path + (f"?{query}" if query else "")
    text = (f"{request.method.upper()}\n{rel}\n{date}\nhost:{host}\ncontent-type:{media}\n"
            f"x-backendai-version:{request.headers.get('X-BackendAI-Version', '')}\n{body_hash}")
    key = hmac.new(hmac.new(secret.encode(), day.encode(), hash_type).digest(), host.encode(), hash_type).digest()
    if not hmac.compare_digest(hmac.new(key, text.encode(), hash_type).hexdigest(), m["sig"]):
        return "signature does not match"
    return None


def make_app(accounts: Accounts, versions: list[str | None], accept_all: bool) -> web.Application:
    tokens: set[str] = set()
    announce = itertools.cycle(versions)

    def answer(status: int, payload: dict[str, object], headers: dict[str, str] | None = None) -> web.Response:
        resp = web.json_response(payload, status=status, headers=headers)
        version = next(announce)
        if version is not None:
            resp.headers[VERSION_HEADER] = version
        return resp

    async def stream(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        version = next(announce)
        if version is not None:
            ws.headers[VERSION_HEADER] = version
        await ws.prepare(request)
        count = 0
        async for msg in ws:
            if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                count += 1
                await ws.send_str(f"ack {count}")
        return ws

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket" and request.path.startswith("/stream/"):
            return await stream(request)
        await request.read()
        if accept_all:
            return answer(200, {"token": "anything-goes"})
        if request.method == "POST" and request.path.endswith("login/"):
            sids = request.headers.getall("X-BackendAI-SessionID", [])
            if len(sids) != 1 or not sids[0]:
                return answer(401, {"error": "login needs X-BackendAI-SessionID"})
            problem = signature_problem(request, accounts)
            if problem:
                return answer(401, {"error": f"keypair signature: {problem}"})
            token = secrets.token_urlsafe(24)
            tokens.add(token)
            return answer(200, {"token": token})
        auth = request.headers.getall("Authorization", [])
        if len(auth) != 1 or not auth[0].startswith("Bearer ") or auth[0][7:] not in tokens:
            return answer(401, {"error": "a Bearer token from POST login/ is needed"})
        return answer(200, {"ok": True})

    app = web.Application(client_max_size=1 << 30)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--accounts", type=Path, required=True)
    p.add_argument("--version", default="25.6.0")
    p.add_argument("--no-version", action="store_true")
    p.add_argument("--alternate-version")
    p.add_argument("--accept-all", action="store_true")
    args = p.parse_args()
    versions: list[str | None] = [None] if args.no_version else [args.version]
    if args.alternate_version:
        versions.append(args.alternate_version)
    web.run_app(make_app(Accounts(args.accounts), versions, args.accept_all), host="127.0.0.1", port=args.port,
                print=None)


if __name__ == "__main__":
    main()
