"""The pytest plugin, driven through pytester: collection ids, strict xfail, failure display, bad files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytest_plugins = ["pytester"]
# The PR's two diagrams in their own and in the crossed cells.
FOUR_CELLS = "as-is-24.09.0 or as-is-25.1.0 or to-be-24.09.0 or to-be-25.1.0"


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    (pytester.path / "scenarios").mkdir()
    for name in ("pr3353-as-is.yaml", "pr3353-to-be.yaml"):
        shutil.copy(ROOT / "scenarios" / name, pytester.path / "scenarios" / name)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    (pytester.path / "policy.yaml").write_text('required:\n  as-is: ["24.09.0"]\n  to-be: ["25.1.0"]\n')
    return pytester


def test_items_are_cells_with_readable_ids(project: pytest.Pytester) -> None:
    result = project.runpytest("--collect-only", "-q", "--harness-policy", "policy.yaml", "scenarios")
    ids = [line for line in result.outlines if "::" in line]
    assert "scenarios/pr3353-as-is.yaml::pr3353-as-is[as-is-24.09.0]" in ids
    assert "scenarios/pr3353-to-be.yaml::pr3353-to-be[to-be-25.1.0]" in ids
    # Scenarios only run on the gateway modes they describe.
    assert not any("pr3353-as-is[to-be-" in i for i in ids)


def test_required_cells_pass_and_crossed_cells_are_expected_failures(project: pytest.Pytester) -> None:
    result = project.runpytest("--harness-policy", "policy.yaml", "scenarios", "-k", FOUR_CELLS)
    result.assert_outcomes(passed=2, xfailed=2)


def test_required_crossed_cell_fails_with_step_hop_and_header(project: pytest.Pytester) -> None:
    (project.path / "policy.yaml").write_text('required:\n  as-is: ["24.09.0", "25.1.0"]\n')
    result = project.runpytest("--harness-policy", "policy.yaml", "scenarios", "-k", "as-is-25.1.0]")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "step 'pipeline login', fasttrack_to_gateway: header X-BackendAI-SSO (present): expected present, got " \
           "absent" in out
    assert "at scenarios/" in out and "^" in out  # the scenario line with a caret under the check
    assert "Traceback" not in out


def test_cells_run_in_workers_with_the_same_outcomes(project: pytest.Pytester) -> None:
    result = project.runpytest("--harness-policy", "policy.yaml", "scenarios", "-k", FOUR_CELLS,
                               "--harness-jobs", "2")
    result.assert_outcomes(passed=2, xfailed=2)


def test_bad_harness_jobs_is_a_usage_error(project: pytest.Pytester) -> None:
    result = project.runpytest("--harness-policy", "policy.yaml", "scenarios", "--harness-jobs", "0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--harness-jobs takes a whole number >= 1 or 'auto', not '0'" in result.stderr.str()


def _baseline(project: pytest.Pytester, outcome: str) -> str:
    doc = {"schema": "harness/baseline@1", "cells": [
        {"gateway": "as-is", "fasttrack": "24.09.0", "verdict": "incompatible", "required": False,
         "scenarios": {"pr3353-as-is": outcome}}]}
    (project.path / "baseline.json").write_text(json.dumps(doc))
    return "baseline.json"


def test_unexpected_pass_is_surfaced(project: pytest.Pytester) -> None:
    # A cell the policy does not require, whose reviewed baseline records a failure, now passes: strict XPASS.
    (project.path / "policy.yaml").write_text('required:\n  to-be: ["25.1.0"]\n')
    result = project.runpytest("--harness-policy", "policy.yaml", "--harness-baseline", _baseline(project, "fail"),
                               "scenarios", "-k", "as-is-24.09.0]")
    result.assert_outcomes(failed=1)
    assert "XPASS(strict)" in result.stdout.str()


def test_a_recorded_pass_outside_the_policy_must_keep_passing(project: pytest.Pytester) -> None:
    (project.path / "policy.yaml").write_text('required:\n  to-be: ["25.1.0"]\n')
    result = project.runpytest("--harness-policy", "policy.yaml", "--harness-baseline", _baseline(project, "pass"),
                               "scenarios", "-k", "as-is-24.09.0]")
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize("change", [{"verdict": "bogus"}, {"scenarios": {"pr3353-as-is": "passed"}}])
def test_a_baseline_with_unknown_verdicts_is_a_usage_error(project: pytest.Pytester, change: dict[str, Any]) -> None:
    doc = json.loads((project.path / _baseline(project, "fail")).read_text())
    doc["cells"][0].update(change)
    (project.path / "baseline.json").write_text(json.dumps(doc))
    result = project.runpytest("--harness-policy", "policy.yaml", "--harness-baseline", "baseline.json", "scenarios")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--harness-baseline: baseline.json: cells[0]" in result.stderr.str()


def test_broken_scenario_is_a_collection_error_with_file_and_line(project: pytest.Pytester) -> None:
    (project.path / "scenarios" / "broken.yaml").write_text(
        "id: broken\ntitle: t\nmodes: [as-is]\nsteps:\n  - name: s\n    request: {method: GET, path: /x, bogus: 1}\n")
    result = project.runpytest("--harness-policy", "policy.yaml", "scenarios")
    out = result.stdout.str()
    assert "scenarios/broken.yaml:6" in out
    assert "unknown key 'bogus'" in out
    assert result.ret != 0


def test_yaml_outside_a_scenarios_directory_is_not_collected(project: pytest.Pytester) -> None:
    (project.path / "other").mkdir()
    (project.path / "other" / "config.yaml").write_text("not: a scenario\n")
    result = project.runpytest("--collect-only", "-q", "--harness-policy", "policy.yaml", "other")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def _outcomes(result: pytest.RunResult) -> dict[str, str]:
    """nodeid -> outcome from pytest's -rA summary lines."""
    out = {}
    for line in result.outlines:
        parts = line.split(" ", 2)
        if len(parts) >= 2 and parts[0] in ("PASSED", "FAILED", "XFAIL", "XPASS", "ERROR", "SKIPPED"):
            out[parts[1]] = parts[0]
    return out


