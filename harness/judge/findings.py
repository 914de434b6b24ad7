"""Real release versus its reference profile: every difference is either a documented finding or is reported
as undocumented (never silence).

Findings are data (``harness/data/peer-findings.yaml``), written by people from evidence; this module only
matches differences to them.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path

from harness.protocol import generations
from harness.results.document import (
    DifferenceDoc,
    FindingDoc,
    FirstFailure,
    RunDoc,
    ScenarioDoc,
    first_failure,
    subject,
)
from harness.results.model import ScenarioResult
from harness.scenario.failures import Failure
from harness.scenario.yamlnodes import LList, LMap, Source, load

DEFAULT_FINDINGS = Path(__file__).resolve().parents[1] / "data" / "peer-findings.yaml"
_KEYS = ("id", "kind", "title", "releases", "scenario", "step", "hop", "check", "explanation", "evidence",
         "severity", "profiles")
KINDS = ("difference", "weakness", "defect")


@dataclass(frozen=True)
class Finding:
    id: str
    title: str
    releases: tuple[str, ...]  # version globs
    scenario: str
    hop: str
    check: str  # what failed, as reports name it: "header Cookie", "status", "websocket close code"
    explanation: str
    step: str | None = None
    evidence: str = ""
    severity: str = "info"
    # "difference": explains where a release differs from its reference profile; "weakness": a behaviour the
    # release shares with its profile (so no difference shows) that users must know; "defect": a failure of the
    # contract the releases and the reference ``profiles`` that reproduce them share: the scenario states the
    # contract and fails there, and the failure carries this id (a baseline may accept it under that id).
    kind: str = "difference"
    profiles: tuple[str, ...] = ()  # reference gateway profiles that reproduce a defect

    def applies_to(self, version: str) -> bool:
        return any(fnmatch.fnmatch(version, r) for r in self.releases)

    def explains(self, gateway: str, profile: str, scenario: str, failure: Failure) -> bool:
        """A defect's failure: this scenario, hop, what was checked and step, on one of its profiles or releases."""
        return (self.kind == "defect" and scenario == self.scenario
                and (profile in self.profiles or self.applies_to(gateway))
                and failure.hop == self.hop and failure.subject.lower() == self.check.lower()
                and (self.step is None or failure.step == self.step))

    def matches(self, version: str, diff: Difference) -> bool:
        failure = diff.peer_failure or diff.reference_failure
        if self.kind != "difference" or not self.applies_to(version) or diff.scenario != self.scenario:
            return False
        if failure is None:
            return False
        return (failure["hop"] == self.hop and subject(failure).lower() == self.check.lower()
                and (self.step is None or failure["step"] == self.step))

    def to_json(self) -> FindingDoc:
        return {"id": self.id, "kind": self.kind, "title": self.title, "severity": self.severity,
                "scenario": self.scenario,
                "hop": self.hop, "check": self.check, "explanation": self.explanation, "evidence": self.evidence}


@dataclass
class Difference:
    fasttrack: str
    scenario: str
    peer_outcome: str
    reference_outcome: str
    peer_failure: FirstFailure | None
    reference_failure: FirstFailure | None
    finding: str | None = None

    def to_json(self) -> DifferenceDoc:
        return {"fasttrack": self.fasttrack, "scenario": self.scenario, "peer_outcome": self.peer_outcome,
                "reference_outcome": self.reference_outcome, "peer_failure": self.peer_failure,
                "reference_failure": self.reference_failure, "finding": self.finding}


