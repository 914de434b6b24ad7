"""``matrix.json`` as types: what :meth:`harness.results.model.RunResult.to_json` writes, the one schema constant,
the one reader (``read``/``check``), the index of cells by (gateway, FastTrack) and a scenario's first failure.

Every consumer of a result document (the writers, the gate, diff, merge, repeat, the findings, the pytest plugin)
reads it through these types, so mypy checks each key it uses against what the model writes. ``check`` verifies
what the readers rely on being there; other keys a hand-made or older document may lack are read with ``.get``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, NotRequired, TypedDict, cast

from harness import errors

# @2: failures are structures (what, name, kind, fasttrack_reason, where: {file, line, col, text}) and cells carry
# their root causes; @1 had failures as (step, hop, check text, expected, actual, "file:line").
SCHEMA = "harness/matrix@2"
OLD_SCHEMAS = ("harness/matrix@1",)  # baselines can still be taken from them (outcomes only)


# --- the document -------------------------------------------------------------------------------------------------

class SpanDoc(TypedDict):
    """Where a check is written (:meth:`harness.errors.SourceSpan.to_json`)."""

    file: str
    line: int
    col: int
    text: str | None


class FailureDoc(TypedDict):
    """One failed check (:meth:`harness.scenario.failures.Failure.to_json`)."""

    step: str
    hop: str
    what: str
    name: str
    kind: str
    expected: str
    actual: str
    fasttrack_reason: str | None
    where: SpanDoc


class ChecksDoc(TypedDict):
    judged: int
    not_applicable: int


class HopDoc(TypedDict):
    """What crossed one hop (:meth:`harness.protocol.hops.HopRecord.to_json`): a request or a response."""

    hop: str
    method: NotRequired[str | None]  # requests
    path: NotRequired[str | None]
    query: NotRequired[str | None]
    status: NotRequired[int | None]  # responses
    reason: NotRequired[str | None]
    headers: list[list[str]]  # [name, value] in wire order
    body_size: int
    body: str  # the first 4 KiB, decoded


class StepDoc(TypedDict):
    name: str
    outcome: str
    note: str | None
    checks: ChecksDoc
    failures: list[FailureDoc]
    hops: dict[str, HopDoc]
    websocket: NotRequired[dict[str, object]]  # WebSocket steps: messages each side received, close codes


class ScenarioDoc(TypedDict):
    """One scenario run in one cell."""

    id: str
    title: str
    file: str
    outcome: str  # harness.results.model.Outcome
    reason: str | None
    error: str | None
    failures: list[FailureDoc]
    checks: ChecksDoc
    security: bool
    finding: str | None
    steps: list[StepDoc]
    duration_ms: float


class CauseDoc(TypedDict):
    """A root cause of a cell (:meth:`harness.scenario.failures.Cause.to_json`)."""

    count: int
    of: int
    hop: str
    what: str
    name: str
    kind: str
    expected: str
    actual: str
    fasttrack_reason: str | None
    scenarios: list[str]


CountsDoc = TypedDict("CountsDoc", {"pass": int, "fail": int, "error": int, "skip": int})


class CellDoc(TypedDict):
    gateway: str
    fasttrack: str
    fasttrack_version: str | None
    version_problem: str | None
    verdict: str  # harness.results.model.Verdict
    required: bool
    reason: str | None
    causes: list[CauseDoc]
    security: bool
    counts: CountsDoc
    scenarios: list[ScenarioDoc]


class GatewayDoc(TypedDict):
    """A row: a reference profile, or a real gateway judged as one (``external``)."""

    id: str
    generation: str
    title: str
    releases: str
    aliases: list[str]
    proposal: bool
    sources: list[str]
    external: NotRequired[bool]
    judged_as: NotRequired[str]
    judged_by: NotRequired[str]


class FastTrackDoc(TypedDict):
    """A column: a FastTrack model, or a real FastTrack (``model`` false, ``url``)."""

    id: str
    version: str | None
    title: str
    accepts: list[str]
    model: bool
    modelled_on: str
    disclaimer: str
    url: NotRequired[str]  # a real FastTrack
    fault: NotRequired[str]  # a fault column (harness.actors.faults): the fault, the model it wraps
    wraps: NotRequired[str]


class ScenarioEntryDoc(TypedDict):
    """A scenario of the run (``scenarios[]``): its file and what it requires on each hop."""

    id: str
    title: str
    file: str
    modes: list[str]
    source: str | None
    checks: dict[str, int]  # contract, model
    expected: list[dict[str, Any]]  # harness.scenario.outline.outline


class FirstFailure(TypedDict):
    """What a re-run or another build must reproduce for a failure to count as the same."""

    step: str
    hop: str  # "error" for a scenario that did not run to a verdict
    what: str
    name: str  # for an error: its message
    kind: str


class DifferenceDoc(TypedDict):
    """A scenario in a column where a real release and its reference profile differ (``peer.differences``)."""

    fasttrack: str
    scenario: str
    peer_outcome: str
    reference_outcome: str
    peer_failure: FirstFailure | None
    reference_failure: FirstFailure | None
    finding: str | None


class FindingDoc(TypedDict):
    id: str
    kind: str
    title: str
    severity: str
    scenario: str
    hop: str
    check: str
    explanation: str
    evidence: str


class PeerDoc(TypedDict):
    """``peer run``: the real release against the reference profile of its generation."""

    release: str
    row: str
    reference_profile: str
    differences: list[DifferenceDoc]
    undocumented: int
    findings: list[FindingDoc]
    build: NotRequired[dict[str, object]]  # the installed build (harness.peers.builds)


class FlakyScenarioDoc(TypedDict):
    id: str
    outcomes: list[str | None]
    first_failures: list[str | None]


class FlakyCellDoc(TypedDict):
    gateway: str
    fasttrack: str
    verdicts: list[str | None]
    fasttrack_versions: NotRequired[list[str | None]]
    scenarios: list[FlakyScenarioDoc]


class RepeatDoc(TypedDict):
    """``run --repeat N``: what varied between the runs."""

    runs: int
    flaky: list[FlakyCellDoc]


class RunDoc(TypedDict):
    """``matrix.json``."""

    schema: str
    partial: NotRequired[Literal[True]]  # an interrupted run: the document holds what had finished
    interrupted: NotRequired[str | None]
    harness: dict[str, str | None]  # version, commit
    started_at: str
    duration_s: float
    http_exchanges: int
    notice: str
    gateways: list[GatewayDoc]
    fasttracks: list[FastTrackDoc]
    scenarios: list[ScenarioEntryDoc]
    cells: list[CellDoc]
    peer: NotRequired[PeerDoc]
    repeat: NotRequired[RepeatDoc]


Key = tuple[str, str]  # (gateway, FastTrack): a cell


# --- reading ------------------------------------------------------------------------------------------------------

def read_json(path: str | Path) -> Any:
    """A JSON file, or a usage error naming it."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise errors.UsageError(f"cannot read {path}: {exc}") from None


