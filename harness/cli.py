"""Backend.AI gateway x FastTrack compatibility harness: run the matrix, judge real builds, gate releases.

Exit codes of run (the other commands document theirs in their --help):
  0  every required cell is compatible
  1  a required cell is incompatible or unknown
  2  usage error: bad option, scenario file, profile or policy (file:line:column in the message)
  3  runtime error: a server could not start or a target was unreachable (a required cell is 'error')
  130, 143  interrupted by SIGINT or SIGTERM: everything started is stopped, the finished cells are written as a
            partial document ("partial": true)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import harness
from harness import (
    census,
    diffing,
    errors,
    findings,
    gate,
    identify,
    matrix,
    mutate,
    peers,
    repeat,
    serve,
    target_options,
)
from harness.actors import faults
from harness.catalog import DEFAULT_SCENARIOS, Selection, select
from harness.engine import accounts, supervisor, workers
from harness.engine.matrix_run import DEFAULT_JWT_SECRET, MAX_CONCURRENCY, Options, mock_columns, run_matrix
from harness.engine.targets import FastTrackTarget, contract_for_profiles
from harness.matrix import exit_code
from harness.report import json_report, markdown, output, terminal
from harness.report import merge as report_merge
from harness.report.redact import Redactor
from harness.results import RunResult

EPILOG = """exit codes:
  0  every required cell is compatible
  1  a required cell is incompatible or unknown
  2  usage error (bad option, scenario file, profile, policy)
  3  runtime error (a server could not start, a target unreachable)
  130, 143  interrupted by SIGINT or SIGTERM (the finished cells are written, marked partial)
