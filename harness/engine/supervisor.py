"""One owner for stopping: SIGINT and SIGTERM (and, in a worker, the parent's death) stop everything a run
started, within a bounded grace, and what had finished is kept.

The first signal asks every registered stopper to stop (an event loop's main task is cancelled, so its
``finally`` blocks stop gateways, redis and taps; the workers' parent forwards the signal to its workers and
collects what they finished). Later signals are ignored: the stop under way is already bounded (SIGTERM to a
process group, SIGKILL after :data:`GRACE`), and cancelling it half-way is what leaves servers behind. Code that
registered no stopper is interrupted by :class:`Interrupted`, raised where it stands.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
GRACE = 10.0  # seconds a stopped process (group) has to end before SIGKILL
SIGNALS = (signal.SIGINT, signal.SIGTERM)
PR_SET_PDEATHSIG = 1


class Interrupted(BaseException):
    """The run was stopped by a signal (a BaseException, like KeyboardInterrupt: nothing may swallow it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # what a shell reports for a process ended by this signal: 130, 143


_requested: int | None = None
_stoppers: list[Callable[[], None]] = []


def requested() -> int | None:
    """The signal that asked this process to stop, if one did."""
    return _requested


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name


def stop(signum: int) -> None:
    """Ask everything registered to stop (what a signal does; also called when a worker's parent is gone)."""
    global _requested
    if _requested is not None:
        return
    _requested = signum
    if not _stoppers:
        raise Interrupted(signum)
    for stopper in list(_stoppers):
        stopper()


def _on_signal(signum: int, frame: object) -> None:
    stop(signum)


@contextlib.contextmanager
def handling_signals() -> Iterator[None]:
    """SIGINT and SIGTERM stop the run through :func:`stop` while the block runs (main thread only)."""
    global _requested
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) is _on_signal:
        yield  # only the main thread can; a nested command (the gate's own run) shares the outer handling
        return
    _requested = None
    previous = {s: signal.signal(s, _on_signal) for s in SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def on_stop(stopper: Callable[[], None]) -> Iterator[None]:
    """Call ``stopper`` when a stop is requested while the block runs (at once if one already was)."""
    _stoppers.append(stopper)
    try:
        if _requested is not None:
            stopper()
        yield
    finally:
        _stoppers.remove(stopper)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` whose main task a stop cancels (once: its clean-up is not cancelled again)."""

    async def main() -> T:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()

        def cancel() -> None:
            loop.call_soon_threadsafe(task.cancel)

        with on_stop(cancel):
            return await coro

    return asyncio.run(main())


def stopping() -> bool:
    """True while a requested stop is being carried out (the cancellation to honour, not to report)."""
    return _requested is not None


def in_worker(parent: int) -> None:
    """In a freshly forked worker: its own stop state, the signals handled, and SIGKILL when the parent dies (so a
    killed parent leaves no worker behind). A worker runs only in-process reference gateways and mock FastTracks
    (never with a real target: workers.run), so it has nothing to stop gracefully once nobody reads its results;
    a graceful stop there could be held (a pipe write, a server waiting on a handler) past its parent's death."""
    global _requested
    _requested = None
    _stoppers.clear()
    for s in SIGNALS:
        signal.signal(s, _on_signal)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    # ``parent`` is the pid the parent had before the fork: a parent that died before this point (just after
    # printing its progress line) is seen here, where asking getppid() first would only read init's pid.
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)


# --- processes the harness starts --------------------------------------------------------------------------------

OWNER_ENV = "HARNESS_OWNER"  # set on every process the harness starts; inherited by whatever those start


def marked(token: str) -> list[int]:
    """Processes carrying ``HARNESS_OWNER=token`` in their environment: a started process and every descendant,
    including one that daemonised into its own session (which its process group no longer reaches)."""
    needle = f"{OWNER_ENV}={token}".encode()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as fh:
                env = fh.read()
        except OSError:
            continue
        if needle in env.split(b"\0"):
            found.append(int(entry.name))
    return found


def _stat(pid: int | str) -> list[bytes]:
    """/proc/PID/stat after "pid (comm)": state, ppid, pgrp, ...; empty when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rpartition(b")")[2].split()
    except OSError:
        return []


def running(pid: int) -> bool:
    """The process exists and has not ended (a zombie waiting for its parent has)."""
    fields = _stat(pid)
    return bool(fields) and fields[0] != b"Z"


def in_group(pgid: int) -> list[int]:
    """Running processes of process group ``pgid``: a started process's workers, even those whose environment (and
    so their mark) a changed process title overwrote (every webserver worker calls setproctitle)."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = _stat(entry.name)
            if len(fields) > 2 and fields[0] != b"Z" and int(fields[2]) == pgid:
                found.append(int(entry.name))
    return found


def kill_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
