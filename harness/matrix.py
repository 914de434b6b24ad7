"""Policy: the verdict of a cell from its scenario outcomes and the FastTrack version it observed.

Precedence: ``error`` (harness or set-up failure, or a broken target: nothing can be concluded) >
``incompatible`` (a scenario failed) > ``unknown`` (FastTrack did not say which version it is, or said it
ambiguously, and nothing but the version header failed) > ``compatible``. A cell with no applicable scenario is
``unknown``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from harness.errors import EXIT_INCOMPATIBLE, EXIT_OK, EXIT_RUNTIME, ScenarioError
from harness.protocol import fasttrack_models, generations
from harness.protocol.fasttrack_models import VERSION_HEADER
from harness.results import CellResult, Verdict
from harness.scenario.failures import causes, reason
from harness.scenario.yamlnodes import LList, LMap, Source, kind, load

VERSION_SHAPE = re.compile(r"^\d+\.\d+(\.\d+)?([A-Za-z0-9.+-]*)$")
DEFAULT_POLICY = Path(__file__).parent / "data" / "support-policy.yaml"


def observed_version(seen: list[list[str]]) -> tuple[str | None, str | None]:
    """(version, problem) from the X-BackendAI-FastTrack-Version lines of every hop-3 record of a cell."""
    if not seen:
        return None, "no response from FastTrack was observed"
    values: set[str] = set()
    for lines in seen:
        if not lines:
            return None, "a FastTrack response carried no X-BackendAI-FastTrack-Version"
        if len(lines) > 1:
            return None, f"X-BackendAI-FastTrack-Version sent {len(lines)} times: {lines!r}"
        if not VERSION_SHAPE.match(lines[0].strip()):
            return None, f"X-BackendAI-FastTrack-Version is not a version: {lines[0]!r}"
        values.add(lines[0].strip())
    if len(values) > 1:
        return None, f"X-BackendAI-FastTrack-Version varied within the cell: {sorted(values)}"
    return values.pop(), None


def decide(cell: CellResult) -> tuple[Verdict, str | None]:
    """The verdict and its reason; an incompatible cell's reason is its root causes (``cell.causes``)."""
    cell.causes = []
    seen = [lines for s in cell.scenarios for lines in s.versions_seen]
    version, problem = observed_version(seen)
    cell.fasttrack_version = version
    ran = [s for s in cell.scenarios if s.outcome != "skip"]
    if not ran:
        return "unknown", "no applicable scenario ran in this cell"
    errors = [s for s in ran if s.outcome == "error"]
    if errors:
        return "error", f"{errors[0].id}: {errors[0].reason}"
    failed = [s for s in ran if s.outcome == "fail"]
    if failed and problem and all(f.what == "header" and f.name.lower() == VERSION_HEADER.lower()
                                  for s in failed for f in s.failures):
        # Everything else held: FastTrack only failed to say which version it is.
        return "unknown", problem
    if failed:
        cell.causes = causes((s.id, s.failures) for s in failed)
        return "incompatible", reason(cell.causes)
    if problem:
        return "unknown", problem
    return "compatible", None


def apply(cell: CellResult) -> CellResult:
    cell.verdict, cell.reason = decide(cell)
    return cell


def exit_code(doc: dict[str, Any]) -> int:
    """The exit code of ``run`` (and ``report``, ``report merge``) for a result document."""
    required = [c for c in doc["cells"] if c["required"]]
    if any(c["verdict"] == "error" for c in required):
        return EXIT_RUNTIME
    if any(c["verdict"] != "compatible" for c in required):
        return EXIT_INCOMPATIBLE
    return EXIT_OK


def load_policy(path: str | Path = DEFAULT_POLICY) -> dict[str, frozenset[str]]:
    """gateway profile id -> FastTrack profile ids it must support. Unknown ids are a usage error."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"cannot read support policy: {exc}", str(path)) from None
    src = Source(str(path), text)
    doc = load(src)
    if not isinstance(doc, LMap) or "required" not in doc or not isinstance(doc["required"], LMap):
        raise src.error("policy needs a mapping 'required: {gateway: [fasttrack, ...]}'", getattr(doc, "mark", (1, 1)))
    req = doc["required"]
    gw_names = generations.by_name()
    ft_ids = {m.id for m in fasttrack_models.MODELS}
    out: dict[str, frozenset[str]] = {}
    for gw, fts in req.items():
        if gw not in gw_names:
            raise ScenarioError(f"unknown gateway profile {gw!r}", str(path), *req.key_marks[gw], key=f"required.{gw}",
                                source_line=src.line(req.key_marks[gw][0]))
        if not isinstance(fts, LList):
            raise src.error("expected a list of FastTrack profile ids", req.value_marks[gw], f"required.{gw}")
        for i, ft in enumerate(fts):
            if isinstance(ft, dict | list):
                raise src.error(f"expected a FastTrack profile id, got {kind(ft)}", fts.item_marks[i],
                                f"required.{gw}[{i}]")
            if ft not in ft_ids:
                raise src.error(f"unknown FastTrack profile {ft!r} (known: {', '.join(sorted(ft_ids))})",
                                fts.item_marks[i], f"required.{gw}[{i}]")
        profile_id = gw_names[gw].id
        if profile_id in out:  # 'as-is' and 'G4' name one profile: two lists would silently drop one
            raise src.error(f"{gw!r} names profile {profile_id!r}, which the policy already lists",
                            req.key_marks[gw], f"required.{gw}")
        out[profile_id] = frozenset(str(f) for f in fts)
    if not any(out.values()):  # a gate on a policy that requires nothing could only ever say "deployable"
        raise src.error("the policy requires nothing: 'required' lists no FastTrack for any gateway",
                        doc.value_marks["required"], "required")
    return out
