"""``harness diff``: what changed between two runs (--allow), and between two builds' real rows."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from harness import cli
from harness.compare import diff
from tests.compare.documents import cell, doc, good_run, write


def changed_run() -> dict[str, Any]:
    """good_run with: as-is×25.1.0 now compatible, to-be×25.1.0's s1 failing on another hop, a new cell."""
    run = good_run()
    run["cells"][1] = cell("as-is", "25.1.0", "compatible")
    run["cells"][3]["scenarios"][0]["failures"] = [dict(run["cells"][3]["scenarios"][0]["failures"][0],
                                                        hop="gateway_to_client", what="status", name="",
                                                        kind="equals")]
    run["cells"].append(cell("G6", "25.1.0", "compatible"))
    return run


def diff_cli(tmp_path: Path, a: dict[str, Any], b: dict[str, Any], *extra: str) -> int:
    return cli.main(["diff", write(tmp_path / "a.json", a), write(tmp_path / "b.json", b), *extra])


# --- diff -------------------------------------------------------------------------------------------------------

def test_equal_runs_have_no_change(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = good_run()
    b = copy.deepcopy(a)
    b["started_at"], b["duration_s"] = "2027-01-01T00:00:00Z", 9.9  # not content
    b["cells"][0]["scenarios"][0]["duration_ms"] = 77.0
    assert diff.diff(a, b) == []
    assert diff_cli(tmp_path, a, b) == 0
    assert "no change" in capsys.readouterr().out


def test_changes_of_cells_scenarios_and_first_failing_hop() -> None:
    changes = diff.diff(good_run(), changed_run())
    got = {(c.kind, c.where, c.a, c.b) for c in changes}
    assert ("verdict", "as-is×25.1.0", "incompatible", "compatible") in got
    assert any(k == "outcome" and w == "as-is×25.1.0/s1" and b_ == "pass" and a_ and a_.startswith("fail (")
               for k, w, a_, b_ in got)
    assert ("first_failure", "to-be×24.09.0/s1",
            "pipeline login / gateway_to_fasttrack / header X-BackendAI-SSO (present)",
            "pipeline login / gateway_to_client / status (equals)") in got
    assert ("only_in_b", "G6×25.1.0", None, "compatible") in got
    assert len(changes) == 4


def test_cells_and_scenarios_in_only_one_run() -> None:
    a = doc(cell("as-is", "24.09.0", s1="pass", s2="pass"), cell("to-be", "25.1.0"))
    b = doc(cell("as-is", "24.09.0", s1="pass", s3="pass"))
    got = {(c.kind, c.where) for c in diff.diff(a, b)}
    assert got == {("only_in_a", "as-is×24.09.0/s2"), ("only_in_b", "as-is×24.09.0/s3"), ("only_in_a", "to-be×25.1.0")}


def test_version_and_required_changes() -> None:
    a = doc(cell("as-is", "24.09.0"))
    b = doc(cell("as-is", "24.09.0", required=True, version="24.09.1"))
    assert {(c.kind, c.a, c.b) for c in diff.diff(a, b)} == {("version", "24.09.0", "24.09.1"),
                                                                ("required", "False", "True")}


def test_exit_codes_text_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert diff_cli(tmp_path, good_run(), changed_run()) == 1
    text = capsys.readouterr().out
    assert "as-is×25.1.0: verdict: incompatible → compatible" in text
    assert "4 change(s)" in text
    assert diff_cli(tmp_path, good_run(), changed_run(), "--json") == 1
    out = json.loads(capsys.readouterr().out)
    assert out["equal"] is False and len(out["changes"]) == 4 and out["allowed"] == []
    assert {"kind", "gateway", "fasttrack", "scenario", "a", "b", "where"} <= set(out["changes"][0])


@pytest.mark.parametrize(("patterns", "left"), [
    (["as-is×25.1.0", "to-be×24.09.0", "G6×25.1.0"], 0),  # cells: a cell pattern covers its scenarios
    (["s1", "G6×*"], 0),  # a scenario id in every cell; its verdict changes follow it
    (["*/s1", "G6*"], 0),  # globs on gateway×fasttrack/scenario
    (["as-is×*"], 2),
    (["nothing-matches"], 4),
])
def test_allow_removes_matching_changes(patterns: list[str], left: int, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    remaining, allowed = diff.split_allowed(diff.diff(good_run(), changed_run()), patterns)
    assert len(remaining) == left and len(remaining) + len(allowed) == 4
    args = [x for p in patterns for x in ("--allow", p)]
    assert diff_cli(tmp_path, good_run(), changed_run(), *args) == (1 if left else 0)
    assert "(allowed)" in capsys.readouterr().out or not allowed


def test_a_verdict_change_not_explained_by_allowed_scenarios_stays() -> None:
    a = doc(cell("as-is", "24.09.0"))
    b = doc(cell("as-is", "24.09.0", "unknown", version=None, s1="pass"))  # same outcome: the version went missing
    remaining, _ = diff.split_allowed(diff.diff(a, b), ["s1"])
    assert {c.kind for c in remaining} == {"verdict", "version"}


@pytest.mark.parametrize("bad", ["missing", "not json", "wrong schema"])
def test_diff_bad_input_is_a_usage_error(bad: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    b = write(tmp_path / "b.json", good_run())
    a = str(tmp_path / "a.json")
    if bad == "not json":
        write(tmp_path / "a.json", "{")
    elif bad == "wrong schema":
        write(tmp_path / "a.json", {**good_run(), "schema": "harness/matrix@9"})
    assert cli.main(["diff", a, b]) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: ") and "Traceback" not in err


# --- diff of two builds: their real rows, column by column ---------------------------------------------------

def build(label: str, judged_as: str = "to-be", **outcomes: str) -> dict[str, Any]:
    out = doc(cell(label, "25.1.0", required=True, **(outcomes or {"s1": "pass"})),
              cell(label, "24.09.0", "incompatible"))
    out["gateways"] = [{"id": label, "external": True, "judged_as": judged_as}]
    return out


def test_two_builds_compare_their_real_rows_whatever_their_labels(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    release, backport = build("webserver-25.1.1"), build("my-backport")
    assert diff_cli(tmp_path, release, backport) == 0
    out = capsys.readouterr().out
    assert "comparing row webserver-25.1.1" in out and "no change" in out and "only in" not in out
    broken = build("my-backport", s1="fail")
    broken["cells"][0]["verdict"] = "incompatible"
    assert diff_cli(tmp_path, release, broken, "--json") == 1
    changes = json.loads(capsys.readouterr().out)["changes"]
    assert [(c["kind"], c["where"]) for c in changes] == [
        ("verdict", "webserver-25.1.1|my-backport×25.1.0"), ("outcome", "webserver-25.1.1|my-backport×25.1.0/s1")]


def test_a_build_judged_as_another_profile_is_a_change(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert diff_cli(tmp_path, build("a"), build("b", judged_as="G6")) == 1
    assert "judged as: to-be → G6" in capsys.readouterr().out


def test_row_chooses_the_rows_to_compare(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reference = good_run()  # reference rows only: no real row to pick by default
    reference["cells"] = [cell("to-be", "25.1.0", required=True), cell("to-be", "24.09.0", "incompatible")]
    assert diff_cli(tmp_path, build("rc"), reference) == 1  # compared whole: only in A / only in B
    assert "only in A" in capsys.readouterr().out
    assert diff_cli(tmp_path, build("rc"), reference, "--row", "B=to-be") == 0
    assert diff_cli(tmp_path, build("rc"), reference, "--row", "A=rc", "--row", "B=to-be") == 0
    capsys.readouterr()
    for bad in (["--row", "B=nosuch"], ["--row", "A=rc"], ["--row", "C=x"], ["--row", "A="],
                ["--row", "A=rc", "--row", "A=rc"]):
        assert diff_cli(tmp_path, build("rc"), reference, *bad) == 2, bad
        assert "Traceback" not in capsys.readouterr().err
