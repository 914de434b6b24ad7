"""The gate's documents: result documents checked for the fields it reads, and the compact baseline (read,
checked, written, taken from a run)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, get_args

from harness import errors
from harness.report import output
from harness.results.model import SCHEMA, Outcome, Verdict

BASELINE_SCHEMA = "harness/baseline@1"
VERDICTS: tuple[str, ...] = get_args(Verdict)
OUTCOMES: tuple[str, ...] = get_args(Outcome)
RESULT_SCHEMA = SCHEMA
OLD_RESULT_SCHEMAS = ("harness/matrix@1",)  # baselines can still be taken from them (outcomes only)
DEFAULT_BASELINE = "reports/baseline.json"


def check_result(doc: Any, name: str, old_ok: bool = False) -> dict[str, Any]:
    """A result document with the fields the gate reads, or a usage error naming what is wrong."""
    if not isinstance(doc, dict):
        raise errors.UsageError(f"{name}: not a harness result document (expected a JSON object)")
    if doc.get("schema") != RESULT_SCHEMA and not (old_ok and doc.get("schema") in OLD_RESULT_SCHEMAS):
        older = " (written by an older harness: re-run it, or re-render it with that version)" if doc.get(
            "schema") in OLD_RESULT_SCHEMAS else ""
        raise errors.UsageError(f"{name}: schema is {doc.get('schema')!r}, expected {RESULT_SCHEMA!r}{older}")
    cells = doc.get("cells")
    if not isinstance(cells, list):
        raise errors.UsageError(f"{name}: 'cells' must be a list")
    for i, c in enumerate(cells):
        if not isinstance(c, dict) or not all(k in c for k in ("gateway", "fasttrack", "verdict", "scenarios")):
            raise errors.UsageError(f"{name}: cells[{i}] needs gateway, fasttrack, verdict and scenarios")
        for j, s in enumerate(c["scenarios"]):
            if not isinstance(s, dict) or "id" not in s or "outcome" not in s:
                raise errors.UsageError(f"{name}: cells[{i}].scenarios[{j}] needs id and outcome")
    return doc


def read_json(path: str | Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise errors.UsageError(f"cannot read {path}: {exc}") from None


def read_result(path: str | Path) -> dict[str, Any]:
    return check_result(read_json(path), str(path))


def baseline_from(doc: dict[str, Any]) -> dict[str, Any]:
    """The compact baseline of a result document: per cell its verdict, required flag and scenario outcomes.
    Deterministic: cells sorted by (gateway, FastTrack), scenarios by id, no timestamps."""
    cells = []
    for c in sorted(doc["cells"], key=lambda c: (c["gateway"], c["fasttrack"])):
        scenarios = sorted(c["scenarios"], key=lambda s: s["id"])
        entry = {
            "gateway": c["gateway"],
            "fasttrack": c["fasttrack"],
            "verdict": c["verdict"],
            "required": bool(c.get("required", False)),
            "scenarios": {s["id"]: s["outcome"] for s in scenarios},
        }
        # A failure the run matched to a documented defect is accepted under that id, and only under it.
        accepted = {s["id"]: s["finding"] for s in scenarios if s["outcome"] == "fail" and s.get("finding")}
        if accepted:
            entry["accepted"] = accepted
        cells.append(entry)
    return {"schema": BASELINE_SCHEMA, "cells": cells}


def check_baseline(doc: Any, name: str) -> dict[str, Any]:
    """A baseline (or a whole result document, compacted) or a usage error."""
    if isinstance(doc, dict) and doc.get("schema") in (RESULT_SCHEMA, *OLD_RESULT_SCHEMAS):
        return baseline_from(check_result(doc, name, old_ok=True))
    if not isinstance(doc, dict) or doc.get("schema") != BASELINE_SCHEMA:
        got = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
        raise errors.UsageError(f"{name}: schema is {got!r}, expected {BASELINE_SCHEMA!r} (or {RESULT_SCHEMA!r})")
    if not isinstance(doc.get("cells"), list):
        raise errors.UsageError(f"{name}: 'cells' must be a list")
    for i, c in enumerate(doc["cells"]):
        ok = (isinstance(c, dict) and all(isinstance(c.get(k), str) for k in ("gateway", "fasttrack", "verdict"))
              and isinstance(c.get("scenarios"), dict))
        if not ok:
            raise errors.UsageError(f"{name}: cells[{i}] needs gateway, fasttrack, verdict and a scenarios mapping")
        # An unknown verdict or outcome would compare unequal to everything and be judged as something it is not.
        if c["verdict"] not in VERDICTS:
            raise errors.UsageError(f"{name}: cells[{i}].verdict is {c['verdict']!r}, not one of {', '.join(VERDICTS)}")
        if "required" in c and not isinstance(c["required"], bool):
            raise errors.UsageError(f"{name}: cells[{i}].required must be true or false")
        for sid, outcome in c["scenarios"].items():
            if outcome not in OUTCOMES:
                raise errors.UsageError(f"{name}: cells[{i}].scenarios.{sid} is {outcome!r}, not one of "
                                        f"{', '.join(OUTCOMES)}")
        accepted = c.get("accepted", {})
        if not isinstance(accepted, dict):
            raise errors.UsageError(f"{name}: cells[{i}].accepted must map scenario ids to finding ids")
        for sid, finding in accepted.items():
            if c["scenarios"].get(sid) != "fail" or not isinstance(finding, str) or finding not in known_findings():
                raise errors.UsageError(f"{name}: cells[{i}].accepted.{sid}: accepts a recorded failure under a "
                                        f"finding id of harness/data/peer-findings.yaml, not {finding!r} "
                                        f"(scenario {c['scenarios'].get(sid, 'absent')})")
    return doc


def known_findings() -> set[str]:
    from harness.judge.findings import (
        load_findings,  # findings -> results -> scenario: imported when a baseline is read
    )

    return {f.id for f in load_findings()}


def write_baseline(baseline: dict[str, Any], path: str | Path) -> Path:
    p = Path(path)
    with contextlib.suppress(OSError):  # an unusable directory is reported by the write below
        p.parent.mkdir(parents=True, exist_ok=True)
    return output.write_text(p, json.dumps(baseline, indent=2, ensure_ascii=False) + "\n", "baseline")

