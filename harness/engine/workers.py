"""Run the matrix on every core: the cells are split between worker processes, each with its own event loop,
manager, FastTracks and gateways, and their results are joined into one.

One event loop is CPU-bound on a full matrix (aiohttp's per-request work on both ends of every hop), so a
second core roughly halves the wall time. Cells are independent (each has its own gateway, and every run its
own user, journal and loopback address), so where a cell runs changes no verdict.

Workers are forked after the scenarios are loaded (nothing is loaded twice) and send each run as it ends and
each cell's verdict. A worker that dies is not a lost run: its cells become
``error`` with the reason, and the other workers' cells are reported as usual.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from multiprocessing.connection import Connection, wait

from harness.engine import supervisor
from harness.engine.events import CellFinished, Listener, RunFinished, RunStarted, ScenarioFinished
from harness.engine.matrix_run import (
    Key,
    Options,
    Plan,
    assemble,
    interrupted_cell,
    new_cells,
    plan_runs,
    run_matrix,
)
from harness.engine.targets import FastTrackTarget, GatewayLauncher, ReferenceLauncher
from harness.protocol.fasttrack_models import FastTrackModel
from harness.protocol.generations import GatewayProfile
from harness.results.model import CellResult, RunResult, ScenarioResult
from harness.scenario.model import Scenario


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def splittable(plan: Plan, options: Options) -> bool:
    """Only reference gateways and mock FastTracks on free ports can run twice at once: a real gateway, a real
    FastTrack or a fixed listening address exists once."""
    return (options.manager_listen is None
            and all(isinstance(g, ReferenceLauncher) and not g.shared for g in plan.launchers)
            and all(f.url is None and f.listen is None for f in plan.columns)
            and "fork" in multiprocessing.get_all_start_methods())


def weight(plan: Plan, key: Key) -> int:
    """A cell's cost in requests: a login per run plus every step (steps for other generations included; a
    cheap and stable estimate)."""
    return sum(1 + len(sc.steps) for sc in plan.wanted[key])


def balance(plan: Plan, parts: int) -> list[set[Key]]:
    """Cells into ``parts`` groups of about equal weight (heaviest first, each to the lightest group);
    deterministic, so the same matrix splits the same way every time."""
    keys = sorted(((g.label, f.id) for g, f in plan.cells), key=lambda k: -weight(plan, k))
    groups: list[set[Key]] = [set() for _ in range(parts)]
    load = [0] * parts
    for key in keys:
        lightest = load.index(min(load))
        groups[lightest].add(key)
        load[lightest] += weight(plan, key)
    return [g for g in groups if g]


def run(gateways: Sequence[GatewayLauncher | GatewayProfile], fasttracks: Sequence[FastTrackTarget | FastTrackModel],
        scenarios: list[Scenario], policy: Mapping[str, frozenset[str]], options: Options | None = None,
        listener: Listener | None = None, *, jobs: int = 1, only: set[tuple[str, str, str]] | None = None,
        shard: tuple[int, int] | None = None, keep_empty: bool = True) -> RunResult:
    """:func:`run_matrix` in up to ``jobs`` processes (one when the targets cannot be split).

    Events are those of :func:`run_matrix`, as the workers' runs and cells end."""
    opts = options or Options()
    plan = plan_runs(gateways, fasttracks, scenarios, only, shard, keep_empty)
    groups = balance(plan, jobs) if jobs > 1 and splittable(plan, opts) else []
    if len(groups) < 2:
        return supervisor.run(run_matrix(gateways, fasttracks, scenarios, policy, opts, listener, only=only,
                                      shard=shard, keep_empty=keep_empty))
    emit = listener or (lambda event: None)
    started_wall, started = datetime.now(UTC), time.perf_counter()
    fork = multiprocessing.get_context("fork")
    workers: dict[Connection, tuple[multiprocessing.process.BaseProcess, set[Key]]] = {}
    for group in groups:
        receive, send = fork.Pipe(duplex=False)
        proc = fork.Process(target=_worker, name="harness-worker", daemon=True,
                            args=(send, group, gateways, fasttracks, scenarios, policy, opts, only, shard, keep_empty,
                                  os.getpid()))
        proc.start()
        send.close()  # the parent keeps only the reading end, so a dead worker reads as EOF
        workers[receive] = (proc, group)
    total = plan.total
    emit(RunStarted(total, len(plan.cells)))
    order = {sc.id: i for i, sc in enumerate(scenarios)}
    runs: dict[Key, list[ScenarioResult]] = {key: [] for key in plan.wanted}
    finished: dict[Key, CellResult] = {}
    failed: dict[Connection, str] = {}
    done = 0
    pending: list[Connection | int] = list(workers)
    # A stop (signal) is forwarded to the workers, which stop their servers and send what they finished; the
    # pipe wakes this loop, which then gives them GRACE seconds before SIGKILL.
    wake_read, wake_write = os.pipe()
    pending.append(wake_read)
    deadline: float | None = None

    def forward_stop() -> None:
        for proc, _ in workers.values():
            with contextlib.suppress(ProcessLookupError):
                if proc.pid is not None:
                    os.kill(proc.pid, signal.SIGTERM)
        os.write(wake_write, b"x")

    with supervisor.on_stop(forward_stop), contextlib.ExitStack() as pipes:
        pipes.callback(os.close, wake_read)
        pipes.callback(os.close, wake_write)
        while len(pending) > 1:
            ready = wait(pending, None if deadline is None else max(0.0, deadline - time.monotonic()))
            if wake_read in ready:
                pending.remove(wake_read)
                deadline = time.monotonic() + supervisor.GRACE
            if deadline is not None and not ready and time.monotonic() >= deadline:
                for conn in [c for c in pending if isinstance(c, Connection)]:
                    workers[conn][0].kill()  # the grace is over
                    workers[conn][0].join()
                    failed[conn] = "worker process killed after the stop's grace"
                    pending.remove(conn)
                continue
            done = _receive([c for c in ready if isinstance(c, Connection)], workers, pending, failed, runs,
                            finished, order, done, total, emit)
    interrupted = supervisor.requested()
    gc.unfreeze()
    for conn in workers:
        conn.close()
    cells = new_cells(plan, policy)
    unfinished = {key for conn, (_, group) in workers.items() for key in group} - finished.keys()
    for conn, reason in failed.items():  # what a dead worker had finished stays; the rest is 'error'
        for key in workers[conn][1] - finished.keys():
            cells[key].verdict, cells[key].reason = "error", reason
    for key in unfinished:
        cells[key].scenarios = sorted(runs[key], key=lambda r: order.get(r.id, 0))
        if interrupted is not None:  # stopped: not a verdict, whatever finished in the cell
            interrupted_cell(cells[key], supervisor.signal_name(interrupted))
        emit(CellFinished(cells[key]))
    ordered = [finished.get(key, cell) for key, cell in cells.items()]
    result = assemble(plan, ordered, scenarios, started_wall, time.perf_counter() - started, keep_empty)
    result.interrupted = supervisor.signal_name(interrupted) if interrupted is not None else None
    emit(RunFinished(result))
    return result


