"""harness.results.document: the types say exactly what a run writes; the one reader refuses what is not a result
document with a one-line usage error; a scenario's first failure is found in one place."""

from __future__ import annotations

import json
import types
import typing
from pathlib import Path
from typing import Any, Literal, NotRequired, Union, get_args, get_origin, get_type_hints, is_typeddict

import pytest

from harness import cli, errors
from harness.actors import faults
from harness.compare import repeat
from harness.engine.matrix_run import describe_fasttrack, describe_gateway, describe_real_fasttrack
from harness.judge import findings
from harness.protocol import fasttrack_models, generations
from harness.results import document
from harness.results.document import (
    OLD_SCHEMAS,
    SCHEMA,
    FirstFailure,
    PeerDoc,
    RepeatDoc,
    RunDoc,
    cells_by_key,
    failure_text,
    first_failure,
    real_rows,
)


def conforms(value: Any, tp: Any, where: str = "doc") -> list[str]:
    """Where ``value`` differs from the type ``tp``: keys a TypedDict lacks or does not declare, wrong types."""
    if tp is Any or tp is object:
        return []
    if is_typeddict(tp):
        if not isinstance(value, dict):
            return [f"{where}: {type(value).__name__}, not an object"]
        hints = get_type_hints(tp, include_extras=True)
        out = [f"{where}.{k}: not declared in {tp.__name__}" for k in value if k not in hints]
        for k, hint in hints.items():
            optional = get_origin(hint) is NotRequired
            hint = get_args(hint)[0] if optional else hint
            if k in value:
                out += conforms(value[k], hint, f"{where}.{k}")
            elif not optional:
                out.append(f"{where}: lacks {k} ({tp.__name__})")
        return out
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        tried = [conforms(value, a, where) for a in args]
        return [] if any(not t for t in tried) else min(tried, key=len)
    if origin is Literal:
        return [] if value in args else [f"{where}: {value!r} is not one of {args}"]
    if origin is list:
        if not isinstance(value, list):
            return [f"{where}: {type(value).__name__}, not a list"]
        return [p for i, v in enumerate(value) for p in conforms(v, args[0], f"{where}[{i}]")]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{where}: {type(value).__name__}, not an object"]
        return [p for k, v in value.items() for p in conforms(k, args[0], where) + conforms(v, args[1], f"{where}.{k}")]
    if tp is type(None):
        return [] if value is None else [f"{where}: {value!r}, not null"]
    if tp is float:
        return [] if isinstance(value, int | float) and not isinstance(value, bool) else [f"{where}: {value!r}"]
    if tp is int:
        return [] if isinstance(value, int) and not isinstance(value, bool) else [f"{where}: {value!r}, not int"]
    return [] if isinstance(value, tp) else [f"{where}: {value!r}, not {tp.__name__}"]


@pytest.fixture(scope="module")
def run_doc(tmp_path_factory: pytest.TempPathFactory) -> RunDoc:
    # One row, one column, every scenario: steps with and without WebSocket records, failures and causes,
    # requests and responses.
    out = tmp_path_factory.mktemp("run")
    cli.main(["run", "--quiet", "--out", str(out), "--gateway", "G6b", "--fasttrack", "25.1.0"])
    return document.read(out / "matrix.json", whole=True)


def test_a_run_document_is_exactly_what_its_types_say(run_doc: RunDoc) -> None:
    assert conforms(run_doc, RunDoc) == []
    # the check can fail: an undeclared key, a missing one, a wrong type deep down
    assert conforms({**run_doc, "extra": 1}, RunDoc) == ["doc.extra: not declared in RunDoc"]
    assert conforms({k: v for k, v in run_doc.items() if k != "notice"}, RunDoc) == ["doc: lacks notice (RunDoc)"]
    bad = json.loads(json.dumps(run_doc))
    bad["cells"][0]["counts"]["pass"] = "1"
    assert conforms(bad, RunDoc) == ["doc.cells[0].counts.pass: '1', not int"]
    steps = [st for c in run_doc["cells"] for s in c["scenarios"] for st in s["steps"]]
    # what the check above covered: both hop shapes, WebSocket steps, failures and causes
    assert any("websocket" in st for st in steps) and any("websocket" not in st for st in steps)
    hops = [h for st in steps for h in st["hops"].values()]
    assert any("status" in h for h in hops) and any("method" in h for h in hops)
    assert any(c["causes"] for c in run_doc["cells"])


