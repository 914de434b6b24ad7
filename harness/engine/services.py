"""External processes the harness starts and always stops: a gateway command, redis-server."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import signal
import socket
import time
from collections.abc import AsyncIterator, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any

from harness.engine import supervisor
from harness.errors import HarnessError, UsageError

READY_PROBE_INTERVAL = 0.05  # how often a starting process's port is tried; bounded by the ready timeout


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def reserved_port(host: str = "127.0.0.1") -> Iterator[int]:
    """A free port held for a server that binds it with SO_REUSEPORT (every webserver release does): a socket bound
    with SO_REUSEPORT, never listening, so it takes no connection, but no other bind gets the port, not even a
    port-0 bind. With :func:`free_port` alone, another server (a mock FastTrack, another build) could take the port
    before the webserver bound it; the ready probe then found that server, and the webserver shared or lost the
    port: 25.15.12's /server/login was answered by a mock FastTrack (401 "Authorization missing")."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind((host, 0))
        yield int(s.getsockname()[1])


def parse_listen(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"expected HOST:PORT, got {text!r}")
    if not (host == "localhost" or host.startswith("127.") or host == "::1"):
        raise UsageError(f"{text}: the harness only listens on loopback addresses")
    if not 1 <= int(port) <= 65535:
        raise UsageError(f"{text}: a port is 1-65535")
    return host, int(port)


@dataclass
class Process:
    name: str
    proc: asyncio.subprocess.Process
    log: bytearray

    def output(self, limit: int = 4000) -> str:
        return self.log[-limit:].decode("utf-8", "replace")


async def _pump(stream: asyncio.StreamReader | None, log: bytearray, cap: int = 1 << 20) -> None:
    if stream is None:
        return
    while chunk := await stream.read(65536):
        log += chunk
        if len(log) > cap:
            del log[: len(log) - cap]


