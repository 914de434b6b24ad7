"""Run one scenario in one cell: log a fresh user in, send each step, collect the four hops, have them judged.

Orchestration only: the request is rendered by the format (``harness.scenario.render``), each step judged by
``harness.judge.steps``, and the credentials on its hops found by ``harness.results.secrets``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp

from harness.actors.client import ScenarioClient, Sent, WsSession, websocket
from harness.actors.journal import Attribution, RunJournal
from harness.judge import steps
from harness.protocol.accounts import Directory
from harness.protocol.clock import Clock
from harness.protocol.fasttrack_models import VERSION_HEADER
from harness.protocol.gateway_rules import SESSION_HEADER
from harness.protocol.generations import GatewayProfile
from harness.results import secrets
from harness.results.model import ScenarioResult, StepResult
from harness.scenario import render
from harness.scenario.matchers import EvalContext, applies
from harness.scenario.model import ACTORS, Actor, Scenario, Step
from harness.scenario.template import UndefinedPlaceholder


@dataclass
class Cell:
    gateway: GatewayProfile  # whose expectations apply (scenario modes)
    label: str  # the matrix row (the profile id, or an external gateway's name)
    fasttrack_id: str
    gateway_url: str
    fasttrack_authority: str  # what the gateway sends as Host upstream
    # A real FastTrack (behind the tap): only contract checks are judged; model checks and steps that need
    # control of FastTrack are not applicable.
    real_fasttrack: bool = False


@dataclass
class RunContext:
    directory: Directory
    attribution: Attribution
    clock: Clock
    jwt_secret: str
    session_max_age: int
    seed: str
    timeout: float = 30.0
    # Credential value -> whose it is (which user of which run), for every session id and captured secret of the
    # runs of this process: a credential that crosses to another client is named with its owner.
    owners: dict[str, str] = field(default_factory=dict)


class _Abort(Exception):
    """The run cannot go on (set-up or transport failure): the scenario's outcome is 'error'."""


def run_id(scenario: Scenario, cell: Cell) -> str:
    return f"{scenario.id}.{cell.label}.{cell.fasttrack_id}"


def run_usernames(scenario: Scenario, label: str, fasttrack_id: str) -> list[str]:
    """The users a run logs in, the first and (``users: 2``) the second (their keypairs are derived from the seed
    and these names: harness.engine.accounts)."""
    first = f"{scenario.id}.{label}.{fasttrack_id}@harness.test"
    return [first, f"second.{first}"] if scenario.users == 2 else [first]


