"""``harness diff A.json B.json``: the command around :mod:`harness.compare.diff`."""

from __future__ import annotations

import argparse
import json
from typing import Any

from harness import errors
from harness.compare import diff
from harness.results import document


def parse_row(text: str) -> tuple[str, str]:
    side, sep, label = text.partition("=")
    if not sep or side not in ("A", "B") or not label.strip():
        raise argparse.ArgumentTypeError("expected A=LABEL or B=LABEL")
    return side, label


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "diff", help="list the cells, scenarios and hops that changed between two runs (or two builds' rows)",
        description="List the cells, scenarios and first failing hops that changed between two runs. When each "
                    "has exactly one real gateway row (or --row chooses them), those two rows are compared with "
                    "each other, column by column.",
        epilog="exit codes:\n  0  no change (after --allow)\n  1  the runs differ\n  2  usage error "
               "(unreadable file, not a harness/matrix@2 document)\n\npatterns: 'as-is×25.1.0' (a cell), "
               "'pr3353-as-is' (a scenario in every cell), 'G6*×*/pr3353-*' (globs on gateway×fasttrack/scenario)",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a", metavar="A.json")
    p.add_argument("b", metavar="B.json")
    p.add_argument("--allow", action="append", default=[], metavar="PATTERN",
                   help="ignore changes of cells/scenarios matching this glob (repeatable)")
    p.add_argument("--row", action="append", type=parse_row, default=[], metavar="A=LABEL|B=LABEL",
                   help="compare this row of A (or B) with the other side's row (default: each document's only "
                        "real gateway row, when both have one)")
    p.add_argument("--json", action="store_true", help="print the changes as JSON")
    p.set_defaults(handler=cmd_diff)
    return p


def cmd_diff(args: argparse.Namespace) -> int:
    a, b = document.read(args.a), document.read(args.b)
    chosen = dict(args.row)
    if len(chosen) != len(args.row):
        raise errors.UsageError("--row names each side (A, B) once")
    rows = diff.pick_rows(a, b, chosen)
    changes = diff.diff_rows(a, b, *rows) if rows else diff.diff(a, b)
    remaining, allowed = diff.split_allowed(changes, args.allow)
    if rows and not args.json:
        print(f"comparing row {rows[0]} of {args.a} (A) with row {rows[1]} of {args.b} (B)")
    if args.json:
        print(json.dumps({"a": args.a, "b": args.b, "rows": list(rows) if rows else None, "equal": not remaining,
                          "changes": [c.to_json() for c in remaining],
                          "allowed": [c.to_json() for c in allowed]}, indent=2, ensure_ascii=False))
    else:
        print(diff.render_text(remaining, allowed, args.a, args.b))
    return errors.EXIT_INCOMPATIBLE if remaining else errors.EXIT_OK
