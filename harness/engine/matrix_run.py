"""Run the matrix: one mock manager, one FastTrack (mock or tapped) per column, a gateway per cell (reference
profiles) or per column in turn (an external gateway), every applicable scenario in every cell, concurrently in
one event loop with a bounded limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from harness.actors import server
from harness.actors.journal import Attribution
from harness.actors.manager import MockManager
from harness.engine import supervisor
from harness.engine.events import CellFinished, Listener, RunFinished, RunStarted, ScenarioFinished
from harness.engine.runner import Cell, RunContext, lane_client, run_scenario
from harness.engine.targets import FastTrackTarget, GatewayLauncher, ReferenceLauncher, Shared, contract_for_profiles
from harness.errors import HarnessError
from harness.judge import cell_verdict, findings, support_policy
from harness.protocol.accounts import Directory
from harness.protocol.clock import Clock, SystemClock
from harness.protocol.fasttrack_models import FastTrackModel
from harness.protocol.gateway_rules import GatewayConfig
from harness.protocol.generations import GatewayProfile
from harness.protocol.manager_rules import ManagerContract
from harness.results.document import FastTrackDoc, GatewayDoc
from harness.results.model import CellResult, RunResult
from harness.scenario.model import Scenario
from harness.scenario.outline import outline

DEFAULT_JWT_SECRET = "harness-shared-pipeline-jwt-secret-for-tests"


MAX_CONCURRENCY = 1024  # runs in flight per process: each holds a client, a loopback address and sockets


@dataclass
class Options:
    jwt_secret: str = DEFAULT_JWT_SECRET
    session_max_age: int = 604800
    # Runs in flight per process. On the 2-core machine, with lanes and 2 workers, 4, 8 and 16 are within noise
    # of each other (best of 3: 1.73, 1.89, 1.89 s; one process 2.78, 2.72, 2.70 s); 32 was slower before lanes.
    concurrency: int = 8
    seed: str = "harness"
    timeout: float = 30.0
    clock: Clock = field(default_factory=SystemClock)
    manager_listen: tuple[str, int] | None = None
    # None: what the rows need (the 26.4 contract when a 26.x profile is among them; older webservers ignore
    # its extra keys), so no caller can run a 26.x row against a manager it rejects by forgetting to choose.
    manager_contract: ManagerContract | None = None


def applicable(scenario: Scenario, gateway: GatewayProfile) -> bool:
    return bool(set(scenario.modes) & gateway.modes())


def plan_cells(gateways: Sequence[GatewayLauncher], fasttracks: Sequence[FastTrackTarget],
               shard: tuple[int, int] | None = None) -> list[tuple[GatewayLauncher, FastTrackTarget]]:
    """Every (gateway, FastTrack) pair in a fixed order; ``shard=(i, n)`` keeps every n-th from the i-th (1-based),
    so shards are disjoint, cover the matrix and do not depend on timing."""
    cells = [(g, f) for g in gateways for f in fasttracks]
    if shard is None:
        return cells
    index, count = shard
    return [c for k, c in enumerate(cells) if k % count == index - 1]


def mock_columns(models: Sequence[FastTrackModel], listen: tuple[str, int] | None = None) -> list[FastTrackTarget]:
    return [FastTrackTarget(m.id, model=m, listen=listen, describe=describe_fasttrack(m)) for m in models]


def describe_gateway(launcher: GatewayLauncher) -> GatewayDoc:
    p = launcher.profile
    out: GatewayDoc = {"id": launcher.label, "generation": p.generation, "title": p.title, "releases": p.releases,
                       "aliases": list(p.aliases), "proposal": p.proposal, "sources": list(p.sources)}
    if not isinstance(launcher, ReferenceLauncher):
        how = str(getattr(launcher, "how", "--judge-as"))  # JudgedAs: the claim, or identify's best match
        out["external"], out["judged_as"], out["judged_by"] = True, p.id, how
        out["title"] = f"real gateway judged as {p.id} ({how})"
    return out


def describe_fasttrack(m: FastTrackModel) -> FastTrackDoc:
    return {"id": m.id, "version": m.version, "title": m.title, "accepts": list(m.accepts), "model": m.model,
            "modelled_on": m.modelled_on, "disclaimer": m.disclaimer}


Pairs = list[tuple[GatewayLauncher, FastTrackTarget]]


def describe_real_fasttrack(name: str, url: str) -> FastTrackDoc:
    return {"id": name, "version": None, "title": "real FastTrack behind a recording tap", "accepts": [],
            "model": False, "url": url, "modelled_on": f"not a model: the real FastTrack at {url}",
            "disclaimer": f"{name} is a real FastTrack at {url}, observed through a recording tap."}


def _phases(cells: Pairs) -> list[Pairs]:
    """Reference cells run together; a shared (external) gateway runs its FastTrack columns one at a time."""
    together = [c for c in cells if not c[0].shared]
    phases = [together] if together else []
    for column in dict.fromkeys(f.id for g, f in cells if g.shared):
        phases.append([c for c in cells if c[0].shared and c[1].id == column])
    return phases


Key = tuple[str, str]  # (gateway label, FastTrack id): one cell


@dataclass
class Plan:
    """Which cells run and which scenarios run in each (pure: no server is started)."""

    launchers: list[GatewayLauncher]
    columns: list[FastTrackTarget]
    cells: Pairs
    wanted: dict[Key, list[Scenario]]

    @property
    def total(self) -> int:
        return sum(len(self.wanted[(g.label, f.id)]) for g, f in self.cells)


def plan_runs(gateways: Sequence[GatewayLauncher | GatewayProfile],
              fasttracks: Sequence[FastTrackTarget | FastTrackModel], scenarios: list[Scenario],
              only: set[tuple[str, str, str]] | None = None, shard: tuple[int, int] | None = None,
              keep_empty: bool = True, within: set[Key] | None = None) -> Plan:
    launchers: list[GatewayLauncher] = [ReferenceLauncher(g) if isinstance(g, GatewayProfile) else g for g in gateways]
    columns = [f if isinstance(f, FastTrackTarget) else mock_columns([f])[0] for f in fasttracks]
    planned = [(g, f) for g, f in plan_cells(launchers, columns, shard) if within is None or (g.label, f.id) in within]
    wanted = {key: [sc for sc in scenarios if applicable(sc, g.profile) and (only is None or (sc.id, *key) in only)]
              for g, f in planned for key in [(g.label, f.id)]}
    if not keep_empty:
        planned = [(g, f) for g, f in planned if wanted[(g.label, f.id)]]
    return Plan(launchers, columns, planned, wanted)


def new_cells(plan: Plan, policy: Mapping[str, frozenset[str]]) -> dict[Key, CellResult]:
    """Cells with the requiredness the policy gives their column's model; a real FastTrack's is decided when its
    cell ends, by the version it announced (:func:`settle_required`)."""
    return {(g.label, f.id): CellResult(g.label, f.id, required=f.id in policy.get(g.profile.id, frozenset()))
            for g, f in plan.cells}


def settle_required(cell: CellResult, profile: GatewayProfile, column: FastTrackTarget,
                    policy: support_policy.Policy) -> None:
    """A real FastTrack is required by the version it announced, never by its label; one that announced no usable
    version is required wherever anything is (and its cell is 'unknown')."""
    if column.url is not None:
        cell.required = policy.requires(profile.id, cell.fasttrack_version)


def assemble(plan: Plan, cells: list[CellResult], scenarios: list[Scenario], started_wall: datetime,
             duration_s: float, keep_empty: bool) -> RunResult:
    """The run's result document from finished cells (verdicts applied)."""
    return RunResult(
        cells=cells,
        gateways=[describe_gateway(g) for g in plan.launchers
                  if keep_empty or any(c.gateway == g.label for c in cells)],
        fasttracks=[f.describe or describe_real_fasttrack(f.id, f.url or "") for f in plan.columns],
        scenarios=[{"id": s.id, "title": s.title, "file": s.file, "modes": list(s.modes), "source": s.source,
                    "checks": dict(zip(("contract", "model"), s.count_checks(), strict=True)),
                    "expected": outline(s)} for s in scenarios],
        started_at=started_wall.isoformat(timespec="seconds"),
        duration_s=duration_s,
        exchanges=count_exchanges(cells),
    )