PROFILE_LISTS = ("gateways", "fasttracks", "scenarios")


def check(doc: Any, name: str, *, old_ok: bool = False, whole: bool = False) -> RunDoc:
    """A result document with the fields the readers rely on, or a usage error naming what is wrong. ``old_ok``
    accepts documents of :data:`OLD_SCHEMAS` (for their outcomes only); ``whole`` also requires the profile lists
    the writers render."""
    if not isinstance(doc, dict):
        raise errors.UsageError(f"{name}: not a harness result document (expected a JSON object)")
    if doc.get("schema") != SCHEMA and not (old_ok and doc.get("schema") in OLD_SCHEMAS):
        older = " (written by an older harness: re-run it, or re-render it with that version)" if doc.get(
            "schema") in OLD_SCHEMAS else ""
        raise errors.UsageError(f"{name}: schema is {doc.get('schema')!r}, expected {SCHEMA!r}{older}")
    cells = doc.get("cells")
    if not isinstance(cells, list):
        raise errors.UsageError(f"{name}: 'cells' must be a list")
    for i, c in enumerate(cells):
        if not isinstance(c, dict) or not all(k in c for k in ("gateway", "fasttrack", "verdict", "scenarios")):
            raise errors.UsageError(f"{name}: cells[{i}] needs gateway, fasttrack, verdict and scenarios")
        for j, s in enumerate(c["scenarios"]):
            if not isinstance(s, dict) or "id" not in s or "outcome" not in s:
                raise errors.UsageError(f"{name}: cells[{i}].scenarios[{j}] needs id and outcome")
    for key in PROFILE_LISTS if whole else ():
        if not isinstance(doc.get(key), list):
            raise errors.UsageError(f"{name}: '{key}' must be a list")
    return cast(RunDoc, doc)


def read(path: str | Path, *, whole: bool = False) -> RunDoc:
    """The result document at ``path`` (:func:`check`), or a usage error."""
    return check(read_json(path), str(path), whole=whole)


# --- indexes ------------------------------------------------------------------------------------------------------

def key(cell: CellDoc) -> Key:
    return cell["gateway"], cell["fasttrack"]


def cells_by_key(doc: RunDoc) -> dict[Key, CellDoc]:
    """The cells of a document by (gateway, FastTrack), in document order."""
    return {(c["gateway"], c["fasttrack"]): c for c in doc["cells"]}


def real_rows(doc: RunDoc) -> dict[str, str]:
    """Row label -> the profile a real gateway row was judged as (``gateways[]``: ``external``, ``judged_as``)."""
    out: dict[str, str] = {}
    for g in doc.get("gateways") or []:
        if isinstance(g, dict) and g.get("external"):
            judged_as = g.get("judged_as")
            if not isinstance(judged_as, str):
                raise errors.UsageError(f"gateway row {g.get('id')!r} is a real gateway but the run does not say "
                                        "which profile it was judged as (gateways[].judged_as)")
            out[str(g.get("id"))] = judged_as
    return out


def first_failure(scenario: ScenarioDoc, *, error: bool = True) -> FirstFailure | None:
    """The scenario's first failure (step, hop, what, name, kind), or, with ``error``, its error as one
    (hop ``error``, the message as its name); None when it has neither."""
    fails = scenario.get("failures") or []
    if fails:
        f = fails[0]
        return {"step": f["step"], "hop": f["hop"], "what": f["what"], "name": f["name"], "kind": f["kind"]}
    if error and scenario.get("error"):
        return {"step": "", "hop": "error", "what": "error", "name": str(scenario["error"]), "kind": ""}
    return None


def subject(failure: FirstFailure) -> str:
    """What a (first) failure checked, e.g. ``header Cookie``; an error's message."""
    return f"{failure['what']} {failure['name']}" if failure["name"] else failure["what"]


def failure_text(failure: FirstFailure) -> str:
    """``step / hop / what (kind)``; ``error: message`` for an error."""
    if failure["hop"] == "error" and failure["what"] == "error":
        return f"error: {failure['name']}"
    return f"{failure['step']} / {failure['hop']} / {subject(failure)} ({failure['kind']})"
