"""The gate's own document: the compact baseline (read, checked, written, taken from a run); result documents are
read through :mod:`harness.results.document`."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, NotRequired, TypedDict, cast, get_args

from harness import errors
from harness.report import output
from harness.results.document import OLD_SCHEMAS, SCHEMA, RunDoc, check
from harness.results.model import Outcome, Verdict

BASELINE_SCHEMA = "harness/baseline@1"
VERDICTS: tuple[str, ...] = get_args(Verdict)
OUTCOMES: tuple[str, ...] = get_args(Outcome)
DEFAULT_BASELINE = "reports/baseline.json"


class BaselineCell(TypedDict):
    gateway: str
    fasttrack: str
    verdict: str
    required: NotRequired[bool]
    scenarios: dict[str, str]  # scenario id -> outcome
    accepted: NotRequired[dict[str, str]]  # scenario id -> the finding id its failure is accepted under


class BaselineDoc(TypedDict):
    """``reports/baseline.json``: what a run decided, per cell, without its evidence."""

    schema: str
    cells: list[BaselineCell]


def baseline_from(doc: RunDoc) -> BaselineDoc:
    """The compact baseline of a result document: per cell its verdict, required flag and scenario outcomes.
    Deterministic: cells sorted by (gateway, FastTrack), scenarios by id, no timestamps."""
    cells = []
    for c in sorted(doc["cells"], key=lambda c: (c["gateway"], c["fasttrack"])):
        scenarios = sorted(c["scenarios"], key=lambda s: s["id"])
        entry: BaselineCell = {
            "gateway": c["gateway"],
            "fasttrack": c["fasttrack"],
            "verdict": c["verdict"],
            "required": bool(c.get("required", False)),
            "scenarios": {s["id"]: s["outcome"] for s in scenarios},
        }
        # A failure the run matched to a documented defect is accepted under that id, and only under it.
        accepted = {s["id"]: f for s in scenarios if s["outcome"] == "fail" and (f := s.get("finding"))}
        if accepted:
            entry["accepted"] = accepted
        cells.append(entry)
    return {"schema": BASELINE_SCHEMA, "cells": cells}


def check_baseline(doc: Any, name: str) -> BaselineDoc:
    """A baseline (or a whole result document, compacted) or a usage error."""
    if isinstance(doc, dict) and doc.get("schema") in (SCHEMA, *OLD_SCHEMAS):
        return baseline_from(check(doc, name, old_ok=True))
    if not isinstance(doc, dict) or doc.get("schema") != BASELINE_SCHEMA:
        got = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
        raise errors.UsageError(f"{name}: schema is {got!r}, expected {BASELINE_SCHEMA!r} (or {SCHEMA!r})")
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
    return cast(BaselineDoc, doc)


def known_findings() -> set[str]:
    from harness.judge.findings import (
        load_findings,  # findings -> results -> scenario: imported when a baseline is read
    )

    return {f.id for f in load_findings()}


def write_baseline(baseline: BaselineDoc, path: str | Path) -> Path:
    p = Path(path)
    with contextlib.suppress(OSError):  # an unusable directory is reported by the write below
        p.parent.mkdir(parents=True, exist_ok=True)
    return output.write_text(p, json.dumps(baseline, indent=2, ensure_ascii=False) + "\n", "baseline")

