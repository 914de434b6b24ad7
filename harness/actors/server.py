"""Start and stop an aiohttp application on loopback."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiohttp import web

from harness.errors import HarnessError

LOOPBACK = "127.0.0.1"
# The actors meet deliberately malformed requests (oversized or duplicated headers, security scenarios): what
# they answered is recorded on the hops, so aiohttp's per-request tracebacks go to a logger that stays quiet
# unless someone turns it on (logging.getLogger("harness.actors.server").setLevel(logging.DEBUG)).
REQUEST_ERRORS = logging.getLogger("harness.actors.server")
REQUEST_ERRORS.setLevel(logging.CRITICAL)
REQUEST_ERRORS.propagate = False


@dataclass
class RunningServer:
    name: str
    runner: web.AppRunner
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def authority(self) -> str:
        return f"{self.host}:{self.port}"

    async def stop(self) -> None:
        await self.runner.cleanup()


SHUTDOWN_TIMEOUT = 1.0


async def start(name: str, app: web.Application, host: str = LOOPBACK, port: int = 0) -> RunningServer:
    # Stopping waits at most this long for handlers still running (aiohttp's default is 60 s): a stream relay
    # whose client was cancelled by a stop would otherwise hold the stop, and a worker whose parent was killed
    # outlived it by a minute.
    runner = web.AppRunner(app, access_log=None, handle_signals=False, logger=REQUEST_ERRORS,
                           shutdown_timeout=SHUTDOWN_TIMEOUT)
    try:
        await runner.setup()
    except OSError as exc:
        await runner.cleanup()
        raise HarnessError(f"{name} could not start: {exc}") from None
    # A fixed port (--fasttrack-listen) is bound again by each column in turn: its last column's connections are
    # still in TIME_WAIT. SO_REUSEADDR allows that on Linux and still refuses a port another socket listens on.
    site = web.TCPSite(runner, host, port, reuse_address=port != 0)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise HarnessError(f"{name} could not listen on {host}:{port}: {exc.strerror or exc}") from None
    bound_port = _bound_port(site)
    return RunningServer(name, runner, host, bound_port)


def _bound_port(site: web.TCPSite) -> int:
    sockets = getattr(site._server, "sockets", None)  # asyncio.Server; aiohttp exposes no public accessor
    if not sockets:
        raise HarnessError("server started but exposes no listening socket")
    return int(sockets[0].getsockname()[1])
