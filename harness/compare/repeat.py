"""``run --repeat N``: the same matrix N times in one process, and what varied between the runs.

Compared per cell: the verdict and the observed FastTrack version; per scenario: the outcome and the first
failure (step, hop, check). Wire records, timings, ports, dates and JWT times are not compared: they differ
legitimately from run to run (``tests/engine/test_determinism.py`` checks everything else is identical).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

from harness.results.document import (
    FlakyCellDoc,
    FlakyScenarioDoc,
    Key,
    RepeatDoc,
    RunDoc,
    ScenarioDoc,
    cells_by_key,
    failure_text,
    first_failure,
)


class Signature(TypedDict):
    """What a run decided in one cell."""

    verdict: str
    fasttrack_version: str | None
    scenarios: dict[str, tuple[str, str | None]]  # id -> (outcome, first failure)


def _first(s: ScenarioDoc) -> str | None:
    # An error's message is not compared: it names ports and times that differ legitimately between runs.
    found = first_failure(s, error=False)
    return failure_text(found) if found else None


def signature(doc: RunDoc) -> dict[Key, Signature]:
    """What a run decided, per (gateway, FastTrack) cell."""
    return {key: {
        "verdict": c["verdict"],
        "fasttrack_version": c.get("fasttrack_version"),
        "scenarios": {s["id"]: (s["outcome"], _first(s)) for s in c["scenarios"]},
    } for key, c in cells_by_key(doc).items()}


def flaky(docs: Sequence[RunDoc]) -> list[FlakyCellDoc]:
    """Every cell whose verdict or version, or any of whose scenarios' outcome or first failure, differs between
    the runs, in the first run's cell order (then cells only later runs had)."""
    sigs = [signature(d) for d in docs]
    keys = list(dict.fromkeys(k for s in sigs for k in s))
    out: list[FlakyCellDoc] = []
    for key in keys:
        per_run = [s.get(key) for s in sigs]
        verdicts = [p["verdict"] if p else None for p in per_run]
        versions = [p["fasttrack_version"] if p else None for p in per_run]
        ids = list(dict.fromkeys(i for p in per_run if p for i in p["scenarios"]))
        scenarios: list[FlakyScenarioDoc] = []
        for sid in ids:
            seen = [p["scenarios"].get(sid) if p else None for p in per_run]
            if len(set(seen)) > 1:
                scenarios.append({"id": sid, "outcomes": [s[0] if s else None for s in seen],
                                  "first_failures": [s[1] if s else None for s in seen]})
        if len(set(verdicts)) > 1 or len(set(versions)) > 1 or scenarios:
            if len(set(versions)) > 1:
                out.append({"gateway": key[0], "fasttrack": key[1], "verdicts": verdicts,
                            "fasttrack_versions": versions, "scenarios": scenarios})
            else:
                out.append({"gateway": key[0], "fasttrack": key[1], "verdicts": verdicts, "scenarios": scenarios})
    return out


def summary(docs: Sequence[RunDoc]) -> RepeatDoc:
    """The ``repeat`` section of matrix.json."""
    return {"runs": len(docs), "flaky": flaky(docs)}


def render(section: RepeatDoc) -> str:
    runs, found = section["runs"], section["flaky"]
    if not found:
        return f"repeat: {runs} runs, every verdict and scenario outcome was the same"
    lines = [f"repeat: {runs} runs, {len(found)} cell(s) varied:"]
    for entry in found:
        lines.append(f"  {entry['gateway']} × {entry['fasttrack']}: verdicts {' / '.join(map(str, entry['verdicts']))}")
        if "fasttrack_versions" in entry:
            lines.append(f"    observed version: {' / '.join(map(str, entry['fasttrack_versions']))}")
        for sc in entry["scenarios"]:
            lines.append(f"    {sc['id']}: {' / '.join(map(str, sc['outcomes']))}")
            for k, ff in enumerate(sc["first_failures"], 1):
                if ff:
                    lines.append(f"      run {k}: {ff}")
    return "\n".join(lines)
