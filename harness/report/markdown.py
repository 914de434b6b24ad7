"""``matrix.md``: a summary that fits a PR comment (GitHub caps one at 65,536 characters).

The matrix, one root-cause line per cell that is not compatible (required cells first), the peer comparison and
its findings, the security scenarios that fail, and the expected-versus-observed diagrams of the failing scenarios
of required cells only; everything else (every failing scenario's hops and diagrams) is one click away in
``index.html``, and all of it as data in ``matrix.json``.
"""

from __future__ import annotations

from pathlib import Path

from tabulate import tabulate

from harness.report import diagrams
from harness.report.table import (
    COUNT_MEANING,
    SYMBOL,
    judged_lines,
    matrix_rows,
    not_compatible,
    provenance,
    reason_line,
    security_failures,
)
from harness.results.document import CellDoc, RunDoc, ScenarioDoc, ScenarioEntryDoc, subject
from harness.scenario.failures import Failure, one_line

LIMIT = 64 * 1024  # bytes; a PR comment holds 65,536 characters
_RESERVE = 2048  # kept free for what follows the diagrams


def render(doc: RunDoc) -> str:
    headers, rows = matrix_rows(doc)
    legend = " · ".join(f"{SYMBOL[v]} {v}" for v in ("compatible", "incompatible", "unknown", "error"))
    parts = [
        "# Backend.AI gateway × FastTrack compatibility matrix",
        "",
        f"{provenance(doc)} · run {doc.get('started_at', '')} · {len(doc['cells'])} cells · "
        f"{len(doc['scenarios'])} scenarios. Columns are keyed by the `X-BackendAI-FastTrack-Version` each FastTrack "
        "answered with.",
        "",
        f"> **{doc.get('notice', '')}**",
        "",
        *([f"> **Partial run: interrupted by {doc.get('interrupted')}; cells that had not finished are `unknown`.**",
           ""] if doc.get("partial") else []),
        tabulate(rows, headers=headers, tablefmt="github"),
        "",
        f"{legend} · **required**: the support policy requires the cell · {COUNT_MEANING}.",
        "",
        "Every failing scenario with the hops it crossed and its sequence diagram: `index.html` (click a cell); all "
        "of it as data: `matrix.json` (`cells[].causes`, `cells[].scenarios[].failures`).",
        "",
    ]
    bad = not_compatible(doc)
    if bad:
        required = [c for c in bad if c["required"]]
        parts += ["## Why cells are not compatible", ""]
        if required:
            parts += [f"Required ({len(required)}):", ""] + [f"- **{reason_line(c)}**" for c in required] + [""]
        others = [c for c in bad if not c["required"]]
        if others:
            parts += [f"Not required by the support policy ({len(others)}):", ""]
            parts += [f"- {reason_line(c)}" for c in others] + [""]
    judged = judged_lines(doc)
    if judged:
        parts += ["## What was judged", ""] + [f"- {r}" for r in judged] + [""]
    parts += peer_section(doc)
    parts += security_section(doc)
    parts += ["## Profiles", "", "| gateway | generation | releases |", "|---|---|---|"]
    parts += [f"| {g['id']} | {g['generation']} | {g['releases']} |" for g in doc["gateways"]]
    parts += ["", "| FastTrack | accepts | modelled on |", "|---|---|---|"]
    for f in doc["fasttracks"]:
        based_on = f"model: {f['modelled_on']}" if f.get("model", True) else f["modelled_on"]
        parts.append(f"| {f['id']} | {', '.join(f['accepts'])} | {based_on} |")
    parts.append("")
    text = "\n".join(parts)
    return text.rstrip() + "\n" + required_failures(doc, LIMIT - _RESERVE - len(text.encode("utf-8")))


