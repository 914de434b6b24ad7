"""``matrix.md``: the matrix (tabulate, GitHub pipe table), one reason per incompatible cell, failures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tabulate import tabulate

from harness import findings
from harness.errors import SourceSpan
from harness.report import diagrams
from harness.report.table import judged_lines, matrix_rows, reason_lines
from harness.scenario import failures


def render(doc: dict[str, Any]) -> str:
    headers, rows = matrix_rows(doc)
    parts = [
        "# Backend.AI gateway × FastTrack compatibility matrix",
        "",
        f"Run {doc.get('started_at', '')}, {len(doc['cells'])} cells, {len(doc['scenarios'])} scenarios. "
        "Columns are keyed by the `X-BackendAI-FastTrack-Version` each FastTrack answered with.",
        "",
        f"> **{doc.get('notice', '')}**",
        "",
        *([f"> **Partial run: interrupted by {doc.get('interrupted')}; cells that had not finished are `unknown`.**",
           ""] if doc.get("partial") else []),
        tabulate(rows, headers=headers, tablefmt="github"),
        "",
    ]
    reasons = reason_lines(doc)
    if reasons:
        parts += ["## Why cells are not compatible", ""] + [f"- {r}" for r in reasons] + [""]
    judged = judged_lines(doc)
    if judged:
        parts += ["## What was judged", ""] + [f"- {r}" for r in judged] + [""]
    parts += peer_section(doc)
    parts += ["## Profiles", "", "| gateway | generation | releases |", "|---|---|---|"]
    parts += [f"| {g['id']} | {g['generation']} | {g['releases']} |" for g in doc["gateways"]]
    parts += ["", "| FastTrack | accepts | modelled on |", "|---|---|---|"]
    for f in doc["fasttracks"]:
        based_on = f"model: {f['modelled_on']}" if f.get("model", True) else f["modelled_on"]
        parts.append(f"| {f['id']} | {', '.join(f['accepts'])} | {based_on} |")
    failing = [(c, s) for c in doc["cells"] for s in c["scenarios"] if s["outcome"] in ("fail", "error")]
    scenario_entries = {e["id"]: e for e in doc.get("scenarios", [])}
    if failing:
        parts += ["", "## Failing scenarios", ""]
        for c, s in failing:
            parts.append(f"### {s['id']} in {c['gateway']} × {c['fasttrack']}: {s['outcome']}")
            parts.append("")
            if s["error"]:
                parts.append(f"- error: {s['error']}")
            for f in s["failures"]:
                parts.append(f"- {failures.one_line(failures.Failure.from_json(f))} "
                             f"({SourceSpan.from_json(f['where'])})")
            parts.append("")
            entry = scenario_entries.get(s["id"])
            if entry and entry.get("expected"):
                parts += ["Expected sequence (what the scenario requires on each hop):", "", "```mermaid",
                          diagrams.expected_mermaid(entry).rstrip("\n"), "```", ""]
            parts += ["Observed sequence (what crossed each hop; ❌ marks the failing hops):", "", "```mermaid",
                      diagrams.mermaid(s).rstrip("\n"), "```", ""]
    return "\n".join(parts).rstrip() + "\n"


def peer_section(doc: dict[str, Any]) -> list[str]:
    """A real release against the reference profile of its generation (``peer run``)."""
    peer = doc.get("peer")
    if not peer:
        return []
    diffs = peer["differences"]
    lines = [f"## backend.ai-webserver {peer['release']} versus reference profile `{peer['reference_profile']}`", ""]
    if not diffs:
        lines += ["The real release behaved exactly as its reference profile on every scenario and FastTrack "
                  "column (same outcome, same first failing step, hop and check).", ""]
    else:
        rows = [[d["fasttrack"], d["scenario"], d["peer_outcome"], d["reference_outcome"],
                 (d["peer_failure"] or d["reference_failure"] or {}).get("hop", ""),
                 findings.subject(d["peer_failure"] or d["reference_failure"])
                 if d["peer_failure"] or d["reference_failure"] else "",
                 d["finding"] or "**UNDOCUMENTED**"] for d in diffs]
        lines += [tabulate(rows, headers=["FastTrack", "scenario", "release", "reference", "hop", "check",
                                          "finding"], tablefmt="github"), ""]
    for f in peer["findings"]:
        lines += [f"- **{f['id']}** ({f['kind']}, {f['severity']}): {f['title']}. {f['explanation']} "
                  f"Hop `{f['hop']}`, scenario `{f['scenario']}`. Evidence: {f['evidence']}"]
    return [*lines, ""] if peer["findings"] else lines


def write(doc: dict[str, Any], path: Path) -> Path:
    path.write_text(render(doc), encoding="utf-8")
    return path
