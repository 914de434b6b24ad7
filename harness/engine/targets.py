"""Where a cell's gateway and FastTrack come from: the built-in reference/mock actors, a gateway command the
harness starts, an already running gateway, or a real FastTrack behind a recording tap."""

from __future__ import annotations

import contextlib
import string
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from harness.actors import faults, server
from harness.actors.fasttrack import MockFastTrack
from harness.actors.gateway import Mutation, ReferenceGateway
from harness.actors.journal import Attribution
from harness.actors.tap import RecordingTap
from harness.engine import services
from harness.errors import UsageError
from harness.protocol import manager_rules
from harness.protocol.accounts import Directory
from harness.protocol.clock import Clock
from harness.protocol.fasttrack_models import FastTrackModel
from harness.protocol.gateway_rules import GatewayConfig
from harness.protocol.generations import GatewayProfile
from harness.protocol.manager_rules import ManagerContract
from harness.results.document import FastTrackDoc

TEMPLATE_FIELDS = frozenset({"port", "fasttrack_url", "manager_url", "jwt_secret", "redis_url", "workdir",
                             "fasttrack_port", "manager_port", "redis_port", "config"})


def contract_for_profiles(choice: str, profiles: list[GatewayProfile]) -> ManagerContract:
    """``--manager-contract`` for rows whose version the harness does not know: auto gives the 26.4 contract when
    a judged profile takes its session id from the manager's token (older webservers ignore the extra keys)."""
    if choice != "auto":
        return manager_rules.CONTRACTS[choice]
    return manager_rules.V26_4 if any(p.sid_source == "manager-token" for p in profiles) else manager_rules.CLASSIC


@dataclass
class Shared:
    """What every actor of one run shares."""

    directory: Directory
    attribution: Attribution
    clock: Clock
    config: GatewayConfig
    seed: str
    timeout: float = 30.0  # seconds per exchange, the tap's upstream exchange included (--timeout)


class GatewayLauncher(Protocol):
    @property
    def label(self) -> str:
        """The matrix row."""
        ...

    @property
    def profile(self) -> GatewayProfile:
        """Whose expectations (scenario modes) and support policy apply."""
        ...

    @property
    def shared(self) -> bool:
        """One gateway instance serves the FastTrack columns one after another."""
        ...

    def running(self, fasttrack_url: str, manager_url: str, env: Shared) -> contextlib.AbstractAsyncContextManager[str]:
        """Yield the gateway's base URL while it runs, configured to use this FastTrack and manager."""
        ...


@dataclass
class ReferenceLauncher:
    profile: GatewayProfile
    shared: bool = False
    # A deviant reference gateway (harness.mutation.catalogue):
    # judged by ``profile``'s scenarios and policy, shown as ``name``.
    mutation: Mutation | None = None
    name: str | None = None

    @property
    def label(self) -> str:
        return self.name or self.profile.id

    @contextlib.asynccontextmanager
    async def running(self, fasttrack_url: str, manager_url: str, env: Shared) -> AsyncIterator[str]:
        gateway = ReferenceGateway(self.profile, fasttrack_url=fasttrack_url, manager_url=manager_url,
                                   config=env.config, clock=env.clock, seed=env.seed, mutation=self.mutation)
        srv = await server.start(f"reference gateway {self.label}", gateway.app())
        try:
            yield srv.url
        finally:
            await srv.stop()


@dataclass
class JudgedAs:
    """A real gateway judged by a profile's expectations and support policy: the profile it claims
    (``--judge-as``) or the best match ``identify`` found (``how`` says which, for the reports)."""

    target: GatewayLauncher
    profile: GatewayProfile
    name: str | None = None
    how: str = "--judge-as"

    @property
    def label(self) -> str:
        return self.name or self.target.label

    @property
    def shared(self) -> bool:
        return self.target.shared

    @contextlib.asynccontextmanager
    async def running(self, fasttrack_url: str, manager_url: str, env: Shared) -> AsyncIterator[str]:
        async with self.target.running(fasttrack_url, manager_url, env) as url:
            yield url


@dataclass
class RealGateway:
    """A real gateway (a build, a command or a URL) before it is judged: the launcher, the profile it is to be
    judged as (None: identify first), the manager contract it needs and how to name it to the user."""

    launcher: GatewayLauncher
    judge_as: GatewayProfile | None
    manager: ManagerContract
    described: str
    name: str | None = None  # --gateway-name for a build (a command or URL takes it as its own label)
    claimed: GatewayProfile | None = None  # the generation a PyPI release's version belongs to, if known

    def judged(self, profile: GatewayProfile, how: str) -> JudgedAs:
        return JudgedAs(self.launcher, profile, name=self.name, how=how)


def template_fields(template: str) -> set[str]:
    try:
        return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise UsageError(f"--gateway-cmd template is malformed: {exc}") from None


CONFIG_TEMPLATES = Path(__file__).resolve().parent.parent / "data"
CLASSIC_CONFIG = CONFIG_TEMPLATES / "webserver.conf.tmpl"  # 22.x-25.x (halfstack.conf-derived)
CONFIG_26 = CONFIG_TEMPLATES / "webserver-26.conf.tmpl"  # 26.x (pydantic config; webserver-26.conf.example)
CONFIG_2303 = CONFIG_TEMPLATES / "webserver-23.03.conf.tmpl"  # up to the 23.03 line: redis host/port, not addr