def required_failures(doc: RunDoc, budget: int) -> str:
    """Per failing scenario of a required cell: its failures and the expected and observed sequence diagrams,
    as many as ``budget`` bytes hold (the rest are named, and are in ``index.html``)."""
    failing = [(c, s) for c in doc["cells"] if c["required"]
               for s in c["scenarios"] if s["outcome"] in ("fail", "error")]
    if not failing:
        return ""
    entries = {e["id"]: e for e in doc.get("scenarios", [])}
    out = ["", "## Failing scenarios of required cells", ""]
    used = len("\n".join(out).encode("utf-8"))
    left: list[str] = []
    for c, s in failing:
        block = _scenario_block(c, s, entries.get(s["id"]))
        size = len(block.encode("utf-8")) + 1
        if left or used + size > budget:
            left.append(f"{s['id']} in {c['gateway']} × {c['fasttrack']}")
            continue
        out.append(block)
        used += size
    if left:
        out += [f"{len(left)} more failing scenarios of required cells are in `index.html` (not shown here to keep "
                f"this page under {LIMIT // 1024} KiB): {', '.join(left)}.", ""]
    return "\n".join(out).rstrip() + "\n"


def _scenario_block(cell: CellDoc, sc: ScenarioDoc, entry: ScenarioEntryDoc | None) -> str:
    lines = [f"### {sc['id']} in {cell['gateway']} × {cell['fasttrack']}: {sc['outcome']}", ""]
    if sc["error"]:
        lines.append(f"- error: {sc['error']}")
    for f in sc["failures"]:
        failure = Failure.from_json(f)
        lines.append(f"- {one_line(failure)} ({failure.where})")
    lines.append("")
    if entry and entry.get("expected"):
        lines += ["Expected sequence (what the scenario requires on each hop):", "", "```mermaid",
                  diagrams.expected_mermaid(entry).rstrip("\n"), "```", ""]
    lines += ["Observed sequence (what crossed each hop; ❌ marks the failing hops):", "", "```mermaid",
              diagrams.mermaid(sc).rstrip("\n"), "```", ""]
    return "\n".join(lines)


def security_section(doc: RunDoc) -> list[str]:
    found = security_failures(doc)
    if not found:
        return []
    lines = ["## Security scenarios that fail", ""]
    for sid, cells, first in found:
        req = [c for c in cells if c["required"]]
        names = ", ".join(("**" if c["required"] else "") + f"{c['gateway']}×{c['fasttrack']}"
                          + ("**" if c["required"] else "") for c in cells)
        what = first["error"] or (one_line(Failure.from_json(first["failures"][0])) if first["failures"] else "failed")
        lines.append(f"- `{sid}` fails in {len(cells)} cell{'s' if len(cells) > 1 else ''}"
                     f"{f' ({len(req)} required)' if req else ''}: {names}. First: {what}")
    return [*lines, ""]


def peer_section(doc: RunDoc) -> list[str]:
    """A real release against the reference profile of its generation (``peer run``)."""
    peer = doc.get("peer")
    if not peer:
        return []
    diffs = peer["differences"]
    verdict = ("same as the reference profile" if not diffs else
               f"{len(diffs)} differences, {peer['undocumented']} undocumented")
    lines = [f"## backend.ai-webserver {peer['release']} versus reference profile `{peer['reference_profile']}`: "
             f"{verdict}", ""]
    if not diffs:
        lines += ["The real release behaved exactly as its reference profile on every scenario and FastTrack "
                  "column (same outcome, same first failing step, hop and check).", ""]
    else:
        rows = []
        for d in diffs:
            first = d["peer_failure"] or d["reference_failure"]
            rows.append([d["fasttrack"], d["scenario"], d["peer_outcome"], d["reference_outcome"],
                         first["hop"] if first else "", subject(first) if first else "",
                         d["finding"] or "**UNDOCUMENTED**"])
        lines += [tabulate(rows, headers=["FastTrack", "scenario", "release", "reference", "hop", "check",
                                          "finding"], tablefmt="github"), ""]
    for f in peer["findings"]:
        lines += [f"- **{f['id']}** ({f['kind']}, {f['severity']}): {f['title']}. {f['explanation']} "
                  f"Hop `{f['hop']}`, scenario `{f['scenario']}`. Evidence: {f['evidence']}"]
    return [*lines, ""] if peer["findings"] else lines


def write(doc: RunDoc, path: Path) -> Path:
    path.write_text(render(doc), encoding="utf-8")
    return path
