"""The floor: the same number of HTTP exchanges through a trivial aiohttp pass-through proxy to a trivial
upstream on loopback, with no harness logic. Whatever the harness costs beyond this is its own overhead."""

from __future__ import annotations

import asyncio
import time

import aiohttp
from aiohttp import web


async def _upstream(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response({"ok": True, "path": request.path})


def _proxy_app(upstream_url: str) -> web.Application:
    app = web.Application()
    session: dict[str, aiohttp.ClientSession] = {}

    async def start(app: web.Application) -> None:
        session["s"] = aiohttp.ClientSession()

    async def stop(app: web.Application) -> None:
        await session["s"].close()

    async def forward(request: web.Request) -> web.Response:
        body = await request.read()
        async with session["s"].request(request.method, upstream_url + request.path, data=body,
                                        headers={"Content-Type": request.content_type}) as up:
            return web.Response(status=up.status, body=await up.read(), content_type=up.content_type)

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


async def floor(exchanges: int, concurrency: int = 32) -> float:
    """Seconds to make ``exchanges`` HTTP exchanges (each proxied request is two: client→proxy, proxy→upstream)."""
    up_app = web.Application()
    up_app.router.add_route("*", "/{tail:.*}", _upstream)
    up_runner, up_url = await _serve(up_app)
    px_runner, px_url = await _serve(_proxy_app(up_url))
    requests = max(1, exchanges // 2)
    limit = asyncio.Semaphore(concurrency)
    try:
        async with aiohttp.ClientSession() as client:
            async def one(i: int) -> None:
                async with limit, client.post(f"{px_url}/api/{i}/", json={"n": i}) as resp:
                    await resp.read()

            started = time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(requests)))
            return time.perf_counter() - started
    finally:
        await px_runner.cleanup()
        await up_runner.cleanup()


def floor_in_processes(exchanges: int, processes: int, concurrency: int = 8) -> float:
    """The floor on ``processes`` cores: each forked process makes its share of the exchanges at once; the
    figure is the slowest one's time (set-up excluded, as in :func:`floor`)."""
    import multiprocessing

    if processes <= 1:
        return asyncio.run(floor(exchanges, concurrency))
    fork = multiprocessing.get_context("fork")
    with fork.Pool(processes) as pool:
        times = pool.starmap(_floor_share, [(exchanges // processes, concurrency)] * processes)
    return max(times)


def _floor_share(exchanges: int, concurrency: int) -> float:
    return asyncio.run(floor(exchanges, concurrency))