async def _answers(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


@contextlib.asynccontextmanager
async def process(name: str, argv: list[str] | str, *, host: str, port: int, ready_timeout: float,
                  cwd: str | None = None, env: dict[str, str] | None = None,
                  pids: set[int] | None = None) -> AsyncIterator[Process]:
    """Start a process, wait until ``host:port`` accepts connections (or the process dies), always stop it.
    ``pids``, when given, receives the process's pid and those of its descendants (marked or in its process
    group) alive when it is stopped: what they leave behind under their pid can be cleaned up once they are
    gone."""
    token = _next_token()
    # Its own session (a Ctrl-C to the terminal's group is the harness's to handle), and a mark every descendant
    # inherits, so even one that daemonises into another session is found and stopped with it.
    kwargs = dict(stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=cwd,
                  env={**os.environ, **(env or {}), supervisor.OWNER_ENV: token}, start_new_session=True)
    try:
        if isinstance(argv, str):
            proc = await asyncio.create_subprocess_shell(argv, **kwargs)  # type: ignore[arg-type]
        else:
            proc = await asyncio.create_subprocess_exec(*argv, **kwargs)  # type: ignore[arg-type]
    except OSError as exc:
        raise HarnessError(f"{name} could not start: {exc}") from None
    if pids is not None:
        pids.add(proc.pid)
    log = bytearray()
    pump = asyncio.create_task(_pump(proc.stdout, log))
    handle = Process(name, proc, log)
    try:
        deadline = time.monotonic() + ready_timeout
        while not await _answers(host, port):
            if proc.returncode is not None:
                await asyncio.wait_for(pump, 5)
                raise HarnessError(f"{name} exited with code {proc.returncode} before listening on {host}:{port}; "
                                   f"output:\n{handle.output()}")
            if time.monotonic() > deadline:
                raise HarnessError(f"{name} did not listen on {host}:{port} within {ready_timeout:g} s; "
                                   f"output:\n{handle.output()}")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(proc.wait(), READY_PROBE_INTERVAL)
        yield handle
    finally:
        if pids is not None:  # its own session: the process is its group's leader
            pids.update(supervisor.marked(token), supervisor.in_group(proc.pid))
        await _uncancellable(_stop(proc, token))
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump


_tokens = itertools.count(1)


def _next_token() -> str:
    return f"{os.getpid()}-{next(_tokens)}"


async def _uncancellable(stopping: Coroutine[Any, Any, None]) -> None:
    """Run a stop to its end even if the task is cancelled meanwhile (a second Ctrl-C): a stop cut short is what
    leaves a server behind. The cancellation is passed on once the stop is done."""
    task = asyncio.ensure_future(stopping)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled = True
    task.result()
    if cancelled:
        raise asyncio.CancelledError


async def _stop(proc: asyncio.subprocess.Process, token: str) -> None:
    """SIGTERM to the process group and to every process marked as its descendant, SIGKILL after the grace."""
    def signal_all(sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)  # the whole group: a webserver forks workers
        supervisor.kill_all(supervisor.marked(token), sig)  # and whatever left the group

    def descendants() -> bool:  # marked, or in its group with the mark overwritten (a retitled worker)
        return bool(supervisor.marked(token) or supervisor.in_group(proc.pid))

    deadline = time.monotonic() + supervisor.GRACE
    if proc.returncode is None or descendants():
        signal_all(signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(proc.wait(), supervisor.GRACE)
    # Descendants are not our children: nothing to wait on but their entries in /proc.
    while descendants() and time.monotonic() < deadline:
        await asyncio.sleep(READY_PROBE_INTERVAL)
    if proc.returncode is None or descendants():
        signal_all(signal.SIGKILL)
        await proc.wait()


REDIS_ATTEMPTS = 3  # free ports tried: another process can bind the one chosen before redis-server does


async def redis_pid(host: str, port: int, timeout: float = 5.0) -> int | None:
    """The ``process_id`` the Redis server on ``host:port`` reports (INFO server), or None if what answers there
    is not a Redis server."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError):
        return None
    try:
        writer.write(b"INFO server\r\n")
        header = await asyncio.wait_for(reader.readline(), timeout)
        if not header.startswith(b"$") or not header[1:].strip().isdigit():
            return None
        body = await asyncio.wait_for(reader.readexactly(int(header[1:]) + 2), timeout)
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        return None
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    for line in body.decode("ascii", "replace").splitlines():
        key, _, value = line.partition(":")
        if key == "process_id" and value.strip().isdigit():
            return int(value)
    return None


@contextlib.asynccontextmanager
async def redis_server(ready_timeout: float = 10.0) -> AsyncIterator[str]:
    """A private redis-server on a free loopback port, without persistence; yields ``redis://host:port``.

    redis-server cannot share a reserved port (:func:`reserved_port`), so the free port is released before it binds
    it, and another process can take it first: our redis-server then exits ("Address already in use") while the
    ready probe finds the other one. A webserver given that one lost its Redis when its owner stopped it (25.2-25.7
    answered some logins "500 Internal Server Error": their login handler reads Redis outside any error handling).
    So the server that answers must report our redis-server's pid; else another port is tried."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise HarnessError("redis-server is not installed (Debian: apt-get install redis-server)")
    taken = []
    for _ in range(REDIS_ATTEMPTS):
        port = free_port()
        argv = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
        taken.append(str(port))
        async with contextlib.AsyncExitStack() as stack:
            try:
                handle = await stack.enter_async_context(
                    process("redis-server", argv, host="127.0.0.1", port=port, ready_timeout=ready_timeout))
            except HarnessError as exc:
                if "Address already in use" in str(exc):
                    continue
                raise
            if await redis_pid("127.0.0.1", port) == handle.proc.pid:
                yield f"redis://127.0.0.1:{port}"  # what the caller raises stops our redis-server and passes on
                return
    raise HarnessError(f"redis-server could not get a port of its own: another process took each of the free "
                       f"ports {', '.join(taken)} before it bound them")
