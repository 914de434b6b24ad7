"""Command line: ``python -m harness run|report``.

Exit codes:
  0  every required cell is compatible
  1  a required cell is incompatible or unknown
  2  usage error: bad option, scenario file, profile or policy (file:line:column in the message)
  3  runtime error: a server could not start or a target was unreachable (a required cell is 'error')
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from harness import errors, matrix
from harness.catalog import DEFAULT_SCENARIOS, select
from harness.engine.matrix_run import Options, run_matrix
from harness.report import json_report, junit, markdown, terminal
from harness.report.redact import Redactor

EPILOG = """exit codes:
  0  every required cell is compatible
  1  a required cell is incompatible or unknown
  2  usage error (bad option, scenario file, profile, policy)
  3  runtime error (a server could not start, a target unreachable)
"""
WRITERS = {"json": ("matrix.json", json_report.write), "md": ("matrix.md", markdown.write),
           "junit": ("junit.xml", junit.write)}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="harness", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the matrix and write reports", epilog=EPILOG,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("--gateway", action="append", metavar="ID", help="gateway profile (repeatable; default all)")
    run.add_argument("--fasttrack", action="append", metavar="ID", help="FastTrack profile (repeatable; default all)")
    run.add_argument("--scenario", default="*", metavar="GLOB", help="scenario id/file glob (default '*')")
    run.add_argument("--scenarios-dir", default=str(DEFAULT_SCENARIOS), metavar="DIR")
    run.add_argument("--policy", default=str(matrix.DEFAULT_POLICY), metavar="FILE", help="support policy YAML")
    run.add_argument("--out", default="reports", metavar="DIR", help="report directory (default reports/)")
    run.add_argument("--concurrency", type=int, default=32, help="scenario runs in flight at once")
    run.add_argument("--timeout", type=float, default=30.0, help="seconds per HTTP exchange before 'error'")
    run.add_argument("--seed", default="harness", help="seed for keys, session ids and tokens")
    run.add_argument("--shard", type=_shard, metavar="I/N", help="run shard I of N (cells split deterministically)")
    run.add_argument("--show-secrets", action="store_true", help="do not redact tokens, keys and signatures")
    run.add_argument("--quiet", action="store_true", help="no progress output")
    rep = sub.add_parser("report", help="re-render reports from a matrix.json without re-running")
    rep.add_argument("source", metavar="FROM.json")
    rep.add_argument("--out", default="reports", metavar="DIR")
    rep.add_argument("--format", action="append", choices=sorted(WRITERS), help="formats (default all)")
    return p


def _shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError("expected I/N, e.g. 1/2") from None
    if not 1 <= i <= n:
        raise argparse.ArgumentTypeError("I must be between 1 and N")
    return i, n


def write_reports(doc: dict[str, Any], out: Path, formats: list[str] | None = None) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    return [writer(doc, out / name) for key, (name, writer) in WRITERS.items() if formats is None or key in formats]


def exit_code(doc: dict[str, Any]) -> int:
    required = [c for c in doc["cells"] if c["required"]]
    if any(c["verdict"] == "error" for c in required):
        return errors.EXIT_RUNTIME
    if any(c["verdict"] != "compatible" for c in required):
        return errors.EXIT_INCOMPATIBLE
    return errors.EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    sel = select(args.gateway, args.fasttrack, args.scenario, args.scenarios_dir)
    policy = matrix.load_policy(args.policy)
    opts = Options(concurrency=args.concurrency, seed=args.seed, timeout=args.timeout)
    result = asyncio.run(run_matrix(sel.gateways, sel.fasttracks, sel.scenarios, policy, opts,
                                    terminal.Progress(quiet=args.quiet), shard=args.shard))
    doc = Redactor(result.secrets(), enabled=not args.show_secrets).document(result.to_json())
    paths = write_reports(doc, Path(args.out))
    print(terminal.render(doc))
    print(f"\n{len(result.cells)} cells, {sum(len(c.scenarios) for c in result.cells)} scenario runs in "
          f"{result.duration_s:.2f} s; reports: {', '.join(str(p) for p in paths)}")
    return exit_code(doc)


def cmd_report(args: argparse.Namespace) -> int:
    try:
        doc = json_report.read(args.source)
    except (OSError, ValueError) as exc:
        raise errors.UsageError(f"cannot read {args.source}: {exc}") from None
    for p in write_reports(doc, Path(args.out), args.format):
        print(p)
    return exit_code(doc)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    try:
        return cmd_run(args) if args.command == "run" else cmd_report(args)
    except errors.HarnessError as exc:
        print(f"harness: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
