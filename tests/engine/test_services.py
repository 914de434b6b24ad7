"""External processes the harness starts: the pids it hands out for clean-ups after they end."""

from __future__ import annotations

import sys

from harness.engine import services

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
