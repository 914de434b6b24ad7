"""``python -m harness diff A.json B.json``: what changed between two runs, cell by cell and scenario by scenario.

Two builds: when each document has exactly one real gateway row (``gateways[]``: ``external``), or the rows are
chosen with ``--row A=LABEL --row B=LABEL``, those two rows are compared with each other column by column (the
FastTrack column keys the cells), whatever their labels; a different ``judged_as`` is a change too. Otherwise
the documents are compared whole, cells keyed by (gateway, FastTrack).

Reads only result documents. A change is one of: a cell's verdict or observed FastTrack version, a cell or
scenario present in only one run, a scenario's outcome, or (same outcome) its first failing step/hop/check.
``--allow PATTERN`` removes changes: a pattern is matched (glob) against the cell ``gateway×fasttrack``, the
scenario id and ``gateway×fasttrack/scenario``; a cell's verdict change is also allowed when every scenario
change of that cell is allowed (it is what explains the verdict). Exit 0 when nothing is left, 1 otherwise.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from harness import errors
from harness.results import document
from harness.results.document import CellDoc, RunDoc, ScenarioDoc, cells_by_key, real_rows

ChangeKind = Literal["verdict", "version", "required", "outcome", "first_failure", "only_in_a", "only_in_b",
                     "judged_as"]


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    gateway: str
    fasttrack: str
    scenario: str | None
    a: str | None
    b: str | None

    @property
    def cell(self) -> str:
        return f"{self.gateway}×{self.fasttrack}"

    @property
    def where(self) -> str:
        return f"{self.cell}/{self.scenario}" if self.scenario else self.cell

    def describe(self) -> str:
        if self.kind == "only_in_a":
            return f"only in A ({self.a})"
        if self.kind == "only_in_b":
            return f"only in B ({self.b})"
        label = {"first_failure": "first failure", "version": "observed FastTrack version",
                 "judged_as": "judged as"}.get(self.kind, self.kind)
        return f"{label}: {self.a} → {self.b}"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "where": self.where}


def _first(scenario: ScenarioDoc) -> str | None:
    """'step / hop / what (kind)' of the scenario's first failure (or its error), None when it has none."""
    found = document.first_failure(scenario)
    return document.failure_text(found) if found else None


def _outcome(s: ScenarioDoc) -> str:
    ff = _first(s)
    return f"{s['outcome']} ({ff})" if ff and s["outcome"] != "pass" else str(s["outcome"])


def diff(a: RunDoc, b: RunDoc) -> list[Change]:
    """Every change from run A to run B, in A's cell order then B-only cells."""
    cells_a, cells_b = cells_by_key(a), cells_by_key(b)
    out: list[Change] = []
    for key in dict.fromkeys([*cells_a, *cells_b]):
        g, f = key
        ca, cb = cells_a.get(key), cells_b.get(key)
        if cb is None:
            out.append(Change("only_in_a", g, f, None, str(ca["verdict"]) if ca else None, None))
            continue
        if ca is None:
            out.append(Change("only_in_b", g, f, None, None, str(cb["verdict"])))
            continue
        if ca["verdict"] != cb["verdict"]:
            out.append(Change("verdict", g, f, None, ca["verdict"], cb["verdict"]))
        if ca.get("fasttrack_version") != cb.get("fasttrack_version"):
            out.append(Change("version", g, f, None, ca.get("fasttrack_version"), cb.get("fasttrack_version")))
        if bool(ca.get("required")) != bool(cb.get("required")):
            out.append(Change("required", g, f, None, str(bool(ca.get("required"))), str(bool(cb.get("required")))))
        sa = {s["id"]: s for s in ca["scenarios"]}
        sb = {s["id"]: s for s in cb["scenarios"]}
        for sid in dict.fromkeys([*sa, *sb]):
            xa, xb = sa.get(sid), sb.get(sid)
            if xb is None:
                out.append(Change("only_in_a", g, f, sid, xa and _outcome(xa), None))
            elif xa is None:
                out.append(Change("only_in_b", g, f, sid, None, _outcome(xb)))
            elif xa["outcome"] != xb["outcome"]:
                out.append(Change("outcome", g, f, sid, _outcome(xa), _outcome(xb)))
            elif _first(xa) != _first(xb):
                out.append(Change("first_failure", g, f, sid, _first(xa), _first(xb)))
    return out


