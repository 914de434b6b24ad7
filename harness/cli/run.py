"""``harness run``: the matrix, its reports and the exit code (also the option set ``peer run`` and
``peer census`` share)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from harness import errors
from harness.actors import faults
from harness.cli import options
from harness.compare import repeat
from harness.engine import accounts, supervisor, workers
from harness.engine.matrix_run import DEFAULT_JWT_SECRET, Options
from harness.engine.selection import Selection, select
from harness.engine.targets import FastTrackTarget, contract_for_profiles
from harness.judge import support_policy
from harness.judge.cell_verdict import exit_code
from harness.peers import identify
from harness.report import output, terminal
from harness.results.document import RunDoc
from harness.results.model import RunResult
from harness.results.redact import Redactor

EPILOG = """exit codes:
  0  every required cell is compatible
  1  a required cell is incompatible or unknown
  2  usage error (bad option, scenario file, profile, policy)
  3  runtime error (a server could not start, a target unreachable)
  130, 143  interrupted by SIGINT or SIGTERM (the finished cells are written, marked partial)
"""
DEFAULT_OUT = output.DEFAULT_OUT
HELP = "run the matrix and write reports"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    run: argparse.ArgumentParser = sub.add_parser(
        "run", help=HELP, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Run every applicable scenario in every (gateway profile x FastTrack) cell, print the matrix "
                    f"and write the reports (default {DEFAULT_OUT}/).")
    add_run_options(run)
    options.add_target_options(run, fault=True)
    run.set_defaults(handler=cmd_run)
    return run


def add_run_options(run: argparse.ArgumentParser) -> None:
    run.add_argument("--gateway", action="append", metavar="ID", help="gateway profile (repeatable; default all)")
    run.add_argument("--fasttrack", action="append", metavar="ID", help="FastTrack profile (repeatable; default all)")
    options.add(run, "scenario", "scenarios_dir", "policy", "out", "concurrency", "timeout", "seed")
    run.add_argument("--jwt-secret", default=DEFAULT_JWT_SECRET, metavar="SECRET",
                     help="the pipeline JWT secret the reference gateways mint X-BackendAI-SSO with and the "
                          "scenarios verify it with (give a real SSO-era FastTrack's own secret)")
    run.add_argument("--jobs", "-j", type=options.jobs, default="auto", metavar="N|auto",
                     help="worker processes, each running a share of the cells (default auto: one per core; "
                          "at most one per core; always 1 with a real gateway or FastTrack or a fixed listening "
                          "address)")
    run.add_argument("--shard", type=options.shard, metavar="I/N",
                     help="run shard I of N (cells split deterministically)")
    options.add(run, "show_secrets", "quiet")
    run.add_argument("--verbose", "-v", action="store_true",
                     help="also print the reasons of the cells the policy does not require")
    run.add_argument("--repeat", type=options.positive, default=1, metavar="N",
                     help="run the matrix N times in this process; a cell whose verdict or observed version, or a "
                          "scenario whose outcome or first failure, varies is listed (terminal, verdict.json "
                          "'repeat') and makes the exit code at least 1; reports show the first run")


def cmd_run(args: argparse.Namespace) -> int:
    options.check(args, reference="--gateway" if args.gateway else None)
    output.check_dir(args.out)  # before the run: an unusable --out must not cost the run's results
    sel = select(args.gateway, args.fasttrack, args.scenario, args.scenarios_dir)
    policy = support_policy.load_policy(args.policy)
    real = options.real_gateway(args)
    contract = real.manager if real else contract_for_profiles(args.manager_contract, sel.gateways)
    opts = Options(concurrency=args.concurrency, seed=args.seed, timeout=args.timeout, jwt_secret=args.jwt_secret,
                   manager_listen=args.manager_listen, manager_contract=contract)
    columns = options.fasttrack_columns(args, sel.fasttracks)
    gateways: list[Any] = list(sel.gateways)
    if real is not None:
        gateways = [identify.judge(real, sel.scenarios, policy, opts, args.fasttrack_listen)]
    if args.fasttrack_url:
        # A real FastTrack verifies keypair signatures and JWT access keys against the manager's accounts: they
        # are known before anything runs (seeded), so it can read them from this file.
        path = accounts.write_for_run(args.out, accounts.planned(gateways, columns, sel.scenarios, opts, args.shard),
                                      args.manager_listen)
        print(accounts.notice(path), file=sys.stderr)
    return execute(args, sel, gateways, columns, opts)


def execute(args: argparse.Namespace, sel: Selection, gateways: list[Any], columns: list[FastTrackTarget],
            opts: Options, annotate: Callable[[RunDoc], None] | None = None) -> int:
    policy = faults.require_like_wrapped(support_policy.load_policy(args.policy),
                                         [(c.id, c.model.id) for c in columns if c.fault and c.model])
    # From here a signal stops the run instead of unwinding it: what finished is written as a partial document,
    # and a signal while the reports are written lets them be written whole.
    with supervisor.on_stop(lambda: None):
        runs: list[RunResult] = []
        for k in range(max(1, getattr(args, "repeat", 1))):
            runs.append(workers.run(gateways, columns, sel.scenarios, policy, opts,
                                    terminal.Progress(quiet=args.quiet or k > 0), jobs=args.jobs, shard=args.shard,
                                    keep_empty=args.scenario == "*"))
            if supervisor.stopping():
                break
        result = runs[0] if len(runs) == 1 or not runs[-1].interrupted else runs[-1]
        doc = result.to_json()
        if len(runs) > 1 and not result.interrupted:
            doc["repeat"] = repeat.summary([doc, *(r.to_json() for r in runs[1:])])
        if annotate is not None and not result.interrupted:
            annotate(doc)
        doc = Redactor(result.secrets(), enabled=not args.show_secrets).document(doc)
        paths = output.write_reports(doc, args.out)
    stopped = supervisor.requested()
    if stopped is not None:
        print(f"harness: interrupted by {supervisor.signal_name(stopped)}; the finished cells are in "
              f"{', '.join(str(p) for p in paths)} (partial: true)", file=sys.stderr)
        return 128 + stopped
    cols = terminal.width()
    print(terminal.render(doc, cols, verbose=getattr(args, "verbose", False), report=f"{args.out}/matrix.md"))
    summary = (f"{len(result.cells)} cells, {sum(len(c.scenarios) for c in result.cells)} scenario runs in "
               f"{result.duration_s:.2f} s; reports in {args.out}/: {', '.join(p.name for p in paths)}")
    print("\n" + "\n".join(terminal.wrap(summary, cols)))
    if "repeat" in doc:
        print(repeat.render(doc["repeat"]))
        if doc["repeat"]["flaky"]:
            return max(exit_code(doc), errors.EXIT_INCOMPATIBLE)
    return exit_code(doc)


