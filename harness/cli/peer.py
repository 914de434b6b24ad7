"""``harness peer install|run|census``: a real backend.ai-webserver build, in a cached venv outside the
repository."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from harness import errors
from harness.cli import options
from harness.cli.run import EPILOG, add_run_options, execute
from harness.engine import supervisor
from harness.engine.matrix_run import Options, mock_columns, run_matrix
from harness.engine.selection import select
from harness.engine.targets import contract_for_profiles
from harness.judge import findings, support_policy
from harness.peers import builds, census, identify
from harness.report import output
from harness.results import document
from harness.results.document import RunDoc

HELP = ("install a real backend.ai-webserver build (any PyPI version, a wheel, an sdist, a source tree), run the "
        "matrix against it, or take a census of every release line")


def add_parser(sub: Any) -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    peer: argparse.ArgumentParser = sub.add_parser("peer", help=HELP,
                          description="A real backend.ai-webserver build, in a cached venv outside the repository.",
                          formatter_class=raw, epilog="commands: peer install TARGET, peer run TARGET, peer census "
                          "(each --help gives its exit codes)")
    peer_sub = peer.add_subparsers(dest="action", required=True)
    install = peer_sub.add_parser(
        "install", help="install the release into its cached venv", formatter_class=raw,
        description="Install a backend.ai-webserver release and its locked dependencies into a cached venv.",
        epilog="exit codes:\n  0  installed (or already cached)\n  2  unknown release or bad option\n"
               "  3  the installation failed\n")
    run_peer = peer_sub.add_parser(
        "run", help="run the matrix against the release and compare it with its reference profile",
        formatter_class=raw, description="Run the matrix against the real release and compare it, scenario by "
        "scenario, with the reference profile of its generation.",
        epilog=EPILOG.rstrip("\n") + "\n  (1 also when the release differs from its reference profile in a way no "
                                     "documented finding explains)\n")
    for sp in (install, run_peer):
        sp.add_argument("version", type=options.nonempty, metavar="TARGET",
                        help="a backend.ai-webserver version on PyPI (any), a wheel, an sdist or a source directory")
    census_p = peer_sub.add_parser(
        "census", help="install, run and identify the latest release of every line on PyPI", formatter_class=raw,
        description="The latest release of every minor line from --since on: installed (--installs at a time), "
                    "run as itself and identified; writes census.md and census.json.",
        epilog="exit codes:\n  0  every release identified as its generation, every difference explained\n"
               "  1  one misidentified or differing without a documented finding\n  2  bad option\n"
               "  3  one could not be installed, started or logged in (the others are still reported)\n")
    census_p.add_argument("--since", default=census.FIRST_LINE, metavar="X.Y",
                          help=f"the first release line (default {census.FIRST_LINE})")
    census_p.add_argument("--line", action="append", metavar="X.Y", help="only these release lines (repeatable)")
    census_p.add_argument("--installs", type=options.positive, default=2, metavar="N",
                          help="installs in parallel (default 2; runs are one at a time)")
    census_p.add_argument("--resume", action="store_true",
                          help="keep the releases OUT/census.json already judged, run the others and the failed "
                               "ones again; with --line, judge the named lines again and keep the others")
    add_run_options(census_p)
    census_p.set_defaults(handler=cmd_census)
    for sp in (install, run_peer, census_p):
        sp.add_argument("--fresh", action="store_true", help="reinstall the cached venv(s)")
    for sp in (install, run_peer):
        sp.set_defaults(handler=cmd_peer)
    add_run_options(run_peer)
    options.add_target_options(run_peer, gateway=False, fasttrack=False)
    return peer


def cmd_census(args: argparse.Namespace) -> int:
    """``peer census``: exit codes in its --help."""
    return census.run_census(census.CensusOptions(
        since=args.since, lines=args.line, installs=args.installs, out=Path(args.out),
        scenarios_dir=args.scenarios_dir, scenario=args.scenario, policy=args.policy, seed=args.seed,
        timeout=args.timeout, concurrency=args.concurrency, fresh=args.fresh, show_secrets=args.show_secrets,
        resume=args.resume))


def cmd_peer(args: argparse.Namespace) -> int:
    """Exit codes as ``run``; also 1 when the release differs from the reference profile it is judged as in a
    way that no documented finding (harness/data/peer-findings.yaml) explains."""
    if args.action == "install":
        options.check(args, builds=True)
        rel = builds.release(args.version)
        python, seconds = builds.install(rel, fresh=args.fresh)
        print(f"backend.ai-webserver {rel.version}: {python} " + (f"(installed in {seconds:.0f} s)" if seconds
                                                                else "(cached)"), file=sys.stderr)
        return errors.EXIT_OK
    output.check_dir(args.out)
    real = options.real_gateway(args, build=args.version, fresh=args.fresh)
    assert real is not None and isinstance(real.launcher, builds.PeerLauncher)
    rel = real.launcher.rel
    sel = select(None, args.fasttrack, args.scenario, args.scenarios_dir)
    policy = support_policy.load_policy(args.policy)
    opts = Options(concurrency=args.concurrency, seed=args.seed, timeout=args.timeout, jwt_secret=args.jwt_secret,
                   manager_contract=real.manager)
    info = builds.installed_info(rel).get("constraints", {})
    print(f"{rel.describe()}: Python {rel.python}, manager contract {real.manager.id}, config "
          f"{rel.config_template.name}, constraints: {info.get('describe', 'not recorded')}", file=sys.stderr)
    launcher = identify.judge(real, sel.scenarios, policy, opts)
    columns = mock_columns(sel.fasttracks)
    undocumented = 0

    def compare_with_reference(doc: RunDoc) -> None:
        nonlocal undocumented
        ref_opts = Options(seed=args.seed, jwt_secret=args.jwt_secret,
                           manager_contract=contract_for_profiles("auto", [launcher.profile]))
        reference = supervisor.run(run_matrix([launcher.profile], columns, sel.scenarios, policy, ref_opts))
        diffs = findings.annotate(doc, version=rel.version, profile=launcher.profile.id, peer_row=launcher.label,
                                  reference_doc=reference.to_json(), findings=findings.load_findings())
        doc["peer"]["build"] = {**rel.to_json(), **builds.installed_info(rel), "manager_contract": real.manager.id,
                                "workers": builds.WORKERS}
        undocumented = sum(1 for d in diffs if d.finding is None)
        for d in diffs:
            where = d.peer_failure or d.reference_failure
            print(f"difference {d.fasttrack}/{d.scenario}: release {d.peer_outcome}, reference {d.reference_outcome}"
                  f" at {where['hop'] if where else None} {document.subject(where) if where else ''} -> "
                  f"{d.finding or 'UNDOCUMENTED'}", file=sys.stderr)

    code = execute(args, sel, [launcher], columns, opts, compare_with_reference)
    return code if code or not undocumented else errors.EXIT_INCOMPATIBLE


