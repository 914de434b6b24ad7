"""The compatibility matrix as rows: gateway profiles down, FastTrack versions across (shared by writers)."""

from __future__ import annotations

from typing import Any

SYMBOL = {"compatible": "✅", "incompatible": "❌", "error": "⚠️", "unknown": "❔"}


def column_title(doc: dict[str, Any], fasttrack_id: str) -> str:
    """Columns are keyed by the version FastTrack announced; the profile id is shown when they differ."""
    seen = {c["fasttrack_version"] for c in doc["cells"] if c["fasttrack"] == fasttrack_id and c["fasttrack_version"]}
    if len(seen) == 1:
        observed = seen.pop()
        return f"FastTrack {observed}" if observed == fasttrack_id else f"FastTrack {observed} ({fasttrack_id})"
    return f"FastTrack {fasttrack_id} (version not observed)"


def matrix_rows(doc: dict[str, Any], symbols: bool = True) -> tuple[list[str], list[list[str]]]:
    fts = [f["id"] for f in doc["fasttracks"]]
    headers = ["gateway"] + [column_title(doc, f) for f in fts]
    rows = []
    for g in doc["gateways"]:
        row = [f"{g['id']} ({g['generation']})"]
        for f in fts:
            cell = next((c for c in doc["cells"] if c["gateway"] == g["id"] and c["fasttrack"] == f), None)
            if cell is None:
                row.append("—")
                continue
            mark = f"{SYMBOL.get(cell['verdict'], '')} " if symbols else ""
            req = " (required)" if cell["required"] else ""
            n = cell["counts"]
            row.append(f"{mark}{cell['verdict']}{req} {n['pass']}/{sum(n.values())}")
        rows.append(row)
    return headers, rows


def reason_lines(doc: dict[str, Any]) -> list[str]:
    out = []
    for c in doc["cells"]:
        if c["verdict"] != "compatible" and c["reason"]:
            out.append(f"{c['gateway']} × {c['fasttrack']}: {c['verdict']} — {c['reason']}")
    return out


def judged_lines(doc: dict[str, Any]) -> list[str]:
    """Per cell where something was not judged (a real FastTrack): how many checks were, and what was not."""
    out = []
    for c in doc["cells"]:
        checks = [s.get("checks", {}) for s in c["scenarios"]]
        judged, na = sum(k.get("judged", 0) for k in checks), sum(k.get("not_applicable", 0) for k in checks)
        if not na:
            continue
        skipped = [s["id"] for s in c["scenarios"] if s["outcome"] == "skip"]
        out.append(f"{c['gateway']} × {c['fasttrack']}: {judged} contract checks judged, {na} not applicable (model "
                   "checks and steps that need control of FastTrack)"
                   + (f"; nothing to judge in {', '.join(skipped)}" if skipped else ""))
    return out
