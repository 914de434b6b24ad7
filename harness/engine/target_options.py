"""The real-target options that ``run``, ``peer``, ``gate`` and ``identify`` share: one definition, one check.

A real gateway is ``--peer TARGET`` (a backend.ai-webserver build), ``--gateway-cmd TEMPLATE`` or
``--gateway-url URL``; a real FastTrack is ``--fasttrack-url URL``. Empty values (an unset variable in a CI
script) and options that mean nothing with the others given are usage errors, never silently ignored: the
reference matrix running instead of the build is a false pass.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass

from yarl import URL

from harness import errors
from harness.actors import faults
from harness.engine import services
from harness.engine.matrix_run import describe_real_fasttrack, mock_columns
from harness.engine.targets import (
    CommandLauncher,
    FastTrackTarget,
    GatewayLauncher,
    JudgedAs,
    UrlLauncher,
    add_manager_contract_option,
    config_template,
    contract_for_profiles,
)
from harness.peers import builds
from harness.protocol import generations, manager_rules
from harness.protocol.fasttrack_models import FastTrackModel
from harness.protocol.generations import GatewayProfile
from harness.protocol.manager_rules import ManagerContract

AUTO = "auto"  # --judge-as auto: identify first, then judge as the best match
COMMAND_READY_TIMEOUT = 60.0


def nonempty(text: str) -> str:
    """An option value that must say something: '' is what an unset shell variable gives."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty (an unset variable?)")
    return text


