"""``harness identify``: the command around :mod:`harness.peers.identify` (its target options and output)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from harness import errors
from harness.cli import options
from harness.engine.matrix_run import Options
from harness.engine.selection import select
from harness.engine.targets import GatewayLauncher, ReferenceLauncher
from harness.judge import support_policy
from harness.peers import identify
from harness.protocol.manager_rules import ManagerContract

EPILOG = """exit codes:
  0  a candidate agrees on every counted scenario (an exact match)
  1  a best match is named, but no candidate agrees on every scenario
  2  usage error (bad option, contradictory target options, unknown profile)
  3  no generation can be named: most scenario runs errored at set-up or never ran (the first error is shown)
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser("identify", help="rank gateway profiles by how well a target gateway matches them",
                       description=(identify.__doc__ or "").splitlines()[0], epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gateway", type=options.nonempty, metavar="ID",
                   help="a reference gateway profile to identify (the 'unknown' target)")
    options.add_target_options(p, peer_option=True, judged=False, fasttrack=False)
    p.add_argument("--candidate", action="append", metavar="ID", help="candidate profile (repeatable; default all)")
    options.add(p, "scenario", "scenarios_dir", "policy")
    p.add_argument("--json", metavar="FILE", help="also write the ranking as JSON ('-' for stdout only)")
    options.add(p, "concurrency", "timeout", "seed", "show_secrets")
    p.set_defaults(handler=cmd_identify)


def _target(args: argparse.Namespace) -> tuple[GatewayLauncher, str, ManagerContract]:
    options.check(args, reference="--gateway" if args.gateway else None)
    real = options.real_gateway(args, judging=False)
    if real is not None:
        return real.launcher, real.described, real.manager
    if args.gateway is None:
        raise errors.UsageError("give one target: --gateway ID, --peer TARGET, --gateway-cmd TEMPLATE or "
                                "--gateway-url URL")
    profile = options.resolve_profile(args.gateway)
    return ReferenceLauncher(profile), f"reference gateway {profile.id} ({profile.generation})", ManagerContract()


def cmd_identify(args: argparse.Namespace) -> int:
    target, described, contract = _target(args)
    sel = select(args.candidate, None, args.scenario, args.scenarios_dir)
    policy = support_policy.load_policy(args.policy)
    opts = Options(concurrency=args.concurrency, seed=args.seed, timeout=args.timeout,
                   manager_listen=args.manager_listen, manager_contract=contract)
    ranking = identify.observe(target, sel.gateways, sel.scenarios, policy, opts, args.fasttrack_listen,
                               args.show_secrets)
    doc: dict[str, Any] = {"target": described, "named": ranking.named,
                           "best": ranking.best.profile.id if ranking.named else None,
                           "margin": ranking.margin if ranking.named else None,
                           "exact": [c.profile.id for c in ranking.candidates if c.total and c.agreement == 1]
                           if ranking.named else [],
                           "runs_planned": ranking.planned, "runs_errored": ranking.errored,
                           "uncounted": ranking.uncounted, "first_error": ranking.first_error,
                           "ranking": [c.to_json() for c in ranking.candidates]}
    if args.json == "-":
        print(json.dumps(doc, indent=2))
    else:
        print(identify.render(described, ranking))
        if args.json:
            Path(args.json).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
            print(f"\nranking: {args.json}", file=sys.stderr)
    if not ranking.named:
        return errors.EXIT_RUNTIME
    return errors.EXIT_OK if doc["exact"] else errors.EXIT_INCOMPATIBLE
