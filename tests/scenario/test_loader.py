"""harness.scenario.loader: every bad input is a ScenarioError pointing at file:line:column, key path and a caret."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.engine.selection import DEFAULT_SCENARIOS
from harness.errors import ScenarioError, ScenarioErrors
from harness.scenario.loader import discover, load_all, load_scenario, parse_scenario

BASE = """\
id: unit
title: Unit scenario
modes: [as-is]
steps:
  - name: first
    request:
      method: POST
      path: /pipeline/login/
    expect:
      gateway_to_fasttrack:
        headers:
          X-BackendAI-SSO: present
    capture:
      tok: {from: fasttrack_to_gateway, header: X-BackendAI-SSO}
  - name: second
    request:
      method: GET
      path: /pipeline/api/
      headers:
        X-BackendAI-SSO: "${tok}"
    expect:
      gateway_to_fasttrack: {reached: true}
"""


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def load_error(tmp_path: Path, text: str) -> tuple[ScenarioError, Path]:
    p = write(tmp_path, text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(p)
    return info.value, p


def check_rendering(err: ScenarioError, path: Path, text: str, line: int, column: int, key: str | None) -> None:
    """The message: '<file>:<line>:<col>: error: ... (at key '<key>')', then the source line, then a caret under it."""
    assert (err.line, err.column) == (line, column), str(err)
    if isinstance(err, ScenarioErrors):  # the file has other (follow-on) errors too: check the first one's rendering
        err = err.errors[0]
    rendered = str(err).splitlines()
    assert rendered[0].startswith(f"{path}:{line}:{column}: error: ")
    if key is not None:
        assert err.key == key
        assert rendered[0].endswith(f"(at key '{key}')")
    assert len(rendered) == 3, str(err)
    gutter = f"{line:>4} | "
    assert rendered[1] == gutter + text.splitlines()[line - 1].rstrip()
    assert rendered[2] == " " * (len(gutter) + column - 1) + "^"


def test_base_fixture_loads(tmp_path):
    sc = load_scenario(write(tmp_path, BASE))
    assert sc.id == "unit" and [s.name for s in sc.steps] == ["first", "second"]
    assert sc.steps[0].captures[0].name == "tok"
    assert sc.steps[1].request.headers[0][1].names == ("tok",)
    assert sc.modes == ("as-is",)


# (label, text to replace, replacement, line, the token the caret must sit under, key path, message)
@pytest.mark.parametrize(("label", "old", "new", "line", "anchor", "key", "message"), [
    ("unknown key", "      method: POST", "      methd: POST", 7, "methd", "steps[0].request.methd",
     "unknown key 'methd'"),
    ("unknown top key", "title: Unit scenario", "title: Unit scenario\nlabels: []", 3, "labels", "labels",
     "unknown key 'labels'"),
    ("wrong type", "title: Unit scenario", "title: Unit scenario\nlogin: 'yes'", 3, "'yes'", "login",
     "'login' must be true or false, got a string"),
    ("wrong type id", "id: unit", "id: [unit]", 1, "[unit]", "id", "'id' must be a string, got a list"),
    ("wrong type body_bytes", "      path: /pipeline/login/", "      path: /pipeline/login/\n      body_bytes: true",
     9, "true", "steps[0].request.body_bytes", "must be a whole number of bytes, got a boolean"),
    ("undefined placeholder", "      path: /pipeline/api/", "      path: /pipeline/${nope}/", 18, "/pipeline/${nope}",
     "steps[1].request.path", "undefined placeholder '${nope}'"),
    ("invalid regex", "          X-BackendAI-SSO: present", "          X-BackendAI-SSO: {regex: '(unclosed'}", 12,
     "'(unclosed'", "steps[0].expect.gateway_to_fasttrack.headers.X-BackendAI-SSO.regex", "invalid regex"),
    ("undefined placeholder in a regex", "          X-BackendAI-SSO: present",
     "          X-BackendAI-SSO: {regex: '^${nope}$'}", 12, "'^${nope}$'",
     "steps[0].expect.gateway_to_fasttrack.headers.X-BackendAI-SSO.regex", "undefined placeholder '${nope}'"),
    ("unknown mode", "modes: [as-is]", "modes: [as-is, G9]", 3, "G9", "modes[1]", "unknown mode 'G9'"),
    ("unknown step mode", "  - name: second", "  - name: second\n    modes: [nope]", 16, "nope", "steps[1].modes[0]",
     "unknown mode 'nope'"),
    ("duplicate key", "title: Unit scenario", "title: Unit scenario\ntitle: again", 3, "title", "title",
     "duplicate key 'title'"),
    ("duplicate step name", "  - name: second", "  - name: first", 15, "name", "steps[1].name",
     "duplicate step name 'first'"),
    ("capture used in its own step", "          X-BackendAI-SSO: present",
     "          X-BackendAI-SSO: {equals: '${tok}'}", 12, "'${tok}'",
     "steps[0].expect.gateway_to_fasttrack.headers.X-BackendAI-SSO.equals", "undefined placeholder '${tok}'"),
    ("unknown method", "      method: GET", "      method: FETCH", 17, "FETCH", "steps[1].request.method",
     "unknown method 'FETCH'"),
    ("unknown hop", "      gateway_to_fasttrack:", "      gateway_to_fastrack:", 10, "gateway_to_fastrack",
     "steps[0].expect.gateway_to_fastrack", "unknown key 'gateway_to_fastrack'"),
    ("bad capture hop", "from: fasttrack_to_gateway", "from: nowhere", 14, "nowhere", "steps[0].capture.tok.from",
     "'from' must be one of"),
    ("bad session carrier", "      method: GET", "      method: GET\n      session: jar", 18, "jar",
     "steps[1].request.session", "session must be one of"),
    ("path without slash", "      path: /pipeline/api/", "      path: pipeline/api/", 18, "pipeline/api/",
     "steps[1].request.path", "path must start with '/'"),
])
def test_bad_input_points_at_file_line_column_key_and_caret(tmp_path, label, old, new, line, anchor, key, message):
    assert old in BASE, label
    text = BASE.replace(old, new, 1)
    column = text.splitlines()[line - 1].index(anchor) + 1
    err, path = load_error(tmp_path, text)
    assert message in err.message, str(err)
    check_rendering(err, path, text, line, column, key)


@pytest.mark.parametrize(("old", "new", "line", "anchor", "key", "message"), [
    ("id: unit", "id: Bad ID", 1, "Bad ID", "id", "id must be lower-case letters"),
    ("modes: [as-is]", "modes: []", 3, "[]", "modes", "modes must be a non-empty list"),
    ("      method: POST", "      method: POST\n      json: {}\n      text: hi", 9, "hi", "steps[0].request.text",
     "give one body, not json and text"),
    ("          X-BackendAI-SSO: present", "          X-BackendAI-SSO: {present: false}", 12, "false",
     "steps[0].expect.gateway_to_fasttrack.headers.X-BackendAI-SSO.present", "'present' takes true"),
    ("          X-BackendAI-SSO: present", "          X-BackendAI-SSO: {equals: a, regex: b}", 12, "{",
     "steps[0].expect.gateway_to_fasttrack.headers.X-BackendAI-SSO", "give exactly one of present, absent"),
    ("          X-BackendAI-SSO: present", "          X-BackendAI-SSO: maybe", 12, "maybe",
     "steps[0].expect.gateway_to_fasttrack.headers.X-BackendAI-SSO", "a check is 'present', 'absent' or a mapping"),
    ("      gateway_to_fasttrack:\n", "      gateway_to_fasttrack:\n        reached: false\n", 11, "reached",
     "steps[0].expect.gateway_to_fasttrack", "a hop that is not reached has no other checks"),
    ("      gateway_to_fasttrack:\n        headers:",
     "      client_to_gateway:\n        reached: false\n        headers:", 11, "false",
     "steps[0].expect.client_to_gateway.reached", "'reached' only applies to the FastTrack hops"),
    ("      gateway_to_fasttrack:\n        headers:",
     "      fasttrack_to_gateway:\n        method: GET\n        headers:", 11, "method",
     "steps[0].expect.fasttrack_to_gateway.method", "unknown key 'method'"),
    ("      method: POST", "      method: POST\n      upstream: {status: 700}", 8, "700",
     "steps[0].request.upstream.status", "status must be 100-599"),
    ("header: X-BackendAI-SSO}", "header: X-BackendAI-SSO, json: token}", 14, "{", "steps[0].capture.tok",
     "a capture takes exactly one of 'header' or 'json'"),
    ("      tok: {", "      session_id: {", 14, "session_id", "steps[0].capture.session_id",
     "capture name 'session_id' must be an identifier and not a built-in"),
    ("          X-BackendAI-SSO: present", "          X-BackendAI-SSO: {jwt: {algorithm: HS256}}", 12, "{algorithm",
     "steps[0].expect.gateway_to_fasttrack.headers.X-BackendAI-SSO.jwt", "missing required key 'secret'"),
    ("          X-BackendAI-SSO: present", "          X-BackendAI-SSO: {equals: x, allow_duplicates: 'yes'}", 12,
     "'yes'", "steps[0].expect.gateway_to_fasttrack.headers.X-BackendAI-SSO.allow_duplicates",
     "'allow_duplicates' must be true or false, got a string"),
    ('        X-BackendAI-SSO: "${tok}"', "        - [X-A]", 20, "[X-A]", "steps[1].request.headers[0]",
     "expected a [name, value] pair"),
])
def test_more_validation_errors_point_at_their_key(tmp_path, old, new, line, anchor, key, message):
    assert old in BASE
    text = BASE.replace(old, new, 1)
    column = text.splitlines()[line - 1].index(anchor) + 1
    err, path = load_error(tmp_path, text)
    assert message in err.message, str(err)
    check_rendering(err, path, text, line, column, key)


def test_empty_steps(tmp_path):
    text = "id: unit\ntitle: t\nmodes: [as-is]\nsteps: []\n"
    err, path = load_error(tmp_path, text)
    assert "steps must be a non-empty list" in err.message
    check_rendering(err, path, text, 4, 8, "steps")


def test_malformed_yaml_points_at_the_problem(tmp_path):
    text = BASE.replace("modes: [as-is]", "modes: [as-is")
    err, path = load_error(tmp_path, text)
    assert err.message.startswith("malformed YAML")
    assert err.line >= 3 and err.column >= 1
    check_rendering(err, path, text, err.line, err.column, None)


def test_malformed_yaml_tab_indentation(tmp_path):
    text = BASE.replace("      method: POST", "\tmethod: POST")
    err, path = load_error(tmp_path, text)
    assert err.message.startswith("malformed YAML") and err.line == 7
    check_rendering(err, path, text, 7, err.column, None)


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty file"),
    ("# only a comment\n", "empty file"),
    ("- a\n- b\n", "expected a mapping"),
    ("id: x\n", "missing required key 'title'"),
    ("1: x\n", "keys must be strings"),
    ("a: &x 1\n<<: {b: 2}\n", "merge keys"),
])
def test_other_structural_errors_are_scenario_errors(tmp_path, text, message):
    err, _ = load_error(tmp_path, text)
    assert message in err.message


def test_unreadable_file_is_a_scenario_error(tmp_path):
    with pytest.raises(ScenarioError, match="cannot read scenario"):
        load_scenario(tmp_path / "missing.yaml")
    p = tmp_path / "latin1.yaml"
    p.write_bytes(b"id: \xff\n")
    with pytest.raises(ScenarioError, match="cannot read scenario"):
        load_scenario(p)


def test_duplicate_scenario_ids_across_files(tmp_path):
    a = write(tmp_path, BASE, "a.yaml")
    b = write(tmp_path, BASE.replace("title: Unit scenario", "title: Other"), "b.yaml")
    with pytest.raises(ScenarioError) as info:
        load_all([a, b])
    err = info.value
    assert err.file == str(b) and err.line == 1 and err.key == "id"
    assert "duplicate scenario id 'unit'" in err.message and str(a) in err.message
    assert str(err).startswith(f"{b}:1:1: error: ")


def test_discover_filters_by_stem_or_name(tmp_path):
    write(tmp_path, BASE, "pr1-as-is.yaml")
    write(tmp_path, BASE, "pr2-to-be.yaml")
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in discover(tmp_path)] == ["pr1-as-is.yaml", "pr2-to-be.yaml"]
    assert [p.name for p in discover(tmp_path, "*to-be")] == ["pr2-to-be.yaml"]
    assert [p.name for p in discover(tmp_path, "pr1-as-is.yaml")] == ["pr1-as-is.yaml"]


def test_every_shipped_scenario_loads_including_both_pr3353_ones():
    files = discover(DEFAULT_SCENARIOS)
    scenarios = load_all(files)  # raises ScenarioError if any shipped file is broken
    assert len(scenarios) == len(files) >= 2
    by_id = {s.id: s for s in scenarios}
    assert by_id["pr3353-as-is"].modes == ("as-is",)
    assert by_id["pr3353-to-be"].modes == ("to-be",)
    for sc in (by_id["pr3353-as-is"], by_id["pr3353-to-be"]):
        assert len(sc.steps) == 2
        assert set(sc.steps[0].expect) == {"client_to_gateway", "gateway_to_fasttrack", "fasttrack_to_gateway",
                                           "gateway_to_client"}
        assert sc.steps[0].captures and sc.steps[0].captures[0].secret


# --- former crashes: bad input that once escaped as something other than ScenarioError ---------------

def _crasher(label: str, replacement: str, bug: str):
    """Once a crash (``bug``); now a regression test that it stays a ScenarioError."""
    return pytest.param(replacement, id=label)


@pytest.mark.parametrize("replacement", [
    _crasher("control character", "title: a\x01b", "yamlnodes.load: yaml.SafeLoader(text) raises ReaderError for a "
             "non-printable character in its constructor, outside the try (yamlnodes.py:43)"),
    _crasher("impossible date", "title: 2001-02-30", "yamlnodes._build: construct_object raises ValueError for an "
             "invalid timestamp; only yaml.YAMLError is caught (yamlnodes.py:78-80)"),
    _crasher("bad int tag", "title: !!int abc", "yamlnodes._build: ValueError from the !!int constructor is not "
             "caught (yamlnodes.py:78-80)"),
    _crasher("recursive alias", "title: &a [*a]", "yamlnodes._build follows a self-referencing alias forever and "
             "raises RecursionError (yamlnodes.py:59-76)"),
])
def test_yaml_level_crashers_are_scenario_errors(tmp_path, replacement):
    """Loading either succeeds or raises ScenarioError pointing at line 2; any other exception fails the test."""
    text = BASE.replace("title: Unit scenario", replacement)
    p = write(tmp_path, text)
    try:
        load_scenario(p)
    except ScenarioError as err:
        assert err.line == 2 and str(err).startswith(f"{p}:2:")


def test_regex_overflow_is_a_scenario_error(tmp_path):
    text = BASE.replace("          X-BackendAI-SSO: present", "          X-BackendAI-SSO: {regex: 'a{4294967296}'}")
    err, path = load_error(tmp_path, text)
    assert "invalid regex" in err.message
    check_rendering(err, path, text, 12, 36, "steps[0].expect.gateway_to_fasttrack.headers.X-BackendAI-SSO.regex")


def test_nested_duplicate_key_names_its_key_path(tmp_path):
    text = BASE.replace("      method: POST", "      method: POST\n      method: GET")
    err, path = load_error(tmp_path, text)
    check_rendering(err, path, text, 8, 7, "steps[0].request.method")


@pytest.mark.parametrize("spec", ["header: 5", "json: [a]"])
def test_capture_source_must_be_a_string(tmp_path, spec):
    text = BASE.replace("header: X-BackendAI-SSO}", spec + "}")
    err, _ = load_error(tmp_path, text)
    assert err.line == 14 and err.key.startswith("steps[0].capture.tok")


# --- properties ---------------------------------------------------------------------------------------------------

# YAML's printable set (control characters are a known crash, see CRASHERS); includes YAML syntax characters often.
YAML_TEXT = st.text(
    alphabet=st.one_of(st.sampled_from(list(":-[]{}#&*!|>'\"%@`,?\n \t")), st.characters(
        codec="utf-8", exclude_categories=("Cc", "Cs"), exclude_characters="\ufeff")),
    max_size=200,
)


@settings(max_examples=200, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(YAML_TEXT)
def test_random_text_only_ever_raises_scenario_error(text):
    try:
        parse_scenario(text, "random.yaml")
    except ScenarioError as err:
        assert str(err).startswith("random.yaml")


KEYS = st.sampled_from(["id", "title", "modes", "steps", "name", "request", "method", "path", "expect", "headers",
                        "capture", "from", "header", "json", "query", "session", "regex", "equals", "jwt", "secret",
                        "claims", "present", "absent", "status", "reached", "upstream", "body_bytes", "login",
                        "gateway_to_fasttrack", "client_to_gateway", "keypair_signature", "access_key",
                        "allow_duplicates", "X-BackendAI-SSO", "tags", "text", "lifetime", "algorithm"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), st.floats(allow_nan=False),
                    st.sampled_from(["as-is", "to-be", "G4", "sso", "POST", "GET", "/pipeline/x", "${session_id}",
                                     "${nope}", "present", "absent", "header", "(", "x{2}", "fasttrack_to_gateway"]),
                    st.text(max_size=20))
TREES = st.recursive(SCALARS, lambda children: st.one_of(st.lists(children, max_size=4),
                                                         st.dictionaries(KEYS, children, max_size=5)), max_leaves=30)
DOCS = st.fixed_dictionaries({}, optional={"id": st.one_of(st.just("x-1"), SCALARS), "title": SCALARS,
                                           "modes": st.one_of(st.just(["as-is"]), TREES), "steps": TREES}).flatmap(
    lambda base: st.dictionaries(KEYS, TREES, max_size=3).map(lambda extra: {**extra, **base}))


@settings(max_examples=150, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DOCS)
def test_random_nested_documents_only_ever_raise_scenario_error(doc):
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    try:
        parse_scenario(text, "tree.yaml")
    except ScenarioError as err:
        assert str(err).startswith("tree.yaml")


# --- no vacuous check (issue 12 item 6) -----------------------------------------------------------------------------

SSO = "          X-BackendAI-SSO: present"


@pytest.mark.parametrize(("label", "old", "new", "line", "anchor", "key", "message"), [
    ("empty check list", SSO, "          X-BackendAI-SSO: []", 12, "[]",
     "steps[0].expect.gateway_to_fasttrack.headers.X-BackendAI-SSO", "an empty check list checks nothing"),
    ("empty json check list", "        headers:\n" + SSO, "        json: {token: []}", 11, "[]",
     "steps[0].expect.gateway_to_fasttrack.json.token", "an empty check list checks nothing"),
    ("empty headers mapping", "        headers:\n" + SSO, "        headers: {}", 11, "{}",
     "steps[0].expect.gateway_to_fasttrack.headers", "an empty 'headers' mapping checks nothing"),
    ("empty hop", "      gateway_to_fasttrack:\n        headers:\n" + SSO, "      gateway_to_fasttrack: {}", 10, "{}",
     "steps[0].expect.gateway_to_fasttrack", "an empty expectation checks nothing"),
    ("empty expect", "    expect:\n      gateway_to_fasttrack:\n        headers:\n" + SSO, "    expect: {}", 9, "{}",
     "steps[0].expect", "a step checks nothing without 'expect'"),
    ("header name not a token", SSO, '          "X BackendAI: Session": absent', 12, '"X BackendAI',
     "steps[0].expect.gateway_to_fasttrack.headers.X BackendAI: Session", "is not a valid HTTP header name"),
    ("request header name not a token", '        X-BackendAI-SSO: "${tok}"', '        "X-A B": "${tok}"', 20,
     '"X-A B"', "steps[1].request.headers.X-A B", "is not a valid HTTP header name"),
    ("capture header not a token", "header: X-BackendAI-SSO}", "header: 'X:SSO'}", 14, "'X:SSO'",
     "steps[0].capture.tok.header", "is not a valid HTTP header name"),
    ("unknown JWT algorithm", SSO, "          X-BackendAI-SSO: {jwt: {secret: s, algorithm: HS257}}", 12, "HS257",
     "steps[0].expect.gateway_to_fasttrack.headers.X-BackendAI-SSO.jwt.algorithm", "unknown JWT algorithm 'HS257'"),
    ("alg none is not a check", SSO, "          X-BackendAI-SSO: {jwt: {secret: s, algorithm: [none]}}", 12, "[none]",
     "steps[0].expect.gateway_to_fasttrack.headers.X-BackendAI-SSO.jwt.algorithm", "unknown JWT algorithm 'none'"),
    ("absent_claims not a list", SSO, "          X-BackendAI-SSO: {jwt: {secret: s, absent_claims: 3}}", 12, "3}",
     "steps[0].expect.gateway_to_fasttrack.headers.X-BackendAI-SSO.jwt.absent_claims", "must be a non-empty string"),
    ("empty absent_claims", SSO, "          X-BackendAI-SSO: {jwt: {secret: s, absent_claims: []}}", 12, "[]",
     "steps[0].expect.gateway_to_fasttrack.headers.X-BackendAI-SSO.jwt.absent_claims", "must be a non-empty string"),
    ("empty claims", SSO, "          X-BackendAI-SSO: {jwt: {secret: s, claims: {}}}", 12, "{}}",
     "steps[0].expect.gateway_to_fasttrack.headers.X-BackendAI-SSO.jwt.claims", "an empty 'claims' mapping"),
    ("step without expect", "    expect:\n      gateway_to_fasttrack: {reached: true}\n", "", 15, "name",
     "steps[1].expect", "a step checks nothing without 'expect'"),
    ("every step filtered out", "  - name: first\n", "  - name: first\n    modes: [to-be]\n", 3, "[as-is]", "modes",
     "applies to gateway profile as-is but every step's modes leave it out"),
    ("every check filtered out", "      gateway_to_fasttrack:\n        headers:\n" + SSO,
     "      client_to_gateway:\n        headers:\n          X-A: {present: true, modes: [to-be]}", 5, "name",
     "steps[0]", "step 'first' runs on gateway profile as-is but checks nothing there"),
])
def test_vacuous_checks_are_load_errors(tmp_path, label, old, new, line, anchor, key, message):
    assert old in BASE, label
    text = BASE.replace(old, new, 1)
    if label == "every step filtered out":
        text = text.replace("  - name: second\n", "  - name: second\n    modes: [to-be]\n", 1)
    column = text.splitlines()[line - 1].index(anchor) + 1
    err, path = load_error(tmp_path, text)
    assert message in err.message, str(err)
    check_rendering(err, path, text, line, column, key)


def test_a_single_absent_claim_means_a_one_element_list(tmp_path):
    one = load_scenario(write(tmp_path, BASE.replace(SSO, "          X-BackendAI-SSO: {jwt: {secret: s, "
                                                          "absent_claims: exp}}"), "one.yaml"))
    many = load_scenario(write(tmp_path, BASE.replace(SSO, "          X-BackendAI-SSO: {jwt: {secret: s, "
                                                           "absent_claims: [exp]}}"), "many.yaml"))
    (check,) = one.steps[0].expect["gateway_to_fasttrack"].headers[0].checks
    assert check.jwt is not None and check.jwt.absent_claims == ("exp",)
    assert many.steps[0].expect["gateway_to_fasttrack"].headers[0].checks[0].jwt == check.jwt


_TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.characters(codec="ascii", exclude_categories=("Cc",)), min_size=1, max_size=12))
def test_header_names_are_accepted_exactly_when_they_are_tokens(tmp_path, name):
    text = BASE.replace(SSO, f"          {yaml.safe_dump(name).splitlines()[0]}: present")
    if yaml.safe_load(text)["steps"][0]["expect"]["gateway_to_fasttrack"]["headers"] != {name: "present"}:
        return  # YAML read the name as something else (e.g. a number): not a header-name case
    if all(c in _TCHAR for c in name):
        assert load_scenario(write(tmp_path, text)).steps[0].expect["gateway_to_fasttrack"].headers[0].name == name
    else:
        with pytest.raises(ScenarioError, match="is not a valid HTTP header name"):
            load_scenario(write(tmp_path, text))


def test_every_error_of_a_file_in_one_run_with_did_you_mean(tmp_path):
    from harness.scenario.loader import load_all

    bad = tmp_path / "bad.yaml"
    bad.write_text("id: bad-one\ntitle: two mistakes\nmodes: [to-bee]\nstepz: 1\nsteps:\n"
                   "  - name: first\n    request: {method: POST, path: /pipeline/login/}\n"
                   "    expct:\n      gateway_to_client: {status: 200}\n"
                   "  - name: second\n    request: {method: GET, path: \"/x/${sesion_id}\"}\n"
                   "    expect:\n      gateway_to_client: {status: 200}\n")
    other = tmp_path / "other.yaml"
    other.write_text("id: other\ntitle: t\nmodes: [to-be]\nsteps: []\n")
    with pytest.raises(ScenarioErrors) as info:
        load_all([bad, other])
    text = str(info.value)
    assert [(e.line, e.key) for e in info.value.errors] == [
        (3, "modes[0]"), (4, "stepz"), (8, "steps[0].expct"), (11, "steps[1].request.path"), (4, "steps")]
    assert "unknown mode 'to-bee' (did you mean 'to-be'?)" in text
    assert "unknown key 'stepz' (did you mean 'steps'?)" in text
    assert "unknown key 'expct' (did you mean 'expect'?)" in text
    assert "undefined placeholder '${sesion_id}' (did you mean 'session_id'?)" in text
    assert text.rstrip().endswith("5 errors") and text.count("^") == 5  # each with its caret


def test_every_error_inside_one_step_and_one_hop_is_reported(tmp_path):
    bad = write(tmp_path, "id: one-step\ntitle: t\nmodes: [to-be]\nsteps:\n"
                "  - name: many\n"
                "    request: {method: FETCH, path: /pipeline/login/}\n"
                "    expect:\n"
                "      gateway_to_fasttrack:\n"
                "        status: 200\n"
                "      gateway_to_client:\n"
                "        status: ok\n"
                "        headers:\n"
                "          \"Bad Name\": present\n"
                "          X-A: [present, {equal: x}]\n"
                "    modes: [to-bee]\n")
    with pytest.raises(ScenarioErrors) as info:
        load_scenario(bad)
    assert [(e.line, e.key) for e in info.value.errors] == [
        (6, "steps[0].request.method"), (9, "steps[0].expect.gateway_to_fasttrack.status"),
        (11, "steps[0].expect.gateway_to_client.status"), (13, "steps[0].expect.gateway_to_client.headers.Bad Name"),
        (14, "steps[0].expect.gateway_to_client.headers.X-A[1].equal"), (15, "steps[0].modes[0]")]


def test_a_status_class_loads_and_anything_else_is_an_error(tmp_path: Path) -> None:
    ok = BASE.replace("      gateway_to_fasttrack: {reached: true}\n", "      gateway_to_client: {status: 4xx}\n")
    hop = load_scenario(write(tmp_path, ok)).steps[1].expect["gateway_to_client"]
    assert (hop.status, hop.status_class, hop.count()) == (None, 4, 1)
    err, _ = load_error(tmp_path, ok.replace("status: 4xx", "status: 4xy"))
    assert "'status' must be an HTTP status or a class 1xx-5xx, got '4xy'" in str(err)
    assert (err.line, err.column) == (22, 35)

