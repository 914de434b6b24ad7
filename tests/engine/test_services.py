"""External processes the harness starts: the pids it hands out for clean-ups after they end; a redis-server that
is really the one it started."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import pytest

from harness.engine import services
from harness.errors import HarnessError

# Listens on the port, then forks a worker that drops its environment (and so the harness's mark, as a webserver
# worker's setproctitle overwrites it) and waits to be stopped.
FORKING = ("import os, signal, socket, sys; s = socket.socket(); "
           "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', int(sys.argv[1]))); "
           "s.listen(); child = os.fork(); "
           "os.execve(sys.executable, [sys.executable, '-c', 'import signal; signal.pause()'], {}) if child == 0 "
           "else os.waitpid(child, 0)")


async def test_process_reports_its_pid_and_its_descendants_pids() -> None:
    port = services.free_port()
    seen: set[int] = set()
    async with services.process("forking", [sys.executable, "-c", FORKING, str(port)], host="127.0.0.1", port=port,
                                ready_timeout=30, pids=seen) as handle:
        assert seen == {handle.proc.pid}  # the descendants are collected when it is stopped
    assert handle.proc.pid in seen and len(seen) == 2, seen  # the parent and its unmarked worker


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
async def test_redis_server_is_the_one_it_started_when_another_process_took_its_port(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The free port chosen for redis-server is taken by another server before redis-server binds it: the ready
    # probe finds that one, so the harness checks who answers and takes another port.
    async def not_redis(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.write(b"-ERR this is not the harness's redis\r\n")
        await writer.drain()
        writer.close()

    other = await asyncio.start_server(not_redis, "127.0.0.1", 0)
    taken = other.sockets[0].getsockname()[1]
    ports = iter([taken, services.free_port()])
    monkeypatch.setattr(services, "free_port", lambda host="127.0.0.1": next(ports))
    async with other:
        assert await services.redis_pid("127.0.0.1", taken) is None
        async with services.redis_server() as url:
            port = int(url.rsplit(":", 1)[1])
            pid = await services.redis_pid("127.0.0.1", port)
            assert port != taken and pid is not None and Path(f"/proc/{pid}/exe").resolve().name.startswith("redis")


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
async def test_redis_server_says_so_when_every_port_was_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    other = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    taken = other.sockets[0].getsockname()[1]
    monkeypatch.setattr(services, "free_port", lambda host="127.0.0.1": taken)
    async with other:
        with pytest.raises(HarnessError, match=f"another process took each of the free ports {taken}, {taken}"):
            async with services.redis_server():
                pass
