"""The gate's verdict and reasons as text (the terminal) and as Markdown (a PR comment, the step summary)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypedDict

from tabulate import tabulate

from harness.compare.gate.baseline import BASELINE_SCHEMA, BaselineDoc
from harness.compare.gate.evaluate import judged
from harness.compare.gate.reasons import KNOWN, GateResult, KnownIssue, Reason
from harness.results.document import RunDoc

MD_ROWS = 60  # rows per table of the Markdown summary
MARK = {"deployable": "✅", "not deployable": "❌", "unknown": "❔"}


def _md(text: Any) -> str:
    s = "" if text is None else " ".join(str(text).split())
    return s.replace("|", "\\|")


def _rows(reasons: Sequence[Reason], md: bool) -> list[list[str]]:
    esc = _md if md else (lambda t: "" if t is None else str(t))
    return [[r.kind, esc(r.where), esc(r.describe())] for r in reasons]



def shown_path(path: str | Path) -> str:
    """A path as a PR comment may show it: relative to the working directory or to the harness checkout (the
    built-in policy), else only its name; never an absolute path of this machine."""
    p = Path(path)
    for base in (Path.cwd(), Path(__file__).resolve().parents[3]):
        try:
            return p.resolve().relative_to(base.resolve()).as_posix()
        except ValueError:
            continue
    return p.name


class RowJudged(TypedDict):
    row: str
    judged_as: str | None
    judged_by: str | None


def judged_as(run: RunDoc) -> list[RowJudged]:
    """Each real row of the run and the profile it was judged as (and how that was decided)."""
    return [{"row": g.get("id"), "judged_as": g.get("judged_as"), "judged_by": g.get("judged_by")}
            for g in run.get("gateways") or [] if isinstance(g, dict) and g.get("external")]


def _judged_lines(run: RunDoc) -> list[str]:
    return [f"{r['row']} is a real gateway judged as {r['judged_as']}"
            + (f" ({r['judged_by']})" if r.get("judged_by") else "") for r in judged_as(run)]


def render_markdown(result: GateResult, run: RunDoc, policy: Mapping[str, frozenset[str]], baseline_name: str,
                    policy_name: str, baseline: BaselineDoc | None = None) -> str:
    cells = run["cells"]
    required = judged(run, baseline or {"schema": BASELINE_SCHEMA, "cells": []}, policy).required
    req = len(required)
    compat = sum(1 for c in cells if (c["gateway"], c["fasttrack"]) in required and c["verdict"] == "compatible")
    head = "baseline updated" if result.updated else result.verdict
    lines = [
        f"## {MARK[result.verdict]} harness gate: **{head}**",
        "",
        f"{len(cells)} cells in the run, {compat}/{req} required cells compatible; baseline `{baseline_name}`, "
        f"policy `{policy_name}`{', --strict' if result.strict else ''}.",
        "",
        *(f"{line}." for line in _judged_lines(run)),
    ]
    for title, rs in result.groups():
        if not rs:
            continue
        table = tabulate(_rows(rs[:MD_ROWS], md=True), headers=["reason", "where", "detail"], tablefmt="github")
        if len(rs) > MD_ROWS:  # a PR comment holds 65536 characters
            table += f"\n\n… and {len(rs) - MD_ROWS} more (`harness gate --json` lists them all)"
        if title == KNOWN:
            lines += [f"<details><summary>{title} ({len(rs)})</summary>", "", table, "", "</details>", ""]
        else:
            lines += [f"### {title} ({len(rs)})", "", table, ""]
    if not result.reasons:
        lines += ["The run matches the baseline.", ""]
    lines.append(f"_{run.get('notice', '')}_")
    return "\n".join(lines).rstrip() + "\n"


def render_text(result: GateResult, run: RunDoc | None = None) -> str:
    head = "baseline updated" if result.updated else result.verdict
    lines = [f"gate: {head} (exit {result.exit_code})", *(_judged_lines(run) if run else [])]
    for title, rs in result.groups():
        if not rs:
            continue
        if title == KNOWN:
            lines.append(f"{len(rs)} required cell(s) not compatible, as in the baseline (accepted)")
            lines += [f"  KnownIssue {r.where}: accepted as {', '.join(r.findings)}" for r in rs
                      if isinstance(r, KnownIssue) and r.findings]
            continue
        lines += ["", f"{title}:", tabulate(_rows(rs, md=False), headers=["reason", "where", "detail"],
                                             tablefmt="simple", maxcolwidths=[None, None, 90])]
    return "\n".join(lines)


