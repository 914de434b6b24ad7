"""Determinism (issue #6, item 5): two runs of the full default matrix give the same verdict.json, apart from
what legitimately varies between runs; ``run --repeat N`` reports whatever varies."""

from __future__ import annotations

import base64
import copy
import json
import re
import time
from typing import Any

import pytest

from harness import cli
from harness.compare import repeat
from harness.engine.matrix_run import Options, run_matrix
from harness.engine.selection import select
from harness.judge import support_policy
from harness.protocol import generations
from harness.results.model import RunResult
from harness.results.redact import Redactor

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

# Wall-clock timings.
TIMING_KEYS = frozenset({"started_at", "duration_s", "duration_ms"})
# Set by the HTTP stacks from the wall clock (Date) or at random as RFC 6455 requires (the WebSocket key, and the
# accept value derived from it).
VARYING_HEADERS = frozenset({"date", "sec-websocket-key", "sec-websocket-accept"})
# Ports chosen by the OS: in Host, X-Forwarded-Host, ${gateway_host}, ${fasttrack_host}.
PORT_RE = re.compile(r"\b(127\.0\.0\.1|localhost):\d{1,5}\b")
# A JWT as reports show it (signature redacted or not): its iat/exp are wall-clock times.
JWT_RE = re.compile(r"\b(eyJ[A-Za-z0-9_-]*)\.(eyJ[A-Za-z0-9_-]*)\.(‹signature›|[A-Za-z0-9_-]+)")
EPOCH_RE = re.compile(r"\b\d{10}\b")


