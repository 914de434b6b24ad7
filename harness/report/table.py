"""The compatibility matrix as rows: gateway profiles down, FastTrack versions across (shared by writers)."""

from __future__ import annotations

from harness.results.document import CellDoc, GatewayDoc, RunDoc, ScenarioDoc, cells_by_key

SYMBOL = {"compatible": "✅", "incompatible": "❌", "error": "⚠️", "unknown": "❔"}
# Text symbols (not emoji): one column wide on any terminal, and in fonts every machine has.
TEXT_SYMBOL = {"compatible": "✓", "incompatible": "✗", "unknown": "?", "error": "⚠"}
SECURITY_PREFIX = "security-"  # scenarios about security properties: their failures are listed on their own
COUNT_MEANING = "n/m: scenarios passed / scenarios run (those that apply to the gateway)"


def column_title(doc: RunDoc, fasttrack_id: str, prefix: str = "FastTrack ") -> str:
    """Columns are keyed by the version FastTrack announced; the profile id is shown when they differ."""
    seen = {c["fasttrack_version"] for c in doc["cells"] if c["fasttrack"] == fasttrack_id and c["fasttrack_version"]}
    if len(seen) == 1:
        observed = seen.pop()
        return f"{prefix}{observed}" if observed == fasttrack_id else f"{prefix}{observed} ({fasttrack_id})"
    return f"{prefix}{fasttrack_id} (version not observed)"


def row_title(row: str, gateway: GatewayDoc | None) -> str:
    """``as-is (G4)``; a profile whose id is its generation is not repeated (``G0``, not ``G0 (G0)``)."""
    if gateway is None:  # a row only cells name
        return row
    gen = gateway.get("generation")
    return f"{gateway['id']} ({gen})" if gen and gen != gateway["id"] else str(gateway["id"])


def axes(doc: RunDoc) -> tuple[list[str], list[str]]:
    """Row and column ids: the profiles in document order, plus any that only cells name (so none is dropped)."""
    gws = [str(g["id"]) for g in doc.get("gateways") or []]
    fts = [str(f["id"]) for f in doc.get("fasttracks") or []]
    for c in doc["cells"]:
        if c["gateway"] not in gws:
            gws.append(c["gateway"])
        if c["fasttrack"] not in fts:
            fts.append(c["fasttrack"])
    return gws, fts


def counts(cell: CellDoc) -> str:
    n = cell["counts"]
    return f"{n['pass']}/{n['pass'] + n['fail'] + n['error'] + n['skip']}"


def matrix_rows(doc: RunDoc, symbols: bool = True) -> tuple[list[str], list[list[str]]]:
    """Markdown rows: ``✅ **required** 9/9``; with ``symbols=False`` words: ``compatible (required) 9/9``."""
    gws, fts = axes(doc)
    info = {str(g["id"]): g for g in doc.get("gateways") or []}
    index = cells_by_key(doc)
    headers = ["gateway"] + [column_title(doc, f) for f in fts]
    rows = []
    for g in gws:
        row = [row_title(g, info.get(g))]
        for f in fts:
            cell = index.get((g, f))
            if cell is None:
                row.append("—")
            elif symbols:
                req = " **required**" if cell["required"] else ""
                sec = " 🔒**security**" if cell.get("security") else ""
                row.append(f"{SYMBOL.get(cell['verdict'], '')}{sec}{req} {counts(cell)}")
            else:
                req = " (required)" if cell["required"] else ""
                sec = " SECURITY" if cell.get("security") else ""
                row.append(f"{cell['verdict']}{sec}{req} {counts(cell)}")
        rows.append(row)
    return headers, rows


def not_compatible(doc: RunDoc) -> list[CellDoc]:
    """Cells that are not compatible, the required ones first (each group in matrix order)."""
    bad = [c for c in doc["cells"] if c["verdict"] != "compatible"]
    return [c for c in bad if c["required"]] + [c for c in bad if not c["required"]]


def reason_line(cell: CellDoc) -> str:
    return f"{cell['gateway']} × {cell['fasttrack']}: {cell['verdict']} — {cell['reason'] or 'no reason recorded'}"


def provenance(doc: RunDoc) -> str:
    """Which harness wrote the document: ``harness 0.1.0 (commit 1a2b3c4d5e6f)``."""
    info = doc.get("harness") or {}
    commit = info.get("commit")
    return f"harness {info.get('version', '?')}" + (f" (commit {str(commit)[:12]})" if commit else "")


def security_failures(doc: RunDoc) -> list[tuple[str, list[CellDoc], ScenarioDoc]]:
    """Per failing security scenario: the cells it fails in (required first) and its first failing run."""
    found: dict[str, list[tuple[CellDoc, ScenarioDoc]]] = {}
    for c in doc["cells"]:
        for s in c["scenarios"]:
            if s["id"].startswith(SECURITY_PREFIX) and s["outcome"] in ("fail", "error"):
                found.setdefault(s["id"], []).append((c, s))
    out = []
    for sid, runs in found.items():
        runs.sort(key=lambda r: not r[0]["required"])
        out.append((sid, [c for c, _ in runs], runs[0][1]))
    return out


def judged_lines(doc: RunDoc) -> list[str]:
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
