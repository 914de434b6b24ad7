"""Hypothesis fuzz of the command line, policy, baseline and result documents: whatever comes in, the answer is
a documented exit code and at most a few lines on stderr, never a traceback and never an internal error
(``cli.main`` turns an unexpected exception into "internal error", which would make this test fail)."""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import cli

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

DOCUMENTED = {0, 1, 2, 3}
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

WORDS = st.sampled_from(["", "0", "-1", "1", "2", "99999", "1e309", "inf", "-inf", "nan", "auto", "1/2", "3/2",
                         "0/0", "x", "as-is", "G0", "25.1.0", "nonsense", "127.0.0.1:0", "127.0.0.1:99999",
                         "10.0.0.1:80", "localhost:8080", "http://127.0.0.1:1", "not a url", "ftp://x",
                         "/proc", "/proc/x", "/dev/null", "{port}", "{nope}", "--", "-", "*", "\x00", "é"])
RUN_OPTIONS = ["--gateway", "--fasttrack", "--policy", "--concurrency", "--timeout", "--seed", "--jobs", "--shard",
               "--repeat", "--gateway-cmd", "--gateway-url", "--judge-as", "--fasttrack-listen", "--manager-listen",
               "--fasttrack-url", "--fault", "--ready-timeout", "--gateway-name", "--fasttrack-name",
               "--manager-contract"]
FLAGS = ["--show-secrets", "--quiet"]


def assert_clean(code: int, err: str) -> None:
    assert code in DOCUMENTED, (code, err)
    assert "Traceback" not in err and "internal error" not in err, err
    assert len([line for line in err.splitlines() if line.strip()]) <= 4, err  # one line, or a caret display


@pytest.fixture(scope="module")
def small_doc(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("small")
    assert cli.main(["run", "--gateway", "to-be", "--fasttrack", "25.1.0", "--fasttrack", "24.09.0", "--scenario",
                     "pr3353-*", "--quiet", "--out", str(out)]) in (0, 1)
    return json.loads((out / "matrix.json").read_text(encoding="utf-8"))


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(RUN_OPTIONS + FLAGS), WORDS), max_size=5))
def test_run_options(capsys: pytest.CaptureFixture[str], options: list[tuple[str, str]]) -> None:
    argv = ["run", "--scenario", "no-such-scenario-*"]  # valid options end at 'no scenario matches': nothing runs
    for name, value in options:
        argv += [name] if name in FLAGS else [name, value]
    with tempfile.TemporaryDirectory() as tmp:
        code = cli.main([*argv, "--out", str(Path(tmp) / "out")])
    assert_clean(code, capsys.readouterr().err)
    assert code != 0


JSONISH = st.recursive(st.none() | st.booleans() | st.integers(-10, 10**6) | st.floats(allow_nan=False)
                       | st.text(max_size=12),
                       lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                    max_size=4),
                       max_leaves=12)


@FUZZ
@given(st.one_of(JSONISH, st.fixed_dictionaries({"required": st.dictionaries(
    st.sampled_from(["G0", "as-is", "to-be", "nope", ""]), JSONISH | st.lists(WORDS, max_size=3), max_size=3)})))
def test_policy_documents(capsys: pytest.CaptureFixture[str], policy: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "policy.yaml"
        path.write_text(yaml.safe_dump(policy), encoding="utf-8")
        code = cli.main(["run", "--policy", str(path), "--gateway", "to-be", "--fasttrack", "25.1.0",
                         "--scenario", "no-such-scenario-*", "--quiet", "--out", str(Path(tmp) / "out")])
    assert_clean(code, capsys.readouterr().err)


def _mutate(doc: Any, path: list[Any], value: Any) -> Any:
    """``doc`` with the value at ``path`` (indices taken modulo, as far as the path goes) replaced."""
    out = copy.deepcopy(doc)
    node = out
    for step in path[:-1]:
        if isinstance(node, dict) and node:
            node = node[sorted(node)[step % len(node)]]
        elif isinstance(node, list) and node:
            node = node[step % len(node)]
        else:
            return out
    last = path[-1] if path else 0
    if isinstance(node, dict) and node:
        key = sorted(node)[last % len(node)]
        if value is _DROP:
            del node[key]
        else:
            node[key] = value
    elif isinstance(node, list) and node:
        node[last % len(node)] = None if value is _DROP else value
    return out


_DROP = object()
MUTATION = st.tuples(st.lists(st.integers(0, 50), min_size=1, max_size=7), st.just(_DROP) | JSONISH)


@FUZZ
@given(st.lists(MUTATION, min_size=1, max_size=3), st.sampled_from(["report", "merge", "diff", "gate", "baseline"]))
def test_result_and_baseline_documents(capsys: pytest.CaptureFixture[str], small_doc: dict[str, Any],
                                       mutations: list[tuple[list[int], Any]], command: str) -> None:
    doc: Any = small_doc
    for path, value in mutations:
        doc = _mutate(doc, path, value)
    with tempfile.TemporaryDirectory() as tmp:
        broken, good = Path(tmp) / "broken.json", Path(tmp) / "good.json"
        broken.write_text(json.dumps(doc), encoding="utf-8")
        good.write_text(json.dumps(small_doc), encoding="utf-8")
        out = ["--out", str(Path(tmp) / "out")]
        argv = {"report": ["report", str(broken), *out], "merge": ["report", "merge", str(good), str(broken), *out],
                "diff": ["diff", str(good), str(broken)],
                "gate": ["gate", "--run", str(broken), "--baseline", str(good)],
                "baseline": ["gate", "--run", str(good), "--baseline", str(broken)]}[command]
        code = cli.main(argv)
    assert_clean(code, capsys.readouterr().err)
