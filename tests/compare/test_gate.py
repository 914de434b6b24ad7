"""``harness gate``: run × baseline × policy → deployable / not deployable / unknown, with typed reasons.

Mostly hand-written result documents; the committed baseline and a deliberately broken entry use a real run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness import cli
from harness.cli.gate import cmd_gate
from harness.compare.gate.baseline import BASELINE_SCHEMA, baseline_from
from harness.compare.gate.evaluate import decide, evaluate, gate
from harness.compare.gate.reasons import (
    REASON_TYPES,
    Changed,
    DefectNotAccepted,
    Flaky,
    GateResult,
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
)
from harness.compare.gate.render import MD_ROWS, render_markdown
from harness.compare.gate.runner import EngineRunner
from harness.engine.matrix_run import Options, mock_columns
from harness.judge import support_policy
from harness.protocol import fasttrack_models

ROOT = Path(__file__).resolve().parents[2]
BASELINE = ROOT / "reports" / "baseline.json"
FAILURE = {"step": "pipeline login", "hop": "gateway_to_fasttrack", "what": "header", "name": "X-BackendAI-SSO",
           "kind": "present", "expected": "present", "actual": "absent", "fasttrack_reason": None,
           "where": {"file": "s.yaml", "line": 12, "col": 9, "text": None}}
POLICY = {"as-is": frozenset({"24.09.0"}), "to-be": frozenset({"25.1.0"})}
POLICY_YAML = 'required:\n  as-is: ["24.09.0"]\n  to-be: ["25.1.0"]\n'




def cell(g: str, f: str, verdict: str = "compatible", required: bool = False, version: str | None = "auto",
         **scenarios: str) -> dict[str, Any]:
    outcomes = scenarios or {"s1": "pass" if verdict == "compatible" else "fail"}
    return {
        "gateway": g, "fasttrack": f,
        "fasttrack_version": f if version == "auto" else version,
        "verdict": verdict, "required": required,
        "reason": None if verdict == "compatible" else f"{verdict} because",
        "counts": {o: sum(1 for v in outcomes.values() if v == o) for o in ("pass", "fail", "error", "skip")},
        "scenarios": [{"id": sid, "title": sid, "file": f"/x/scenarios/{sid}.yaml", "outcome": o,
                       "reason": None if o == "pass" else "step 'pipeline login': failed", "error": None,
                       "failures": [FAILURE] if o == "fail" else [], "steps": [], "duration_ms": 1.0}
                      for sid, o in outcomes.items()],
    }


def doc(*cells: dict[str, Any]) -> dict[str, Any]:
    ids = sorted({s["id"] for c in cells for s in c["scenarios"]})
    return {"schema": "harness/matrix@2", "started_at": "2026-01-01T00:00:00Z", "duration_s": 0.1,
            "http_exchanges": 1, "notice": "models", "gateways": [], "fasttracks": [],
            "scenarios": [{"id": i, "file": f"/x/scenarios/{i}.yaml"} for i in ids], "cells": list(cells)}


def good_run() -> dict[str, Any]:
    return doc(cell("as-is", "24.09.0", required=True), cell("as-is", "25.1.0", "incompatible"),
               cell("to-be", "25.1.0", required=True), cell("to-be", "24.09.0", "incompatible"))


def kinds(reasons: list[Reason]) -> list[str]:
    return [r.kind for r in reasons]


def write(path: Path, data: Any) -> str:
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return str(path)


# --- the decision, from documents -----------------------------------------------------------------------------

def test_identical_run_and_baseline_is_deployable() -> None:
    run = good_run()
    result = gate(run, baseline_from(run), POLICY)
    assert (result.verdict, result.exit_code, result.reasons) == ("deployable", 0, [])


def test_newly_failing_required_scenario_is_a_regression_naming_cell_and_scenario() -> None:
    baseline = baseline_from(good_run())
    run = good_run()
    run["cells"][0] = cell("as-is", "24.09.0", "incompatible", required=True, s1="fail")
    result = gate(run, baseline, POLICY)
    assert result.verdict == "not deployable" and result.exit_code == 1
    [r] = [r for r in result.reasons if isinstance(r, Regression)]
    assert (r.gateway, r.fasttrack, r.scenario, r.was, r.now) == ("as-is", "24.09.0", "s1", "pass", "fail")
    assert r.where == "as-is×24.09.0/s1"


def test_cell_regression_without_a_scenario_regression_is_reported_on_the_cell() -> None:
    baseline = baseline_from(good_run())
    run = good_run()
    run["cells"][0] = cell("as-is", "24.09.0", "incompatible", required=True, s1="pass", s2="fail")
    reasons = evaluate(run, baseline, POLICY)
    assert "NewScenario" in kinds(reasons)
    [r] = [r for r in reasons if isinstance(r, Regression)]
    assert (r.scenario, r.was, r.now) == (None, "compatible", "incompatible")


def test_changes_of_cells_the_policy_does_not_require_do_not_fail() -> None:
    run = good_run()
    baseline = baseline_from(run)
    baseline["cells"] = [dict(c, verdict="compatible", scenarios={"s1": "pass"}) if c["fasttrack"] == "25.1.0"
                         and c["gateway"] == "as-is" else c for c in baseline["cells"]]
    result = gate(run, baseline, POLICY)
    assert result.verdict == "deployable"
    assert {type(r) for r in result.reasons} == {Changed}
    assert gate(run, baseline, POLICY, strict=True).verdict == "not deployable"


def test_improvement_is_reported_and_fails_only_with_strict() -> None:
    before = doc(cell("as-is", "24.09.0", "incompatible", required=True), *good_run()["cells"][1:])
    baseline = baseline_from(before)
    run = good_run()
    lax = gate(run, baseline, POLICY)
    assert lax.verdict == "deployable"
    assert {type(r) for r in lax.reasons} == {Improvement}
    assert {(r.scenario, r.was, r.now) for r in lax.reasons if isinstance(r, Improvement)} == {
        ("s1", "fail", "pass"), (None, "incompatible", "compatible")}
    strict = gate(run, baseline, POLICY, strict=True)
    assert (strict.verdict, strict.exit_code) == ("not deployable", 1)


def test_new_cells_and_scenarios_fail_only_with_strict() -> None:
    run = good_run()
    baseline = baseline_from(doc(*run["cells"][:3]))
    run["cells"][0] = cell("as-is", "24.09.0", required=True, s1="pass", s2="pass")
    result = gate(run, baseline, POLICY)
    assert result.verdict == "deployable"
    assert {type(r) for r in result.reasons} == {NewCell, NewScenario}
    assert gate(run, baseline, POLICY, strict=True).verdict == "not deployable"


def test_unknown_when_a_required_cell_is_missing_from_the_run() -> None:
    full = good_run()
    run = doc(*[c for c in full["cells"] if (c["gateway"], c["fasttrack"]) != ("to-be", "25.1.0")])
    result = gate(run, baseline_from(full), POLICY)
    assert (result.verdict, result.exit_code) == ("unknown", 3)
    [r] = result.reasons
    assert isinstance(r, RequiredCellMissing) and (r.gateway, r.fasttrack, r.was) == ("to-be", "25.1.0", "compatible")


def test_unknown_when_a_required_cell_is_unknown_or_a_required_scenario_stops_running() -> None:
    baseline = baseline_from(good_run())
    run = good_run()
    run["cells"][0] = cell("as-is", "24.09.0", "unknown", required=True, version=None, s1="pass")
    run["cells"][2] = cell("to-be", "25.1.0", "error", required=True, s1="error")
    result = gate(run, baseline, POLICY)
    assert result.verdict == "unknown"
    assert kinds(result.reasons) == ["RequiredCellUnknown", "ScenarioNotRun", "RequiredCellUnknown"]
    assert next(r for r in result.reasons if isinstance(r, ScenarioNotRun)).now == "error"


def test_unknown_when_no_cell_heard_a_required_fasttrack_version() -> None:
    run = doc(*[dict(c, fasttrack_version=None) if c["fasttrack"] == "25.1.0" else c for c in good_run()["cells"]])
    result = gate(run, baseline_from(run), POLICY)
    assert result.verdict == "unknown"
    [r] = result.reasons
    assert isinstance(r, VersionNotObserved) and (r.fasttrack, r.gateways) == ("25.1.0", ("to-be",))


def test_not_deployable_wins_over_unknown() -> None:
    baseline = baseline_from(good_run())
    run = doc(cell("as-is", "24.09.0", "incompatible", required=True), *good_run()["cells"][1:2])
    result = gate(run, baseline, POLICY)
    assert {"Regression", "RequiredCellMissing"} <= set(kinds(result.reasons))
    assert result.verdict == "not deployable"


def test_failures_the_baseline_records_are_accepted_but_other_failures_are_not() -> None:
    run = good_run()
    run["cells"][0] = cell("as-is", "24.09.0", "incompatible", required=True)
    accepted = gate(run, baseline_from(run), POLICY)
    assert accepted.verdict == "deployable"
    assert [type(r) for r in accepted.reasons] == [KnownIssue]
    # The baseline said 'unknown' (e.g. no scenario ran yet); 'incompatible' is not what it accepted.
    baseline = baseline_from(good_run())
    baseline["cells"][0] = dict(baseline["cells"][0], verdict="unknown", scenarios={})
    failing = gate(run, baseline, POLICY)
    assert failing.verdict == "not deployable"
    assert any(isinstance(r, RequiredCellFailing) and r.was == "unknown" for r in failing.reasons)
    # A new required cell that fails is not accepted by anything either.
    fresh = gate(run, baseline_from(doc(*run["cells"][1:])), POLICY)
    assert fresh.verdict == "not deployable"
    assert {"NewCell", "RequiredCellFailing"} <= set(kinds(fresh.reasons))


def test_policy_is_read_from_the_policy_not_from_the_run() -> None:
    run = good_run()
    baseline = baseline_from(run)
    policy = {**POLICY, "as-is": frozenset({"24.09.0", "25.1.0"})}
    result = gate(run, baseline, policy)
    assert {"PolicyChanged", "RequiredCellFailing"} <= set(kinds(result.reasons))
    assert result.verdict == "not deployable"
    assert any(isinstance(r, PolicyChanged) and not r.was_required and r.now_required for r in result.reasons)


# --- --confirm: re-runs with an injected runner ----------------------------------------------------------------

def regressed() -> tuple[dict[str, Any], dict[str, Any]]:
    baseline = baseline_from(good_run())
    run = good_run()
    run["cells"][2] = cell("to-be", "25.1.0", "incompatible", required=True, s1="fail")
    return run, baseline


class StubRunner:
    """Answers re-runs from a list of scenario outcomes, recording what it was asked to run."""

    def __init__(self, outcomes: list[str]) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[tuple[str, str, str]] = []

    def __call__(self, gateway: str, fasttrack: str, scenario: str) -> dict[str, Any]:
        self.calls.append((gateway, fasttrack, scenario))
        o = self.outcomes.pop(0)
        return doc(cell(gateway, fasttrack, "compatible" if o == "pass" else "incompatible", True, s1=o))


def test_confirm_marks_a_flipping_scenario_flaky_instead_of_a_regression() -> None:
    run, baseline = regressed()
    runner = StubRunner(["fail", "pass", "fail"])
    result = gate(run, baseline, POLICY, confirm_times=3, runner=runner)
    assert runner.calls == [("to-be", "25.1.0", "s1")] * 3  # only the affected cell and scenario
    [r] = result.reasons
    assert isinstance(r, Flaky) and r.outcomes == ("fail", "fail", "pass", "fail")
    assert result.verdict == "deployable"
    assert gate(run, baseline, POLICY, strict=True, confirm_times=3,
                     runner=StubRunner(["pass"] * 3)).verdict == "not deployable"


def test_confirm_keeps_a_reproduced_regression() -> None:
    run, baseline = regressed()
    result = gate(run, baseline, POLICY, confirm_times=2, runner=StubRunner(["fail", "fail"]))
    [r] = result.reasons
    assert isinstance(r, Regression) and r.confirmed == 2
    assert result.verdict == "not deployable"
    assert "reproduced in 2 re-run(s)" in r.describe()


def test_confirm_reruns_a_whole_cell_for_a_cell_level_failure() -> None:
    run = good_run()
    run["cells"][2] = cell("to-be", "25.1.0", "incompatible", required=True, s1="fail")
    baseline = baseline_from(good_run())
    baseline["cells"] = [dict(c, verdict="unknown", scenarios={}) if c["gateway"] == "to-be" and
                         c["fasttrack"] == "25.1.0" else c for c in baseline["cells"]]
    runner = StubRunner(["pass"])
    result = gate(run, baseline, POLICY, confirm_times=1, runner=runner)
    assert runner.calls == [("to-be", "25.1.0", "*")]
    assert [r.outcomes for r in result.reasons if isinstance(r, Flaky)] == [("incompatible", "compatible")]


def test_confirm_reruns_each_cell_once_per_repetition() -> None:
    before = doc(cell("as-is", "24.09.0", required=True, s1="pass", s2="pass"), *good_run()["cells"][1:])
    run = doc(cell("as-is", "24.09.0", "incompatible", required=True, s1="fail", s2="fail"), *good_run()["cells"][1:])
    calls: list[tuple[str, str, str]] = []

    def runner(g: str, f: str, glob: str) -> dict[str, Any]:
        calls.append((g, f, glob))
        return doc(cell(g, f, "incompatible", True, s1="fail", s2="pass"))

    result = gate(run, baseline_from(before), POLICY, confirm_times=2, runner=runner)
    assert calls == [("as-is", "24.09.0", "*")] * 2
    assert [(r.kind, getattr(r, "scenario", None)) for r in result.reasons] == [("Regression", "s1"), ("Flaky", "s2")]
    assert result.verdict == "not deployable"


def test_confirm_through_the_command_with_an_injected_runner(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                              ) -> None:
    run, baseline = regressed()
    args = cli.build_parser().parse_args([
        "gate", "--run", write(tmp_path / "run.json", run), "--baseline", write(tmp_path / "b.json", baseline),
        "--policy", write(tmp_path / "p.yaml", POLICY_YAML), "--confirm", "2", "--json"])
    code = cmd_gate(args, runner=StubRunner(["pass", "fail"]))
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["verdict"] == "deployable"
    assert [(r["kind"], r["where"]) for r in out["reasons"]] == [("Flaky", "to-be×25.1.0/s1")]


# --- the command: files, exit codes, baseline and summary ------------------------------------------------------

def run_gate(tmp_path: Path, run: dict[str, Any], baseline: dict[str, Any] | None, *extra: str) -> int:
    argv = ["gate", "--run", write(tmp_path / "run.json", run), "--policy", write(tmp_path / "p.yaml", POLICY_YAML),
            "--baseline", str(tmp_path / "baseline.json")]
    if baseline is not None:
        write(tmp_path / "baseline.json", baseline)
    return cli.main([*argv, *extra])


def test_command_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run, baseline = regressed()
    assert run_gate(tmp_path, good_run(), baseline_from(good_run())) == 0
    assert run_gate(tmp_path, run, baseline) == 1
    assert "Regression" in capsys.readouterr().out
    missing = doc(*good_run()["cells"][:2])
    assert run_gate(tmp_path, missing, baseline_from(good_run())) == 3
    assert run_gate(tmp_path, good_run(), baseline_from(doc(cell("as-is", "24.09.0", "incompatible", True),
                                                                 *good_run()["cells"][1:])), "--strict") == 1


@pytest.mark.parametrize("problem", ["no baseline", "bad baseline", "bad run", "bad confirm", "bad policy",
                                     "bogus verdict", "bogus outcome", "empty policy"])
def test_bad_input_is_a_usage_error(problem: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run, baseline = good_run(), baseline_from(good_run())
    extra: list[str] = []
    if problem == "no baseline":
        baseline = None  # type: ignore[assignment]
    elif problem == "bad baseline":
        baseline = {"schema": "something/else", "cells": []}
    elif problem == "bad run":
        run = {"schema": "harness/matrix@2", "cells": [{"gateway": "as-is"}]}
    elif problem == "bad confirm":
        extra = ["--confirm", "-1"]
    elif problem == "bogus verdict":
        baseline["cells"][0]["verdict"] = "bogus"
    elif problem == "bogus outcome":
        baseline["cells"][0]["scenarios"] = {"pr3353-as-is": "passed"}
    elif problem == "empty policy":
        extra = ["--policy", write(tmp_path / "q.yaml", "required: {}\n")]
    else:
        extra = ["--policy", write(tmp_path / "q.yaml", "required:\n  nosuch: ['24.09.0']\n")]
    assert run_gate(tmp_path, run, baseline, *extra) == 2
    err = capsys.readouterr().err
    assert err.strip() and "Traceback" not in err


def test_update_baseline_writes_a_compact_deterministic_file(tmp_path: Path) -> None:
    run = good_run()
    run["cells"].reverse()
    run["cells"][0]["scenarios"].reverse()
    assert run_gate(tmp_path, run, None, "--update-baseline") == 0
    text = (tmp_path / "baseline.json").read_text()
    written = json.loads(text)
    assert list(written) == ["schema", "cells"] and written["schema"] == BASELINE_SCHEMA
    assert [(c["gateway"], c["fasttrack"]) for c in written["cells"]] == sorted(
        (c["gateway"], c["fasttrack"]) for c in run["cells"])
    assert all(list(c) == ["gateway", "fasttrack", "verdict", "required", "scenarios"] for c in written["cells"])
    assert "2026" not in text  # no timestamps
    assert run_gate(tmp_path, run, None) == 0  # the gate passes on what it just wrote
    assert run_gate(tmp_path, good_run(), None, "--update-baseline") == 0
    assert (tmp_path / "baseline.json").read_text() == text  # same run, same bytes


def test_update_baseline_refuses_a_run_without_the_required_cells(tmp_path: Path) -> None:
    baseline = baseline_from(good_run())
    assert run_gate(tmp_path, doc(*good_run()["cells"][:2]), baseline, "--update-baseline") == 3
    assert json.loads((tmp_path / "baseline.json").read_text()) == baseline


def test_summary_is_markdown_for_a_pr_comment_and_the_step_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                   ) -> None:
    step = tmp_path / "step.md"
    step.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    run, baseline = regressed()
    assert run_gate(tmp_path, run, baseline, "--summary", str(tmp_path / "s.md")) == 1
    summary = (tmp_path / "s.md").read_text()
    assert summary.startswith("## ❌ harness gate: **not deployable**")
    assert "| Regression | to-be×25.1.0/s1 |" in summary
    assert step.read_text() == "earlier step\n" + summary  # appended, as GitHub expects


# --- the real matrix and the committed baseline ----------------------------------------------------------------

def engine(policy: Path = support_policy.DEFAULT_POLICY) -> EngineRunner:
    policies = support_policy.load_policy(policy)
    return EngineRunner(policies, mock_columns(fasttrack_models.MODELS), Options(), jobs=2)


@pytest.fixture(scope="module")
def real_run() -> dict[str, Any]:
    return engine().whole()


def test_gate_passes_on_the_committed_baseline(real_run: dict[str, Any], tmp_path: Path) -> None:
    assert BASELINE.is_file(), "reports/baseline.json is committed (python -m harness gate --update-baseline)"
    run_path = write(tmp_path / "run.json", real_run)
    code = cli.main(["gate", "--run", run_path, "--baseline", str(BASELINE), "--summary", str(tmp_path / "s.md")])
    summary = (tmp_path / "s.md").read_text()
    assert code == 0, summary
    # relative paths only: the baseline from the checkout, the built-in policy as harness/data/...
    assert str(ROOT) not in summary and str(tmp_path) not in summary
    assert "policy `harness/data/support-policy.yaml`" in summary


def test_gate_runs_the_matrix_itself_without_run(real_run: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    # The engine made ``real_run``; here only the wiring (the policy passed on, the whole reference matrix asked for).
    asked: list[tuple[dict[str, frozenset[str]], Any]] = []

    def whole(self: EngineRunner) -> dict[str, Any]:
        asked.append((self.policy, self.real))
        return real_run

    monkeypatch.setattr(EngineRunner, "whole", whole)
    assert cli.main(["gate", "--baseline", str(BASELINE), "--json"]) == 0
    assert asked == [(support_policy.load_policy(support_policy.DEFAULT_POLICY), None)]
    assert json.loads(capsys.readouterr().out)["verdict"] == "deployable"


def test_a_deliberately_broken_baseline_entry_is_a_regression(real_run: dict[str, Any], tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    # Any cell of the real run with a failing scenario: claim in the baseline that it passed, and require it.
    victim = next(c for c in real_run["cells"] if any(s["outcome"] == "fail" for s in c["scenarios"]))
    sid = next(s["id"] for s in victim["scenarios"] if s["outcome"] == "fail")
    g, f = victim["gateway"], victim["fasttrack"]
    baseline = baseline_from(real_run)
    entry = next(c for c in baseline["cells"] if (c["gateway"], c["fasttrack"]) == (g, f))
    entry.update(verdict="compatible", required=True, scenarios={k: "pass" for k in entry["scenarios"]})
    entry.pop("accepted", None)  # a cell claimed to pass accepts no failure
    policy = yaml.safe_load(support_policy.DEFAULT_POLICY.read_text())
    policy["required"][g] = sorted({*policy["required"].get(g, []), f})
    code = cli.main(["gate", "--run", write(tmp_path / "run.json", real_run),
                     "--baseline", write(tmp_path / "broken.json", baseline),
                     "--policy", write(tmp_path / "policy.yaml", yaml.safe_dump(policy)), "--json",
                     "--confirm", "1"])  # re-run for real, in-process: only that cell
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and out["verdict"] == "not deployable"
    regressions = [r for r in out["reasons"] if r["kind"] == "Regression"]
    assert regressions and all(r["confirmed"] == 1 for r in regressions)
    assert {"gateway": g, "fasttrack": f, "scenario": sid, "was": "pass", "now": "fail"}.items() <= next(
        r for r in regressions if r["scenario"] == sid).items()
    assert all((r["gateway"], r["fasttrack"]) == (g, f) for r in regressions)


def test_every_reason_type_renders(tmp_path: Path) -> None:
    samples: list[Reason] = [
        Regression("g", "f", "s", "pass", "fail", "why", 2), RequiredCellFailing("g", "f", "incompatible", None),
        RequiredCellMissing("g", "f", None), RequiredCellUnknown("g", "f", "error", "compatible", "boom"),
        ScenarioNotRun("g", "f", "s", "pass", "skip"), VersionNotObserved("f", ("g",)),
        KnownIssue("g", "f", "unknown"), Improvement("g", "f", None, "incompatible", "compatible"),
        SecurityFailure("g", "f", "s", None, None), DefectNotAccepted("g", "f", "s", "W2", None),
        NewCell("g", "f", "compatible", True), NewScenario("g", "f", "s", "pass"), Removed("g", "f", "s", "pass"),
        Changed("g", "f", None, "compatible", "incompatible"), PolicyChanged("g", "f", True, False),
        Flaky("g", "f", None, ("incompatible", "compatible")),
    ]
    assert {type(r) for r in samples} == set(REASON_TYPES)
    result = GateResult(decide(samples), samples)
    text = render_markdown(result, good_run(), POLICY, "b.json", "p.yaml")
    assert all(r.kind in text for r in samples)
    assert json.loads(json.dumps(result.to_json()))["verdict"] == "not deployable"


def test_summary_tables_are_capped_for_a_pr_comment() -> None:
    reasons: list[Reason] = [NewCell("g", str(i), "compatible", False) for i in range(MD_ROWS + 5)]
    text = render_markdown(GateResult("deployable", reasons), good_run(), POLICY, "b", "p")
    assert text.count("| NewCell ") == MD_ROWS
    assert "… and 5 more" in text


@pytest.mark.parametrize("finding", ["W1-pooled-cookie-jar-leak", "W2-stream-close-not-relayed"])
def test_a_known_defect_is_deployable_only_while_the_baseline_accepts_it(
        real_run: dict[str, Any], finding: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    baseline = json.loads(BASELINE.read_text())
    dropped = set()
    for c in baseline["cells"]:
        for sid, fid in list(c.get("accepted", {}).items()):
            if fid == finding:
                del c["accepted"][sid]
                if c.get("required"):
                    dropped.add((c["gateway"], c["fasttrack"], sid))
    assert dropped, f"the committed baseline accepts {finding}"
    code = cli.main(["gate", "--run", write(tmp_path / "run.json", real_run),
                     "--baseline", write(tmp_path / "b.json", baseline), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and out["verdict"] == "not deployable"
    failing = {(r["gateway"], r["fasttrack"]) for r in out["reasons"] if r["effect"] == "not deployable"}
    assert failing == {(g, f) for g, f, _ in dropped}
