"""Terminal output that fits the window: a compact matrix with a legend, the reasons of the cells that matter, the
peer comparison and findings; a progress line on a terminal, nothing on a pipe or under ``--quiet``."""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
from typing import TextIO

from tabulate import tabulate

from harness.engine.events import CellFinished, Event, RunFinished, RunStarted, ScenarioFinished
from harness.report.table import (
    COUNT_MEANING,
    TEXT_SYMBOL,
    axes,
    column_title,
    counts,
    judged_lines,
    not_compatible,
    provenance,
    reason_line,
    row_title,
    security_failures,
)
from harness.results.document import CellDoc, RunDoc, cells_by_key

MIN_WIDTH = 80


def width(stream: TextIO | None = None) -> int:
    """``$COLUMNS``, else the terminal's width, else 100; never below :data:`MIN_WIDTH`."""
    env = os.environ.get("COLUMNS", "")
    if env.isdigit() and int(env) > 0:
        return max(MIN_WIDTH, int(env))
    try:
        cols = os.get_terminal_size((stream or sys.stdout).fileno()).columns
    except (AttributeError, OSError, ValueError):
        cols = shutil.get_terminal_size((100, 24)).columns
    return max(MIN_WIDTH, cols)


def _cell_text(cell: CellDoc | None) -> str:
    if cell is None:
        return "—"
    return f"{TEXT_SYMBOL.get(cell['verdict'], '?')} {counts(cell)}" + (" R" if cell["required"] else "")


def _tables(doc: RunDoc, cols: int) -> list[str]:
    """The matrix, split into several tables of fewer columns when one would be wider than ``cols``."""
    gws, fts = axes(doc)
    info = {str(g["id"]): g for g in doc.get("gateways") or []}
    index = cells_by_key(doc)
    rows = [[row_title(g, info.get(g))] + [_cell_text(index.get((g, f))) for f in fts] for g in gws]
    titles = [column_title(doc, f, prefix="") for f in fts]
    first = max([len("gateway")] + [len(r[0]) for r in rows])
    widths = [max([len(t)] + [len(r[i + 1]) for r in rows]) for i, t in enumerate(titles)]
    groups: list[list[int]] = [[]]
    used = first
    for i, w in enumerate(widths):
        if groups[-1] and used + 2 + w > cols:
            groups.append([])
            used = first
        groups[-1].append(i)
        used += 2 + w
    out = []
    for group in groups:
        headers = ["gateway"] + [titles[i] for i in group]
        body = [[r[0]] + [r[i + 1] for i in group] for r in rows]
        out.append(tabulate(body, headers=headers, tablefmt="simple", disable_numparse=True))
    return out


def wrap(text: str, cols: int, indent: str = "  ") -> list[str]:
    return textwrap.wrap(text, cols, subsequent_indent=indent, break_long_words=True, break_on_hyphens=False) or [""]


def _cut(text: str, cols: int, pointer: str) -> str:
    return text if len(text) <= cols else text[: cols - len(pointer) - 1] + "…" + pointer


def render(doc: RunDoc, cols: int | None = None, verbose: bool = False, report: str = "matrix.md") -> str:
    """The run for a terminal ``cols`` wide: every line fits. Reasons of required cells are wrapped in full; the
    other cells that are not compatible are counted (``verbose``: one cut line each, pointing at ``report``)."""
    cols = max(MIN_WIDTH, cols or width())
    lines = wrap(f"{provenance(doc)}: gateway profiles down, FastTrack across (the version each announced)", cols)
    for t in _tables(doc, cols):
        lines += ["", t]
    lines += ["", "✓ compatible  ✗ incompatible  ? unknown  ⚠ error  R: required by the policy",
              *wrap(COUNT_MEANING, cols)]
    bad = not_compatible(doc)
    required = [c for c in bad if c["required"]]
    others = [c for c in bad if not c["required"]]
    n_req = sum(1 for c in doc["cells"] if c["required"])
    if required:
        lines += ["", f"Required cells that are not compatible ({len(required)} of {n_req}):"]
        for c in required:
            lines += wrap(reason_line(c), cols)
    elif n_req:
        lines += ["", f"All {n_req} required cells are compatible."]
    if others:
        lines.append("")
        if verbose:
            lines.append(f"Cells the policy does not require that are not compatible ({len(others)}):")
            lines += [_cut(reason_line(c), cols, f" (see {report})") for c in others]
        else:
            verdicts = sorted({c["verdict"] for c in others})
            lines += wrap(f"{len(others)} cells the policy does not require are {' or '.join(verdicts)}, as "
                          f"expected of crossed generations; --verbose lists their reasons, {report} has them all.",
                          cols, "")
    judged = judged_lines(doc)
    if judged:
        lines.append("")
        for line in judged:
            lines += wrap(line, cols)
    lines += peer_lines(doc, cols)
    for sid, cells, _first in security_failures(doc):
        req = sum(1 for c in cells if c["required"])
        if req:
            lines += wrap(f"security scenario {sid} fails in {req} required cell{'s' if req > 1 else ''}", cols)
    lines += ["", *wrap(str(doc.get("notice", "")), cols, "")]
    return "\n".join(lines)


def peer_lines(doc: RunDoc, cols: int) -> list[str]:
    """The peer-versus-reference verdict and the findings that apply to the release."""
    peer = doc.get("peer")
    if not peer:
        return []
    diffs = peer["differences"]
    head = (f"backend.ai-webserver {peer['release']} versus reference profile {peer['reference_profile']}: "
            + ("same outcome and first failure on every scenario and column" if not diffs else
               f"{len(diffs)} differences, {peer['undocumented']} undocumented"))
    lines = ["", *wrap(head, cols)]
    for d in diffs:
        where = d["peer_failure"] or d["reference_failure"]
        at = f" at {where['hop']} {where['what']} {where['name']}".rstrip() if where else ""
        lines.append(_cut(f"  {d['fasttrack']}/{d['scenario']}: release {d['peer_outcome']}, reference "
                          f"{d['reference_outcome']}{at} -> {d['finding'] or 'UNDOCUMENTED'}", cols, ""))
    for f in peer["findings"]:
        lines += wrap(f"  finding {f['id']} ({f['kind']}, {f['severity']}): {f['title']}", cols, "    ")
    return lines


class Progress:
    """A live line on a terminal (cells done / total, scenario runs done / total). Off a terminal (a CI log) only
    when the run started and when it finished; nothing under ``quiet``."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self._stream, self.quiet = stream, quiet
        self.cells = self.cells_done = 0

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
            self.cells, self.cells_done = event.cells, 0
            if not self.tty:
                self.stream.write(f"running {event.total} scenario runs in {event.cells} cells\n")
        elif isinstance(event, CellFinished):
            self.cells_done += 1
        elif isinstance(event, ScenarioFinished) and self.tty:
            text = (f"cells {self.cells_done}/{self.cells or '?'} · scenario runs {event.done}/{event.total} · "
                    f"{event.gateway} × {event.fasttrack}: {event.result.id} {event.result.outcome}")
            self.stream.write("\r" + text[: width(self.stream) - 1] + "\x1b[K")
            if event.done == event.total:
                self.stream.write("\r\x1b[K")
        elif isinstance(event, RunFinished) and not self.tty:
            runs = sum(len(c.scenarios) for c in event.result.cells)
            self.stream.write(f"finished {runs} scenario runs in {event.result.duration_s:.2f} s\n")
        self.stream.flush()
