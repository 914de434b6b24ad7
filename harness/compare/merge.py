"""Join shard results into one document (``harness report merge A.json B.json ... --out DIR``).

``run --shard I/N`` writes disjoint cells; merging the N documents gives the document of the whole run (cells in
the unsharded order: gateways, then FastTrack versions, as the profile lists give them). Reads only result
documents. Refused (usage error, exit 2): a document of another schema, profiles or scenarios with the same id
but different definitions, and a cell present in two documents with different content (verdict, version,
reason, scenario outcomes and failures; wire records and timings are not compared).
"""

from __future__ import annotations

from typing import Any, TypeVar

from harness import errors
from harness.results.document import (
    SCHEMA,
    CellDoc,
    FastTrackDoc,
    GatewayDoc,
    Key,
    RunDoc,
    ScenarioEntryDoc,
    check,
)

# Per cell and scenario: what judging it produced. Wire records (``steps``: Date headers, ports) and timings differ
# between two runs of the same code and are not content.
CELL_KEYS = ("gateway", "fasttrack", "fasttrack_version", "verdict", "required", "reason", "counts")
SCENARIO_KEYS = ("id", "outcome", "reason", "error", "failures")


def cell_content(cell: CellDoc) -> dict[str, Any]:
    return {**{k: cell.get(k) for k in CELL_KEYS},
            "scenarios": [{k: s.get(k) for k in SCENARIO_KEYS} for s in cell.get("scenarios") or []]}


def difference(a: dict[str, Any], b: dict[str, Any]) -> str:
    """The first thing that differs between two cell contents, for the refusal message."""
    for k in CELL_KEYS:
        if a.get(k) != b.get(k):
            return f"{k}: {a.get(k)!r} there, {b.get(k)!r} here"
    sa = {s["id"]: s for s in a["scenarios"]}
    sb = {s["id"]: s for s in b["scenarios"]}
    if set(sa) != set(sb):
        return f"scenarios: {sorted(sa)} there, {sorted(sb)} here"
    for sid, x in sa.items():
        for k in SCENARIO_KEYS:
            if x.get(k) != sb[sid].get(k):
                return f"scenario {sid} {k}: {x.get(k)!r} there, {sb[sid].get(k)!r} here"
    return "scenario order"


Entry = TypeVar("Entry", GatewayDoc, FastTrackDoc, ScenarioEntryDoc)


def _union(docs: list[tuple[str, list[Entry]]], field: str, ignore: tuple[str, ...] = ()) -> list[Entry]:
    """The entries (``gateways``, ``fasttracks``, ``scenarios``) of every document, each id once."""
    seen: dict[str, tuple[str, Entry]] = {}
    for name, items in docs:
        for item in items:
            key = str(item.get("id"))
            if key in seen:
                other_name, other = seen[key]
                strip = [{k: v for k, v in x.items() if k not in ignore} for x in (other, item)]
                if strip[0] != strip[1]:
                    raise errors.UsageError(f"{name}: {field} entry {key!r} differs from the one in {other_name} "
                                            "(documents from different harness versions?)")
            else:
                seen[key] = (name, item)
    return [item for _, item in seen.values()]


def merge(sources: list[tuple[str, Any]]) -> RunDoc:
    """One document from several (``(name, document)`` pairs, names for messages)."""
    if not sources:
        raise errors.UsageError("report merge needs at least one document")
    docs: list[tuple[str, RunDoc]] = []
    for name, doc in sources:
        if not isinstance(doc, dict) or not isinstance(doc.get("cells"), list):
            raise errors.UsageError(f"{name}: not a harness result document (no 'cells' list)")
        if doc.get("schema") != SCHEMA:
            raise errors.UsageError(f"{name}: schema is {doc.get('schema')!r}, expected {SCHEMA!r}; "
                                    "only documents of the same schema can be merged")
        docs.append((name, check(doc, name)))
    gateways = _union([(n, d.get("gateways") or []) for n, d in docs], "gateways")
    fasttracks = _union([(n, d.get("fasttracks") or []) for n, d in docs], "fasttracks")
    # checkouts differ in absolute paths
    scenarios = _union([(n, d.get("scenarios") or []) for n, d in docs], "scenarios", ignore=("file",))
    cells: dict[Key, tuple[str, CellDoc]] = {}
    for name, doc in docs:
        for cell in doc["cells"]:
            key = (cell["gateway"], cell["fasttrack"])
            if key in cells:
                other_name, other = cells[key]
                if cell_content(other) != cell_content(cell):
                    raise errors.UsageError(f"{name}: cell {key[0]}×{key[1]} is also in {other_name} with different "
                                            f"content ({difference(cell_content(other), cell_content(cell))})")
                continue
            cells[key] = (name, cell)
    g_order = {g["id"]: i for i, g in enumerate(gateways)}
    f_order = {f["id"]: i for i, f in enumerate(fasttracks)}
    ordered = sorted(cells, key=lambda k: (g_order.get(k[0], len(g_order)), f_order.get(k[1], len(f_order)), k))
    started = sorted(str(d["started_at"]) for _, d in docs if d.get("started_at"))
    first = docs[0][1]
    interrupted = [str(d.get("interrupted") or "a signal") for _, d in docs if d.get("partial")]
    merged: RunDoc = {
        **first,
        "started_at": started[0] if started else first.get("started_at", ""),
        "duration_s": max(float(d.get("duration_s") or 0) for _, d in docs),  # shards run side by side
        "http_exchanges": sum(int(d.get("http_exchanges") or 0) for _, d in docs),
        "gateways": gateways,
        "fasttracks": fasttracks,
        "scenarios": scenarios,
        "cells": [cells[k][1] for k in ordered],
    }
    if interrupted:  # one interrupted shard makes the whole a partial document (its unfinished cells are 'unknown')
        return {**first, "partial": True, "interrupted": ", ".join(dict.fromkeys(interrupted)), **merged}
    return merged

