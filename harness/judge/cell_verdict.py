"""The verdict of a cell from its scenario outcomes and the FastTrack version it observed; the exit code of a
result document.

Precedence: ``error`` (harness or set-up failure, or a broken target: nothing can be concluded) >
``incompatible`` (a scenario failed) > ``unknown`` (FastTrack did not say which version it is, or said it
ambiguously, and nothing but the version header failed) > ``compatible``. A cell with no applicable scenario is
``unknown``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from harness.errors import EXIT_INCOMPATIBLE, EXIT_OK, EXIT_RUNTIME
from harness.protocol.fasttrack_models import VERSION_HEADER
from harness.results.document import RunDoc
from harness.results.model import CellResult, Verdict
from harness.scenario.failures import Cause, causes, reason

VERSION_SHAPE = re.compile(r"^\d+\.\d+(\.\d+)?([A-Za-z0-9.+-]*)$")


VersionProblem = Literal["not-observed", "missing", "duplicated", "garbled", "varied"]


def observe_version(seen: list[list[str]]) -> tuple[str | None, VersionProblem | None, str | None]:
    """(version, problem kind, problem text) from the X-BackendAI-FastTrack-Version lines of every hop-3 record
    of a cell."""
    if not seen:
        return None, "not-observed", "no response from FastTrack was observed"
    values: set[str] = set()
    for lines in seen:
        if not lines:
            return None, "missing", "a FastTrack response carried no X-BackendAI-FastTrack-Version"
        if len(lines) > 1:
            return None, "duplicated", f"X-BackendAI-FastTrack-Version sent {len(lines)} times: {lines!r}"
        if not VERSION_SHAPE.match(lines[0].strip()):
            return None, "garbled", f"X-BackendAI-FastTrack-Version is not a version: {lines[0]!r}"
        values.add(lines[0].strip())
    if len(values) > 1:
        return None, "varied", f"X-BackendAI-FastTrack-Version varied within the cell: {sorted(values)}"
    return values.pop(), None, None


def observed_version(seen: list[list[str]]) -> tuple[str | None, str | None]:
    """(version, problem) from the X-BackendAI-FastTrack-Version lines of every hop-3 record of a cell."""
    version, _, problem = observe_version(seen)
    return version, problem


@dataclass(frozen=True, slots=True)
class CellVerdict:
    """What :func:`decide` concludes about a cell; :func:`apply` writes it onto the cell."""

    verdict: Verdict
    reason: str | None
    fasttrack_version: str | None = None  # the version FastTrack announced, if it announced exactly one
    version_problem: VersionProblem | None = None
    causes: tuple[Cause, ...] = ()  # the root causes of an incompatible cell


def decide(cell: CellResult) -> CellVerdict:
    """The verdict of ``cell`` and its reason (an incompatible cell's reason is its root causes), computed without
    touching the cell."""
    seen = [lines for s in cell.scenarios for lines in s.versions_seen]
    version, version_problem, problem = observe_version(seen)

    def verdict(v: Verdict, why: str | None, found: tuple[Cause, ...] = ()) -> CellVerdict:
        return CellVerdict(v, why, version, version_problem, found)

    ran = [s for s in cell.scenarios if s.outcome != "skip"]
    if not ran:
        why = next((s for s in cell.scenarios if s.skipped), None)
        if why is not None:  # e.g. nothing was applicable against a real FastTrack
            return verdict("unknown", f"nothing was judged: {why.id}: {why.skipped}")
        return verdict("unknown", "no applicable scenario ran in this cell")
    errors = [s for s in ran if s.outcome == "error"]
    if errors:
        return verdict("error", f"{errors[0].id}: {errors[0].reason}")
    failed = [s for s in ran if s.outcome == "fail"]
    if failed and problem and all(f.what == "header" and f.name.lower() == VERSION_HEADER.lower()
                                  for s in failed for f in s.failures):
        # Everything else held: FastTrack only failed to say which version it is.
        return verdict("unknown", problem)
    if failed:
        found = tuple(causes((s.id, s.failures) for s in failed))
        # The reason begins with the root causes (``N of M failing scenarios: ...``); a security failure follows
        # with its finding id, the mark every report shows.
        security = [s for s in failed if s.security]
        mark = f"; {security[0].marks()}{security[0].id}" if security else ""
        return verdict("incompatible", reason(found) + mark, found)
    if problem:
        return verdict("unknown", problem)
    return verdict("compatible", None)


def apply(cell: CellResult) -> CellResult:
    """``cell`` with its verdict, reason, root causes and observed FastTrack version set (see :func:`decide`)."""
    v = decide(cell)
    cell.verdict, cell.reason, cell.causes = v.verdict, v.reason, list(v.causes)
    cell.fasttrack_version, cell.version_problem = v.fasttrack_version, v.version_problem
    return cell


def exit_code(doc: RunDoc) -> int:
    """The exit code of ``run`` (and ``report``, ``report merge``) for a result document."""
    required = [c for c in doc["cells"] if c["required"]]
    if any(c["verdict"] == "error" for c in required):
        return EXIT_RUNTIME
    if any(c["verdict"] != "compatible" for c in required):
        return EXIT_INCOMPATIBLE
    return EXIT_OK
