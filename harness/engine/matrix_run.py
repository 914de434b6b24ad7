"""Run the matrix: one mock manager, one mock FastTrack per FastTrack profile, one reference gateway per cell,
every applicable scenario in every cell, concurrently in one event loop with a bounded limit.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from harness import matrix
from harness.actors import server
from harness.actors.fasttrack import MockFastTrack
from harness.actors.gateway import ReferenceGateway
from harness.actors.journal import Attribution
from harness.actors.manager import MockManager
from harness.engine.events import CellFinished, Listener, RunFinished, RunStarted, ScenarioFinished
from harness.engine.runner import Cell, RunContext, run_scenario
from harness.errors import HarnessError
from harness.protocol.accounts import Directory
from harness.protocol.clock import Clock, SystemClock
from harness.protocol.fasttrack_models import FastTrackModel
from harness.protocol.gateway_rules import GatewayConfig
from harness.protocol.generations import GatewayProfile
from harness.results import CellResult, RunResult, ScenarioResult
from harness.scenario.model import Scenario

DEFAULT_JWT_SECRET = "harness-shared-pipeline-jwt-secret-for-tests"


@dataclass
class Options:
    jwt_secret: str = DEFAULT_JWT_SECRET
    session_max_age: int = 604800
    concurrency: int = 32
    seed: str = "harness"
    timeout: float = 30.0
    clock: Clock = field(default_factory=SystemClock)


def applicable(scenario: Scenario, gateway: GatewayProfile) -> bool:
    return bool(set(scenario.modes) & (set(gateway.names()) | set(gateway.tags)))


def plan_cells(gateways: list[GatewayProfile], fasttracks: list[FastTrackModel], shard: tuple[int, int] | None = None
               ) -> list[tuple[GatewayProfile, FastTrackModel]]:
    """Every (gateway, FastTrack) pair in a fixed order; ``shard=(i, n)`` keeps every n-th from the i-th (1-based),
    so shards are disjoint, cover the matrix and do not depend on timing."""
    cells = [(g, f) for g in gateways for f in fasttracks]
    if shard is None:
        return cells
    index, count = shard
    return [c for k, c in enumerate(cells) if k % count == index - 1]


def describe_gateway(p: GatewayProfile) -> dict[str, object]:
    return {"id": p.id, "generation": p.generation, "title": p.title, "releases": p.releases,
            "aliases": list(p.aliases), "proposal": p.proposal, "sources": list(p.sources)}


def describe_fasttrack(m: FastTrackModel) -> dict[str, object]:
    return {"id": m.id, "version": m.version, "title": m.title, "accepts": list(m.accepts), "model": m.model,
            "modelled_on": m.modelled_on, "disclaimer": m.disclaimer}


async def run_matrix(gateways: list[GatewayProfile], fasttracks: list[FastTrackModel], scenarios: list[Scenario],
                     policy: dict[str, frozenset[str]], options: Options | None = None,
                     listener: Listener | None = None,
                     only: set[tuple[str, str, str]] | None = None,
                     shard: tuple[int, int] | None = None) -> RunResult:
    """``only`` limits the run to (scenario id, gateway id, FastTrack id) triples (pytest's selection)."""
    opts = options or Options()
    emit = listener or (lambda event: None)
    started_wall, started = datetime.now(UTC), time.perf_counter()
    directory, attribution = Directory(opts.seed), Attribution()
    config = GatewayConfig(jwt_secret=opts.jwt_secret, session_max_age=opts.session_max_age)
    ctx = RunContext(directory, attribution, opts.clock, opts.jwt_secret, opts.session_max_age, opts.seed,
                     opts.timeout)
    running: list[server.RunningServer] = []
    cells: list[CellResult] = []
    jobs: list[tuple[CellResult, Scenario, Cell]] = []
    broken: dict[int, str] = {}
    try:
        manager = await server.start("mock manager", MockManager(directory).app())
        running.append(manager)
        ft_servers: dict[str, server.RunningServer | str] = {}
        for model in fasttracks:
            mock = MockFastTrack(model, directory=directory, attribution=attribution, clock=opts.clock,
                                 jwt_secret=opts.jwt_secret, seed=opts.seed)
            try:
                srv = await server.start(f"mock FastTrack {model.id}", mock.app())
                running.append(srv)
                ft_servers[model.id] = srv
            except HarnessError as exc:
                ft_servers[model.id] = str(exc)
        for gw, ft in plan_cells(gateways, fasttracks, shard):
            cell = CellResult(gw.id, ft.id, required=ft.id in policy.get(gw.id, frozenset()))
            cells.append(cell)
            ft_srv = ft_servers[ft.id]
            if isinstance(ft_srv, str):
                broken[id(cell)] = ft_srv
                continue
            wanted = [sc for sc in scenarios
                      if applicable(sc, gw) and (only is None or (sc.id, gw.id, ft.id) in only)]
            if not wanted:
                continue
            gateway = ReferenceGateway(gw, fasttrack_url=ft_srv.url, manager_url=manager.url, config=config,
                                       clock=opts.clock, seed=opts.seed)
            try:
                gw_srv = await server.start(f"reference gateway {gw.id}", gateway.app())
            except HarnessError as exc:
                broken[id(cell)] = str(exc)
                continue
            running.append(gw_srv)
            jobs += [(cell, sc, Cell(gw, ft, gw_srv.url, ft_srv.authority)) for sc in wanted]
        emit(RunStarted(len(jobs)))
        limit = asyncio.Semaphore(max(1, opts.concurrency))
        done = 0

        async def one(cell: CellResult, sc: Scenario, where: Cell) -> tuple[CellResult, ScenarioResult]:
            nonlocal done
            async with limit:
                res = await run_scenario(sc, where, ctx)
            done += 1
            emit(ScenarioFinished(cell.gateway, cell.fasttrack, res, done, len(jobs)))
            return cell, res

        results = await asyncio.gather(*(one(*job) for job in jobs))
        order = {sc.id: i for i, sc in enumerate(scenarios)}
        for cell, res in results:
            cell.scenarios.append(res)
        for cell in cells:
            cell.scenarios.sort(key=lambda r: order.get(r.id, 0))
            if id(cell) in broken:
                cell.verdict, cell.reason = "error", broken[id(cell)]
            else:
                matrix.apply(cell)
            emit(CellFinished(cell))
    finally:
        for srv in reversed(running):
            await srv.stop()
    result = RunResult(
        cells=cells,
        gateways=[describe_gateway(g) for g in gateways],
        fasttracks=[describe_fasttrack(f) for f in fasttracks],
        scenarios=[{"id": s.id, "title": s.title, "file": s.file, "modes": list(s.modes), "source": s.source}
                   for s in scenarios],
        started_at=started_wall.isoformat(timespec="seconds"),
        duration_s=time.perf_counter() - started,
        exchanges=count_exchanges(cells),
    )
    emit(RunFinished(result))
    return result


def count_exchanges(cells: list[CellResult]) -> int:
    """HTTP exchanges made: per step one client exchange plus one upstream if it reached FastTrack; per run the
    login (client → gateway, gateway → manager probe and authorize)."""
    steps = sum(1 + ("gateway_to_fasttrack" in st.hops) for c in cells for s in c.scenarios for st in s.steps)
    logins = sum(3 for c in cells for s in c.scenarios if s.outcome != "skip")
    return steps + logins
