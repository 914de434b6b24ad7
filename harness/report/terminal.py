"""Terminal output: the matrix table and reasons; a progress line that degrades to plain lines off a TTY."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from tabulate import tabulate

from harness.engine.events import Event, RunFinished, RunStarted, ScenarioFinished
from harness.report.table import judged_lines, matrix_rows, reason_lines


def render(doc: dict[str, Any]) -> str:
    headers, rows = matrix_rows(doc, symbols=False)
    lines = [tabulate(rows, headers=headers, tablefmt="simple_grid")]
    reasons = reason_lines(doc)
    if reasons:
        lines += ["", *reasons]
    judged = judged_lines(doc)
    if judged:
        lines += ["", *judged]
    lines += ["", doc.get("notice", "")]
    return "\n".join(lines)


class Progress:
    """Live progress on a terminal; on a pipe or CI log, one line per failing scenario and a summary."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self._stream, self.quiet = stream, quiet

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stderr  # looked up when used, so redirect_stderr works

    @property
    def tty(self) -> bool:
        return self.stream.isatty()

    def __call__(self, event: Event) -> None:
        if self.quiet:
            return
        if isinstance(event, RunStarted):
            self.stream.write(f"running {event.total} scenario runs\n")
        elif isinstance(event, ScenarioFinished):
            if self.tty:
                self.stream.write(f"\r[{event.done}/{event.total}] {event.gateway} × {event.fasttrack}: "
                                  f"{event.result.id} {event.result.outcome}\x1b[K")
                if event.done == event.total:
                    self.stream.write("\n")
            elif event.result.outcome == "error":
                self.stream.write(f"{event.gateway} × {event.fasttrack}: {event.result.id} error: "
                                  f"{event.result.error}\n")
        elif isinstance(event, RunFinished) and not self.tty:  # a CI log shows when the run ended
            runs = sum(len(c.scenarios) for c in event.result.cells)
            self.stream.write(f"finished {runs} scenario runs in {event.result.duration_s:.2f} s\n")
        self.stream.flush()
