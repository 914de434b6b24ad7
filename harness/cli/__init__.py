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
import importlib
import io
import os
import signal
import sys
from typing import Any, NoReturn

import harness
from harness import errors
from harness.engine import supervisor

TOP_EPILOG = """commands: run (the matrix), peer install|run (a real webserver release), report (re-render; report merge
joins shards), gate (CI verdict against the baseline), diff (two runs), identify (which profile a build is),
mutate (mutation testing), serve (one actor as a process). Each command's --help gives its exit codes.
"""
# Each subcommand's module, imported only when that subcommand runs (start-up is paid for what is used), and
# the one-line help ``harness --help`` lists without importing it (tests/cli check the two agree).
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("harness.cli.run", "run the matrix and write reports"),
    "peer": ("harness.cli.peer", "install a real backend.ai-webserver build (any PyPI version, a wheel, an sdist, "
                                 "a source tree), run the matrix against it, or take a census of every release line"),
    "serve": ("harness.cli.serve", "run one actor (reference gateway or mock FastTrack) as a process"),
    "report": ("harness.cli.report", "re-render reports from a matrix.json without re-running, or join shard "
                                     "results (report merge)"),
    "gate": ("harness.cli.gate", "CI gate: compare a run with the support policy and the committed baseline"),
    "diff": ("harness.cli.diff", "list the cells, scenarios and hops that changed between two runs (or two "
                                "builds' rows)"),
    "identify": ("harness.cli.identify", "rank gateway profiles by how well a target gateway matches them"),
    "mutate": ("harness.cli.mutate", "mutation testing: run the suite against deviant gateways, report the "
                                      "kill rate"),
}


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose usage error is one line (the whole usage is in ``--help``); subcommands inherit it."""

    def error(self, message: str) -> NoReturn:
        self.exit(errors.EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser(command: str | None = None, *, all_commands: bool = True) -> argparse.ArgumentParser:
    """The parser with every subcommand in full, or (``all_commands=False``) only ``command`` in full and the
    others as their one-line help (what ``harness --help`` shows)."""
    raw = argparse.RawDescriptionHelpFormatter
    p = ArgumentParser(prog="harness", description=(__doc__ or "").splitlines()[0], formatter_class=raw,
                              epilog=TOP_EPILOG)
    p.add_argument("--version", action="version", version=harness.describe())
    sub: Any = p.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in COMMANDS.items():
        if all_commands or name == command:
            importlib.import_module(module).add_parser(sub)
        else:
            sub.add_parser(name, help=help_text)
    return p


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


def console() -> int:
    """The process entry point (``python -m harness``, the ``harness`` script): :func:`main`, then SIGINT and
    SIGTERM blocked until exit. Everything is written and said by then: a signal would only find the interpreter
    finalising with the default handlers back (exit -15 instead of the run's code)."""
    code = main()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    return code


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
    names = [getattr(args, k, None) for k in ("source", "a", "b", "run", "baseline")] + getattr(args, "sources", [])
    return ", ".join(str(n) for n in names if n) or "the input document"


def _dispatch(argv: list[str]) -> int:
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command, all_commands=False)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    if args.command in ("report", "diff", "gate"):
        with errors.reading(_documents(args)):
            return int(args.handler(args))
    return int(args.handler(args))


if __name__ == "__main__":
    raise SystemExit(main())