def pick_rows(a: RunDoc, b: RunDoc, chosen: dict[str, str]) -> tuple[str, str] | None:
    """The rows to compare with each other (``chosen``: side -> label from ``--row``; else each document's only
    real row), or None to compare the documents whole."""
    picked: dict[str, str] = {}
    for side, doc in (("A", a), ("B", b)):
        labels = {c["gateway"] for c in doc["cells"]}
        if side in chosen:
            if chosen[side] not in labels:
                raise errors.UsageError(f"--row {side}={chosen[side]}: no such row in {side} "
                                        f"(rows: {', '.join(sorted(labels)) or 'none'})")
            picked[side] = chosen[side]
            continue
        real = [label for label in real_rows(doc) if label in labels]
        if len(real) == 1:
            picked[side] = real[0]
    if len(picked) == 2:
        return picked["A"], picked["B"]
    if chosen:
        missing = next(side for side in ("A", "B") if side not in picked)
        raise errors.UsageError(f"{missing} has no single real gateway row: choose one with --row {missing}=LABEL")
    return None


def diff_rows(a: RunDoc, b: RunDoc, row_a: str, row_b: str) -> list[Change]:
    """Row ``row_a`` of A against row ``row_b`` of B, column by column, shown as one row ``row_a|row_b``."""
    name = row_a if row_a == row_b else f"{row_a}|{row_b}"

    def only(doc: RunDoc, row: str) -> RunDoc:
        cells: list[CellDoc] = [{**c, "gateway": name} for c in doc["cells"] if c["gateway"] == row]
        return {**doc, "cells": cells}

    judged_a, judged_b = real_rows(a).get(row_a, row_a), real_rows(b).get(row_b, row_b)  # a reference row: itself
    head = [Change("judged_as", name, "*", None, judged_a, judged_b)] if judged_a != judged_b else []
    return head + diff(only(a, row_a), only(b, row_b))


def _matches(change: Change, pattern: str) -> bool:
    names = [change.cell] + ([change.scenario, change.where] if change.scenario else [])
    return any(fnmatch.fnmatchcase(n, pattern) for n in names)


def split_allowed(changes: Sequence[Change], patterns: Sequence[str]) -> tuple[list[Change], list[Change]]:
    """(remaining, allowed). A cell-level change is allowed when a pattern names the cell, or when the cell's
    scenario changes are all allowed (and there is at least one): they explain it."""
    if not patterns:
        return list(changes), []
    allowed = {id(c) for c in changes if any(_matches(c, p) for p in patterns)}
    for c in changes:
        if id(c) in allowed or c.scenario is not None or c.kind != "verdict":
            continue
        same_cell = [x for x in changes if x.scenario is not None and x.cell == c.cell]
        if same_cell and all(id(x) in allowed for x in same_cell):
            allowed.add(id(c))
    return [c for c in changes if id(c) not in allowed], [c for c in changes if id(c) in allowed]


def render_text(remaining: Sequence[Change], allowed: Sequence[Change], name_a: str, name_b: str) -> str:
    if not remaining and not allowed:
        return f"no change between {name_a} and {name_b}"
    lines = [f"{c.where}: {c.describe()}" for c in remaining]
    lines += [f"{c.where}: {c.describe()} (allowed)" for c in allowed]
    lines.append(f"{len(remaining)} change(s) between {name_a} (A) and {name_b} (B)"
                 + (f", {len(allowed)} allowed" if allowed else ""))
    return "\n".join(lines)
