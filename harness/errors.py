"""Errors the user sees, and the documented exit codes."""

from __future__ import annotations

EXIT_OK = 0  # every required cell is compatible
EXIT_INCOMPATIBLE = 1  # a required cell is incompatible or unknown
EXIT_USAGE = 2  # bad command line, scenario file or profile
EXIT_RUNTIME = 3  # a server could not start, a target was unreachable: a required cell is 'error'


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
        if self.source_line is None or not self.line:
            return head
        gutter = f"{self.line:>4} | "
        caret = " " * (len(gutter) + max(self.column - 1, 0)) + "^"
        return f"{head}\n{gutter}{self.source_line.rstrip()}\n{caret}"
