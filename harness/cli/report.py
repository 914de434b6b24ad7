"""``harness report``: re-render the reports from a matrix.json; ``report merge`` joins shard results."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness import errors
from harness.judge.cell_verdict import exit_code
from harness.report import json_report, markdown, output

DEFAULT_OUT = output.DEFAULT_OUT
COMMITTED_REPORTS = Path(__file__).resolve().parent.parent.parent / "reports"  # the checkout's committed matrix.md
HELP = "re-render reports from a matrix.json without re-running"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    rep: argparse.ArgumentParser = sub.add_parser("report", help=HELP, formatter_class=raw,
                         description="Re-render the reports from a matrix.json without re-running. Also: harness "
                                     "report merge A.json B.json ... --out DIR (join shard results).",
                         epilog="exit codes (as 'run', for the document read):\n  0  every required cell is "
                                "compatible\n  1  a required cell is incompatible or unknown\n"
                                "  2  unreadable document or bad option\n  3  a required cell is 'error'\n")
    rep.add_argument("source", metavar="FROM.json", nargs="?",
                     help=f"the document (default {DEFAULT_OUT}/matrix.json with --committed)")
    rep.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help=f"report directory (default {DEFAULT_OUT}/)")
    rep.add_argument("--format", action="append", choices=sorted(output.WRITERS), help="formats (default all)")
    rep.add_argument("--committed", action="store_true",
                     help="regenerate the checkout's committed reports/matrix.md (only it) from the document")
    rep.set_defaults(handler=cmd_report)
    return rep


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


