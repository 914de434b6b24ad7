"""The result model every report reads. ``to_json`` is the source of truth (``matrix.json``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, cast

import harness
from harness.protocol.hops import HopRecord
from harness.results.document import (
    SCHEMA,
    CauseDoc,
    CellDoc,
    CountsDoc,
    FailureDoc,
    FastTrackDoc,
    GatewayDoc,
    HopDoc,
    RunDoc,
    ScenarioDoc,
    ScenarioEntryDoc,
    StepDoc,
)
from harness.scenario.failures import Cause, Failure, one_line

Outcome = Literal["pass", "fail", "error", "skip"]
Verdict = Literal["compatible", "incompatible", "error", "unknown"]


@dataclass
class StepResult:
    name: str
    outcome: Outcome
    hops: dict[str, HopRecord] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    note: str | None = None  # e.g. FastTrack's own reason for rejecting the request
    upstream_count: int = 0  # requests that reached FastTrack during the step
    ws: dict[str, Any] | None = None  # WebSocket steps: messages each side received, close codes
    judged: int = 0  # checks judged (contract checks, and model checks against the mock FastTrack)
    not_applicable: int = 0  # checks not judged: model checks against a real FastTrack, or the whole step

    def to_json(self) -> StepDoc:
        out: StepDoc = {
            "name": self.name,
            "outcome": self.outcome,
            "note": self.note,
            "checks": {"judged": self.judged, "not_applicable": self.not_applicable},
            "failures": [cast(FailureDoc, f.to_json()) for f in self.failures],
            "hops": {name: cast(HopDoc, rec.to_json()) for name, rec in self.hops.items()},
        }
        if self.ws is not None:
            out["websocket"] = self.ws
        return out


@dataclass
class ScenarioResult:
    id: str
    title: str
    file: str
    outcome: Outcome
    steps: list[StepResult] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    error: str | None = None
    versions_seen: list[list[str]] = field(default_factory=list)  # per hop-3 record, the header's lines
    secrets: set[str] = field(default_factory=set)  # values to redact; never serialised
    duration_ms: float = 0.0
    skipped: str | None = None  # why the outcome is 'skip' (e.g. nothing applicable against a real FastTrack)
    security: bool = False  # a security failure (set by the matrix run: a security scenario in a required cell)
    finding: str | None = None  # the documented finding (harness/data/peer-findings.yaml) this failure is
    logins: int = 1  # users logged in through /server/login (a users: 2 scenario logs in two)

    @property
    def judged(self) -> int:
        return sum(s.judged for s in self.steps)

    @property
    def not_applicable(self) -> int:
        return sum(s.not_applicable for s in self.steps)

    @property
    def reason(self) -> str | None:
        if self.error:
            return self.error
        if self.skipped:
            return self.skipped
        if not self.failures:
            return None
        return f"{self.marks()}{one_line(self.failures[0])}"

    def marks(self) -> str:
        """``SECURITY [finding] `` for a security failure or a documented defect: every report renders the reason,
        so the mark and the finding id travel with it."""
        if self.outcome != "fail":
            return ""
        marks = (["SECURITY"] if self.security else []) + ([f"[{self.finding}]"] if self.finding else [])
        return f"{' '.join(marks)} " if marks else ""

    def to_json(self) -> ScenarioDoc:
        return {
            "id": self.id,
            "title": self.title,
            "file": self.file,
            "outcome": self.outcome,
            "reason": self.reason,
            "error": self.error,
            "failures": [cast(FailureDoc, f.to_json()) for f in self.failures],
            "checks": {"judged": self.judged, "not_applicable": self.not_applicable},
            "security": self.security,
            "finding": self.finding,
            "steps": [s.to_json() for s in self.steps],
            "duration_ms": round(self.duration_ms, 1),
        }


@dataclass
class CellResult:
    gateway: str
    fasttrack: str
    required: bool
    verdict: Verdict = "unknown"
    fasttrack_version: str | None = None
    reason: str | None = None
    scenarios: list[ScenarioResult] = field(default_factory=list)
    causes: list[Cause] = field(default_factory=list)  # root causes of an incompatible cell, largest group first
    # Why no version is known (harness.judge.cell_verdict.VersionProblem:
    # not-observed, missing, duplicated, garbled, varied).
    version_problem: str | None = None

    def counts(self) -> CountsDoc:
        n = {o: sum(1 for s in self.scenarios if s.outcome == o) for o in ("pass", "fail", "error", "skip")}
        return {"pass": n["pass"], "fail": n["fail"], "error": n["error"], "skip": n["skip"]}

    def to_json(self) -> CellDoc:
        return {
            "gateway": self.gateway,
            "fasttrack": self.fasttrack,
            "fasttrack_version": self.fasttrack_version,
            "version_problem": self.version_problem,
            "verdict": self.verdict,
            "required": self.required,
            "reason": self.reason,
            "causes": [cast(CauseDoc, c.to_json()) for c in self.causes],
            "security": any(s.security for s in self.scenarios),
            "counts": self.counts(),
            "scenarios": [s.to_json() for s in self.scenarios],
        }


@dataclass(repr=False)
class RunResult:
    cells: list[CellResult]
    gateways: list[GatewayDoc]
    fasttracks: list[FastTrackDoc]
    scenarios: list[ScenarioEntryDoc]
    started_at: str = ""
    duration_s: float = 0.0
    exchanges: int = 0
    interrupted: str | None = None  # the signal that stopped the run: the document holds what had finished

    def to_json(self) -> RunDoc:
        doc: RunDoc = {
            "schema": SCHEMA,
            "harness": harness.build(),
            "started_at": self.started_at,
            "duration_s": round(self.duration_s, 3),
            "http_exchanges": self.exchanges,
            "notice": ("FastTrack is not public: every FastTrack profile here is a model (see fasttracks[].model)."
                       if all(f.get("model", True) for f in self.fasttracks) else
                       "FastTrack is not public: the mock columns are models; a real FastTrack (fasttracks[].model "
                       "false) is judged on the contract checks only (model checks are not applicable)."),
            "gateways": self.gateways,
            "fasttracks": self.fasttracks,
            "scenarios": self.scenarios,
            "cells": [c.to_json() for c in self.cells],
        }
        if self.interrupted:  # right after the schema, where a reader looks first
            return {"schema": SCHEMA, "partial": True, "interrupted": self.interrupted, **doc}
        return doc

    def __repr__(self) -> str:
        # Short on purpose: asyncio.run formats the finished main task, result included, when it restores the
        # SIGINT handler; a full dataclass repr of a matrix costs ~0.3 s there.
        runs = sum(len(c.scenarios) for c in self.cells)
        return f"<RunResult {len(self.cells)} cells, {runs} scenario runs, {self.duration_s:.2f} s>"

    def secrets(self) -> set[str]:
        out: set[str] = set()
        for c in self.cells:
            for s in c.scenarios:
                out |= s.secrets
        return out