def _receive(ready: list[Connection], workers: dict[Connection, tuple[multiprocessing.process.BaseProcess, set[Key]]],
             pending: list[Connection | int], failed: dict[Connection, str], runs: dict[Key, list[ScenarioResult]],
             finished: dict[Key, CellResult], order: dict[str, int], done: int, total: int,
             emit: Listener) -> int:
    """Take one message from each ready worker; returns the runs done so far."""
    for conn in ready:
        try:
            message = conn.recv()
        except EOFError:
            dead = workers[conn][0]
            dead.join()
            failed[conn] = f"worker process ended without a result (exit code {dead.exitcode})"
            pending.remove(conn)
            continue
        if message[0] == "scenario":
            _, gateway, fasttrack, res = message
            runs[(gateway, fasttrack)].append(res)
            done += 1
            emit(ScenarioFinished(gateway, fasttrack, res, done, total))
        elif message[0] == "cell":  # its verdict; its runs came one by one
            cell: CellResult = message[1]
            key = (cell.gateway, cell.fasttrack)
            cell.scenarios = sorted(runs[key], key=lambda r: order.get(r.id, 0))
            finished[key] = cell
            emit(CellFinished(cell))
        else:  # "done": every cell of the worker has arrived (or, stopped, every cell it finished)
            workers[conn][0].join()
            pending.remove(conn)
        # Results only accumulate here (no cycles to collect): frozen, so the collector does not walk them
        # again at every full collection (which made a 100x matrix slower per run than a 1x one).
        gc.freeze()
    return done


def _worker(send: Connection, group: set[Key], gateways: Sequence[GatewayLauncher | GatewayProfile],
            fasttracks: Sequence[FastTrackTarget | FastTrackModel], scenarios: list[Scenario],
            policy: Mapping[str, frozenset[str]], options: Options, only: set[tuple[str, str, str]] | None,
            shard: tuple[int, int] | None, keep_empty: bool, parent: int) -> None:
    def progress(event: object) -> None:
        # Each run is sent as it ends (pickled while other runs are in flight, not all at the end), then each
        # cell's verdict without its runs; an interrupted cell is the parent's to mark.
        try:
            if isinstance(event, ScenarioFinished):
                send.send(("scenario", event.gateway, event.fasttrack, event.result))
            elif isinstance(event, CellFinished) and not (supervisor.stopping() and event.cell.verdict == "unknown"):
                send.send(("cell", replace(event.cell, scenarios=[])))
        except OSError:  # the parent is gone (a closed pipe): stop, nobody is there to report to
            supervisor.stop(signal.SIGTERM)

    with send, contextlib.suppress(supervisor.Interrupted):  # stopped before its run began: nothing to send
        supervisor.in_worker(parent)
        supervisor.run(run_matrix(gateways, fasttracks, scenarios, policy, options, progress, only=only,
                                  shard=shard, keep_empty=keep_empty, within=group))
        with contextlib.suppress(OSError):
            send.send(("done",))
