"""``run --repeat N``: the same matrix N times in one process, and what varied between the runs.

Compared per cell: the verdict and the observed FastTrack version; per scenario: the outcome and the first
failure (step, hop, check). Wire records, timings, ports, dates and JWT times are not compared: they differ
legitimately from run to run (``tests/engine/test_determinism.py`` checks everything else is identical).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.scenario.failures import first_failure


def signature(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """What a run decided, per (gateway, FastTrack) cell."""
    return {(c["gateway"], c["fasttrack"]): {
        "verdict": c["verdict"],
        "fasttrack_version": c.get("fasttrack_version"),
        "scenarios": {s["id"]: (s["outcome"], first_failure(s)) for s in c["scenarios"]},
    } for c in doc["cells"]}


def flaky(docs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every cell whose verdict or version, or any of whose scenarios' outcome or first failure, differs between
    the runs, in the first run's cell order (then cells only later runs had)."""
    sigs = [signature(d) for d in docs]
    keys = list(dict.fromkeys(k for s in sigs for k in s))
    out = []
    for key in keys:
        per_run = [s.get(key) for s in sigs]
        verdicts = [p["verdict"] if p else None for p in per_run]
        versions = [p["fasttrack_version"] if p else None for p in per_run]
        ids = list(dict.fromkeys(i for p in per_run if p for i in p["scenarios"]))
        scenarios = []
        for sid in ids:
            seen = [p["scenarios"].get(sid) if p else None for p in per_run]
            if len(set(seen)) > 1:
                scenarios.append({"id": sid, "outcomes": [s[0] if s else None for s in seen],
                                  "first_failures": [s[1] if s else None for s in seen]})
        if len(set(verdicts)) > 1 or len(set(versions)) > 1 or scenarios:
            entry: dict[str, Any] = {"gateway": key[0], "fasttrack": key[1], "verdicts": verdicts}
            if len(set(versions)) > 1:
                entry["fasttrack_versions"] = versions
            entry["scenarios"] = scenarios
            out.append(entry)
    return out


def summary(docs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The ``repeat`` section of matrix.json."""
    return {"runs": len(docs), "flaky": flaky(docs)}


def render(section: dict[str, Any]) -> str:
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