def test_xdist_gives_the_same_results_as_a_serial_run(project: pytest.Pytester) -> None:
    args = ("--harness-policy", "policy.yaml", "scenarios", "-p", "no:randomly", "-rA", "-q")
    serial = _outcomes(project.runpytest_subprocess(*args))
    parallel = _outcomes(project.runpytest_subprocess(*args, "-n", "2"))
    assert serial and serial == parallel


def test_harness_jwt_secret_is_what_the_gateways_mint_with(project: pytest.Pytester) -> None:
    # A scenario naming the secret literally: it holds only when the reference gateway minted with that secret.
    (project.path / "scenarios" / "literal-secret.yaml").write_text(
        "id: literal-secret\ntitle: the minted JWT verifies with the given secret\nmodes: [as-is]\nsteps:\n"
        "  - name: login\n    request: {method: POST, path: /pipeline/login/, json: {}}\n    expect:\n"
        "      gateway_to_fasttrack:\n        headers: {X-BackendAI-SSO: {jwt: {secret: a-real-fasttracks-secret}}}\n")
    args = ("--harness-policy", "policy.yaml", "scenarios/literal-secret.yaml", "-k", "as-is-24.09.0]")
    project.runpytest(*args, "--harness-jwt-secret", "a-real-fasttracks-secret").assert_outcomes(passed=1)
    project.runpytest(*args).assert_outcomes(failed=1)


@pytest.mark.parametrize("content", ['{"schema": "harness/baseline@1", "cells": [', "", None],
                         ids=["truncated", "empty", "missing"])
def test_a_broken_or_missing_baseline_is_a_usage_error_at_collection(project: pytest.Pytester,
                                                                      content: str | None) -> None:
    if content is not None:
        (project.path / "baseline.json").write_text(content)
    result = project.runpytest("--collect-only", "--harness-policy", "policy.yaml", "--harness-baseline",
                               "baseline.json", "scenarios")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--harness-baseline" in result.stderr.str() and "Traceback" not in result.stderr.str()


def test_selection_does_not_change_an_outcome(project: pytest.Pytester) -> None:
    """An item judges its own scenario: selecting one that never reaches FastTrack does not make its cell
    'unknown' (the cell's verdict depends on what else ran)."""
    shutil.copy(ROOT / "scenarios" / "no-session.yaml", project.path / "scenarios" / "no-session.yaml")
    shutil.copy(ROOT / "harness" / "data" / "support-policy.yaml", project.path / "support.yaml")

    def outcomes(selection: str) -> dict[str, str]:
        result = project.runpytest("--harness-policy", "support.yaml", "scenarios", "-k", selection, "-rA",
                                   "-p", "no:cacheprovider")
        return {line.split()[1]: line.split()[0] for line in result.outlines
                if line.startswith(("PASSED ", "FAILED ", "XFAIL ", "XPASS ", "ERROR ")) and "no-session[" in line}

    alone, together = outcomes("no-session and G0"), outcomes("G0")
    assert alone and set(alone.values()) == {"PASSED"}
    assert {k: v for k, v in together.items() if k in alone} == alone


def test_a_scenario_broken_at_run_time_fails_only_its_own_items(project: pytest.Pytester) -> None:
    (project.path / "scenarios" / "broken-frame.yaml").write_text(
        "id: broken-frame\ntitle: a binary frame whose placeholder is not hex\nmodes: [to-be]\nsteps:\n"
        "  - name: send a frame\n    request:\n      method: GET\n      path: /pipeline/stream/runs/1/\n"
        "      session: none\n      websocket:\n        send: [{binary: \"${username}\"}]\n"
        "    expect:\n      gateway_to_client: {status: 101}\n")
    result = project.runpytest("--harness-policy", "policy.yaml", "scenarios", "-k", "to-be-25.1.0", "-rA")
    result.assert_outcomes(passed=1, failed=1)
    text = result.stdout.str()
    assert "broken-frame.yaml:5" in text and "FAILED scenarios/broken-frame.yaml::broken-frame[to-be-25.1.0]" in text


@pytest.mark.parametrize("value", ["0", "100000"])
def test_a_concurrency_out_of_bounds_is_a_usage_error(project: pytest.Pytester, value: str) -> None:
    result = project.runpytest("--collect-only", "--harness-policy", "policy.yaml", "--harness-concurrency", value,
                               "scenarios")
    assert result.ret == pytest.ExitCode.USAGE_ERROR and "--harness-concurrency" in result.stderr.str()