async def run_matrix(gateways: Sequence[GatewayLauncher | GatewayProfile],
                     fasttracks: Sequence[FastTrackTarget | FastTrackModel], scenarios: list[Scenario],
                     policy: Mapping[str, frozenset[str]], options: Options | None = None,
                     listener: Listener | None = None,
                     only: set[tuple[str, str, str]] | None = None,
                     shard: tuple[int, int] | None = None, keep_empty: bool = True,
                     within: set[Key] | None = None) -> RunResult:
    """``only`` limits the run to (scenario id, gateway label, FastTrack id) triples (pytest's selection).
    ``keep_empty=False`` leaves out cells where no selected scenario applies (a filtered run), instead of
    reporting them 'unknown' (which, in a full run, points at a gap in the suite or the policy).
    ``within`` limits the run to these cells (a worker's share, :mod:`harness.engine.workers`)."""
    opts = options or Options()
    emit = listener or (lambda event: None)
    policy = support_policy.as_policy(policy)
    plan = plan_runs(gateways, fasttracks, scenarios, only, shard, keep_empty, within)
    launcher = {g.label: g for g in plan.launchers}
    column = {f.id: f for f in plan.columns}
    started_wall, started = datetime.now(UTC), time.perf_counter()
    directory, attribution = Directory(opts.seed), Attribution()
    env = Shared(directory, attribution, opts.clock,
                 GatewayConfig(jwt_secret=opts.jwt_secret, session_max_age=opts.session_max_age), opts.seed,
                 opts.timeout)
    ctx = RunContext(directory, attribution, opts.clock, opts.jwt_secret, opts.session_max_age, opts.seed,
                     opts.timeout)
    cells, wanted = new_cells(plan, policy), plan.wanted
    defects = [f for f in findings.load_findings() if f.kind == "defect"]
    security_defects = {f.id for f in defects if f.severity == "security"}
    total = plan.total
    emit(RunStarted(total, len(cells)))
    limit = asyncio.Semaphore(max(1, opts.concurrency))
    done = 0
    order = {sc.id: i for i, sc in enumerate(scenarios)}
    open_cells = set(cells)

    def finish(key: Key) -> None:
        """Verdict as soon as the cell's last run is in (so live reporters and workers need not wait for the
        whole matrix)."""
        cell = cells[key]
        open_cells.discard(key)
        cell.scenarios.sort(key=lambda r: order.get(r.id, 0))
        if cell.verdict != "error":
            cell_verdict.apply(cell)
        settle_required(cell, launcher[key[0]].profile, column[key[1]], policy)
        emit(CellFinished(cell))

    async def lane(cell: CellResult, runs: list[Scenario], where: Cell) -> None:
        """Runs one after another through one client: they reuse its connection to the gateway."""
        nonlocal done
        key = (cell.gateway, cell.fasttrack)
        async with limit, lane_client(where, ctx) as client:
            for sc in runs:
                res = await run_scenario(sc, where, ctx, client)
                res.finding = findings.explain(defects, where.label, where.gateway.id, res)
                # A security scenario failing where the pair must work, or a documented security defect; in a
                # crossed cell a security scenario fails for the era's mismatch like any other.
                res.security = res.outcome == "fail" and sc.security and (
                    cell.required or res.finding in security_defects)
                cell.scenarios.append(res)
                done += 1
                emit(ScenarioFinished(cell.gateway, cell.fasttrack, res, done, total))
                # No await between the append and this test: of a cell's lanes, exactly one completes it.
                if len(cell.scenarios) == len(wanted[key]):
                    finish(key)

    host, port = opts.manager_listen or (server.LOOPBACK, 0)
    interrupted: str | None = None
    try:
        contract = opts.manager_contract or contract_for_profiles("auto", [g.profile for g, _ in plan.cells])
        manager = await server.start("mock manager", MockManager(directory, contract).app(), host, port)
        try:
            for phase in _phases([c for c in plan.cells if wanted[(c[0].label, c[1].id)]]):
                await _run_phase(phase, env, manager.url, cells, wanted, lane, opts.concurrency)
        finally:
            await manager.stop()
    except asyncio.CancelledError:
        signum = supervisor.requested()
        if signum is None:  # not a stop of the run: someone else's cancellation
            raise
        # Everything started has been stopped on the way here; what finished is kept.
        interrupted = supervisor.signal_name(signum)
    for key in [k for k in cells if k in open_cells]:
        if interrupted:  # never judged on the runs that happened to finish: not a verdict
            interrupted_cell(cells[key], interrupted)
            emit(CellFinished(cells[key]))
        else:  # cells that could not start, or had nothing to run
            finish(key)
    result = assemble(plan, list(cells.values()), scenarios, started_wall, time.perf_counter() - started, keep_empty)
    result.interrupted = interrupted
    emit(RunFinished(result))
    return result


