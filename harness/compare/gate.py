"""``python -m harness gate``: may this change ship? A run compared with the support policy and a committed baseline.

Reads only result documents (``verdict.json`` dicts), the compact baseline (:func:`baseline_from`) and the support
policy
(:func:`harness.judge.support_policy.load_policy`). Like Pact's ``can-i-deploy`` the answer is tri-state, with typed
reasons:

* ``deployable`` (exit 0): nothing got worse on a required cell;
* ``not deployable`` (exit 1): a required cell or scenario that passed in the baseline does not now
  (:class:`Regression`), a required cell fails and the baseline does not accept that failure
  (:class:`RequiredCellFailing`), a security failure or documented defect the baseline does not accept under its
  finding id (:class:`SecurityFailure`, :class:`DefectNotAccepted`), or ``--strict`` and the run differs at all;
* ``unknown`` (exit 3): the run cannot tell: a required cell is missing (:class:`RequiredCellMissing`), is
  ``unknown``/``error`` where the baseline does not say so (:class:`RequiredCellUnknown`), a required scenario
  stopped running (:class:`ScenarioNotRun`), or a required FastTrack never answered (:class:`VersionNotObserved`).

``not deployable`` wins over ``unknown``. Whatever the run shares with the baseline is accepted
(:class:`KnownIssue`): the baseline is a ratchet. Improvements, new or removed cells and scenarios, changes of
cells the policy does not require, policy changes and flaky results are reported and fail only under ``--strict``.
``--confirm N`` re-runs each suspected regression N times (only its cell and scenario, through the engine, on the
same target); if the outcome flips, it is reported as :class:`Flaky` instead.

A real gateway row (``gateways[]``: ``external``, ``judged_as``) is judged as the profile it claims: that profile's
required cells and baseline entries apply to the row, under its own label (:func:`judged`). A real row is only
ever re-run on its own target (:class:`EngineRunner`), never on the reference profile of that name.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args

from tabulate import tabulate

from harness import errors
from harness.engine import target_options, workers
from harness.engine.matrix_run import Options
from harness.engine.selection import DEFAULT_SCENARIOS, select
from harness.engine.targets import FastTrackTarget, JudgedAs, ReferenceLauncher
from harness.judge import support_policy
from harness.peers import identify
from harness.protocol import fasttrack_models
from harness.report import output
from harness.results.model import SCHEMA, Outcome, Verdict
from harness.results.redact import Redactor

BASELINE_SCHEMA = "harness/baseline@1"
VERDICTS: tuple[str, ...] = get_args(Verdict)
OUTCOMES: tuple[str, ...] = get_args(Outcome)
RESULT_SCHEMA = SCHEMA
OLD_RESULT_SCHEMAS = ("harness/matrix@1",)  # baselines can still be taken from them (outcomes only)
DEFAULT_BASELINE = "reports/baseline.json"

EXIT_DEPLOYABLE = 0
EXIT_NOT_DEPLOYABLE = 1
EXIT_UNKNOWN = 3

Effect = Literal["not deployable", "unknown", "info"]
GateVerdict = Literal["deployable", "not deployable", "unknown"]
EXIT_CODES: dict[str, int] = {"deployable": EXIT_DEPLOYABLE, "not deployable": EXIT_NOT_DEPLOYABLE,
                              "unknown": EXIT_UNKNOWN}
KNOWN = "Accepted in the baseline"
MD_ROWS = 60  # rows per table of the Markdown summary
MARK = {"deployable": "✅", "not deployable": "❌", "unknown": "❔"}

EPILOG = """verdicts and exit codes:
  0  deployable      no required cell or scenario got worse than the baseline
  1  not deployable  a Regression (a required cell/scenario passed in the baseline and does not now), a required
                     cell failing that the baseline does not accept, or --strict and the run differs at all
  2  usage error     bad option, unreadable run/baseline/policy file
  3  unknown         cannot tell: a required cell missing from the run, 'unknown'/'error' where the baseline does
                     not say so, a required scenario no longer run, a required FastTrack version never answered
