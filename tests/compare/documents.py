"""Small result documents (the shape of ``matrix.json``) for the comparison tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
FAILURE = {"step": "pipeline login", "hop": "gateway_to_fasttrack", "what": "header", "name": "X-BackendAI-SSO",
           "kind": "present", "expected": "present", "actual": "absent", "fasttrack_reason": None,
           "where": {"file": "s.yaml", "line": 12, "col": 9, "text": None}}




def cell(g: str, f: str, verdict: str = "compatible", required: bool = False, version: str | None = "auto",
         **scenarios: str) -> dict[str, Any]:
    outcomes = scenarios or {"s1": "pass" if verdict == "compatible" else "fail"}
    return {
        "gateway": g, "fasttrack": f, "fasttrack_version": f if version == "auto" else version,
        "verdict": verdict, "required": required, "reason": None if verdict == "compatible" else "because",
        "counts": {o: sum(1 for v in outcomes.values() if v == o) for o in ("pass", "fail", "error", "skip")},
        "scenarios": [{"id": sid, "title": sid, "file": f"/x/{sid}.yaml", "outcome": o,
                       "reason": None if o == "pass" else "failed", "error": None,
                       "failures": [FAILURE] if o == "fail" else [], "steps": [], "duration_ms": 1.0}
                      for sid, o in outcomes.items()],
    }


def doc(*cells: dict[str, Any]) -> dict[str, Any]:
    return {"schema": "harness/matrix@2", "started_at": "2026-01-01T00:00:00Z", "duration_s": 0.1,
            "http_exchanges": 1, "notice": "models", "gateways": [], "fasttracks": [], "scenarios": [],
            "cells": list(cells)}


def good_run() -> dict[str, Any]:
    return doc(cell("as-is", "24.09.0", required=True), cell("as-is", "25.1.0", "incompatible"),
               cell("to-be", "25.1.0", required=True), cell("to-be", "24.09.0", "incompatible"))


def write(path: Path, data: Any) -> str:
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return str(path)