def test_the_sections_other_commands_add_are_what_their_types_say(run_doc: RunDoc) -> None:
    other = json.loads(json.dumps(run_doc))
    other["cells"][0]["verdict"] = "compatible"
    other["cells"][0]["scenarios"][0]["outcome"] = "error"
    section = repeat.summary([run_doc, other])
    assert section["flaky"] and conforms(section, RepeatDoc) == []
    peer = json.loads(json.dumps(run_doc))
    findings.annotate(peer, version="25.1.1", profile="G6b", peer_row="G6b", reference_doc=other,
                      findings=findings.load_findings())
    assert peer["peer"]["differences"] and conforms(peer["peer"], PeerDoc) == []


def test_every_column_is_described_as_the_types_say() -> None:
    assert conforms(faults.describe(faults.parse("status-5xx")), document.FastTrackDoc) == []
    assert conforms(describe_real_fasttrack("ft", "http://127.0.0.1:1"), document.FastTrackDoc) == []
    assert all(conforms(describe_fasttrack(m), document.FastTrackDoc) == [] for m in fasttrack_models.MODELS)


def test_a_real_row_is_described_as_the_types_say() -> None:
    launcher = types.SimpleNamespace(label="webserver-25.1.1", profile=generations.resolve("to-be"), how="identify")
    row = describe_gateway(launcher)  # type: ignore[arg-type]
    assert conforms(row, document.GatewayDoc) == [] and row["external"] is True
    assert real_rows({"gateways": [row]}) == {"webserver-25.1.1": "to-be"}  # type: ignore[typeddict-item]


def _usage(doc: Any, **kw: bool) -> str:
    with pytest.raises(errors.UsageError) as exc:
        document.check(doc, "r.json", **kw)
    assert exc.value.exit_code == errors.EXIT_USAGE
    return str(exc.value)


def test_check_names_what_is_wrong_in_one_line() -> None:
    assert _usage([]) == "r.json: not a harness result document (expected a JSON object)"
    assert _usage({"schema": "x"}) == f"r.json: schema is 'x', expected {SCHEMA!r}"
    assert "written by an older harness" in _usage({"schema": OLD_SCHEMAS[0], "cells": []})
    assert _usage({"schema": SCHEMA, "cells": {}}) == "r.json: 'cells' must be a list"
    assert _usage({"schema": SCHEMA, "cells": [{"gateway": "g"}]}) == (
        "r.json: cells[0] needs gateway, fasttrack, verdict and scenarios")
    cell = {"gateway": "g", "fasttrack": "f", "verdict": "compatible", "scenarios": [{"id": "s"}]}
    assert _usage({"schema": SCHEMA, "cells": [cell]}) == "r.json: cells[0].scenarios[0] needs id and outcome"
    # the writers need the profile lists; the gate and diff do not
    assert _usage({"schema": SCHEMA, "cells": []}, whole=True) == "r.json: 'gateways' must be a list"
    assert document.check({"schema": SCHEMA, "cells": []}, "r.json") == {"schema": SCHEMA, "cells": []}
    assert document.check({"schema": OLD_SCHEMAS[0], "cells": []}, "r.json", old_ok=True)["cells"] == []


def test_read_reports_an_unreadable_file_as_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    for path in (tmp_path / "bad.json", tmp_path / "missing.json"):
        with pytest.raises(errors.UsageError, match=f"^cannot read {path}: "):
            document.read(path)


def test_cells_by_key_in_document_order(run_doc: RunDoc) -> None:
    index = cells_by_key(run_doc)
    assert list(index) == [(c["gateway"], c["fasttrack"]) for c in run_doc["cells"]]
    assert all(index[document.key(c)] is c for c in run_doc["cells"])


def test_the_first_failure_of_a_scenario_its_error_or_none(run_doc: RunDoc) -> None:
    failing = next(s for c in run_doc["cells"] for s in c["scenarios"] if s["failures"])
    f = failing["failures"][0]
    found = first_failure(failing)
    assert found == {"step": f["step"], "hop": f["hop"], "what": f["what"], "name": f["name"], "kind": f["kind"]}
    subject = f"{f['what']} {f['name']}" if f["name"] else f["what"]
    assert failure_text(found) == f"{f['step']} / {f['hop']} / {subject} ({f['kind']})"
    errored = {**failing, "failures": [], "error": "gateway unreachable"}
    assert first_failure(errored) == FirstFailure(step="", hop="error", what="error", name="gateway unreachable",
                                                  kind="")
    assert failure_text(typing.cast(FirstFailure, first_failure(errored))) == "error: gateway unreachable"
    assert first_failure(errored, error=False) is None
    assert first_failure({**failing, "failures": [], "error": None}) is None


def test_real_rows_need_the_profile_they_were_judged_as() -> None:
    doc: Any = {"gateways": [{"id": "G0"}, {"id": "real", "external": True}]}
    with pytest.raises(errors.UsageError, match="gateway row 'real' is a real gateway"):
        real_rows(doc)
