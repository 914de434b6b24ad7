"""harness.results.model: the result model's JSON (the source of ``matrix.json``) says what a reader must know."""

from __future__ import annotations

from harness.results.document import SCHEMA
from harness.results.model import CellResult, RunResult, ScenarioResult


def _run(*, model: bool, interrupted: str | None = None) -> RunResult:
    passed = ScenarioResult("a", "A", "a.yaml", "pass", secrets={"tok-1"})
    failed = ScenarioResult("b", "B", "b.yaml", "fail", security=True, finding="W1-pooled-cookie-jar")
    cell = CellResult("to-be", "25.1.0", True, verdict="incompatible", scenarios=[passed, failed])
    return RunResult([cell], [], [{"id": "25.1.0", "model": model}], [], interrupted=interrupted)


def test_the_document_says_whether_fasttrack_was_a_model() -> None:
    assert "every FastTrack profile here is a model" in _run(model=True).to_json()["notice"]
    assert "judged on the contract checks only" in _run(model=False).to_json()["notice"]


def test_a_cell_counts_outcomes_and_carries_its_security_mark() -> None:
    doc = _run(model=True).to_json()
    (cell,) = doc["cells"]
    assert doc["schema"] == SCHEMA and "partial" not in doc
    assert cell["counts"] == {"pass": 1, "fail": 1, "error": 0, "skip": 0} and cell["security"] is True
    assert [s["outcome"] for s in cell["scenarios"]] == ["pass", "fail"]


def test_an_interrupted_run_is_marked_partial() -> None:
    doc = _run(model=True, interrupted="SIGTERM").to_json()
    assert (doc["partial"], doc["interrupted"]) == (True, "SIGTERM")


def test_marks_only_on_failures_and_secrets_never_serialised() -> None:
    run = _run(model=True)
    passed, failed = run.cells[0].scenarios
    assert passed.marks() == "" and failed.marks() == "SECURITY [W1-pooled-cookie-jar] "
    assert run.secrets() == {"tok-1"} and "tok-1" not in repr(run.to_json())
    assert repr(run) == "<RunResult 1 cells, 2 scenario runs, 0.00 s>"