def interrupted_cell(cell: CellResult, signal_name: str) -> None:
    cell.verdict, cell.reason = "unknown", f"interrupted by {signal_name} before this cell finished"


async def _run_phase(phase: list[tuple[GatewayLauncher, FastTrackTarget]], env: Shared, manager_url: str,
                     cells: dict[tuple[str, str], CellResult], wanted: dict[tuple[str, str], list[Scenario]],
                     lane: Callable[[CellResult, list[Scenario], Cell], Awaitable[None]], concurrency: int) -> None:
    """Start the phase's FastTracks and gateways; a part that cannot start makes its cells 'error'.

    Each cell's runs are split into lanes (one client each): one lane per cell when the phase has more cells
    than the concurrency limit, more when it has fewer (an external gateway runs one cell at a time). The
    longest lanes start first, so the phase does not end on one long lane."""
    async with contextlib.AsyncExitStack() as stack:
        ft_up: dict[str, server.RunningServer] = {}
        for column in {f.id: f for _, f in phase}.values():
            try:
                ft_up[column.id] = await stack.enter_async_context(column.running(env))
            except HarnessError as exc:
                for g, f in phase:
                    if f is column:
                        _broken(cells[(g.label, f.id)], str(exc))
        lanes_per_cell = max(1, concurrency // max(1, len(phase)))
        lanes: list[tuple[CellResult, list[Scenario], Cell]] = []
        for g, f in phase:
            cell = cells[(g.label, f.id)]
            if f.id not in ft_up:
                continue
            ft_srv = ft_up[f.id]
            try:
                url = await stack.enter_async_context(g.running(ft_srv.url, manager_url, env))
            except HarnessError as exc:
                _broken(cell, str(exc))
                continue
            where = Cell(g.profile, g.label, f.id, url, ft_srv.authority, real_fasttrack=f.url is not None)
            runs = wanted[(g.label, f.id)]
            lanes += [(cell, runs[k::lanes_per_cell], where) for k in range(min(lanes_per_cell, len(runs)))]
        lanes.sort(key=lambda job: -len(job[1]))
        await asyncio.gather(*(lane(*job) for job in lanes))


def _broken(cell: CellResult, reason: str) -> None:
    cell.verdict, cell.reason = "error", reason


def count_exchanges(cells: list[CellResult]) -> int:
    """HTTP exchanges made: per step one client exchange plus one upstream if it reached FastTrack; per run the
    login (client → gateway, gateway → manager probe and authorize)."""
    steps = sum(1 + ("gateway_to_fasttrack" in st.hops) for c in cells for s in c.scenarios for st in s.steps)
    logins = sum(3 * s.logins for c in cells for s in c.scenarios if s.outcome != "skip")
    return steps + logins

