"""Writing reports so that nothing is half-written or lost: the destination is checked before anything runs,
every report is written to a temporary file beside its final name, and the finished files are renamed into
place together (with SIGINT and SIGTERM held back for those few renames). A run interrupted while writing
leaves the previous reports, never a 0-byte ``matrix.json`` beside them."""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from harness.errors import UsageError
from harness.report import html, json_report, junit, markdown
from harness.results.document import RunDoc

DEFAULT_OUT = "harness-reports"  # in the working directory, ignored by git: a run never rewrites committed files
Writer = Callable[[RunDoc, Path], Path]
WRITERS: dict[str, tuple[str, Writer]] = {
    "json": ("matrix.json", json_report.write), "md": ("matrix.md", markdown.write),
    "junit": ("junit.xml", junit.write), "html": ("index.html", html.write)}


def check_dir(out: str | Path, what: str = "--out") -> Path:
    """``out`` is, or can be made, a directory the harness can write in; a usage error otherwise (before the run,
    creating nothing)."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{what} {out}: is a file, not a directory")
    existing = path
    while not existing.exists() and existing != existing.parent:  # what is missing is created when writing
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError(f"{existing} is a file")
        _probe(existing)
    except OSError as exc:
        raise UsageError(f"{what} {out}: cannot write reports there ({_why(exc)})") from None
    return path


def _probe(directory: Path) -> None:
    """Create and remove a file: the only test of writability that also holds for root and for /proc."""
    fd, probe = tempfile.mkstemp(prefix=".harness-probe-", dir=directory)
    os.close(fd)
    os.unlink(probe)


def check_file(target: str | Path, what: str) -> Path:
    """``target`` can be written (its directory exists and is writable, and it is not a directory)."""
    path = Path(target)
    if path.is_dir():
        raise UsageError(f"{what} {target}: is a directory")
    parent = path.absolute().parent
    while not parent.exists():  # directories still to be made must be creatable
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"{what} {target}: {parent} is not a directory")
    try:
        _probe(parent)
        if path.exists():
            with open(path, "a", encoding="utf-8"):
                pass
    except OSError as exc:
        raise UsageError(f"{what} {target}: not writable ({_why(exc)})") from None
    return path


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM wait until the block is done (only the main thread can hold them for the process)."""
    held = {signal.SIGINT, signal.SIGTERM}
    try:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    except (OSError, ValueError, AttributeError):  # not POSIX
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def replace_together(files: dict[Path, Callable[[Path], object]]) -> list[Path]:
    """Write each file through its function into a temporary file next to it, then rename them all into place.
    A failure (or an interrupt) before the renames leaves every previous file as it was."""
    temps: dict[Path, Path] = {}
    try:
        for final, produce in files.items():
            fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
            os.close(fd)
            temps[final] = Path(name)
            produce(temps[final])
            os.chmod(name, 0o644)  # mkstemp makes 0600; reports are read by CI artefact uploads
        with _signals_held():
            for final, temp in temps.items():
                os.replace(temp, final)
        temps.clear()
    except OSError as exc:
        raise UsageError(f"cannot write {next(iter(files), '')}: {_why(exc)}") from None
    finally:
        for temp in temps.values():
            with contextlib.suppress(OSError):
                temp.unlink()
    return list(files)


def write_reports(doc: RunDoc, out: str | Path, formats: list[str] | None = None) -> list[Path]:
    """Every report (or those of ``formats``) of one document into ``out``, replaced together."""
    directory = check_dir(out)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot create it ({_why(exc)})") from None
    def produce(writer: Writer) -> Callable[[Path], object]:
        return lambda path: writer(doc, path)

    return replace_together({directory / name: produce(writer) for key, (name, writer) in WRITERS.items()
                             if formats is None or key in formats})


def write_text(path: str | Path, text: str, what: str) -> Path:
    """One text file replaced atomically (a baseline, a summary)."""
    target = check_file(path, what)
    replace_together({target: lambda tmp: tmp.write_text(text, encoding="utf-8")})
    return target


def append_text(path: str | Path, text: str, what: str) -> None:
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise UsageError(f"{what} {path}: cannot append ({_why(exc)})") from None
