"""``harness mutate``: the command around :mod:`harness.mutation.run`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from harness import errors
from harness.cli import options
from harness.engine import supervisor
from harness.engine.matrix_run import Options
from harness.engine.selection import select
from harness.judge import support_policy
from harness.mutation import run as mutation_run
from harness.mutation.catalogue import MUTANTS, resolve_mutant
from harness.report import terminal


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "mutate", help="mutation testing: run the suite against deviant gateways, report the kill rate",
        description="Run the suite against every deviant gateway of harness/mutation/catalogue.py. "
                    + (mutation_run.__doc__ or "").split("\n\n")[1].replace("\n", " ").replace("``", ""),
        epilog="exit codes:\n  0  every mutant killed at its intended hop\n  1  a mutant survived, was caught "
               "elsewhere only, or its base is not compatible\n  2  usage error\n\nmutants: "
               + ", ".join(m.id for m in MUTANTS),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mutant", action="append", metavar="ID", help="run only this mutant (repeatable; default all)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    options.add(p, "scenario", "scenarios_dir", "policy", "concurrency", "timeout", "seed", "quiet")
    p.set_defaults(handler=cmd_mutate)
    return p


def cmd_mutate(args: argparse.Namespace) -> int:
    try:
        mutants = [resolve_mutant(i) for i in args.mutant] if args.mutant else list(MUTANTS)
    except KeyError as exc:
        raise errors.UsageError(str(exc.args[0])) from None
    sel = select(None, None, args.scenario, args.scenarios_dir)
    policy = support_policy.load_policy(args.policy)
    opts = Options(concurrency=args.concurrency, seed=args.seed, timeout=args.timeout)
    progress = terminal.Progress(quiet=args.quiet)
    run = supervisor.run(mutation_run.run_mutants(mutants, sel.scenarios, policy, opts, progress))
    print(mutation_run.render(run))
    if args.json:
        Path(args.json).write_text(json.dumps(run.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return errors.EXIT_OK if run.ok else errors.EXIT_INCOMPATIBLE