'not deployable' wins over 'unknown'. Failures the baseline already records are accepted (the baseline is a
ratchet); improvements, new/removed cells and scenarios and flaky results are reported and fail only with --strict.
--update-baseline writes the baseline from the run (unless required cells are missing: exit 3) and exits 0.
A real gateway (--peer, --gateway-cmd, --gateway-url, or a --run document's real row) is judged as the profile
it claims (--judge-as PROFILE, or auto: identify first); --confirm re-runs that same target (with --run: give
the target option it ran with). Empty or contradictory target options are usage errors (2).
"""


# --- typed reasons ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Reason:
    """Why the gate decided what it did. ``effect`` is what it does without ``--strict``; ``strict`` whether
    ``--strict`` turns it into ``not deployable``."""

    effect: ClassVar[Effect] = "info"
    strict: ClassVar[bool] = False

    @property
    def kind(self) -> str:
        return type(self).__name__

    @property
    def where(self) -> str:
        g, f, s = (getattr(self, k, None) for k in ("gateway", "fasttrack", "scenario"))
        cell = f"{g}×{f}" if g is not None else f"FastTrack {f}"
        return f"{cell}/{s}" if s else cell

    def describe(self) -> str:
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "effect": self.effect, "where": self.where, **asdict(self),
                "message": self.describe()}


def _state(value: str | None) -> str:
    return value if value is not None else "absent"


@dataclass(frozen=True)
class Regression(Reason):
    """A required cell (scenario=None) or scenario that was compatible/pass in the baseline and is not now."""

    gateway: str
    fasttrack: str
    scenario: str | None
    was: str
    now: str
    detail: str | None = None
    confirmed: int = 0  # re-runs (--confirm) that reproduced it
    effect: ClassVar[Effect] = "not deployable"

    def describe(self) -> str:
        what = f"scenario {self.scenario}" if self.scenario else "required cell"
        again = f"; reproduced in {self.confirmed} re-run(s)" if self.confirmed else ""
        detail = f": {self.detail}" if self.detail else ""
        return f"{what} was {self.was} in the baseline, is {self.now} now{detail}{again}"


@dataclass(frozen=True)
class RequiredCellFailing(Reason):
    """A required cell is incompatible and the baseline does not record that (it was absent, unknown or error)."""

    gateway: str
    fasttrack: str
    verdict: str
    was: str | None
    detail: str | None = None
    confirmed: int = 0
    effect: ClassVar[Effect] = "not deployable"

    def describe(self) -> str:
        again = f"; reproduced in {self.confirmed} re-run(s)" if self.confirmed else ""
        detail = f": {self.detail}" if self.detail else ""
        return f"required cell is {self.verdict} (baseline: {_state(self.was)}){detail}{again}"


@dataclass(frozen=True)
class RequiredCellMissing(Reason):
    """The policy requires the cell but the run has no result for it."""

    gateway: str
    fasttrack: str
    was: str | None
    effect: ClassVar[Effect] = "unknown"

    def describe(self) -> str:
        return f"required by the policy but not in the run (baseline: {_state(self.was)})"


@dataclass(frozen=True)
class RequiredCellUnknown(Reason):
    """A required cell is 'unknown' or 'error' (the harness could not judge it) and the baseline says otherwise."""

    gateway: str
    fasttrack: str
    verdict: str
    was: str | None
    detail: str | None = None
    effect: ClassVar[Effect] = "unknown"

    def describe(self) -> str:
        detail = f": {self.detail}" if self.detail else ""
        return f"required cell is {self.verdict} (baseline: {_state(self.was)}){detail}"


@dataclass(frozen=True)
class ScenarioNotRun(Reason):
    """A scenario that passed in a required cell in the baseline did not run to a verdict (error, skip, absent)."""

    gateway: str
    fasttrack: str
    scenario: str
    was: str
    now: str
    effect: ClassVar[Effect] = "unknown"

    def describe(self) -> str:
        return f"was {self.was} in the baseline, is {self.now} now"


@dataclass(frozen=True)
class VersionNotObserved(Reason):
    """No cell of the run heard X-BackendAI-FastTrack-Version from a FastTrack the policy requires."""

    fasttrack: str
    gateways: tuple[str, ...]
    effect: ClassVar[Effect] = "unknown"

    def describe(self) -> str:
        return f"required by {', '.join(self.gateways)} but no cell observed its X-BackendAI-FastTrack-Version"


@dataclass(frozen=True)
class KnownIssue(Reason):
    """A required cell is not compatible, exactly as the baseline records: accepted (under the finding ids the
    baseline accepted its failing scenarios with, if any)."""

    gateway: str
    fasttrack: str
    verdict: str
    detail: str | None = None
    findings: tuple[str, ...] = ()

    def describe(self) -> str:
        accepted = f" (accepted as {', '.join(self.findings)})" if self.findings else ""
        return f"{self.verdict}, as in the baseline{accepted}" + (f": {self.detail}" if self.detail else "")


@dataclass(frozen=True)
class _NotAccepted(Reason):
    """A failure of a required cell that only an explicit acceptance by its finding id can accept."""

    gateway: str
    fasttrack: str
    scenario: str
    finding: str | None
    accepted: str | None
    detail: str | None = None
    effect: ClassVar[Effect] = "not deployable"

    def _says(self, head: str) -> str:
        was = f"the baseline accepts {self.accepted}" if self.accepted else "the baseline accepts no finding here"
        return f"{head}{was})" + (f": {self.detail}" if self.detail else "")


@dataclass(frozen=True)
class SecurityFailure(_NotAccepted):
    """A security scenario fails in a required cell and the baseline does not accept that failure under the
    finding id the run matched it to (a security failure is never accepted by the ratchet alone)."""

    def describe(self) -> str:
        what = f"documented as {self.finding}" if self.finding else "matches no documented finding"
        return self._says(f"security failure ({what}; ")


@dataclass(frozen=True)
class DefectNotAccepted(_NotAccepted):
    """A required cell fails with a documented defect (a finding of kind ``defect``) that the baseline does not
    accept under that id: a known defect is accepted explicitly, never by the ratchet alone."""

    def describe(self) -> str:
        return self._says(f"known defect {self.finding}, not accepted (")


@dataclass(frozen=True)
class Improvement(Reason):
    gateway: str
    fasttrack: str
    scenario: str | None
    was: str
    now: str
    strict: ClassVar[bool] = True

    def describe(self) -> str:
        return f"was {self.was} in the baseline, is {self.now} now (update the baseline to lock it in)"


@dataclass(frozen=True)
class NewCell(Reason):
    gateway: str
    fasttrack: str
    verdict: str
    required: bool
    strict: ClassVar[bool] = True

    def describe(self) -> str:
        return f"not in the baseline; {self.verdict}" + (" (required)" if self.required else "")


@dataclass(frozen=True)
class NewScenario(Reason):
    gateway: str
    fasttrack: str
    scenario: str
    outcome: str
    strict: ClassVar[bool] = True

    def describe(self) -> str:
        return f"not in the baseline; {self.outcome}"


@dataclass(frozen=True)
class Removed(Reason):
    """A cell or scenario of the baseline that the run no longer has (and nothing required depends on it)."""

    gateway: str
    fasttrack: str
    scenario: str | None
    was: str
    strict: ClassVar[bool] = True

    def describe(self) -> str:
        return f"in the baseline ({self.was}) but not in the run"


@dataclass(frozen=True)
class Changed(Reason):
    """A cell or scenario the policy does not require changed (other than improving)."""

    gateway: str
    fasttrack: str
    scenario: str | None
    was: str
    now: str
    strict: ClassVar[bool] = True

    def describe(self) -> str:
        return f"was {self.was} in the baseline, is {self.now} now (not required)"


@dataclass(frozen=True)
class PolicyChanged(Reason):
    gateway: str
    fasttrack: str
    was_required: bool
    now_required: bool
    strict: ClassVar[bool] = True

    def describe(self) -> str:
        state = {True: "required", False: "not required"}
        return f"{state[self.was_required]} in the baseline, {state[self.now_required]} by the policy now"


@dataclass(frozen=True)
class Flaky(Reason):
    """A suspected regression whose outcome flipped when re-run (--confirm): not counted as a regression."""

    gateway: str
    fasttrack: str
    scenario: str | None
    outcomes: tuple[str, ...]
    strict: ClassVar[bool] = True

    def describe(self) -> str:
        return f"flipped between runs: {' → '.join(self.outcomes)}"


REASON_TYPES: tuple[type[Reason], ...] = (Regression, RequiredCellFailing, SecurityFailure, DefectNotAccepted,
                                          RequiredCellMissing,
                                          RequiredCellUnknown, ScenarioNotRun, VersionNotObserved, Flaky, Improvement,
                                          NewCell, NewScenario, Removed, Changed, PolicyChanged, KnownIssue)


# --- documents ----------------------------------------------------------------------------------------------------

def check_result(doc: Any, name: str, old_ok: bool = False) -> dict[str, Any]:
    """A result document with the fields the gate reads, or a usage error naming what is wrong."""
    if not isinstance(doc, dict):
        raise errors.UsageError(f"{name}: not a harness result document (expected a JSON object)")
    if doc.get("schema") != RESULT_SCHEMA and not (old_ok and doc.get("schema") in OLD_RESULT_SCHEMAS):
        older = " (written by an older harness: re-run it, or re-render it with that version)" if doc.get(
            "schema") in OLD_RESULT_SCHEMAS else ""
        raise errors.UsageError(f"{name}: schema is {doc.get('schema')!r}, expected {RESULT_SCHEMA!r}{older}")
    cells = doc.get("cells")
    if not isinstance(cells, list):
        raise errors.UsageError(f"{name}: 'cells' must be a list")
    for i, c in enumerate(cells):
        if not isinstance(c, dict) or not all(k in c for k in ("gateway", "fasttrack", "verdict", "scenarios")):
            raise errors.UsageError(f"{name}: cells[{i}] needs gateway, fasttrack, verdict and scenarios")
        for j, s in enumerate(c["scenarios"]):
            if not isinstance(s, dict) or "id" not in s or "outcome" not in s:
                raise errors.UsageError(f"{name}: cells[{i}].scenarios[{j}] needs id and outcome")
    return doc


def read_json(path: str | Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise errors.UsageError(f"cannot read {path}: {exc}") from None


def read_result(path: str | Path) -> dict[str, Any]:
    return check_result(read_json(path), str(path))


def baseline_from(doc: dict[str, Any]) -> dict[str, Any]:
    """The compact baseline of a result document: per cell its verdict, required flag and scenario outcomes.
    Deterministic: cells sorted by (gateway, FastTrack), scenarios by id, no timestamps."""
    cells = []
    for c in sorted(doc["cells"], key=lambda c: (c["gateway"], c["fasttrack"])):
        scenarios = sorted(c["scenarios"], key=lambda s: s["id"])
        entry = {
            "gateway": c["gateway"],
            "fasttrack": c["fasttrack"],
            "verdict": c["verdict"],
            "required": bool(c.get("required", False)),
            "scenarios": {s["id"]: s["outcome"] for s in scenarios},
        }
        # A failure the run matched to a documented defect is accepted under that id, and only under it.
        accepted = {s["id"]: s["finding"] for s in scenarios if s["outcome"] == "fail" and s.get("finding")}
        if accepted:
            entry["accepted"] = accepted
        cells.append(entry)
    return {"schema": BASELINE_SCHEMA, "cells": cells}


def check_baseline(doc: Any, name: str) -> dict[str, Any]:
    """A baseline (or a whole result document, compacted) or a usage error."""
    if isinstance(doc, dict) and doc.get("schema") in (RESULT_SCHEMA, *OLD_RESULT_SCHEMAS):
        return baseline_from(check_result(doc, name, old_ok=True))
    if not isinstance(doc, dict) or doc.get("schema") != BASELINE_SCHEMA:
        got = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
        raise errors.UsageError(f"{name}: schema is {got!r}, expected {BASELINE_SCHEMA!r} (or {RESULT_SCHEMA!r})")
    if not isinstance(doc.get("cells"), list):
        raise errors.UsageError(f"{name}: 'cells' must be a list")
    for i, c in enumerate(doc["cells"]):
        ok = (isinstance(c, dict) and all(isinstance(c.get(k), str) for k in ("gateway", "fasttrack", "verdict"))
              and isinstance(c.get("scenarios"), dict))
        if not ok:
            raise errors.UsageError(f"{name}: cells[{i}] needs gateway, fasttrack, verdict and a scenarios mapping")
        # An unknown verdict or outcome would compare unequal to everything and be judged as something it is not.
        if c["verdict"] not in VERDICTS:
            raise errors.UsageError(f"{name}: cells[{i}].verdict is {c['verdict']!r}, not one of {', '.join(VERDICTS)}")
        if "required" in c and not isinstance(c["required"], bool):
            raise errors.UsageError(f"{name}: cells[{i}].required must be true or false")
        for sid, outcome in c["scenarios"].items():
            if outcome not in OUTCOMES:
                raise errors.UsageError(f"{name}: cells[{i}].scenarios.{sid} is {outcome!r}, not one of "
                                        f"{', '.join(OUTCOMES)}")
        accepted = c.get("accepted", {})
        if not isinstance(accepted, dict):
            raise errors.UsageError(f"{name}: cells[{i}].accepted must map scenario ids to finding ids")
        for sid, finding in accepted.items():
            if c["scenarios"].get(sid) != "fail" or not isinstance(finding, str) or finding not in known_findings():
                raise errors.UsageError(f"{name}: cells[{i}].accepted.{sid}: accepts a recorded failure under a "
                                        f"finding id of harness/data/peer-findings.yaml, not {finding!r} "
                                        f"(scenario {c['scenarios'].get(sid, 'absent')})")
    return doc


def known_findings() -> set[str]:
    from harness.judge.findings import (
        load_findings,  # findings -> results -> scenario: imported when a baseline is read
    )

    return {f.id for f in load_findings()}


def write_baseline(baseline: dict[str, Any], path: str | Path) -> Path:
    p = Path(path)
    with contextlib.suppress(OSError):  # an unusable directory is reported by the write below
        p.parent.mkdir(parents=True, exist_ok=True)
    return output.write_text(p, json.dumps(baseline, indent=2, ensure_ascii=False) + "\n", "baseline")


# --- the decision -------------------------------------------------------------------------------------------------

Key = tuple[str, str]


def required_cells(policy: Mapping[str, frozenset[str]]) -> set[Key]:
    return {(g, f) for g, fts in policy.items() for f in fts}


def real_rows(run: dict[str, Any]) -> dict[str, str]:
    """Row label -> the profile a real gateway row was judged as (``gateways[]``: ``external``, ``judged_as``)."""
    out: dict[str, str] = {}
    for g in run.get("gateways") or []:
        if isinstance(g, dict) and g.get("external"):
            if not isinstance(g.get("judged_as"), str):
                raise errors.UsageError(f"gateway row {g.get('id')!r} is a real gateway but the run does not say "
                                        "which profile it was judged as (gateways[].judged_as)")
            out[str(g.get("id"))] = g["judged_as"]
    return out


@dataclass(frozen=True)
class Judged:
    """What the gate judges: the required cells, and the baseline entry that applies to each cell of the run.

    A run of the reference profiles is judged on every cell the policy requires. A run with real gateway rows
    is judged on its rows only: each real row as the profile it was judged as (its required cells and its
    baseline entries, under the row's label); reference rows alongside it as themselves."""

    required: set[Key]
    was: dict[Key, dict[str, Any]]
    rows: dict[str, str]  # row label -> profile, for a run with real rows (empty for a reference run)
    real_fasttracks: frozenset[str] = frozenset()  # columns of the run that are real FastTracks (--fasttrack-url)
    # row label -> {scenario: finding id} the baseline accepts for that row's profile in any cell: a real
    # FastTrack column has no baseline entry, and a gateway's documented defect is accepted there by this id only
    accepts: dict[str, dict[str, str]] = field(default_factory=dict)


def judged(run: dict[str, Any], baseline: dict[str, Any], policy: Mapping[str, frozenset[str]]) -> Judged:
    real = real_rows(run)
    if not real:
        profiles = {g: g for g in dict.fromkeys([*policy, *(c["gateway"] for c in run["cells"])])}
        required, was, rows = required_cells(policy), {(c["gateway"], c["fasttrack"]): c for c in baseline["cells"]}, {}
    else:
        rows = {label: real.get(label, label)
                for label in dict.fromkeys([*real, *(c["gateway"] for c in run["cells"])])}
        profiles = rows
        required = {(label, f) for label, p in rows.items() for f in policy.get(p, frozenset())}
        was = {(label, c["fasttrack"]): c for c in baseline["cells"] for label, p in rows.items() if c["gateway"] == p}
    columns = [f for f in run.get("fasttracks") or [] if isinstance(f, dict)]
    real_fts = frozenset(str(f.get("id")) for f in columns if f.get("model") is False)
    if not real_fts:
        return Judged(required, was, rows)
    # A real FastTrack is required by the version it announced, matched against the policy's entries (as `run`
    # does), never by a model id: model columns stay required only where the run has them.
    present = {str(f.get("id")) for f in columns}
    required = {(g, f) for g, f in required if f in present}
    pol = support_policy.as_policy(policy)
    for ft in sorted(real_fts):
        announced = {c.get("fasttrack_version") for c in run["cells"] if c["fasttrack"] == ft}
        version = next(iter(announced)) if len(announced) == 1 else None  # several or none: not usable
        required |= {(label, ft) for label, p in profiles.items() if pol.requires(p, version)}
    accepts: dict[str, dict[str, str]] = {}
    for c in baseline["cells"]:
        for label, p in profiles.items():
            if c["gateway"] == p:
                accepts.setdefault(label, {}).update(c.get("accepted") or {})
    return Judged(required, was, rows, real_fts, accepts)


def evaluate(run: dict[str, Any], baseline: dict[str, Any], policy: Mapping[str, frozenset[str]]) -> list[Reason]:
    """Every reason, in run order (then baseline-only cells, then required cells neither has)."""
    now = {(c["gateway"], c["fasttrack"]): c for c in run["cells"]}
    j = judged(run, baseline, policy)
    was, required = j.was, j.required
    keys = [*now, *(k for k in was if k not in now), *sorted(k for k in required if k not in now and k not in was)]
    reasons: list[Reason] = []
    for key in dict.fromkeys(keys):
        cell = now.get(key)
        if key[1] in j.real_fasttracks and cell is not None and key not in was and key in required:
            reasons += judge_real_fasttrack_cell(key, cell, j.accepts.get(key[0], {}))
        else:
            reasons += judge_cell(key, cell, was.get(key), key in required)
    reasons += versions_not_observed(run, required)
    return reasons


def judge_real_fasttrack_cell(key: Key, now: dict[str, Any], accepts: dict[str, str]) -> list[Reason]:
    """A required cell of a real FastTrack column, which no baseline records (it records the mock columns): it
    must be compatible, or fail only with the gateway's documented defects that the baseline accepts for that
    gateway by their finding ids."""
    g, f = key
    v1, why = now["verdict"], now.get("reason")
    out: list[Reason] = [NewCell(g, f, v1, True)]
    if v1 == "compatible":
        return out
    if v1 != "incompatible":
        return [*out, RequiredCellUnknown(g, f, v1, None, why)]
    failing = [s for s in now["scenarios"] if s["outcome"] == "fail"]
    if all(s.get("finding") is not None and accepts.get(s["id"]) == s["finding"] for s in failing):
        return [*out, KnownIssue(g, f, v1, why, tuple(dict.fromkeys(s["finding"] for s in failing)))]
    return [*out, *_security(g, f, accepts, now["scenarios"]), RequiredCellFailing(g, f, v1, None, why)]


def judge_cell(key: Key, now: dict[str, Any] | None, was: dict[str, Any] | None, required: bool) -> list[Reason]:
    g, f = key
    if now is None:
        if required:
            return [RequiredCellMissing(g, f, was["verdict"] if was else None)]
        return [Removed(g, f, None, was["verdict"])] if was else []
    v1, why = now["verdict"], now.get("reason")
    if was is None:
        out: list[Reason] = [NewCell(g, f, v1, required)]
        if required and v1 == "incompatible":
            out.append(RequiredCellFailing(g, f, v1, None, why))
        elif required and v1 != "compatible":
            out.append(RequiredCellUnknown(g, f, v1, None, why))
        return out
    out = []
    if bool(was.get("required", False)) != required:
        out.append(PolicyChanged(g, f, bool(was.get("required", False)), required))
    scenario_regressions = _judge_scenarios(g, f, was["scenarios"], now["scenarios"], required, out)
    if required:
        out += _security(g, f, was.get("accepted") or {}, now["scenarios"])
    v0, was_required = was["verdict"], bool(was.get("required", False))
    if v0 == v1 and required and v1 != "compatible" and not was_required:
        # Accepted while the policy did not require the cell; requiring it now needs a baseline update.
        failing = v1 == "incompatible"
        out.append((RequiredCellFailing if failing else RequiredCellUnknown)(g, f, v1, f"{v0}, not required", why))
    elif v0 == v1:
        if required and v1 != "compatible":
            accepted = was.get("accepted") or {}
            ids = tuple(dict.fromkeys(accepted[s["id"]] for s in now["scenarios"] if s["id"] in accepted
                                      and s["outcome"] == "fail"))
            out.append(KnownIssue(g, f, v1, why, ids))
    elif v1 == "compatible":
        out.append(Improvement(g, f, None, v0, v1))
    elif not required:
        out.append(Changed(g, f, None, v0, v1))
    elif v1 == "incompatible" and v0 == "compatible":
        if not scenario_regressions:  # e.g. a new scenario fails: the cell regressed, no single scenario did
            out.append(Regression(g, f, None, v0, v1, why))
    elif v1 == "incompatible":
        out.append(RequiredCellFailing(g, f, v1, v0, why))
    else:
        out.append(RequiredCellUnknown(g, f, v1, v0, why))
    return out


def _security(g: str, f: str, accepted: dict[str, str], now: list[dict[str, Any]]) -> list[Reason]:
    """Security failures and documented defects of a required cell that the baseline does not accept under the
    run's finding id."""
    out: list[Reason] = []
    for s in now:
        if s["outcome"] != "fail" or (s.get("finding") is not None and accepted.get(s["id"]) == s["finding"]):
            continue
        if s.get("security"):
            out.append(SecurityFailure(g, f, s["id"], s.get("finding"), accepted.get(s["id"]), s.get("reason")))
        elif s.get("finding") is not None:
            out.append(DefectNotAccepted(g, f, s["id"], s["finding"], accepted.get(s["id"]), s.get("reason")))
    return out


def _judge_scenarios(g: str, f: str, was: dict[str, str], now: list[dict[str, Any]], required: bool,
                     out: list[Reason]) -> int:
    """Appends the scenario-level reasons of one cell; returns how many are regressions."""
    outcomes = {s["id"]: s["outcome"] for s in now}
    reasons = {s["id"]: s.get("reason") for s in now}
    regressions = 0
    for sid in dict.fromkeys([*outcomes, *was]):
        o0, o1 = was.get(sid), outcomes.get(sid)
        if o0 == o1:
            continue
        if o0 is None:
            out.append(NewScenario(g, f, sid, str(o1)))
        elif o1 == "pass":
            out.append(Improvement(g, f, sid, o0, o1))
        elif o0 == "pass" and o1 == "fail":
            if required:
                out.append(Regression(g, f, sid, o0, o1, reasons.get(sid)))
                regressions += 1
            else:
                out.append(Changed(g, f, sid, o0, o1))
        elif o0 == "pass" and required:
            out.append(ScenarioNotRun(g, f, sid, o0, _state(o1)))
        elif o1 is None:
            out.append(Removed(g, f, sid, o0))
        else:
            out.append(Changed(g, f, sid, o0, o1))
    return regressions


def versions_not_observed(run: dict[str, Any], required: set[Key]) -> list[Reason]:
    """A FastTrack that required cells need, with cells in the run, none of which observed its version header."""
    out: list[Reason] = []
    for ft in sorted({f for _, f in required}):
        cells = [c for c in run["cells"] if c["fasttrack"] == ft]
        if cells and not any(c.get("fasttrack_version") for c in cells):
            out.append(VersionNotObserved(ft, tuple(sorted(g for g, f in required if f == ft))))
    return out


def decide(reasons: Iterable[Reason], strict: bool = False) -> GateVerdict:
    rs = list(reasons)
    if any(r.effect == "not deployable" for r in rs) or (strict and any(r.strict for r in rs)):
        return "not deployable"
    if any(r.effect == "unknown" for r in rs):
        return "unknown"
    return "deployable"


# --- confirmation re-runs -----------------------------------------------------------------------------------------

# (gateway id, FastTrack id, scenario glob) -> the result document of a run of only that.
Runner = Callable[[str, str, str], dict[str, Any]]


def _observe(doc: dict[str, Any], gateway: str, fasttrack: str, scenario: str | None) -> str:
    cell = next((c for c in doc.get("cells", []) if c["gateway"] == gateway and c["fasttrack"] == fasttrack), None)
    if cell is None:
        return "absent"
    if scenario is None:
        return str(cell["verdict"])
    return next((str(s["outcome"]) for s in cell["scenarios"] if s["id"] == scenario), "absent")


def scenario_globs(run: dict[str, Any]) -> dict[str, str]:
    """Scenario id -> the glob ``run --scenario`` selects its file with (the file's stem)."""
    out = {}
    for s in run.get("scenarios") or []:
        if isinstance(s, dict) and s.get("id") and s.get("file"):
            out[str(s["id"])] = Path(str(s["file"])).stem
    return out


def confirm(reasons: list[Reason], run: dict[str, Any], times: int, runner: Runner) -> list[Reason]:
    """Re-run every cell with a suspected regression ``times`` times (only that cell; only the scenario when it is
    the cell's one suspect). A suspect whose outcome (scenario) or verdict (cell) differs in any re-run becomes
    :class:`Flaky`; the others are kept, marked as reproduced."""
    suspects = [r for r in reasons if isinstance(r, Regression | RequiredCellFailing)]
    if times <= 0 or not suspects:
        return reasons
    globs = scenario_globs(run)
    by_cell: dict[Key, list[Regression | RequiredCellFailing]] = {}
    for r in suspects:
        by_cell.setdefault((r.gateway, r.fasttrack), []).append(r)
    reruns: dict[Key, list[dict[str, Any]]] = {}
    for (g, f), rs in by_cell.items():
        named = {r.scenario for r in rs if isinstance(r, Regression)}
        whole = len(named) != 1 or any(isinstance(r, RequiredCellFailing) or r.scenario is None for r in rs)
        only = next(iter(named)) if not whole else None
        glob = globs.get(only, only) if only else "*"
        reruns[(g, f)] = [runner(g, f, glob) for _ in range(times)]
    out: list[Reason] = []
    for reason in reasons:
        if not isinstance(reason, Regression | RequiredCellFailing):
            out.append(reason)
            continue
        scenario = reason.scenario if isinstance(reason, Regression) else None
        seen = [reason.now if isinstance(reason, Regression) else reason.verdict]
        seen += [_observe(d, reason.gateway, reason.fasttrack, scenario) for d in reruns[(reason.gateway,
                                                                                          reason.fasttrack)]]
        out.append(Flaky(reason.gateway, reason.fasttrack, scenario, tuple(seen)) if len(set(seen)) > 1
                   else replace(reason, confirmed=times))
    return out


@dataclass
class EngineRunner:
    """Runs the matrix, or one cell of it (``--confirm``), through the engine. A real row is re-run with the
    very launcher that ran it (same command, venv or URL, judged as the same profile), never with a reference
    profile of the same name; a reference row with its reference gateway."""

    policy: Mapping[str, frozenset[str]]
    columns: list[FastTrackTarget]
    options: Options
    real: JudgedAs | None = None
    real_labels: frozenset[str] = frozenset()  # rows of the run that are real gateways
    scenarios_dir: str | Path = DEFAULT_SCENARIOS
    jobs: int = 1

    def whole(self) -> dict[str, Any]:
        sel = select(None, None, "*", self.scenarios_dir)
        gateways: list[Any] = [self.real] if self.real is not None else list(sel.gateways)
        return self._run(gateways, self.columns, sel.scenarios, keep_empty=True)

    def __call__(self, gateway: str, fasttrack: str, scenario: str = "*") -> dict[str, Any]:
        if self.real is not None and gateway == self.real.label:
            launcher: Any = self.real
        elif gateway in self.real_labels:
            raise errors.UsageError(f"cannot re-run {gateway}: it is a real gateway and the target it ran with is not "
                                    "given (--peer, --gateway-cmd or --gateway-url)")
        else:
            launcher = ReferenceLauncher(target_options.resolve_profile(gateway))
        column = next((c for c in self.columns if c.id == fasttrack), None)
        if column is None:
            raise errors.UsageError(f"cannot re-run FastTrack column {fasttrack}: it is neither a FastTrack model nor "
                                    "the --fasttrack-url column given")
        sel = select(None, None, scenario, self.scenarios_dir)
        return self._run([launcher], [column], sel.scenarios, keep_empty=False)

    def _run(self, gateways: list[Any], columns: list[FastTrackTarget], scenarios: list[Any],
             keep_empty: bool) -> dict[str, Any]:
        result = workers.run(gateways, columns, scenarios, self.policy, self.options, jobs=self.jobs,
                             keep_empty=keep_empty)
        doc: dict[str, Any] = Redactor(result.secrets()).document(result.to_json())
        return doc


# --- rendering ----------------------------------------------------------------------------------------------------

def _md(text: Any) -> str:
    s = "" if text is None else " ".join(str(text).split())
    return s.replace("|", "\\|")


def _rows(reasons: Sequence[Reason], md: bool) -> list[list[str]]:
    esc = _md if md else (lambda t: "" if t is None else str(t))
    return [[r.kind, esc(r.where), esc(r.describe())] for r in reasons]


@dataclass
class GateResult:
    verdict: GateVerdict
    reasons: list[Reason]
    strict: bool = False
    updated: bool = False  # --update-baseline: the reasons were accepted into the new baseline

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def groups(self) -> list[tuple[str, list[Reason]]]:
        blocking = [r for r in self.reasons if r.effect == "not deployable"]
        unknown = [r for r in self.reasons if r.effect == "unknown"]
        changes = [r for r in self.reasons if r.effect == "info" and r.strict]
        known = [r for r in self.reasons if r.effect == "info" and not r.strict]
        if self.updated:
            return [("Accepted into the new baseline", blocking + unknown + changes), (KNOWN, known)]
        title = "Changes (fail the gate with --strict)" if not self.strict else "Changes (fail the gate: --strict)"
        return [("Not deployable", blocking), ("Unknown", unknown), (title, changes),
                (KNOWN, known)]

    def to_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "exit_code": self.exit_code, "strict": self.strict, "updated": self.updated,
                "reasons": [r.to_json() for r in self.reasons]}


def shown_path(path: str | Path) -> str:
    """A path as a PR comment may show it: relative to the working directory or to the harness checkout (the
    built-in policy), else only its name; never an absolute path of this machine."""
    p = Path(path)
    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        try:
            return p.resolve().relative_to(base.resolve()).as_posix()
        except ValueError:
            continue
    return p.name


def judged_as(run: dict[str, Any]) -> list[dict[str, Any]]:
    """Each real row of the run and the profile it was judged as (and how that was decided)."""
    return [{"row": g.get("id"), "judged_as": g.get("judged_as"), "judged_by": g.get("judged_by")}
            for g in run.get("gateways") or [] if isinstance(g, dict) and g.get("external")]


def _judged_lines(run: dict[str, Any]) -> list[str]:
    return [f"{r['row']} is a real gateway judged as {r['judged_as']}"
            + (f" ({r['judged_by']})" if r.get("judged_by") else "") for r in judged_as(run)]


def render_markdown(result: GateResult, run: dict[str, Any], policy: Mapping[str, frozenset[str]], baseline_name: str,
                    policy_name: str, baseline: dict[str, Any] | None = None) -> str:
    cells = run["cells"]
    required = judged(run, baseline or {"cells": []}, policy).required
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


def render_text(result: GateResult, run: dict[str, Any] | None = None) -> str:
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


# --- command ------------------------------------------------------------------------------------------------------

def gate(run: dict[str, Any], baseline: dict[str, Any], policy: Mapping[str, frozenset[str]], *, strict: bool = False,
         confirm_times: int = 0, runner: Runner | None = None) -> GateResult:
    """The gate as a function of documents (and, for ``confirm_times``, a runner that re-runs one cell)."""
    reasons = evaluate(run, baseline, policy)
    if confirm_times and any(isinstance(r, Regression | RequiredCellFailing) for r in reasons):
        if runner is None:
            raise errors.UsageError("--confirm needs a runner")
        reasons = confirm(reasons, run, confirm_times, runner)
    return GateResult(decide(reasons, strict), reasons, strict)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "gate", help="CI gate: compare a run with the support policy and the committed baseline",
        description="Compare a run with the support policy and the committed baseline, per cell and scenario. "
                    "A real gateway (--peer, --gateway-cmd, --gateway-url, or the real row of a --run document) is "
                    "judged as the profile it claims: that profile's required cells and baseline entries apply.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=target_options.nonempty, metavar="FROM.json",
                   help="a run's verdict.json (default: run the matrix now)")
    p.add_argument("--baseline", default=DEFAULT_BASELINE, metavar="FILE",
                   help=f"committed baseline (default {DEFAULT_BASELINE}); a verdict.json is accepted too")
    p.add_argument("--policy", default=str(support_policy.DEFAULT_POLICY), metavar="FILE", help="support policy YAML")
    p.add_argument("--strict", action="store_true",
                   help="also fail on improvements, new/removed cells and scenarios, flaky results")
    p.add_argument("--update-baseline", action="store_true", help="rewrite the baseline from the run")
    p.add_argument("--confirm", type=_count, default=0, metavar="N",
                   help="re-run each suspected regression N times (only its cell, on the same target: a real "
                        "gateway needs its target option, also with --run); flips are reported as Flaky")
    p.add_argument("--summary", metavar="FILE", help="write the Markdown summary here (also appended to "
                   "$GITHUB_STEP_SUMMARY when set)")
    p.add_argument("--json", action="store_true", help="print the verdict and reasons as JSON")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per HTTP exchange before 'error'")
    target_options.add_target_options(p, peer_option=True)
    p.set_defaults(handler=cmd_gate)
    return p


