"""Errors the user sees, and the documented exit codes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

EXIT_OK = 0  # every required cell is compatible
EXIT_INCOMPATIBLE = 1  # a required cell is incompatible or unknown
EXIT_USAGE = 2  # bad command line, scenario file or profile
EXIT_RUNTIME = 3  # a server could not start, a target was unreachable: a required cell is 'error'
EXIT_INTERRUPTED = 130  # SIGINT (Ctrl-C); SIGTERM gives 143: 128 + the signal, as a shell reports it


@dataclass(frozen=True, slots=True)
class SourceSpan:
    """A position in a scenario file: 1-based line and column, and the text of that line (for the caret)."""

    file: str
    line: int = 0
    col: int = 0
    text: str | None = None

    def __str__(self) -> str:
        if not self.line:
            return self.file
        return f"{self.file}:{self.line}:{self.col}" if self.col else f"{self.file}:{self.line}"

    def caret(self) -> list[str]:
        """The source line and a caret under the column (empty without the line's text)."""
        return caret(self.line, self.col, self.text)

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "col": self.col, "text": self.text}

    @classmethod
    def from_json(cls, d: Any) -> SourceSpan:
        if not isinstance(d, dict):
            return cls(str(d or ""))
        return cls(str(d.get("file") or ""), int(d.get("line") or 0), int(d.get("col") or 0), d.get("text"))


def caret(line: int, col: int, text: str | None) -> list[str]:
    """The one caret renderer: ``  14 | source line`` and a ``^`` under column ``col``."""
    if text is None or not line:
        return []
    gutter = f"{line:>4} | "
    return [f"{gutter}{text.rstrip()}", " " * (len(gutter) + max(col - 1, 0)) + "^"]


class HarnessError(Exception):
    exit_code = EXIT_RUNTIME


class UsageError(HarnessError):
    exit_code = EXIT_USAGE


class ScenarioError(UsageError):
    """A scenario file problem, pointing at file:line:column and the key path, with a caret under it."""

    def __init__(self, message: str, file: str, line: int = 0, column: int = 0, key: str = "",
                 source_line: str | None = None) -> None:
        self.message, self.file, self.line, self.column, self.key = message, file, line, column, key
        self.source_line = source_line
        super().__init__(self.render())

    def render(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        head = f"{where}: error: {self.message}" + (f" (at key '{self.key}')" if self.key else "")
        return "\n".join([head, *caret(self.line, self.column, self.source_line)])


@contextlib.contextmanager
def reading(what: str) -> Iterator[None]:
    """Judging or rendering documents the user gave (``report``, ``merge``, ``diff``, ``gate``): a key missing or a
    value of the wrong type deep inside one is bad input (exit 2, one line), not a crash of the harness."""
    try:
        yield
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RecursionError) as exc:
        detail = f"missing key {exc.args[0]!r}" if isinstance(exc, KeyError) and exc.args else str(exc) or "bad value"
        raise UsageError(f"{what}: not a well-formed harness document ({detail})") from None


MAX_ERRORS = 20  # a file with more errors than this reports the first ones and how many more there are


class ScenarioErrors(ScenarioError):
    """Every error found in one load (up to :data:`MAX_ERRORS`), each with its position and caret; the first one's
    fields stand for the whole (``file``, ``line``, ``message``, ...)."""

    def __init__(self, errors: list[ScenarioError], more: int = 0) -> None:
        first = errors[0]
        self.errors, self.more = errors, more
        super().__init__(first.message, first.file, first.line, first.column, first.key, first.source_line)

    def render(self) -> str:
        if not getattr(self, "errors", None):
            return super().render()
        parts = [e.render() for e in self.errors]
        total = len(self.errors) + self.more
        if total > 1:
            parts.append(f"{total} errors" + (f" ({self.more} more not shown)" if self.more else ""))
        return "\n".join(parts)

    @classmethod
    def of(cls, errors: list[ScenarioError]) -> ScenarioError:
        flat = [x for e in errors for x in (e.errors if isinstance(e, ScenarioErrors) else [e])]
        more = sum(e.more for e in errors if isinstance(e, ScenarioErrors))
        if len(flat) == 1 and not more:
            return flat[0]
        return cls(flat[:MAX_ERRORS], more + max(0, len(flat) - MAX_ERRORS))
