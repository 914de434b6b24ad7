"""The options the subcommands share, each declared once: argument types, the run options (:data:`SHARED`, by
name: scenario selection, policy, concurrency, timeout, seed, ...), and the real-target options that ``run``,
``peer``, ``gate`` and ``identify`` share, with their one check.

A real gateway is ``--peer TARGET`` (a backend.ai-webserver build), ``--gateway-cmd TEMPLATE`` or
``--gateway-url URL``; a real FastTrack is ``--fasttrack-url URL``. Empty values (an unset variable in a CI
script) and options that mean nothing with the others given are usage errors, never silently ignored: the
reference matrix running instead of the build is a false pass.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from yarl import URL

from harness import errors
from harness.actors import faults
from harness.engine import services, workers
from harness.engine.matrix_run import (
    MAX_CONCURRENCY,
    Options,
    describe_real_fasttrack,
    mock_columns,
)
from harness.engine.selection import DEFAULT_SCENARIOS
from harness.engine.targets import (
    CommandLauncher,
    FastTrackTarget,
    RealGateway,
    UrlLauncher,
    config_template,
    contract_for_profiles,
)
from harness.judge import support_policy
from harness.peers import builds
from harness.protocol import generations, manager_rules
from harness.protocol.fasttrack_models import FastTrackModel
from harness.protocol.generations import GatewayProfile
from harness.report import output

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


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError("expected a whole number >= 1")
    return value


def count(text: str) -> int:
    """A number of times, 0 included."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a whole number") from None
    if n < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return n


def concurrency(text: str) -> int:
    value = positive(text)
    if value > MAX_CONCURRENCY:
        raise argparse.ArgumentTypeError(f"at most {MAX_CONCURRENCY}")
    return value


def jobs(text: str) -> int:
    # More workers than cores only adds start-up and memory (one worker per cell for --jobs 100000).
    if text == "auto":
        return workers.available_cores()
    return min(positive(text), workers.available_cores())


def shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError("expected I/N, e.g. 1/2") from None
    if not 1 <= i <= n:
        raise argparse.ArgumentTypeError("I must be between 1 and N")
    return i, n


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



# The options several commands take, each declared once (one meaning, one type, one default); a command adds the
# ones it has by name: ``add(parser, "scenario", "policy", ...)``.
SHARED: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "scenario": (("--scenario",), dict(default="*", metavar="GLOB", help="scenario id/file glob (default '*')")),
    "scenarios_dir": (("--scenarios-dir",), dict(default=str(DEFAULT_SCENARIOS), metavar="DIR",
                                                 help="where the scenario files are (default: the shipped ones)")),
    "policy": (("--policy",), dict(default=str(support_policy.DEFAULT_POLICY), metavar="FILE",
                                   help="support policy YAML")),
    "out": (("--out",), dict(default=output.DEFAULT_OUT, metavar="DIR",
                             help=f"report directory (default {output.DEFAULT_OUT}/)")),
    "format": (("--format",), dict(action="append", choices=sorted(output.WRITERS), help="formats (default all)")),
    "concurrency": (("--concurrency",), dict(type=concurrency, default=Options.concurrency, metavar="N",
                                             help=f"scenario runs in flight at once per process (1-{MAX_CONCURRENCY}, "
                                                  f"default {Options.concurrency})")),
    "timeout": (("--timeout",), dict(type=seconds, default=30.0, metavar="SECONDS",
                                     help="seconds per HTTP exchange before 'error' (every hop, the tap's included; "
                                          "> 0, finite; default 30)")),
    "seed": (("--seed",), dict(default="harness", help="seed for keys, session ids and tokens")),
    "show_secrets": (("--show-secrets",), dict(action="store_true", help="do not redact tokens, keys and signatures")),
    "quiet": (("--quiet",), dict(action="store_true", help="no progress output (there is none off a terminal)")),
}


def add(p: argparse.ArgumentParser | argparse._ArgumentGroup, *names: str, given_only: bool = False) -> None:
    """The shared options ``names`` (keys of :data:`SHARED`). ``given_only``: no default, the attribute is set only
    when the option is given (a subcommand's parser, so that the value given before its word is kept)."""
    for name in names:
        flags, kwargs = SHARED[name]
        p.add_argument(*flags, **(kwargs | {"default": argparse.SUPPRESS} if given_only else kwargs))


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


def add_manager_contract_option(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--manager-contract``, one definition for run, peer and identify."""
    p.add_argument("--manager-contract", choices=manager_rules.CHOICES, default="auto",
                   help="what the mock manager answers: classic (access/secret key, role, status, response_type) "
                        "or 26.4 (also session_token and user_id, GET /health/readyz, POST /auth/logout; webserver "
                        "26.4+). auto (default): by the release's version for a peer, else by the profiles judged "
                        "(26.4 when one of them is a 26.x generation)")


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