def config_template(contract: ManagerContract) -> Path:
    """The shipped webserver config for a release line: 26.x (the 26.4 manager contract) or older."""
    return CONFIG_26 if contract.session_token else CLASSIC_CONFIG


def render_config(template: Path, *, port: int, fasttrack_port: int, manager_port: int, redis_port: int,
                  jwt_secret: str, workdir: str) -> str:
    """Fill a webserver config template: {port} {fasttrack_port} {manager_port} {redis_port} {jwt_secret}
    {workdir} (literal replacement: TOML's own braces stay as they are)."""
    text = template.read_text(encoding="utf-8")
    values = {"port": port, "fasttrack_port": fasttrack_port, "manager_port": manager_port,
              "redis_port": redis_port, "jwt_secret": jwt_secret, "workdir": workdir}
    for key, value in values.items():
        text = text.replace("{" + key + "}", str(value))
    return text


def url_port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


@dataclass
class CommandLauncher:
    """``--gateway-cmd``: a command template the harness fills, starts, waits for and stops per FastTrack column.

    ``{config}`` is the path of a webserver config rendered from ``config`` (the shipped template of the release
    line) for this column, so a source checkout runs as ``python -m ai.backend.web.server -f {config}``."""

    template: str
    profile: GatewayProfile
    label: str = "external"
    ready_timeout: float = 60.0
    shared: bool = True
    config: Path = CLASSIC_CONFIG

    def __post_init__(self) -> None:
        unknown = template_fields(self.template) - TEMPLATE_FIELDS
        if unknown:
            raise UsageError(f"--gateway-cmd has unknown placeholder(s) {', '.join(sorted(unknown))} "
                             f"(known: {', '.join(sorted(TEMPLATE_FIELDS))})")

    @contextlib.asynccontextmanager
    async def running(self, fasttrack_url: str, manager_url: str, env: Shared) -> AsyncIterator[str]:
        port = services.free_port()
        fields = template_fields(self.template)
        async with contextlib.AsyncExitStack() as stack:
            workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="harness-gw-"))
            redis_url = ""
            if fields & {"redis_url", "redis_port", "config"}:
                redis_url = await stack.enter_async_context(services.redis_server())
            config = ""
            if "config" in fields:
                config = str(Path(workdir) / "webserver.conf")
                Path(config).write_text(render_config(
                    self.config, port=port, fasttrack_port=url_port(fasttrack_url), manager_port=url_port(manager_url),
                    redis_port=url_port(redis_url), jwt_secret=env.config.jwt_secret, workdir=workdir),
                    encoding="utf-8")
                (Path(workdir) / "ipc").mkdir()
            command = self.template.format(
                port=port, fasttrack_url=fasttrack_url, manager_url=manager_url, jwt_secret=env.config.jwt_secret,
                redis_url=redis_url, workdir=workdir, fasttrack_port=url_port(fasttrack_url),
                manager_port=url_port(manager_url), redis_port=url_port(redis_url) if redis_url else "",
                config=config)
            await stack.enter_async_context(services.process(
                f"gateway command ({self.label})", command, host="127.0.0.1", port=port,
                ready_timeout=self.ready_timeout, cwd=workdir))
            yield f"http://127.0.0.1:{port}"


@dataclass
class UrlLauncher:
    """``--gateway-url``: a gateway that is already running and configured to use the harness's listen ports."""

    url: str
    profile: GatewayProfile
    label: str = "external"
    shared: bool = True

    @contextlib.asynccontextmanager
    async def running(self, fasttrack_url: str, manager_url: str, env: Shared) -> AsyncIterator[str]:
        yield self.url.rstrip("/")


@dataclass
class FastTrackTarget:
    """A matrix column: a mock FastTrack model, or a real FastTrack (``url``) reached through a recording tap."""

    id: str
    model: FastTrackModel | None = None
    url: str | None = None
    listen: tuple[str, int] | None = None  # fixed address for gateways configured outside the harness
    describe: FastTrackDoc | None = None  # matrix.json's fasttracks[] entry (a real FastTrack's is made at the end)
    # A fault column (harness.actors.faults): ``model`` with one injected fault; ``fault_stall`` bounds a hang.
    fault: str | None = None
    fault_stall: float = 10.0

    @contextlib.asynccontextmanager
    async def running(self, env: Shared) -> AsyncIterator[server.RunningServer]:
        host, port = self.listen or (server.LOOPBACK, 0)
        if self.fault is not None:
            assert self.model is not None, "a fault column wraps a FastTrack model"
            async with faults.running(self.fault, self.model, directory=env.directory, attribution=env.attribution,
                                      clock=env.clock, jwt_secret=env.config.jwt_secret, seed=env.seed, host=host,
                                      port=port, stall=self.fault_stall) as faulty:
                yield faulty
            return
        if self.model is not None:
            mock = MockFastTrack(self.model, directory=env.directory, attribution=env.attribution, clock=env.clock,
                                 jwt_secret=env.config.jwt_secret, seed=env.seed)
            srv = await server.start(f"mock FastTrack {self.id}", mock.app(), host, port)
        else:
            assert self.url is not None
            tap = RecordingTap(self.url, attribution=env.attribution, timeout=env.timeout)
            srv = await server.start(f"recording tap for {self.url}", tap.app(), host, port)
        try:
            yield srv
        finally:
            await srv.stop()
