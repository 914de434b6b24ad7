"""SIGTERM and SIGINT at several moments of a run: nothing the run started is left 5 s later (no process, no
listening port), and what had finished is written whole, as a partial document that says so (issue 13).

Every process of a run is found by a mark in its environment, which everything the harness starts inherits (a
daemonised server included). Waiting is on events: a line of the run's output, a FIFO the gateway command
writes to, the exit of the run and of every marked process (pidfd)."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="Linux: /proc and pidfd")

LEFT_AFTER = 5.0  # seconds after the run's own exit by which nothing of it may be left
SERVE = (f"{sys.executable} -m harness serve gateway --profile as-is --port {{port}} "
         "--fasttrack-url {fasttrack_url} --manager-url {manager_url} --jwt-secret {jwt_secret}")


def marked(mark: str) -> list[int]:
    """Processes with the mark in their environment, and their descendants (redis-server overwrites its
    environment with its process title)."""
    found, parents = set(), {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                env = Path(f"/proc/{entry.name}/environ").read_bytes()
                stat = Path(f"/proc/{entry.name}/stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if f"HARNESS_TEST_MARK={mark}".encode() in env.split(b"\0"):
                found.add(int(entry.name))
    grew = True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in found} - found
        found |= more
        grew = bool(more)
    return sorted(found)


def listening_ports(pids: list[int]) -> set[int]:
    inodes = set()
    for pid in pids:
        try:
            for fd in os.scandir(f"/proc/{pid}/fd"):
                with_target = os.readlink(fd.path)
                if with_target.startswith("socket:["):
                    inodes.add(with_target[8:-1])
        except OSError:
            continue
    return {port for port, inode in listening() if inode in inodes}


def listening() -> list[tuple[int, str]]:
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table, encoding="ascii") as fh:
            for line in fh.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A":  # LISTEN
                    out.append((int(fields[1].rsplit(":", 1)[1], 16), fields[9]))
    return out


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    """The pids still alive after ``timeout`` (each watched through a pidfd: readable when it exits)."""
    fds = {}
    for pid in pids:
        try:
            fds[os.pidfd_open(pid)] = pid
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + timeout
    try:
        while fds and (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select(list(fds), [], [], left)
            for fd in ready:
                os.close(fd)
                del fds[fd]
        return [pid for pid in fds.values() if Path(f"/proc/{pid}").exists() and not _zombie(pid)]
    finally:
        for fd in fds:
            os.close(fd)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False


def start(tmp_path: Path, mark: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "HARNESS_TEST_MARK": mark}
    return subprocess.Popen([sys.executable, "-m", "harness", "run", "--out", str(tmp_path / "out"), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)


def wait_line(proc: subprocess.Popen[str], prefix: str) -> None:
    assert proc.stderr is not None
    for line in proc.stderr:  # blocks until the run says it got there
        if line.startswith(prefix):
            return
    raise AssertionError(f"the run ended before printing {prefix!r} (exit {proc.wait()})")


def stop_and_check(proc: subprocess.Popen[str], mark: str, sig: int, out: Path) -> dict | None:
    pids = marked(mark)
    ports = listening_ports(pids)
    proc.send_signal(sig)
    assert proc.stderr is not None
    err = proc.stderr.read()
    code = proc.wait(timeout=120)
    left = wait_gone(marked(mark), LEFT_AFTER)
    assert left == [], f"processes of the run left: {left}"
    held = ports & {port for port, _ in listening()}
    assert not held, f"ports of the run still listening: {held}"
    assert "Traceback" not in err, err
    assert code in (0, 1, 3, 128 + sig), (code, err)  # a run that ended first has its own code
    reports = sorted(p.name for p in out.glob("*")) if out.exists() else []
    assert reports in ([], ["index.html", "junit.xml", "matrix.json", "matrix.md"]), reports
    for p in out.glob("*"):
        assert p.stat().st_size > 0, f"{p.name} is empty"
    if not reports:
        return None
    doc = json.loads((out / "matrix.json").read_text(encoding="utf-8"))
    if code == 128 + sig and doc.get("partial"):
        assert doc["interrupted"] == signal.Signals(sig).name
        for cell in doc["cells"]:  # a cell is finished and judged, or marked as not finished
            assert cell["verdict"] != "unknown" or "interrupted" in (cell["reason"] or "") or cell["scenarios"]
    return doc


SIGNALS = [signal.SIGTERM, signal.SIGINT]
LIGHT = ["--gateway", "as-is", "--gateway", "to-be", "--gateway", "G3", "--scenario", "pr3353-*"]


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_signal_mid_run_with_workers(sig, tmp_path):
    mark = uuid.uuid4().hex
    proc = start(tmp_path, mark, "--jobs", "2")  # the whole default matrix: long enough to be stopped mid-run
    wait_line(proc, "running ")
    doc = stop_and_check(proc, mark, sig, tmp_path / "out")
    assert doc is not None and doc.get("partial") is True


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: signal.Signals(s).name)
@pytest.mark.parametrize("daemonise", [False, True], ids=["launcher", "daemonising-launcher"])
def test_signal_during_start_up_of_a_gateway_command_and_its_redis(sig, daemonise, tmp_path):
    """The harness has started its manager, FastTrack and a redis, and waits for the gateway command to listen
    (the daemonising launcher has put its server into a session of its own by then)."""
    fifo = tmp_path / "up"
    os.mkfifo(fifo)
    # '# {redis_url}' makes the harness start a redis for the command (the stand-in gateway does not use it).
    command = (f"setsid -f {SERVE} </dev/null >/dev/null 2>&1; echo up > {fifo}; exec sleep 600" if daemonise
               else f"echo up > {fifo}; exec {SERVE}") + " # {redis_url}"
    mark = uuid.uuid4().hex
    proc = start(tmp_path, mark, "--gateway-cmd", command, "--judge-as", "as-is", "--scenario", "pr3353-*",
                 "--fasttrack", "24.09.0", "--fasttrack", "25.1.0")
    with open(fifo, encoding="ascii") as fh:  # blocks until the command writes: it has started
        assert fh.read().strip() == "up"
    assert any("redis-server" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
               for pid in marked(mark) if Path(f"/proc/{pid}").exists())
    stop_and_check(proc, mark, sig, tmp_path / "out")


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_signal_while_writing_reports(sig, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    for name in ("index.html", "junit.xml", "matrix.json", "matrix.md"):  # a previous run's reports
        (out / name).write_text("previous")
    mark = uuid.uuid4().hex
    proc = start(tmp_path, mark, *LIGHT)
    wait_line(proc, "finished ")  # the run is over; the reports are being written
    doc = stop_and_check(proc, mark, sig, out)
    assert doc is not None and not doc.get("partial")  # the finished run was written whole


def test_workers_end_when_their_parent_is_killed(tmp_path):
    mark = uuid.uuid4().hex
    proc = start(tmp_path, mark, "--jobs", "2")
    wait_line(proc, "running ")
    proc.kill()  # SIGKILL: the parent cannot stop anything; its workers notice (PR_SET_PDEATHSIG, closed pipe)
    proc.wait(timeout=60)
    assert wait_gone(marked(mark), LEFT_AFTER) == []