def load_findings(path: str | Path = DEFAULT_FINDINGS) -> list[Finding]:
    src = Source(str(path), Path(path).read_text(encoding="utf-8"))
    doc = load(src)
    if not isinstance(doc, LMap) or not isinstance(doc.get("findings"), LList):
        raise src.error("expected 'findings:' with a list", getattr(doc, "mark", (1, 1)))
    out = []
    for i, item in enumerate(doc["findings"]):
        mark = doc["findings"].item_marks[i]
        if not isinstance(item, LMap):
            raise src.error("a finding is a mapping", mark, f"findings[{i}]")
        for key in item:
            if key not in _KEYS:
                raise src.error(f"unknown key '{key}' (allowed: {', '.join(_KEYS)})", item.key_marks[key],
                                f"findings[{i}].{key}")
        missing = [k for k in ("id", "title", "releases", "scenario", "hop", "check", "explanation") if k not in item]
        if missing:
            raise src.error(f"finding lacks {', '.join(missing)}", mark, f"findings[{i}]")
        out.append(Finding(
            id=str(item["id"]), title=str(item["title"]), releases=tuple(str(r) for r in item["releases"]),
            scenario=str(item["scenario"]), hop=str(item["hop"]), check=str(item["check"]),
            explanation=str(item["explanation"]).strip(), step=item.get("step"),
            evidence=str(item.get("evidence", "")).strip(), severity=str(item.get("severity", "info")),
            kind=str(item.get("kind", "difference")), profiles=tuple(str(p) for p in item.get("profiles") or ())))
        if out[-1].kind not in KINDS:
            raise src.error(f"kind must be one of {', '.join(KINDS)}", item.value_marks["kind"], f"findings[{i}].kind")
        if (out[-1].kind == "defect") != bool(out[-1].profiles or "profiles" in item):
            raise src.error("a defect names the reference 'profiles' that reproduce it (and only a defect does)",
                            mark, f"findings[{i}]")
        unknown = [p for p in out[-1].profiles if p not in generations.by_name()]
        if unknown:
            raise src.error(f"unknown gateway profile {unknown[0]!r}", item.value_marks["profiles"],
                            f"findings[{i}].profiles")
    ids = [f.id for f in out]
    dup = next((x for x in ids if ids.count(x) > 1), None)
    if dup is not None:
        raise src.error(f"duplicate finding id {dup!r}", doc.mark, "findings")
    return out


def explain(findings: list[Finding], gateway: str, profile: str, result: ScenarioResult) -> str | None:
    """The id of the defect a failing scenario's first failure is, or None."""
    if result.outcome != "fail" or not result.failures:
        return None
    return next((f.id for f in findings if f.explains(gateway, profile, result.id, result.failures[0])), None)


def compare(peer_doc: RunDoc, peer_row: str, reference_doc: RunDoc, reference_row: str,
            version: str, findings: list[Finding]) -> list[Difference]:
    """Scenario by scenario and column by column: outcome or first failing (step, hop, what, kind) differs."""
    def row(doc: RunDoc, label: str) -> dict[tuple[str, str], ScenarioDoc]:
        return {(c["fasttrack"], s["id"]): s for c in doc["cells"] if c["gateway"] == label for s in c["scenarios"]}

    peer, ref = row(peer_doc, peer_row), row(reference_doc, reference_row)
    diffs = []
    for key in sorted(set(peer) | set(ref)):
        p, r = peer.get(key), ref.get(key)
        p_out, r_out = (p["outcome"] if p else "absent"), (r["outcome"] if r else "absent")
        p_fail, r_fail = (first_failure(p) if p else None), (first_failure(r) if r else None)
        if p_out == r_out and p_fail == r_fail:
            continue
        diff = Difference(key[0], key[1], p_out, r_out, p_fail, r_fail)
        diff.finding = next((f.id for f in findings if f.matches(version, diff)), None)
        diffs.append(diff)
    return diffs


def annotate(peer_doc: RunDoc, *, version: str, profile: str, peer_row: str,
             reference_doc: RunDoc, findings: list[Finding]) -> list[Difference]:
    """Attach the comparison to the peer's result document (reports render ``doc['peer']``)."""
    diffs = compare(peer_doc, peer_row, reference_doc, profile, version, findings)
    used = {d.finding for d in diffs if d.finding}
    peer_doc["peer"] = {
        "release": version,
        "row": peer_row,
        "reference_profile": profile,
        "differences": [d.to_json() for d in diffs],
        "undocumented": sum(1 for d in diffs if d.finding is None),
        "findings": [f.to_json() for f in findings
                     if f.id in used or (f.kind in ("weakness", "defect") and f.applies_to(version))],
    }
    return diffs