def _b64json(segment: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def _jwt(m: re.Match[str]) -> str:
    try:
        header, claims = _b64json(m[1]), _b64json(m[2])
    except ValueError:
        return m[0]
    if not isinstance(claims, dict):
        return m[0]
    claims = {k: v for k, v in claims.items() if k not in ("iat", "exp")}
    return f"JWT({json.dumps(header, sort_keys=True)}, {json.dumps(claims, sort_keys=True)}, {m[3] != '‹signature›'})"


def _epoch(m: re.Match[str]) -> str:
    """Epoch seconds within 20 years of now are clock readings (JWT exp/now in FastTrack's notes); others stay."""
    return "<epoch>" if abs(int(m[0]) - time.time()) < 20 * 365 * 86400 else m[0]


def _text(s: str) -> str:
    return EPOCH_RE.sub(_epoch, JWT_RE.sub(_jwt, PORT_RE.sub(r"\1:<port>", s)))


def _value(value: Any) -> Any:
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, dict):
        return {k: _value(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [_value(v) for v in value]
    return value


POOLED = {name for name, p in generations.by_name().items() if p.cookie_jar == "pooled"}


def normalize(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` without what legitimately differs between two runs (see the constants above), plus one modelled
    race: in pooled-cookie-jar gateways (G6b-G6d, peer finding W1) an anonymous request carries the cookies that
    this run *or a concurrent run* left in the shared jar, so its hop-2 ``Cookie`` depends on scheduling; the
    scenarios only assert that some AIOHTTP_SESSION leaks there, and that outcome is compared."""
    out: dict[str, Any] = _value(doc)  # a new structure: edited in place below
    for cell in out.get("cells", []):
        for sc in cell["scenarios"]:
            for step in sc["steps"]:
                for hop, record in step["hops"].items():
                    record["headers"] = [
                        [k, "<varies>" if k.lower() in VARYING_HEADERS else v] for k, v in record["headers"]
                        if not (cell["gateway"] in POOLED and hop == "gateway_to_fasttrack" and k.lower() == "cookie")]
    return out


def _document(result: RunResult) -> dict[str, Any]:
    """What ``run`` writes as verdict.json."""
    return Redactor(result.secrets()).document(result.to_json())


def _differences(a: Any, b: Any, path: str = "") -> list[str]:
    if type(a) is not type(b):
        return [f"{path}: {a!r} != {b!r}"]
    if isinstance(a, dict):
        out = [f"{path}.{k}: only in one run" for k in sorted(set(a) ^ set(b))]
        for k in a:
            if k in b:
                out += _differences(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items != {len(b)} items"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


async def test_two_runs_of_the_default_matrix_give_the_same_matrix_json():
    sel = select(None, None)
    policy = support_policy.load_policy()
    first = _document(await run_matrix(sel.gateways, sel.fasttracks, sel.scenarios, policy, Options()))
    second = _document(await run_matrix(sel.gateways, sel.fasttracks, sel.scenarios, policy, Options()))
    assert len(first["cells"]) == len(sel.gateways) * len(sel.fasttracks)
    assert sum(len(c["scenarios"]) for c in first["cells"]) > 0
    a, b = normalize(first), normalize(second)
    differences = _differences(a, b)
    assert not differences, f"{len(differences)} difference(s) between two runs:\n" + "\n".join(differences[:40])
    assert repeat.flaky([first, second]) == []

    # The comparison can fail: a changed step outcome or an extra header line in a cell is a difference.
    index = next(i for i, c in enumerate(second["cells"]) if any(s["steps"] for s in c["scenarios"]))
    cell = copy.deepcopy(second["cells"][index])
    step = next(st for s in cell["scenarios"] for st in s["steps"] if st["hops"])
    step["outcome"] = "fail" if step["outcome"] == "pass" else "pass"
    next(iter(step["hops"].values()))["headers"].append(["X-Extra", "1"])
    found = _differences(a["cells"][index], normalize({"cells": [cell]})["cells"][0])
    assert len(found) == 2 and any(".outcome" in d for d in found) and any(".headers" in d for d in found)


def test_normalize_drops_only_what_varies():
    doc = {"started_at": "2026-01-01T00:00:00", "duration_s": 1.0, "cells": [{
        "gateway": "G6b", "fasttrack": "25.1.0", "scenarios": [{"id": "s", "duration_ms": 3.0, "steps": [{
            "hops": {"gateway_to_fasttrack": {"headers": [
                ["Host", "127.0.0.1:40123"], ["Date", "2026-01-01"], ["Cookie", "AIOHTTP_SESSION=ab"],
                ["X-BackendAI-SSO", "eyJhbGciOiJIUzI1NiJ9.eyJpYXQiOjEsImV4cCI6MiwiaXNzIjoieCJ9.‹signature›"]]}}}]}]}]}
    out = normalize(doc)
    assert "started_at" not in out and "duration_s" not in out
    headers = out["cells"][0]["scenarios"][0]["steps"][0]["hops"]["gateway_to_fasttrack"]["headers"]
    assert headers == [["Host", "127.0.0.1:<port>"], ["Date", "<varies>"],
                       ["X-BackendAI-SSO", 'JWT({"alg": "HS256"}, {"iss": "x"}, False)']]
    doc["cells"][0]["gateway"] = "G6"  # per-request jar: the Cookie header is compared
    assert ["Cookie", "AIOHTTP_SESSION=ab"] in normalize(doc)["cells"][0]["scenarios"][0]["steps"][0]["hops"][
        "gateway_to_fasttrack"]["headers"]
    assert _text(f"exp 1000000000, now {int(time.time())}") == "exp 1000000000, now <epoch>"


def _doc(verdict: str, outcome: str, failure: dict[str, str] | None = None) -> dict[str, Any]:
    return {"cells": [{"gateway": "as-is", "fasttrack": "24.09.0", "verdict": verdict, "fasttrack_version": "24.09.0",
                       "scenarios": [{"id": "pr3353-as-is", "outcome": outcome,
                                      "failures": [failure] if failure else []}]}]}


def test_repeat_reports_a_varying_verdict_and_outcome():
    same = _doc("compatible", "pass")
    assert repeat.flaky([same, copy.deepcopy(same), copy.deepcopy(same)]) == []
    failing = _doc("incompatible", "fail", {"step": "login", "hop": "gateway_to_fasttrack", "what": "request line",
                                                     "name": "path", "kind": "equals"})
    found = repeat.flaky([same, failing, same])
    assert found == [{"gateway": "as-is", "fasttrack": "24.09.0",
                      "verdicts": ["compatible", "incompatible", "compatible"],
                      "scenarios": [{"id": "pr3353-as-is", "outcomes": ["pass", "fail", "pass"],
                                     "first_failures": [
                                         None, "login / gateway_to_fasttrack / request line path (equals)", None]}]}]
    assert "as-is × 24.09.0: verdicts compatible / incompatible / compatible" in repeat.render(
        repeat.summary([same, failing, same]))
    # Same outcome, another first failure: still a variation.
    other = _doc("incompatible", "fail", {"step": "call", "hop": "gateway_to_client", "what": "status", "name": "",
                                                 "kind": "equals"})
    assert [s["id"] for s in repeat.flaky([failing, other])[0]["scenarios"]] == ["pr3353-as-is"]


def test_run_repeat_writes_the_repeat_section(tmp_path, capsys):
    code = cli.main(["run", "--gateway", "as-is", "--gateway", "to-be", "--fasttrack", "24.09.0", "--fasttrack",
                     "25.1.0", "--scenario", "pr3353-*", "--repeat", "3", "--quiet", "--out", str(tmp_path)])
    assert code == 0
    doc = json.loads((tmp_path / "matrix.json").read_text(encoding="utf-8"))
    assert doc["repeat"] == {"runs": 3, "flaky": []}
    assert "repeat: 3 runs, every verdict and scenario outcome was the same" in capsys.readouterr().out


def test_run_repeat_rejects_zero(capsys):
    assert cli.main(["run", "--repeat", "0"]) == 2
    assert "--repeat" in capsys.readouterr().err