def _count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a whole number") from None
    if n < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return n


def load_policy(path: str | Path) -> Mapping[str, frozenset[str]]:
    try:
        return support_policy.load_policy(path)
    except OSError as exc:
        raise errors.UsageError(f"cannot read policy {path}: {exc}") from None


def _target(args: argparse.Namespace, run: dict[str, Any] | None, policy: Mapping[str, frozenset[str]],
            opts: Options) -> tuple[JudgedAs | None, Options]:
    """The real gateway the gate runs (or, with ``--run``, re-runs for ``--confirm``), judged as it claims, and
    the options to run it with (its manager contract)."""
    real = target_options.real_gateway(args)
    if real is None:
        return None, opts
    opts = replace(opts, manager_contract=real.manager)
    if run is None:
        return identify.judge(real, select(None, None, "*").scenarios, policy, opts,
                              getattr(args, "fasttrack_listen", None)), opts
    if not args.confirm:
        raise errors.UsageError(f"{target_options.real_gateway_options(args)[0]} with --run: the run is judged from "
                                "the file; a target there only serves --confirm N")
    rows = real_rows(run)
    if len(rows) != 1:
        raise errors.UsageError(f"{args.run}: --confirm re-runs one real gateway, the run has {len(rows)} real rows")
    [(label, profile_id)] = rows.items()
    candidate = real.judged(target_options.resolve_profile(profile_id), "as in the run")
    if candidate.label != label:
        raise errors.UsageError(f"{args.run}: its real row is {label!r}, the target given is {candidate.label!r} "
                                "(give the target it ran with, and --gateway-name if it had one)")
    if real.judge_as is not None and real.judge_as.id != profile_id:
        raise errors.UsageError(f"{args.run}: {label} was judged as {profile_id}, not as {real.judge_as.id}")
    return candidate, opts


