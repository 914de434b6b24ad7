"""``python -m harness serve gateway|fasttrack``: run one actor as its own process.

The reference gateway run this way is a stand-in for a real build behind ``--gateway-cmd``; a mock FastTrack
run this way sits behind ``--fasttrack-url`` to exercise the recording tap. Keys are recognised by the seed's
check code (:class:`harness.protocol.accounts.Directory` with ``trust_seed``), so the processes agree with the
harness's manager without sharing memory.
"""

from __future__ import annotations

import argparse
import asyncio

from aiohttp import web

from harness.actors.fasttrack import MockFastTrack
from harness.actors.gateway import ReferenceGateway
from harness.actors.journal import Attribution
from harness.engine.matrix_run import DEFAULT_JWT_SECRET
from harness.errors import UsageError
from harness.mutation import catalogue
from harness.protocol import fasttrack_models, generations
from harness.protocol.accounts import Directory
from harness.protocol.clock import SystemClock
from harness.protocol.gateway_rules import GatewayConfig


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run one actor (reference gateway or mock FastTrack) as a process",
                       description="Run one actor, a reference gateway or a mock FastTrack, as its own process on "
                                   "loopback until it is stopped (a stand-in for a real build).",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="exit codes:\n  0  stopped\n  2  usage error (unknown profile, missing URL, an "
                              "address that is not loopback)\n")
    p.set_defaults(handler=run)
    p.add_argument("actor", choices=("gateway", "fasttrack"))
    p.add_argument("--profile", required=True, help="gateway profile or FastTrack profile id")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--fasttrack-url", help="gateway: the pipeline endpoint")
    p.add_argument("--manager-url", help="gateway: the manager endpoint")
    p.add_argument("--jwt-secret", default=DEFAULT_JWT_SECRET)
    p.add_argument("--seed", default="harness")
    p.add_argument("--mutant", metavar="ID", help="gateway: with this deliberate deviation of --profile "
                   "(harness/mutation/catalogue.py), a stand-in for a build with one defect")


def build_app(args: argparse.Namespace) -> web.Application:
    if not args.host.startswith("127.") and args.host not in ("localhost", "::1"):
        raise UsageError("serve listens on loopback only")
    try:
        if args.actor == "gateway":
            if not (args.fasttrack_url and args.manager_url):
                raise UsageError("serve gateway needs --fasttrack-url and --manager-url")
            profile = generations.resolve(args.profile)
            mutant = catalogue.resolve_mutant(args.mutant) if args.mutant else None
            if mutant is not None and mutant.base_profile.id != profile.id:
                raise UsageError(f"mutant {mutant.id} deviates from {mutant.base}, not from {profile.id}")
            return ReferenceGateway(profile, fasttrack_url=args.fasttrack_url, manager_url=args.manager_url,
                                    config=GatewayConfig(jwt_secret=args.jwt_secret), clock=SystemClock(),
                                    seed=args.seed, mutation=mutant).app()
        if args.mutant:
            raise UsageError("--mutant is for serve gateway")
        model = fasttrack_models.resolve(args.profile)
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from None
    return MockFastTrack(model, directory=Directory(args.seed, trust_seed=True), attribution=Attribution(),
                         clock=SystemClock(), jwt_secret=args.jwt_secret, seed=args.seed).app()


def run(args: argparse.Namespace) -> int:
    app = build_app(args)
    web.run_app(app, host=args.host, port=args.port, print=None, access_log=None, loop=asyncio.new_event_loop())
    return 0
