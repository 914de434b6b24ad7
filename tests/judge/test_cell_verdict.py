"""harness.judge.cell_verdict: verdict precedence (computed without side effects), FastTrack version observation, and
the support policy loader."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from harness.errors import ScenarioError, SourceSpan, UsageError
from harness.judge import cell_verdict, support_policy
from harness.protocol import fasttrack_models, generations
from harness.results.model import CellResult, ScenarioResult
from harness.scenario.failures import Failure

GOOD = [["24.09.0"]]


def sc(id_: str, outcome: str, versions: list[list[str]] | None = None, error: str | None = None) -> ScenarioResult:
    r = ScenarioResult(id_, id_, f"{id_}.yaml", outcome)  # type: ignore[arg-type]
    r.versions_seen = GOOD if versions is None else versions
    r.error = error
    if outcome == "fail":
        r.failures = [Failure("step1", "fasttrack_to_gateway", "status", "", "equals", "200", "401 Unauthorized",
                              SourceSpan("x.yaml", 3), "no token")]
    return r


def cell(*scenarios: ScenarioResult) -> CellResult:
    return CellResult("as-is", "24.09.0", True, scenarios=list(scenarios))


@pytest.mark.parametrize(("outcomes", "versions", "verdict"), [
    (["pass", "pass"], GOOD, "compatible"),
    (["pass", "fail"], GOOD, "incompatible"),
    (["fail", "error"], GOOD, "error"),
    (["error", "fail", "pass"], GOOD, "error"),
    (["pass", "pass"], [], "unknown"),
    (["pass", "fail"], [], "incompatible"),  # incompatible beats unknown
    (["error"], [["x"], ["y"]], "error"),  # error beats unknown
    (["pass", "skip"], GOOD, "compatible"),
    (["skip", "skip"], GOOD, "unknown"),
    ([], GOOD, "unknown"),
])
def test_verdict_precedence(outcomes, versions, verdict):
    c = cell(*(sc(f"s{i}", o, versions, error="boom" if o == "error" else None) for i, o in enumerate(outcomes)))
    assert cell_verdict.decide(c).verdict == verdict
    assert cell_verdict.apply(c).verdict == verdict


def test_deciding_a_verdict_leaves_the_cell_as_it_was():
    c = cell(sc("a", "pass"), sc("c", "fail"), sc("d", "fail"))
    before = copy.deepcopy(c)
    decided = cell_verdict.decide(c)
    assert c == before  # only apply() writes the verdict onto the cell
    assert (decided.verdict, decided.fasttrack_version, [x.scenarios for x in decided.causes]) == (
        "incompatible", "24.09.0", [("c", "d")])
    applied = cell_verdict.apply(c)
    assert (applied.verdict, applied.reason, tuple(applied.causes), applied.fasttrack_version) == (
        decided.verdict, decided.reason, decided.causes, decided.fasttrack_version)


def test_reasons_name_the_error_or_the_root_cause():
    c = cell_verdict.apply(cell(sc("a", "pass"), sc("b", "error", error="gateway unreachable"), sc("c", "fail")))
    assert c.reason == "b: gateway unreachable"
    c = cell_verdict.apply(cell(sc("a", "pass"), sc("c", "fail"), sc("d", "fail")))
    assert c.reason == ('2 of 2 failing scenarios: fasttrack_to_gateway status: expected 200, got 401 Unauthorized '
                        '(FastTrack: "no token")')
    assert [cause.scenarios for cause in c.causes] == [("c", "d")]
    c = cell_verdict.apply(cell(sc("a", "pass")))
    assert (c.verdict, c.reason, c.fasttrack_version) == ("compatible", None, "24.09.0")
    c = cell_verdict.apply(cell(sc("a", "skip")))
    assert c.reason == "no applicable scenario ran in this cell"


@pytest.mark.parametrize(("seen", "version", "problem"), [
    ([], None, "no response from FastTrack was observed"),
    ([["24.09.0"], []], None, "a FastTrack response carried no X-BackendAI-FastTrack-Version"),
    ([["24.09.0", "24.09.0"]], None, "X-BackendAI-FastTrack-Version sent 2 times"),
    ([["24.09.0", "25.1.0"]], None, "sent 2 times"),
    ([["garbled"]], None, "X-BackendAI-FastTrack-Version is not a version: 'garbled'"),
    ([[""]], None, "is not a version"),
    ([["24.09.0, 25.1.0"]], None, "is not a version"),
    ([["v24"]], None, "is not a version"),
    ([["24.09.0"], ["25.1.0"]], None, "X-BackendAI-FastTrack-Version varied within the cell: ['24.09.0', '25.1.0']"),
    ([["24.09.0"], ["24.09.0"]], "24.09.0", None),
    ([[" 25.1.0 "]], "25.1.0", None),
    ([["25.1"]], "25.1", None),
    ([["25.1.0rc1"]], "25.1.0rc1", None),
    ([["25.1.0+local.2"]], "25.1.0+local.2", None),
])
def test_observed_version(seen, version, problem):
    got_version, got_problem = cell_verdict.observed_version(seen)
    assert got_version == version
    if problem is None:
        assert got_problem is None
    else:
        assert got_problem is not None and problem in got_problem


@pytest.mark.parametrize("seen", [[], [[]], [["a", "b"]], [["garbled"]], [["1.0"], ["2.0"]]])
def test_version_problem_with_all_passing_is_unknown_with_reason(seen):
    c = cell_verdict.apply(cell(sc("a", "pass", seen)))
    assert c.verdict == "unknown"
    assert c.reason == cell_verdict.observed_version(seen)[1]
    assert c.fasttrack_version is None


def test_versions_are_collected_across_scenarios():
    c = cell_verdict.apply(cell(sc("a", "pass", [["24.09.0"]]), sc("b", "pass", [["24.09.1"]])))
    assert c.verdict == "unknown" and "varied" in (c.reason or "")


# --- support policy -------------------------------------------------------------------------------------------------

def test_default_policy_requires_each_pr3353_gateway_to_work_with_its_own_fasttrack():
    policy = support_policy.load_policy()
    assert "24.09.0" in policy["as-is"]
    assert "25.1.0" in policy["to-be"]
    gateway_ids = {p.id for p in generations.PROFILES}
    fasttrack_ids = {m.id for m in fasttrack_models.MODELS}
    assert set(policy) <= gateway_ids  # keyed by profile id (aliases resolved)
    assert all(fts <= fasttrack_ids for fts in policy.values())


def test_policy_accepts_generation_aliases(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text('required:\n  G4: ["24.09.0", "25.1.0"]\n  to-be: []\n')
    assert support_policy.load_policy(p) == {"as-is": frozenset({"24.09.0", "25.1.0"}), "to-be": frozenset()}


def policy_error(tmp_path: Path, text: str) -> tuple[ScenarioError, Path]:
    p = tmp_path / "policy.yaml"
    p.write_text(text)
    with pytest.raises(ScenarioError) as info:
        support_policy.load_policy(p)
    assert isinstance(info.value, UsageError)
    return info.value, p


def test_unknown_gateway_id_points_at_its_line(tmp_path):
    err, p = policy_error(tmp_path, 'required:\n  as-is: ["24.09.0"]\n  as-was: ["24.09.0"]\n')
    assert "unknown gateway profile 'as-was'" in err.message
    assert (err.line, err.column, err.key) == (3, 3, "required.as-was")
    lines = str(err).splitlines()
    assert lines[0].startswith(f"{p}:3:3: error: ")
    assert lines[1] == '   3 |   as-was: ["24.09.0"]'
    assert lines[2] == " " * len("   3 | ") + "  ^"


def test_an_entry_that_is_neither_a_model_nor_a_range_points_at_the_item(tmp_path):
    err, p = policy_error(tmp_path, 'required:\n  as-is: ["24.09.0", "24.9 or so"]\n')
    assert "'24.9 or so' is neither a FastTrack model" in err.message
    assert all(m.id in err.message for m in fasttrack_models.MODELS)  # the known ids are listed
    assert (err.line, err.column, err.key) == (2, 22, "required.as-is[1]")
    assert str(err).startswith(f"{p}:2:22: error: ")


@pytest.mark.parametrize("bad", ['">=25.1,<"', '"=>25.1"', '"~=25"', '""'])
def test_a_range_that_does_not_parse_is_a_file_line_error(tmp_path, bad):
    err, p = policy_error(tmp_path, f"required:\n  to-be:\n    - {bad}\n")
    assert (err.line, err.key) == (3, "required.to-be[0]") and str(err).startswith(f"{p}:3:")


def test_unquoted_version_that_yaml_reads_as_a_float_is_reported(tmp_path):
    err, _ = policy_error(tmp_path, "required:\n  to-be:\n    - 25.10\n")
    assert "25.1 is a number to YAML: quote versions" in err.message and err.line == 3


def test_ranges_require_the_models_whose_version_they_cover(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text('required:\n  as-is: [">=24.3.3,<25.1", 24.12.0-dual]\n  to-be: [">=25.1"]\n  G3: ["23.9"]\n')
    policy = support_policy.load_policy(p)
    assert dict(policy) == {"as-is": frozenset({"24.09.0", "24.12.0-dual"}), "to-be": frozenset({"25.1.0"}),
                            "G3": frozenset({"23.09.0"})}


@pytest.mark.parametrize(("gateway", "announced", "required"), [
    ("to-be", "25.6.0", True),  # a real FastTrack: by the version it announced
    ("to-be", "25.1.0", True),
    ("to-be", "24.9.0", False),
    ("as-is", "24.9.5", True),
    ("as-is", "25.1.0", False),
    ("as-is", "24.12.0-dual", True),  # a model's exact version string
    ("to-be", None, True),  # announced nothing: required wherever anything is
    ("to-be", "not-a-version", True),
    ("G0", None, False),  # nothing is required of G0 here
    ("G0", "25.6.0", False),
])
def test_a_real_column_is_required_by_the_version_it_announced(tmp_path, gateway, announced, required):
    p = tmp_path / "p.yaml"
    p.write_text('required:\n  as-is: [">=24.3.3,<25.1", 24.12.0-dual]\n  to-be: [">=25.1"]\n  G0: []\n')
    assert support_policy.load_policy(p).requires(generations.resolve(gateway).id, announced) is required


def test_default_policy_keeps_the_default_matrix_required_cells():
    policy = support_policy.load_policy()
    assert dict(policy) == {
        "G0": {"23.03.0"}, "G1a": {"23.03.0"}, "G1b": {"23.03.0"}, "G2": {"23.09.0"}, "G3": {"23.09.0"},
        "as-is": {"24.09.0", "24.12.0-dual"}, "transitional": {"24.12.0-dual"},
        **{g: {"25.1.0", "24.12.0-dual"} for g in ("to-be", "G6", "G6b", "G6c", "G6d", "G6g")}}
    assert policy.requires("to-be", "25.6.0") and policy.requires("G6", "25.6.0")
    assert policy.requires("as-is", "24.9.14") and not policy.requires("as-is", "25.6.0")


@pytest.mark.parametrize(("text", "message", "line"), [
    ("required:\n  as-is: 24.09.0\n", "expected a list of FastTrack model ids or version ranges", 2),
    ("as-is: [24.09.0]\n", "policy needs a mapping", 1),
    ("required: [as-is]\n", "policy needs a mapping", 1),
    ("required:\n  as-is: [24.09.0\n", "malformed YAML", 3),
    ("", "empty file", 0),
    ("required: {}\n", "the policy requires nothing", 1),
    ("required:\n  as-is: []\n  to-be: []\n", "the policy requires nothing", 2),
])
def test_other_policy_errors(tmp_path, text, message, line):
    err, _ = policy_error(tmp_path, text)
    assert message in err.message
    assert err.line == line


def test_policy_naming_a_gateway_twice_keeps_or_rejects_both(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text('required:\n  as-is: ["24.09.0"]\n  G4: ["25.1.0"]\n')
    try:
        policy = support_policy.load_policy(p)
    except ScenarioError:
        return
    assert policy["as-is"] == frozenset({"24.09.0", "25.1.0"})


def test_failures_only_of_the_version_header_make_the_cell_unknown():
    bad = sc("v", "fail", [[]])
    bad.failures = [Failure("s", "gateway_to_client", "header", "x-backendai-fasttrack-version", "present", "present",
                            "absent")]
    no_header = "a FastTrack response carried no X-BackendAI-FastTrack-Version"
    decided = cell_verdict.decide(cell(bad))
    assert (decided.verdict, decided.reason, decided.version_problem) == ("unknown", no_header, "missing")
    other = sc("w", "fail", [[]])
    assert cell_verdict.decide(cell(bad, other)).verdict == "incompatible"
