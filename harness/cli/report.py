"""``harness report FROM.json``: re-render the reports from a matrix.json; ``harness report merge A.json B.json ...``
joins shard results (:mod:`harness.compare.merge`) and writes every report of the whole."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness import errors
from harness.cli import options
from harness.compare import merge
from harness.judge.cell_verdict import exit_code
from harness.report import markdown, output
from harness.results import document

DEFAULT_OUT = output.DEFAULT_OUT
COMMITTED_REPORTS = Path(__file__).resolve().parent.parent.parent / "reports"  # the checkout's committed matrix.md
HELP = "re-render reports from a matrix.json without re-running, or join shard results (report merge)"
DOCUMENT = "FROM.json"  # the name of the document form in the listing; any first word but 'merge' is a document
EPILOG = ("exit codes (as 'run', for the document read or merged):\n  0  every required cell is compatible\n"
          "  1  a required cell is incompatible or unknown\n"
          "  2  unreadable document, bad option, or (merge) documents that cannot be joined\n"
          "  3  a required cell is 'error'\n")


class _MergeOrDocument(argparse._SubParsersAction):  # type: ignore[type-arg]
    """The words after ``report``: ``merge`` is a subcommand; any other first word is the document of
    ``report FROM.json``, read by the document's parser."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Every first word is valid (a document's path is not a choice); the metavar names both forms.
        self.choices = None  # type: ignore[assignment]

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: str | Sequence[Any] | None, option_string: str | None = None) -> None:
        words = list(values or [])
        if words[:1] != ["merge"]:
            words.insert(0, DOCUMENT)
        # argparse copies the form's namespace over report's: a repeatable option given on both sides of the
        # document (``--format md FROM.json --format html``) would keep only the later values, silently.
        before = {k: v for k, v in vars(namespace).items() if isinstance(v, list)}
        super().__call__(parser, namespace, words, option_string)
        for key, earlier in before.items():
            later = getattr(namespace, key)
            if later is not earlier and isinstance(later, list):
                setattr(namespace, key, earlier + [v for v in later if v not in earlier])


def add_parser(sub: Any) -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    rep: argparse.ArgumentParser = sub.add_parser(
        "report", help=HELP, formatter_class=raw, epilog=EPILOG,
        description="Re-render the reports from a matrix.json without re-running (report FROM.json), or join shard "
                    "results into one document and write its reports (report merge A.json B.json ...).")
    _render_options(rep, given_only=False)
    forms = rep.add_subparsers(action=_MergeOrDocument, dest="form", metavar=f"{DOCUMENT} | merge", title="forms")
    document = forms.add_parser(DOCUMENT, prog="harness report", formatter_class=raw, epilog=EPILOG,
                                help="re-render the reports of this document",
                                description="Re-render the reports from a matrix.json without re-running.")
    document.add_argument("source", metavar=DOCUMENT, help="the document")
    _render_options(document, given_only=True)
    joined = forms.add_parser("merge", formatter_class=raw, epilog=EPILOG,
                              help="join shard results (run --shard I/N) into one document and write every report",
                              description="Join shard results (run --shard I/N) into one document (cells in the "
                                          "unsharded order) and write every report. Refused (exit 2): a document of "
                                          "another schema, profiles or scenarios with the same id but different "
                                          "definitions, a cell in two documents with different content.")
    joined.add_argument("sources", nargs="+", metavar=DOCUMENT, help="the shard documents")
    options.add(joined, "out", "format", given_only=True)
    joined.set_defaults(handler=cmd_merge)
    rep.set_defaults(handler=cmd_report, source=None)
    return rep


def _render_options(p: argparse.ArgumentParser, *, given_only: bool) -> None:
    """``report``'s options, also after FROM.json (``given_only`` there: a value given before it is kept)."""
    options.add(p, "out", "format", given_only=given_only)
    default: dict[str, Any] = {"default": argparse.SUPPRESS} if given_only else {}
    p.add_argument("--committed", action="store_true", **default,
                   help=f"regenerate the checkout's committed reports/matrix.md (only it) from the document (default "
                        f"{DEFAULT_OUT}/matrix.json)")


def cmd_report(args: argparse.Namespace) -> int:
    source = args.source or (str(Path(DEFAULT_OUT) / "matrix.json") if args.committed else None)
    if source is None:
        raise errors.UsageError("report needs FROM.json (or --committed)")
    doc = document.read(source, whole=True)
    if args.committed:
        if not COMMITTED_REPORTS.is_dir():
            raise errors.UsageError(f"--committed needs a checkout of the harness ({COMMITTED_REPORTS} not found)")
        print(markdown.write(doc, COMMITTED_REPORTS / "matrix.md"))
        return exit_code(doc)
    for p in output.write_reports(doc, args.out, args.format):
        print(p)
    return exit_code(doc)


def cmd_merge(args: argparse.Namespace) -> int:
    if args.committed:
        raise errors.UsageError("--committed re-renders one document; report merge writes the whole to --out")
    output.check_dir(args.out)
    doc = merge.merge([(src, document.read_json(src)) for src in args.sources])
    for path in output.write_reports(doc, args.out, args.format):
        print(path)
    return exit_code(doc)