async def run_scenario(scenario: Scenario, cell: Cell, ctx: RunContext,
                       client: ScenarioClient | None = None) -> ScenarioResult:
    """Run ``scenario`` in ``cell``: log a fresh user in, then each step that applies to the cell's gateway,
    checked with that gateway's expectations; the first failing step ends the run.

    ``client`` lends a client (and its loopback address) that outlives the run, so sequential runs on one
    gateway reuse its keep-alive connection; without one the run opens its own from a fresh address."""
    if client is None:
        async with lane_client(cell, ctx) as own:
            return await run_scenario(scenario, cell, ctx, own)
    started = time.perf_counter()
    rid = run_id(scenario, cell)
    result = ScenarioResult(scenario.id, scenario.title, scenario.file, "pass")
    names = run_usernames(scenario, cell.label, cell.fasttrack_id)
    user = ctx.directory.create(names[0])
    second = ctx.directory.create(names[1]) if len(names) > 1 else None
    result.secrets.add(ctx.jwt_secret)
    for u in (user, second):
        if u is not None:
            result.secrets |= {u.secret_key, u.password, u.access_key}
    journal = RunJournal(rid)
    ip = client.source_ip
    ctx.attribution.register(ip, journal)
    current: Step | None = None
    extra = contextlib.AsyncExitStack()
    clients: dict[str, ScenarioClient] = {"first": client}

    async def client_of(actor: Actor) -> ScenarioClient:
        """The first user's client, or a client of its own (its own loopback address, filed under this run)."""
        if actor not in clients:
            k = ACTORS.index(actor)
            clients[actor] = await extra.enter_async_context(lane_client(cell, ctx, (client.source_ip, k)))
            ctx.attribution.register(clients[actor].source_ip, journal)
        return clients[actor]

    try:
        variables: dict[str, object] = {
            "username": user.username,
            "password": user.password,
            "access_key": user.access_key,
            "jwt_secret": ctx.jwt_secret,
            "session_max_age": ctx.session_max_age,
            "gateway_host": cell.gateway_url.split("://", 1)[1],
            "client_ip": ip,
            "fasttrack_host": cell.fasttrack_authority,
            "run_id": rid,
            "session_id": None,
            # The login-session token the manager answered the user's latest login with (26.4 contract; none
            # before): refreshed before each step is judged, as a step may log in again.
            "manager_session_token": None,
        }
        if scenario.login:
            variables["session_id"] = await _login(client, user.username, user.password)
            variables["manager_session_token"] = ctx.directory.session_token(user.username)
            result.secrets.add(str(variables["session_id"]))
            ctx.owners[str(variables["session_id"])] = f"the session of user 'first' of run {rid}"
        if second is not None:  # logged in next to the first: both sessions live for the whole run
            other = await client_of("second")
            sid2 = await _login(other, second.username, second.password)
            variables.update(second_username=second.username, second_password=second.password,
                             second_access_key=second.access_key, second_session_id=sid2,
                             second_client_ip=other.source_ip)
            result.secrets.add(sid2)
            result.logins = 2
            ctx.owners[sid2] = f"the session of user 'second' of run {rid}"
        modes = cell.gateway.modes()
        unavailable: set[str] = set()  # captures that a real FastTrack run cannot have (see _not_applicable)
        for step in scenario.steps:
            if not applies(step.modes, _ectx(variables, modes, ctx)):
                continue
            current = step
            contract, model = step.count_checks(modes)
            why = steps.not_applicable(step, unavailable) if cell.real_fasttrack else None
            if why is not None:
                result.steps.append(StepResult(step.name, "skip", note=f"not applicable against a real FastTrack: "
                                               f"{why}", not_applicable=contract + model))
                unavailable.update(c.name for c in step.captures)
                continue
            step_result = await _run_step(step, await client_of(step.actor), journal, variables, ctx, rid)
            step_result.judged, step_result.not_applicable = ((contract, model) if cell.real_fasttrack
                                                              else (contract + model, 0))
            variables["manager_session_token"] = ctx.directory.session_token(user.username)
            if step_result.outcome == "pass":
                step_result.failures = steps.failures(step, step_result, _ectx(variables, modes, ctx,
                                                                               judge_model=not cell.real_fasttrack))
                step_result.outcome = "fail" if step_result.failures else "pass"
            if cell.real_fasttrack:
                unavailable.update(c.name for c in step.captures if c.model)
            variables.update(steps.captured(step, step_result, judge_model=not cell.real_fasttrack))
            for cap in step.captures:
                if cap.secret and variables.get(cap.name):
                    ctx.owners.setdefault(str(variables[cap.name]),
                                          f"{cap.name}, captured for user '{step.actor}' of run {rid}")
            result.steps.append(step_result)
            result.versions_seen += [
                rec.headers.values(VERSION_HEADER)
                for name, rec in step_result.hops.items() if name == "fasttrack_to_gateway"
            ]
            for hop in step_result.hops.values():
                result.secrets |= secrets.on_hop(hop)
            if step_result.outcome != "pass":
                result.outcome = step_result.outcome
                result.failures = step_result.failures
                if step_result.outcome == "error":
                    result.error = f"step '{step.name}': {step_result.note}"
                break
        if result.outcome == "pass" and not result.judged:
            # Nothing left to judge (every check a model detail, every step needing control of FastTrack):
            # not a pass.
            result.outcome = "skip"
            result.skipped = "not applicable against a real FastTrack: no contract check was left to judge"
        if variables["manager_session_token"]:
            result.secrets.add(str(variables["manager_session_token"]))
        for cap_name in {c.name for s in scenario.steps for c in s.captures if c.secret}:
            if variables.get(cap_name):
                result.secrets.add(str(variables[cap_name]))
    except _Abort as exc:
        result.outcome, result.error = "error", str(exc)
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        result.outcome, result.error = "error", f"gateway at {cell.gateway_url} unreachable: {_describe(exc)}"
    except Exception as exc:  # the scenario cannot be run (a value only known at run time): its own error
        at = f"{current.where}: step '{current.name}'" if current else scenario.file
        result.outcome, result.error = "error", f"scenario {at} cannot be run: {_describe(exc)}"
    finally:
        await extra.aclose()
        ctx.attribution.release(journal)
        ctx.directory.forget(user.username)
        if second is not None:
            ctx.directory.forget(second.username)
    result.duration_ms = (time.perf_counter() - started) * 1000
    return result


@contextlib.asynccontextmanager
async def lane_client(cell: Cell, ctx: RunContext, companion: tuple[str, int] | None = None
                      ) -> AsyncIterator[ScenarioClient]:
    """A client for one lane of runs on ``cell``'s gateway, from a loopback address only it holds (with
    ``companion=(ip, k)``, the k-th address derived from the lane's ``ip``: deterministic whatever runs alongside)."""
    ip = ctx.attribution.companion_ip(*companion) if companion else ctx.attribution.allocate_ip()
    try:
        async with ScenarioClient(cell.gateway_url, ip, timeout=ctx.timeout) as client:
            yield client
    finally:
        ctx.attribution.free_ip(ip)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


