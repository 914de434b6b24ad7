"""``harness identify``: fair ranking over the same scenarios, and no generation named for a bad run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from harness import cli
from harness.peers import identify
from harness.protocol import generations
from harness.results.model import CellResult, RunResult, ScenarioResult
from harness.results.redact import Redactor

AS_IS, TO_BE = generations.resolve("as-is"), generations.resolve("to-be")


def result(**cells: dict[str, str]) -> RunResult:
    return RunResult(cells=[CellResult(g, "f", False, scenarios=[
        ScenarioResult(sid, sid, f"{sid}.yaml", outcome, error="login failed: 400 …" if outcome == "error" else None)
        for sid, outcome in outcomes.items()]) for g, outcomes in cells.items()], gateways=[], fasttracks=[],
        scenarios=[], started_at="", duration_s=0.0, exchanges=0)


def rank(run: RunResult, planned: int) -> identify.Ranking:
    cands = {p.id: identify.Candidate(p, "f") for p in (AS_IS, TO_BE)}
    return identify.score(run, cands, Redactor(set()), planned)


def test_a_scenario_that_errored_for_one_candidate_counts_for_none() -> None:
    # Counted for to-be alone, s3's error would rank as-is below to-be on a set-up accident.
    ranking = rank(result(**{"as-is": {"s1": "pass", "s2": "pass", "s3": "error"},
                             "to-be": {"s1": "pass", "s2": "fail", "s3": "pass"}}), planned=6)
    assert [(c.profile.id, c.passed, c.total) for c in ranking.candidates] == [("as-is", 2, 2), ("to-be", 1, 2)]
    assert ranking.uncounted == ["s3"] and ranking.named and ranking.margin == 50.0


def test_most_runs_erroring_names_no_generation_with_the_first_error() -> None:
    ranking = rank(result(**{"as-is": {"s1": "error", "s2": "error"}, "to-be": {"s1": "error", "s2": "pass"}}),
                   planned=4)
    assert not ranking.named
    assert "3 of 4 scenario runs errored" in ranking.why_unnamed() and "login failed: 400 …" in ranking.why_unnamed()
    assert not rank(result(**{"as-is": {"s1": "pass"}}), planned=4).named  # 3 never ran (a broken cell)


def test_identify_on_a_build_whose_logins_fail_says_why_and_exits_3(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    broken = (f"{sys.executable} -m harness serve gateway --profile as-is --port {{port}} --fasttrack-url "
              "{fasttrack_url} --manager-url http://127.0.0.1:1 --jwt-secret {jwt_secret}")  # no manager there
    out = tmp_path / "identify.json"
    code = cli.main(["identify", "--gateway-cmd", broken, "--candidate", "as-is", "--candidate", "to-be",
                     "--scenario", "pr3353*", "--json", str(out)])
    assert code == 3
    text = capsys.readouterr().out
    assert "no generation can be named" in text and "best match" not in text
    assert "login through /server/login failed: status 502" in text  # the first set-up error, in full
    doc = json.loads(out.read_text())
    assert (doc["named"], doc["best"], doc["runs_errored"]) == (False, None, doc["runs_planned"])


def test_identify_names_a_reference_gateway_exactly(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["identify", "--gateway", "to-be", "--candidate", "as-is", "--candidate", "to-be",
                     "--scenario", "pr3353*"]) == 0
    text = capsys.readouterr().out
    assert "best match: to-be" in text and "margin" in text


def test_identify_help_documents_its_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["identify", "--help"]) == 0
    text = capsys.readouterr().out
    assert "exit codes" in text and "3  no generation can be named" in text