def seconds(text: str) -> float:
    """A timeout: a positive, finite number of seconds (0, negative, nan or inf would disable it)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError("expected a number of seconds > 0")
    return value


def listen(text: str) -> tuple[str, int]:
    try:
        return services.parse_listen(text)
    except errors.UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def http_url(text: str) -> str:
    nonempty(text)
    try:
        url = URL(text)
    except (ValueError, TypeError):
        url = URL()
    if url.scheme not in ("http", "https") or not url.host:
        raise argparse.ArgumentTypeError(f"expected an http:// or https:// URL with a host, got {text!r}")
    try:
        url.port  # noqa: B018 - a port out of range raises here
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: the port is not 1-65535") from None
    return text



def add_target_options(p: argparse.ArgumentParser, *, peer_option: bool = False, gateway: bool = True,
                       judged: bool = True, fasttrack: bool = True, fault: bool = False) -> None:
    """``peer_option``: offer ``--peer TARGET``; ``gateway``: ``--gateway-cmd``/``--gateway-url`` and their
    options (``peer`` takes its build as an argument instead); ``judged``: ``--judge-as`` and ``--gateway-name``
    (``identify`` judges by every candidate instead); ``fasttrack``: ``--fasttrack-url``; ``fault``: ``--fault``."""
    ext = p.add_argument_group("real targets", "judge a real gateway build and/or a real FastTrack")
    if peer_option:
        ext.add_argument("--peer", type=nonempty, metavar="TARGET",
                         help="a backend.ai-webserver build (as for 'peer run'), installed into the peer cache "
                              "if needed")
    if gateway:
        ext.add_argument("--gateway-cmd", type=nonempty, metavar="TEMPLATE",
                         help="start this gateway per FastTrack column; placeholders {port} {fasttrack_url} "
                              "{fasttrack_port} {manager_url} {manager_port} {jwt_secret} {redis_url} {redis_port} "
                              "{workdir} and {config} (a webserver config rendered for the column from the shipped "
                              "template of the release line: 26.x with the 26.4 manager contract, else the "
                              "classic one), e.g. 'python -m ai.backend.web.server -f {config}'")
        ext.add_argument("--gateway-url", type=http_url, metavar="URL", help="an already running gateway")
    if judged:
        ext.add_argument("--gateway-name", type=nonempty, metavar="NAME",
                         help="matrix row label of the real gateway (default: 'external', or the build's)")
        ext.add_argument("--judge-as", type=nonempty, metavar="PROFILE|auto",
                         help="judge the real gateway by this profile's expectations, support policy and baseline; "
                              "'auto' identifies it first and judges it as the best match (the default for a "
                              "build: peer, --peer)")
    if gateway:
        ext.add_argument("--fasttrack-listen", type=listen, metavar="HOST:PORT",
                         help="fixed address for the mock FastTrack (only with --gateway-url)")
        ext.add_argument("--manager-listen", type=listen, metavar="HOST:PORT",
                         help="fixed address for the mock manager (only with --gateway-url)")
    if fasttrack:
        ext.add_argument("--fasttrack-url", type=http_url, metavar="URL",
                         help="a real FastTrack, reached through a recording tap")
        ext.add_argument("--fasttrack-name", type=nonempty, metavar="ID",
                         help="matrix column id of the real FastTrack (default 'external'; only with "
                              "--fasttrack-url)")
    if fault:
        ext.add_argument("--fault", action="append", metavar="NAME[@MODEL]",
                         help="instead of the FastTrack models, fault columns (repeatable): the model MODEL (default "
                              "25.1.0) with one injected fault, required wherever MODEL is; faults: "
                              + ", ".join(faults.FAULTS))
    ext.add_argument("--ready-timeout", type=seconds, metavar="SECONDS",
                     help="seconds for a started gateway to listen (default 60; builds 90)")
    add_manager_contract_option(ext)


def _given(args: argparse.Namespace, name: str) -> bool:
    return getattr(args, name, None) is not None


def real_gateway_options(args: argparse.Namespace) -> list[str]:
    """The real-gateway options given, as the user spelled them."""
    return [f"--{n.replace('_', '-')}" for n in ("peer", "gateway_cmd", "gateway_url") if _given(args, n)]


def check(args: argparse.Namespace, *, builds: bool = False, reference: str | None = None) -> None:
    """Contradictions between target options are usage errors. ``builds``: the command names its build itself
    (``peer run TARGET``); ``reference``: the option naming a reference gateway instead (``--gateway``), if
    the command has one and it was given."""
    real = real_gateway_options(args)
    if len(real) > 1:
        raise errors.UsageError(f"give one real gateway, not {' and '.join(real)}")
    if real and reference:
        raise errors.UsageError(f"{real[0]} replaces the reference gateways: it cannot be combined with {reference}")
    has_gateway = bool(real) or builds
    for opt in ("gateway_name", "judge_as", "ready_timeout"):
        if _given(args, opt) and not has_gateway:
            raise errors.UsageError(f"--{opt.replace('_', '-')} means nothing without a real gateway "
                                    "(a build, --gateway-cmd or --gateway-url)")
    if _given(args, "ready_timeout") and _given(args, "gateway_url"):
        raise errors.UsageError("--ready-timeout means nothing with --gateway-url: the harness does not start it")
    if _given(args, "fasttrack_listen") and not _given(args, "gateway_url"):
        raise errors.UsageError("--fasttrack-listen is only for --gateway-url (a gateway configured outside the "
                                "harness); otherwise the harness picks free ports itself")
    if _given(args, "manager_listen") and not (_given(args, "gateway_url") or _given(args, "fasttrack_url")):
        raise errors.UsageError("--manager-listen is only for --gateway-url or --fasttrack-url (a gateway or a "
                                "FastTrack configured outside the harness); otherwise the harness picks a free port")
    if _given(args, "gateway_url") and not (_given(args, "fasttrack_listen") and _given(args, "manager_listen")):
        raise errors.UsageError("--gateway-url needs --fasttrack-listen and --manager-listen, the addresses its "
                                "configuration points at")
    if _given(args, "fasttrack_name") and not _given(args, "fasttrack_url"):
        raise errors.UsageError("--fasttrack-name means nothing without --fasttrack-url")
    if getattr(args, "fault", None) and _given(args, "fasttrack_url"):
        raise errors.UsageError("give --fault or --fasttrack-url, not both")
    if getattr(args, "judge_as", None) not in (None, AUTO):
        resolve_profile(args.judge_as)


def resolve_profile(name: str) -> GatewayProfile:
    try:
        return generations.resolve(name)
    except KeyError as exc:
        raise errors.UsageError(str(exc.args[0])) from None


@dataclass
class RealGateway:
    """The real gateway the options name, before it is judged: the launcher, the profile it is to be judged as
    (None: identify first), the manager contract it needs and how to name it to the user."""

    launcher: GatewayLauncher
    judge_as: GatewayProfile | None
    manager: ManagerContract
    described: str
    name: str | None = None  # --gateway-name for a build (a command or URL takes it as its own label)
    claimed: GatewayProfile | None = None  # the generation a PyPI release's version belongs to, if known

    def judged(self, profile: GatewayProfile, how: str) -> JudgedAs:
        return JudgedAs(self.launcher, profile, name=self.name, how=how)


def real_gateway(args: argparse.Namespace, *, build: str | None = None, fresh: bool = False,
                 judging: bool = True) -> RealGateway | None:
    """The real gateway of the options (``build``: the TARGET argument of ``peer``), installing a build if
    needed; None when no real gateway is named. When ``judging``, a command or URL needs ``--judge-as`` (a build
    defaults to ``auto``); ``identify`` judges by every candidate instead."""
    check(args, builds=build is not None)
    target = build or getattr(args, "peer", None)
    judge = getattr(args, "judge_as", None)
    judged = None if judge in (None, AUTO) else resolve_profile(judge)
    name = getattr(args, "gateway_name", None)
    if target is not None:
        rel = builds.release(target)
        python, seconds = builds.install(rel, fresh=fresh)
        print(f"backend.ai-webserver {rel.version}: {python} " + (f"(installed in {seconds:.0f} s)" if seconds
                                                                else "(cached)"), file=sys.stderr)
        launcher = builds.PeerLauncher(rel, python)
        if args.ready_timeout is not None:
            launcher.ready_timeout = args.ready_timeout
        contract = manager_rules.choose(getattr(args, "manager_contract", "auto"), rel.version)
        return RealGateway(launcher, judged, contract, f"{rel.describe()} (real build)", name,
                           claimed=launcher.profile)
    cmd, url = getattr(args, "gateway_cmd", None), getattr(args, "gateway_url", None)
    if cmd is None and url is None:
        return None
    if judge is None and judging:
        raise errors.UsageError("a real gateway needs --judge-as PROFILE (the generation it claims to be) or "
                                "--judge-as auto")
    contract = contract_for_profiles(getattr(args, "manager_contract", "auto"), [judged] if judged else [])
    placeholder = judged or generations.PROFILES[0]  # JudgedAs supplies the profile that judges it
    label = name or "external"
    if cmd is not None:
        timeout = args.ready_timeout if args.ready_timeout is not None else COMMAND_READY_TIMEOUT
        return RealGateway(CommandLauncher(cmd, placeholder, label, timeout, config=config_template(contract)),
                           judged, contract, "gateway command")
    assert url is not None
    return RealGateway(UrlLauncher(url, placeholder, label), judged, contract, f"gateway at {url}")


def fasttrack_columns(args: argparse.Namespace, models: list[FastTrackModel]) -> list[FastTrackTarget]:
    """The FastTrack columns: fault columns, one real FastTrack, or the mock models."""
    listen = getattr(args, "fasttrack_listen", None)
    if getattr(args, "fault", None):
        specs = list(dict.fromkeys(faults.parse(f) for f in args.fault))
        if listen and any(f.name == "refused" for f in specs):
            raise errors.UsageError("--fault refused listens nowhere: it cannot use --fasttrack-listen")
        # Held longer than the harness timeout, so the timeout is what ends a step that meets a hang.
        return [FastTrackTarget(f.column_id, model=f.model, listen=listen, describe=faults.describe(f),
                                fault=f.name, fault_stall=2 * args.timeout) for f in specs]
    url = getattr(args, "fasttrack_url", None)
    if url is not None:
        name = args.fasttrack_name or "external"
        return [FastTrackTarget(name, url=url, listen=listen, describe=describe_real_fasttrack(name, url))]
    return mock_columns(models, listen)