LOGIN_BODY_KEPT = 4096


async def _login(client: ScenarioClient, username: str, password: str) -> str:
    body = json.dumps({"username": username, "password": password}).encode()
    sent = await client.send("POST", "/server/login", "", [("Content-Type", "application/json")], body)
    resp = sent.hop4
    sid = resp.headers.get(SESSION_HEADER)
    try:
        payload = json.loads(resp.body)
    except ValueError:
        payload = None
    if resp.status != 200 or not sid or not isinstance(payload, dict) or payload.get("authenticated") is not True:
        # The whole problem body (a few KiB at most): which field the build's validation missed is in it.
        body_text = resp.body[:LOGIN_BODY_KEPT].decode("utf-8", "replace")
        cut = f" ... ({len(resp.body)} bytes)" if len(resp.body) > LOGIN_BODY_KEPT else ""
        raise _Abort(f"login through /server/login failed: status {resp.status}, body {body_text}{cut}")
    return sid


def _ectx(variables: dict[str, object], modes: frozenset[str], ctx: RunContext, judge_model: bool = True
          ) -> EvalContext:
    def secret_for(access_key: str) -> str | None:
        user = ctx.directory.by_access_key(access_key)
        return user.secret_key if user else None

    return EvalContext(variables, modes, secret_for, int(ctx.clock.now().timestamp()), judge_model, ctx.owners.get)


async def _run_step(step: Step, client: ScenarioClient, journal: RunJournal, variables: dict[str, object],
                    ctx: RunContext, rid: str) -> StepResult:
    """Send the step and record its hops (no expectations checked here)."""
    out = StepResult(step.name, "pass")
    try:
        req = render.request(step.request, variables, rid, step.actor)
    except UndefinedPlaceholder as exc:
        out.outcome, out.note = "fail", f"placeholder ${{{exc.args[0]}}} has no value (an earlier capture failed)"
        out.failures.append(steps.unbound(step, exc.args[0]))
        return out
    journal.override = render.override(step.request.upstream, variables)
    journal.clock_offset = step.request.fasttrack_clock_offset
    ws_spec = step.request.websocket
    journal.ws_close = (None if ws_spec is None or ws_spec.fasttrack_closes is None
                        else (len(ws_spec.send), ws_spec.fasttrack_closes))
    first = len(journal.exchanges)
    try:
        if ws_spec is not None:
            sent: Sent | WsSession = await websocket(
                client, req.path, req.query, list(req.headers), [m.render(variables) for m in ws_spec.send],
                ws_spec.close_wait if ws_spec.fasttrack_closes is not None else None)
        else:
            sent = await client.send(step.request.method, req.path, req.query, list(req.headers), req.body,
                                     step.request.body_bytes)
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        out.outcome, out.note = "error", f"client→gateway transport failed: {_describe(exc)}"
        return out
    finally:
        journal.override, journal.clock_offset, journal.ws_close = None, 0, None
    for ex in journal.exchanges[first:]:
        if ex.finished is not None:  # a stream: wait until FastTrack has seen the relayed close
            try:
                await asyncio.wait_for(ex.finished.wait(), ctx.timeout)
            except TimeoutError:
                out.outcome, out.note = "error", f"FastTrack's side of the stream did not end within {ctx.timeout:g} s"
                return out
    upstream_exchanges = journal.exchanges[first:]
    del journal.exchanges[first:]  # released per step: memory stays bounded however long the run
    out.upstream_count = len(upstream_exchanges)
    out.hops["client_to_gateway"] = sent.hop1
    if isinstance(sent, WsSession):
        up = upstream_exchanges[0] if upstream_exchanges else None
        out.ws = {"client_received": sent.received, "fasttrack_received": up.ws_received if up else [],
                  "fasttrack_sent": up.ws_sent if up else [], "fasttrack_close_code": up.ws_close_code if up else None,
                  "client_close_code": sent.close_code}
    if upstream_exchanges:
        ex = upstream_exchanges[0]
        out.hops["gateway_to_fasttrack"] = ex.request
        if ex.response is not None:
            out.hops["fasttrack_to_gateway"] = ex.response
        out.note = ex.note
        if ex.error:
            out.outcome, out.note = "error", ex.error
            return out
        fault = steps.target_fault(ex.response) if step.request.upstream is None else None
        if fault:  # FastTrack itself is broken: nothing can be concluded about compatibility
            out.hops["gateway_to_client"] = sent.hop4
            out.outcome, out.note = "error", fault
            return out
    out.hops["gateway_to_client"] = sent.hop4
    if not upstream_exchanges and steps.fasttrack_unreachable(step, sent.hop4):
        out.outcome, out.note = "error", (f"the gateway could not reach FastTrack at {variables.get('fasttrack_host')} "
                                          "(502 bad-gateway, nothing arrived)")
        return out
    return out
