"""The gate's judgement as functions of documents: which cells are required and which baseline entry applies
(:func:`judged`), every reason (:func:`evaluate`), the verdict (:func:`decide`), and ``--confirm`` re-runs through
an injected :data:`Runner` (:func:`confirm`; the command passes :class:`~harness.compare.gate.runner.EngineRunner`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness import errors
from harness.compare.gate.baseline import BaselineCell, BaselineDoc
from harness.compare.gate.reasons import (
    Changed,
    DefectNotAccepted,
    Flaky,
    GateResult,
    GateVerdict,
    Improvement,
    KnownIssue,
    NewCell,
    NewScenario,
    PolicyChanged,
    Reason,
    Regression,
    Removed,
    RequiredCellFailing,
    RequiredCellMissing,
    RequiredCellUnknown,
    ScenarioNotRun,
    SecurityFailure,
    VersionNotObserved,
    shown_state,
)
from harness.judge import support_policy
from harness.results.document import CellDoc, Key, RunDoc, ScenarioDoc, cells_by_key, real_rows


def required_cells(policy: Mapping[str, frozenset[str]]) -> set[Key]:
    return {(g, f) for g, fts in policy.items() for f in fts}


@dataclass(frozen=True)
class Judged:
    """What the gate judges: the required cells, and the baseline entry that applies to each cell of the run.

    A run of the reference profiles is judged on every cell the policy requires. A run with real gateway rows
    is judged on its rows only: each real row as the profile it was judged as (its required cells and its
    baseline entries, under the row's label); reference rows alongside it as themselves."""

    required: set[Key]
    was: dict[Key, BaselineCell]
    rows: dict[str, str]  # row label -> profile, for a run with real rows (empty for a reference run)
    real_fasttracks: frozenset[str] = frozenset()  # columns of the run that are real FastTracks (--fasttrack-url)
    # row label -> {scenario: finding id} the baseline accepts for that row's profile in any cell: a real
    # FastTrack column has no baseline entry, and a gateway's documented defect is accepted there by this id only
    accepts: dict[str, dict[str, str]] = field(default_factory=dict)


def judged(run: RunDoc, baseline: BaselineDoc, policy: Mapping[str, frozenset[str]]) -> Judged:
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


def evaluate(run: RunDoc, baseline: BaselineDoc, policy: Mapping[str, frozenset[str]]) -> list[Reason]:
    """Every reason, in run order (then baseline-only cells, then required cells neither has)."""
    now = cells_by_key(run)
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


def judge_real_fasttrack_cell(key: Key, now: CellDoc, accepts: dict[str, str]) -> list[Reason]:
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
        return [*out, KnownIssue(g, f, v1, why, tuple(dict.fromkeys(accepts[s["id"]] for s in failing)))]
    return [*out, *_security(g, f, accepts, now["scenarios"]), RequiredCellFailing(g, f, v1, None, why)]


def judge_cell(key: Key, now: CellDoc | None, was: BaselineCell | None, required: bool) -> list[Reason]:
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


def _security(g: str, f: str, accepted: dict[str, str], now: list[ScenarioDoc]) -> list[Reason]:
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


def _judge_scenarios(g: str, f: str, was: dict[str, str], now: list[ScenarioDoc], required: bool,
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
            out.append(ScenarioNotRun(g, f, sid, o0, shown_state(o1)))
        elif o1 is None:
            out.append(Removed(g, f, sid, o0))
        else:
            out.append(Changed(g, f, sid, o0, o1))
    return regressions


def versions_not_observed(run: RunDoc, required: set[Key]) -> list[Reason]:
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
Runner = Callable[[str, str, str], RunDoc]


def _observe(doc: RunDoc, gateway: str, fasttrack: str, scenario: str | None) -> str:
    cell = next((c for c in doc.get("cells", []) if c["gateway"] == gateway and c["fasttrack"] == fasttrack), None)
    if cell is None:
        return "absent"
    if scenario is None:
        return str(cell["verdict"])
    return next((str(s["outcome"]) for s in cell["scenarios"] if s["id"] == scenario), "absent")


def scenario_globs(run: RunDoc) -> dict[str, str]:
    """Scenario id -> the glob ``run --scenario`` selects its file with (the file's stem)."""
    out = {}
    for s in run.get("scenarios") or []:
        if isinstance(s, dict) and s.get("id") and s.get("file"):
            out[str(s["id"])] = Path(str(s["file"])).stem
    return out


def confirm(reasons: list[Reason], run: RunDoc, times: int, runner: Runner) -> list[Reason]:
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
    reruns: dict[Key, list[RunDoc]] = {}
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



def gate(run: RunDoc, baseline: BaselineDoc, policy: Mapping[str, frozenset[str]], *, strict: bool = False,
         confirm_times: int = 0, runner: Runner | None = None) -> GateResult:
    """The gate as a function of documents (and, for ``confirm_times``, a runner that re-runs one cell)."""
    reasons = evaluate(run, baseline, policy)
    if confirm_times and any(isinstance(r, Regression | RequiredCellFailing) for r in reasons):
        if runner is None:
            raise errors.UsageError("--confirm needs a runner")
        reasons = confirm(reasons, run, confirm_times, runner)
    return GateResult(decide(reasons, strict), reasons, strict)