def cmd_gate(args: argparse.Namespace, runner: Runner | None = None) -> int:
    target_options.check(args)
    # Where the gate will write, checked before it runs anything.
    if args.summary:
        output.check_file(args.summary, "--summary")
    step = os.environ.get("GITHUB_STEP_SUMMARY")
    if step:
        output.check_file(step, "$GITHUB_STEP_SUMMARY")
    if args.update_baseline:
        output.check_file(args.baseline, "--baseline (to update)")
    policy = load_policy(args.policy)
    baseline_path = Path(args.baseline)
    if baseline_path.exists():
        baseline = check_baseline(read_json(baseline_path), str(baseline_path))
    elif args.update_baseline:
        baseline = {"schema": BASELINE_SCHEMA, "cells": []}
    else:
        raise errors.UsageError(f"baseline {baseline_path} does not exist (create it with --update-baseline)")
    run = read_result(args.run) if args.run else None
    opts = Options(timeout=args.timeout, manager_listen=getattr(args, "manager_listen", None))
    real, opts = _target(args, run, policy, opts)
    rows = real_rows(run) if run is not None else {}
    if args.confirm and rows and real is None:
        raise errors.UsageError(f"{args.run}: --confirm re-runs the real gateway {', '.join(rows)}: give the target it "
                                "ran with (--peer, --gateway-cmd or --gateway-url), never a reference profile")
    engine = EngineRunner(policy, target_options.fasttrack_columns(args, list(fasttrack_models.MODELS)), opts, real,
                          frozenset(rows),
                          jobs=workers.available_cores())
    if run is None:
        print(f"gate: running {real.label + ' judged as ' + real.profile.id if real else 'the matrix'}",
              file=sys.stderr)
        run = engine.whole()
        rows = real_rows(run)
    if args.update_baseline and rows:
        raise errors.UsageError("--update-baseline records reference runs: a real gateway is judged against the "
                                "baseline of the profile it claims, not written into it")
    result = gate(run, baseline, policy, strict=args.strict, confirm_times=args.confirm, runner=runner or engine)
    if args.update_baseline:
        # What the new baseline cannot accept: required cells the run lacks, versions nobody answered.
        missing: list[Reason] = [r for r in result.reasons if isinstance(r, RequiredCellMissing | VersionNotObserved)]
        if missing:
            result = GateResult("unknown", missing, args.strict)
        else:
            write_baseline(baseline_from(run), baseline_path)
            print(f"gate: wrote {baseline_path} ({len(run['cells'])} cells)", file=sys.stderr)
            result = GateResult("deployable", result.reasons, args.strict, updated=True)
    summary = render_markdown(result, run, policy, shown_path(baseline_path), shown_path(args.policy), baseline)
    if args.summary:
        output.write_text(args.summary, summary, "--summary")
    if step:
        output.append_text(step, summary, "$GITHUB_STEP_SUMMARY")
    print(json.dumps(result.to_json() | {"judged_as": judged_as(run)}, indent=2, ensure_ascii=False) if args.json
          else render_text(result, run))
    return result.exit_code
