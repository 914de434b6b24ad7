"""The gate judges the real build: a gateway command (a ``serve`` process, with or without one deliberate
deviation) and real releases (``peers`` marker, cached venvs), judged as the profile they claim, with
``--confirm`` re-running the very same target."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import cli
from harness.compare.gate.evaluate import evaluate, gate, judged
from harness.compare.gate.reasons import KnownIssue
from harness.engine import services
from harness.results import document

ROOT = Path(__file__).resolve().parents[2]
BASELINE = ROOT / "reports" / "baseline.json"
SERVE = (f"{sys.executable} -m harness serve gateway --profile as-is --port {{port}} --fasttrack-url {{fasttrack_url}} "
         "--manager-url {manager_url} --jwt-secret {jwt_secret}")
MUTANT = SERVE + " --mutant as-is~sso-renamed"  # X-BackendAI-SSO renamed: every SSO-era login fails at hop 2


def gate_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = cli.main(["gate", "--json", *argv])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def test_a_gateway_with_one_deviation_is_not_deployable_even_with_confirm(capsys: pytest.CaptureFixture[str]
                                                                           ) -> None:
    code, out = gate_json(capsys, "--gateway-cmd", MUTANT, "--judge-as", "as-is", "--gateway-name", "rc",
                          "--confirm", "2")
    assert code == 1 and out["verdict"] == "not deployable"
    regressions = [r for r in out["reasons"] if r["kind"] == "Regression"]
    assert regressions and all(r["confirmed"] == 2 for r in regressions)  # the mutant was re-run, not as-is
    assert {r["fasttrack"] for r in regressions} == {"24.09.0", "24.12.0-dual"}  # as-is's required cells
    assert all(r["gateway"] == "rc" for r in out["reasons"] if "gateway" in r)
    assert out["judged_as"] == [{"row": "rc", "judged_as": "as-is", "judged_by": "--judge-as"}]


def test_its_faithful_twin_is_deployable(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = gate_json(capsys, "--gateway-cmd", SERVE, "--judge-as", "as-is", "--confirm", "2")
    assert code == 0 and out["verdict"] == "deployable", out["reasons"]
    assert not [r for r in out["reasons"] if r["effect"] != "info"]


def small_run(tmp_path: Path, name: str, template: str) -> Path:
    out = tmp_path / name
    code = cli.main(["run", "--quiet", "--out", str(out), "--scenario", "pr3353-as-is", "--fasttrack", "24.09.0",
                     "--gateway-cmd", template, "--judge-as", "as-is", "--gateway-name", "as-is"])
    assert code in (0, 1)
    return out / "matrix.json"


def test_confirm_of_a_real_row_never_re_runs_the_reference_profile_of_the_same_name(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The real row is labelled like the profile it claims ('as-is'). Re-running the reference 'as-is' would pass,
    # turn the regression into Flaky and say deployable: a false pass.
    twin, mutant = small_run(tmp_path, "twin", SERVE), small_run(tmp_path, "mutant", MUTANT)
    doc = document.read(twin, whole=True)
    assert doc["gateways"][0]["external"] is True and doc["gateways"][0]["judged_as"] == "as-is"
    policy = tmp_path / "policy.yaml"
    policy.write_text('required:\n  as-is: ["24.09.0"]\n')
    base = ["--run", str(mutant), "--baseline", str(twin), "--policy", str(policy)]
    code, out = gate_json(capsys, *base)
    assert code == 1 and [r["kind"] for r in out["reasons"]] == ["Regression"]
    assert cli.main(["gate", *base, "--confirm", "2"]) == 2  # the target it ran with is needed
    assert "never a reference profile" in capsys.readouterr().err
    code, out = gate_json(capsys, *base, "--confirm", "2", "--gateway-cmd", MUTANT, "--judge-as", "as-is",
                          "--gateway-name", "as-is")
    assert code == 1 and [(r["kind"], r["confirmed"]) for r in out["reasons"]] == [("Regression", 2)]
    # Another target than the run's is refused, as is a target without --confirm.
    assert cli.main(["gate", *base, "--confirm", "2", "--gateway-cmd", MUTANT, "--judge-as", "as-is"]) == 2
    assert cli.main(["gate", *base, "--gateway-cmd", MUTANT, "--judge-as", "as-is", "--gateway-name", "as-is"]) == 2


def test_a_real_run_is_judged_on_its_row_as_the_profile_it_claims() -> None:
    baseline = json.loads(BASELINE.read_text())
    policy = {"to-be": frozenset({"25.1.0", "24.12.0-dual"}), "as-is": frozenset({"24.09.0"})}
    to_be = {(c["fasttrack"]): c for c in baseline["cells"] if c["gateway"] == "to-be"}
    cells = [{"gateway": "webserver-x", "fasttrack": f, "fasttrack_version": f, "verdict": c["verdict"],
              "required": c["required"], "reason": None,
              "scenarios": [{"id": k, "outcome": v} for k, v in c["scenarios"].items()]} for f, c in to_be.items()]
    run = {"schema": document.SCHEMA, "cells": cells,
           "gateways": [{"id": "webserver-x", "external": True, "judged_as": "to-be"}]}
    result = gate(run, baseline, policy)
    # to-be's required cells fail only websocket-close (W2) and duplicate-credentials (W3), which the baseline
    # accepts by their ids
    assert result.verdict == "deployable"
    assert {(r.kind, r.where, frozenset(r.findings)) for r in result.reasons if isinstance(r, KnownIssue)} == {
        ("KnownIssue", f"webserver-x×{f}", frozenset({"W2-stream-close-not-relayed",
                                                     "W3-duplicated-credential-headers"}))
        for f in ("25.1.0", "24.12.0-dual")}
    assert all(isinstance(r, KnownIssue) for r in result.reasons)
    assert judged(run, baseline, policy).required == {("webserver-x", "25.1.0"), ("webserver-x", "24.12.0-dual")}
    run["cells"] = [c for c in cells if c["fasttrack"] != "25.1.0"]
    assert [r.kind for r in evaluate(run, baseline, policy)] == ["KnownIssue", "RequiredCellMissing"]
    run["gateways"][0].pop("judged_as")
    with pytest.raises(Exception, match="judged_as"):
        evaluate(run, baseline, policy)


needs_redis = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is needed")


@pytest.mark.parametrize("confirm", [[], ["--confirm", "2"]])
@pytest.mark.peers
@needs_redis
def test_a_release_judged_as_a_later_generation_is_not_deployable(confirm: list[str],
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, out = gate_json(capsys, "--peer", "24.9.14", "--judge-as", "to-be", *confirm)
    assert code == 1 and out["verdict"] == "not deployable"
    assert out["judged_as"] == [{"row": "webserver-24.9.14", "judged_as": "to-be", "judged_by": "--judge-as"}]
    if confirm:
        assert all(r["confirmed"] == 2 for r in out["reasons"] if r["kind"] in ("Regression", "RequiredCellFailing"))


@pytest.mark.peers
@needs_redis
def test_a_release_run_then_gated_from_its_matrix_json_is_deployable(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    # 25.1.1 fails websocket-close in its required cells, as every release does (W2, documented), and answers a
    # repeated credential header 500 (W3, documented): the run says so
    assert cli.main(["peer", "run", "25.1.1", "--quiet", "--out", str(tmp_path)]) == 1
    row = document.read(tmp_path / "matrix.json", whole=True)["gateways"][0]
    assert (row["external"], row["judged_as"]) == (True, "to-be") and row["judged_by"].startswith("identify")
    code, out = gate_json(capsys, "--run", str(tmp_path / "matrix.json"))
    assert code == 0 and out["verdict"] == "deployable", out["reasons"]  # W2, W3 accepted for to-be by their ids
    assert {frozenset(r["findings"]) for r in out["reasons"] if r["kind"] == "KnownIssue"} == {
        frozenset({"W2-stream-close-not-relayed", "W3-duplicated-credential-headers"})}


def test_diff_of_two_builds_compares_their_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    twin, again, mutant = (small_run(tmp_path, n, t) for n, t in (("a", SERVE), ("b", SERVE), ("m", MUTANT)))
    assert cli.main(["diff", str(twin), str(again)]) == 0
    capsys.readouterr()
    assert cli.main(["diff", str(twin), str(mutant), "--json"]) == 1
    changes = json.loads(capsys.readouterr().out)["changes"]
    assert {c["kind"] for c in changes} == {"verdict", "outcome"} and all("only" not in c["kind"] for c in changes)


@contextlib.contextmanager
def running_elsewhere(argv: list[str], port: int) -> Iterator[None]:
    """A process started outside the harness's run (its own thread and event loop), stopped on exit."""
    ready, stop, failed = threading.Event(), threading.Event(), []

    async def hold() -> None:
        try:
            async with services.process("gateway started by hand", argv, host="127.0.0.1", port=port,
                                        ready_timeout=30):
                ready.set()
                await asyncio.get_running_loop().run_in_executor(None, stop.wait)
        except Exception as exc:  # reported by the test, not lost in the thread
            failed.append(exc)
            ready.set()

    thread = threading.Thread(target=asyncio.run, args=(hold(),))
    thread.start()
    try:
        assert ready.wait(60) and not failed, failed
        yield
    finally:
        stop.set()
        thread.join(30)


def test_gate_on_a_running_gateway_url_confirms_on_that_same_url(capsys: pytest.CaptureFixture[str]) -> None:
    gw, ft, mgr = services.free_port(), services.free_port(), services.free_port()
    argv = [sys.executable, "-m", "harness", "serve", "gateway", "--profile", "as-is", "--mutant", "as-is~sso-renamed",
            "--port", str(gw), "--fasttrack-url", f"http://127.0.0.1:{ft}", "--manager-url", f"http://127.0.0.1:{mgr}"]
    with running_elsewhere(argv, gw):
        code, out = gate_json(capsys, "--gateway-url", f"http://127.0.0.1:{gw}", "--fasttrack-listen",
                              f"127.0.0.1:{ft}", "--manager-listen", f"127.0.0.1:{mgr}", "--judge-as", "as-is",
                              "--confirm", "1")
    assert code == 1 and out["verdict"] == "not deployable"
    regressions = [r for r in out["reasons"] if r["kind"] == "Regression"]
    assert regressions and all(r["confirmed"] == 1 and r["gateway"] == "external" for r in regressions)