"""
TOP_EPILOG = """commands: run (the matrix), peer install|run (a real webserver release), report (re-render; report merge
joins shards), gate (CI verdict against the baseline), diff (two runs), identify (which profile a build is),
mutate (mutation testing), serve (one actor as a process). Each command's --help gives its exit codes.
"""
DEFAULT_OUT = output.DEFAULT_OUT
COMMITTED_REPORTS = Path(__file__).resolve().parent.parent / "reports"  # the checkout's committed matrix.md
WRITERS = output.WRITERS


def build_parser() -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    p = errors.ArgumentParser(prog="harness", description=__doc__.splitlines()[0], formatter_class=raw,
                              epilog=TOP_EPILOG)
    p.add_argument("--version", action="version", version=harness.describe())
    sub: Any = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the matrix and write reports", formatter_class=raw, epilog=EPILOG,
                         description="Run every applicable scenario in every (gateway profile x FastTrack) cell, "
                                     f"print the matrix and write the reports (default {DEFAULT_OUT}/).")
    add_run_options(run)
    target_options.add_target_options(run, fault=True)
    peer = sub.add_parser("peer", help="install a real backend.ai-webserver build (any PyPI version, a wheel, an "
                          "sdist, a source tree), run the matrix against it, or take a census of every release line",
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
        sp.add_argument("version", type=target_options.nonempty, metavar="TARGET",
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
    census_p.add_argument("--installs", type=_positive, default=2, metavar="N",
                          help="installs in parallel (default 2; runs are one at a time)")
    census_p.add_argument("--resume", action="store_true",
                          help="keep the releases OUT/census.json already judged, run the others and the failed "
                               "ones again")
    add_run_options(census_p)
    census_p.set_defaults(handler=cmd_census)
    for sp in (install, run_peer, census_p):
        sp.add_argument("--fresh", action="store_true", help="reinstall the cached venv(s)")
    for sp in (install, run_peer):
        sp.set_defaults(handler=cmd_peer)
    add_run_options(run_peer)
    target_options.add_target_options(run_peer, gateway=False, fasttrack=False)
    serve.add_parser(sub)
    rep = sub.add_parser("report", help="re-render reports from a matrix.json without re-running", formatter_class=raw,
                         description="Re-render the reports from a matrix.json without re-running. Also: harness "
                                     "report merge A.json B.json ... --out DIR (join shard results).",
                         epilog="exit codes (as 'run', for the document read):\n  0  every required cell is "
                                "compatible\n  1  a required cell is incompatible or unknown\n"
                                "  2  unreadable document or bad option\n  3  a required cell is 'error'\n")
    rep.add_argument("source", metavar="FROM.json", nargs="?",
                     help=f"the document (default {DEFAULT_OUT}/matrix.json with --committed)")
    rep.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help=f"report directory (default {DEFAULT_OUT}/)")
    rep.add_argument("--format", action="append", choices=sorted(WRITERS), help="formats (default all)")
    rep.add_argument("--committed", action="store_true",
                     help="regenerate the checkout's committed reports/matrix.md (only it) from the document")
    gate.add_parser(sub)
    diffing.add_parser(sub)
    identify.add_parser(sub)
    mutate.add_parser(sub)
    return p


def add_run_options(run: argparse.ArgumentParser) -> None:
    run.add_argument("--gateway", action="append", metavar="ID", help="gateway profile (repeatable; default all)")
    run.add_argument("--fasttrack", action="append", metavar="ID", help="FastTrack profile (repeatable; default all)")
    run.add_argument("--scenario", default="*", metavar="GLOB", help="scenario id/file glob (default '*')")
    run.add_argument("--scenarios-dir", default=str(DEFAULT_SCENARIOS), metavar="DIR")
    run.add_argument("--policy", default=str(matrix.DEFAULT_POLICY), metavar="FILE", help="support policy YAML")
    run.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help=f"report directory (default {DEFAULT_OUT}/)")
    run.add_argument("--concurrency", type=_concurrency, default=Options.concurrency,
                     help=f"scenario runs in flight at once (1-{MAX_CONCURRENCY})")
    run.add_argument("--timeout", type=target_options.seconds, default=30.0,
                     help="seconds per HTTP exchange before 'error' (every hop, the tap's included; > 0, finite)")
    run.add_argument("--seed", default="harness", help="seed for keys, session ids and tokens")
    run.add_argument("--jwt-secret", default=DEFAULT_JWT_SECRET, metavar="SECRET",
                     help="the pipeline JWT secret the reference gateways mint X-BackendAI-SSO with and the "
                          "scenarios verify it with (give a real SSO-era FastTrack's own secret)")
    run.add_argument("--jobs", "-j", type=_jobs, default="auto", metavar="N|auto",
                     help="worker processes, each running a share of the cells (default auto: one per core; "
                          "at most one per core; always 1 with a real gateway or FastTrack or a fixed listening "
                          "address)")
    run.add_argument("--shard", type=_shard, metavar="I/N", help="run shard I of N (cells split deterministically)")
    run.add_argument("--show-secrets", action="store_true", help="do not redact tokens, keys and signatures")
    run.add_argument("--quiet", action="store_true", help="no progress output (there is none off a terminal)")
    run.add_argument("--verbose", "-v", action="store_true",
                     help="also print the reasons of the cells the policy does not require")
    run.add_argument("--repeat", type=_positive, default=1, metavar="N",
                     help="run the matrix N times in this process; a cell whose verdict or observed version, or a "
                          "scenario whose outcome or first failure, varies is listed (terminal, matrix.json "
                          "'repeat') and makes the exit code at least 1; reports show the first run")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError("expected a whole number >= 1")
    return value


def _jobs(text: str) -> int:
    # More workers than cores only adds start-up and memory (one worker per cell for --jobs 100000).
    if text == "auto":
        return workers.available_cores()
    return min(_positive(text), workers.available_cores())


def _concurrency(text: str) -> int:
    value = _positive(text)
    if value > MAX_CONCURRENCY:
        raise argparse.ArgumentTypeError(f"at most {MAX_CONCURRENCY}")
    return value


def _shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError("expected I/N, e.g. 1/2") from None
    if not 1 <= i <= n:
        raise argparse.ArgumentTypeError("I must be between 1 and N")
    return i, n


def cmd_run(args: argparse.Namespace) -> int:
    target_options.check(args, reference="--gateway" if args.gateway else None)
    output.check_dir(args.out)  # before the run: an unusable --out must not cost the run's results
    sel = select(args.gateway, args.fasttrack, args.scenario, args.scenarios_dir)
    policy = matrix.load_policy(args.policy)
    real = target_options.real_gateway(args)
    contract = real.manager if real else contract_for_profiles(args.manager_contract, sel.gateways)
    opts = Options(concurrency=args.concurrency, seed=args.seed, timeout=args.timeout, jwt_secret=args.jwt_secret,
                   manager_listen=args.manager_listen, manager_contract=contract)
    columns = target_options.fasttrack_columns(args, sel.fasttracks)
    gateways: list[Any] = list(sel.gateways)
    if real is not None:
        gateways = [identify.judge(real, sel.scenarios, policy, opts, args.fasttrack_listen)]
    if args.fasttrack_url:
        # A real FastTrack verifies keypair signatures and JWT access keys against the manager's accounts: they
        # are known before anything runs (seeded), so it can read them from this file.
        manager = f"http://{args.manager_listen[0]}:{args.manager_listen[1]}" if args.manager_listen else None
        path = accounts.write(Path(args.out) / accounts.FILE,
                              accounts.planned(gateways, columns, sel.scenarios, opts, args.shard), manager)
        print(f"harness: the accounts of this run are in {path} (for the real FastTrack)", file=sys.stderr)
    return execute(args, sel, gateways, columns, opts)


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
        target_options.check(args, builds=True)
        rel = peers.release(args.version)
        python, seconds = peers.install(rel, fresh=args.fresh)
        print(f"backend.ai-webserver {rel.version}: {python} " + (f"(installed in {seconds:.0f} s)" if seconds
                                                                else "(cached)"), file=sys.stderr)
        return errors.EXIT_OK
    output.check_dir(args.out)
    real = target_options.real_gateway(args, build=args.version, fresh=args.fresh)
    assert real is not None and isinstance(real.launcher, peers.PeerLauncher)
    rel = real.launcher.rel
    sel = select(None, args.fasttrack, args.scenario, args.scenarios_dir)
    policy = matrix.load_policy(args.policy)
    opts = Options(concurrency=args.concurrency, seed=args.seed, timeout=args.timeout, jwt_secret=args.jwt_secret,
                   manager_contract=real.manager)
    info = peers.installed_info(rel).get("constraints", {})
    print(f"{rel.describe()}: Python {rel.python}, manager contract {real.manager.id}, config "
          f"{rel.config_template.name}, constraints: {info.get('describe', 'not recorded')}", file=sys.stderr)
    launcher = identify.judge(real, sel.scenarios, policy, opts)
    columns = mock_columns(sel.fasttracks)
    undocumented = 0

    def compare_with_reference(doc: dict[str, Any]) -> None:
        nonlocal undocumented
        ref_opts = Options(seed=args.seed, jwt_secret=args.jwt_secret,
                           manager_contract=contract_for_profiles("auto", [launcher.profile]))
        reference = supervisor.run(run_matrix([launcher.profile], columns, sel.scenarios, policy, ref_opts))
        diffs = findings.annotate(doc, version=rel.version, profile=launcher.profile.id, peer_row=launcher.label,
                                  reference_doc=reference.to_json(), findings=findings.load_findings())
        doc["peer"]["build"] = {**rel.to_json(), **peers.installed_info(rel), "manager_contract": real.manager.id,
                                "workers": peers.WORKERS}
        undocumented = sum(1 for d in diffs if d.finding is None)
        for d in diffs:
            where = d.peer_failure or d.reference_failure or {}
            print(f"difference {d.fasttrack}/{d.scenario}: release {d.peer_outcome}, reference {d.reference_outcome}"
                  f" at {where.get('hop')} {findings.subject(where) if where else ''} -> {d.finding or 'UNDOCUMENTED'}",
                  file=sys.stderr)

    code = execute(args, sel, [launcher], columns, opts, compare_with_reference)
    return code if code or not undocumented else errors.EXIT_INCOMPATIBLE


def execute(args: argparse.Namespace, sel: Selection, gateways: list[Any], columns: list[FastTrackTarget],
            opts: Options, annotate: Callable[[dict[str, Any]], None] | None = None) -> int:
    policy = faults.require_like_wrapped(matrix.load_policy(args.policy),
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


def cmd_report(args: argparse.Namespace) -> int:
    source = args.source or (str(Path(DEFAULT_OUT) / "matrix.json") if args.committed else None)
    if source is None:
        raise errors.UsageError("report needs FROM.json (or --committed)")
    try:
        doc = json_report.read(source)
    except (OSError, ValueError) as exc:
        raise errors.UsageError(f"cannot read {source}: {exc}") from None
    if args.committed:
        if not COMMITTED_REPORTS.is_dir():
            raise errors.UsageError(f"--committed needs a checkout of the harness ({COMMITTED_REPORTS} not found)")
        print(markdown.write(doc, COMMITTED_REPORTS / "matrix.md"))
        return exit_code(doc)
    for p in output.write_reports(doc, args.out, args.format):
        print(p)
    return exit_code(doc)


def main(argv: list[str] | None = None) -> int:
    """Every outcome is an exit code and at most one line on stderr: never a traceback (HARNESS_TRACEBACK=1 shows
    the traceback of an internal error)."""
    argv = sys.argv[1:] if argv is None else argv
    stdout = sys.stdout
    sys.stdout = _PipeSafe(stdout)
    try:
        with supervisor.handling_signals():
            return _dispatch(argv)
    except errors.HarnessError as exc:
        print(f"harness: {exc}", file=sys.stderr)
        return exc.exit_code
    except supervisor.Interrupted as exc:
        print(f"harness: interrupted by {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return errors.EXIT_INTERRUPTED
    except Exception as exc:  # a bug of the harness: one line and the code of a runtime error
        if os.environ.get("HARNESS_TRACEBACK"):
            raise
        print(f"harness: internal error: {type(exc).__name__}: {exc} (a bug of the harness; HARNESS_TRACEBACK=1 "
              "shows where)", file=sys.stderr)
        return errors.EXIT_RUNTIME
    finally:
        sys.stdout.flush()
        sys.stdout = stdout


class _PipeSafe:
    """stdout that outlives its reader: ``harness gate | head`` keeps the gate's exit code instead of dying on
    BrokenPipeError; what is left to print goes to /dev/null."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return int(self._stream.write(text))
        except BrokenPipeError:
            self._reader_gone()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._reader_gone()
            with contextlib.suppress(OSError):
                self._stream.flush()

    def _reader_gone(self) -> None:
        with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
            os.dup2(os.open(os.devnull, os.O_WRONLY), self._stream.fileno())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _documents(args: argparse.Namespace) -> str:
    """The documents a command reads, for the message when one of them is malformed."""
    names = [getattr(args, k, None) for k in ("source", "a", "b", "run", "baseline")]
    return ", ".join(str(n) for n in names if n) or "the input document"


def _dispatch(argv: list[str]) -> int:
    if argv[:2] == ["report", "merge"]:  # 'report FROM.json' keeps working; 'report merge A B ...' joins shards
        with errors.reading(", ".join(a for a in argv[2:] if not a.startswith("-"))):
            return report_merge.main(argv[2:])
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    if args.command == "serve":
        return serve.run(args)
    if args.command in ("report", "diff", "gate"):
        with errors.reading(_documents(args)):
            return int(args.handler(args)) if hasattr(args, "handler") else cmd_report(args)
    if hasattr(args, "handler"):  # subcommands that set a handler (peer, identify, mutate, ...)
        return int(args.handler(args))
    return cmd_run(args)


if __name__ == "__main__":
    raise SystemExit(main())
