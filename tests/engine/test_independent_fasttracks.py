"""Real FastTracks the harness did not write: tests/independent_fasttracks/ holds two small FastTracks that do not
import harness (one from PR #3353's TO-BE diagram, one of the SSO era), each run as its own process on
127.0.0.1 behind ``--fasttrack-url``. Only the contract is judged (model checks, injected answers and clock
offsets are not applicable); requiredness comes from the version each announced."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from harness import cli
from harness.engine import services
from harness.results import document

HERE = Path(__file__).resolve().parents[1] / "independent_fasttracks"
SECRET = "the-sso-fasttracks-own-secret-not-the-harness-default"


async def behind(tmp_path: Path, script: str, ft_args: list[str], command: list[str]) -> int:
    """``command`` (``run`` or ``gate``, with ``--out tmp_path``) against the FastTrack ``script``, which reads the
    accounts from ``tmp_path/accounts.json``, the file the command writes."""
    port = services.free_port()
    argv = [sys.executable, str(HERE / script), "--port", str(port), "--accounts", str(tmp_path / "accounts.json"),
            *ft_args]
    async with services.process(f"independent FastTrack {script}", argv, host="127.0.0.1", port=port,
                                ready_timeout=30):
        return await asyncio.to_thread(cli.main, [*command, "--out", str(tmp_path),
                                                  "--fasttrack-url", f"http://127.0.0.1:{port}"])


async def judged(tmp_path: Path, script: str, ft_args: list[str], *args: str) -> tuple[int, dict]:
    code = await behind(tmp_path, script, ft_args, ["run", "--quiet", *args])
    return code, document.read(tmp_path / "matrix.json", whole=True)


def cells(doc: dict) -> dict[str, dict]:
    return {c["gateway"]: c for c in doc["cells"]}


async def test_the_to_be_fasttrack_is_compatible_and_required_for_to_be_and_g6(tmp_path: Path) -> None:
    code, doc = await judged(tmp_path, "to_be_fasttrack.py", [], "--gateway", "to-be", "--gateway", "G6")
    # Both gateways answer a repeated credential header 500 (W3, a defect of the gateway that nothing of
    # FastTrack takes part in): the run says so (exit 1) and the gate accepts it by its id (below).
    assert code == 1
    for gateway in ("to-be", "G6"):
        cell = cells(doc)[gateway]
        assert (cell["verdict"], cell["required"], cell["fasttrack_version"]) == ("incompatible", True, "25.6.0")
        runs = {s["id"]: s for s in cell["scenarios"]}
        # websocket-close needs the mock to close the stream: nothing of it can be judged (a skip, never a pass)
        assert {k: (s["outcome"], s["finding"]) for k, s in runs.items() if s["outcome"] != "pass"} == {
            "websocket-close": ("skip", None), "duplicate-credentials": ("fail", "W3-duplicated-credential-headers")}
        # The mock's details were not judged (its echo of the user), the contract was.
        login = runs["bearer-session-header"]["checks"]
        assert login["not_applicable"] > 0 and login["judged"] > login["not_applicable"]
        # The stream went through the tap both ways: what reached FastTrack is recorded and judged.
        stream = runs["websocket-stream"]["steps"][0]
        assert stream["outcome"] == "pass" and stream["websocket"]["fasttrack_received"] == [
            ["text", "hello"], ["binary", "00ff10"]]
        assert stream["websocket"]["fasttrack_sent"] == [["text", "ack 1"], ["text", "ack 2"]]
    injected = next(s for s in cells(doc)["to-be"]["scenarios"] if s["id"] == "upstream-errors")["steps"]
    assert any(st["outcome"] == "skip" and "injects FastTrack's answer" in st["note"] for st in injected)
    # Every user a run logged in (one per run, two where a scenario has users: 2) was in the file beforehand.
    accounts = json.loads((tmp_path / "accounts.json").read_text())["accounts"]
    runs = sum(len(c["scenarios"]) for c in doc["cells"])
    assert runs < len(accounts) <= 2 * runs and len({a["access_key"] for a in accounts}) == len(accounts)


async def test_the_sso_fasttrack_is_compatible_with_as_is_given_its_own_secret(tmp_path: Path) -> None:
    code, doc = await judged(tmp_path, "sso_fasttrack.py", ["--secret", SECRET], "--gateway", "as-is",
                             "--jwt-secret", SECRET)
    assert code == 1  # as-is answers a repeated credential header 500: W3, the gateway's defect, nothing else
    cell = cells(doc)["as-is"]
    assert (cell["verdict"], cell["required"], cell["fasttrack_version"]) == ("incompatible", True, "24.9.0")
    assert {s["id"]: s["finding"] for s in cell["scenarios"] if s["outcome"] == "fail"} == {
        "duplicate-credentials": "W3-duplicated-credential-headers"}
    # Every step of jwt-expiry needs FastTrack's clock: nothing to judge there is a skip, not a pass.
    expiry = next(s for s in cell["scenarios"] if s["id"] == "jwt-expiry")
    assert expiry["outcome"] == "skip" and "not applicable" in expiry["reason"]


async def test_the_sso_fasttrack_refuses_jwts_minted_with_another_secret(tmp_path: Path) -> None:
    code, doc = await judged(tmp_path, "sso_fasttrack.py", ["--secret", SECRET], "--gateway", "as-is",
                             "--scenario", "pr3353-*")
    assert code == 1 and cells(doc)["as-is"]["verdict"] == "incompatible"


async def test_without_the_version_header_the_cell_is_unknown_and_required(tmp_path: Path) -> None:
    code, doc = await judged(tmp_path, "to_be_fasttrack.py", ["--no-version"], "--gateway", "to-be",
                             "--scenario", "pr3353-*")
    assert code != 0
    cell = cells(doc)["to-be"]
    assert (cell["verdict"], cell["required"], cell["fasttrack_version"]) == ("unknown", True, None)


async def test_two_different_versions_are_unknown_not_a_crash(tmp_path: Path) -> None:
    code, doc = await judged(tmp_path, "to_be_fasttrack.py", ["--alternate-version", "25.7.0"], "--gateway", "to-be",
                             "--scenario", "pr3353-*")
    assert code == 1
    cell = cells(doc)["to-be"]
    assert cell["verdict"] == "unknown" and cell["required"] and "varied" in cell["reason"]


async def test_a_fasttrack_that_accepts_everything_is_not_compatible(tmp_path: Path) -> None:
    code, doc = await judged(tmp_path, "to_be_fasttrack.py", ["--accept-all"], "--gateway", "to-be",
                             "--scenario", "bearer-*")
    assert code == 1
    assert cells(doc)["to-be"]["verdict"] == "incompatible" and cells(doc)["to-be"]["required"]


@pytest.mark.parametrize("script", ["to_be_fasttrack.py", "sso_fasttrack.py"])
def test_the_independent_fasttracks_do_not_import_the_harness(script: str) -> None:
    text = (HERE / script).read_text()
    assert "harness" not in "\n".join(line for line in text.splitlines() if line.startswith(("import", "from")))


async def gated(tmp_path: Path, ft_args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    """The whole reference matrix against the independent TO-BE FastTrack (``run --fasttrack-url``, which writes
    the accounts it reads), then ``gate --run`` on that document."""
    await judged(tmp_path, "to_be_fasttrack.py", ft_args)
    capsys.readouterr()
    code = cli.main(["gate", "--json", "--run", str(tmp_path / "matrix.json")])
    return code, json.loads(capsys.readouterr().out)


def reasons_of(out: dict, kind: str) -> set[tuple[str, str]]:
    return {(r["gateway"], r["fasttrack"]) for r in out["reasons"] if r["kind"] == kind}


async def test_gate_requires_a_real_fasttrack_by_the_version_it_announced(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The gate runs the matrix itself and writes the accounts file as run does (same --out, same file): the
    # FastTrack verifies every login signature against it, so the TO-BE rows can pass at all.
    code = await behind(tmp_path, "to_be_fasttrack.py", [], ["gate", "--json"])
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert f"the accounts of this run are in {tmp_path / 'accounts.json'}" in captured.err
    assert json.loads((tmp_path / "accounts.json").read_text())["accounts"]
    assert (code, out["verdict"]) == (0, "deployable"), out["reasons"]
    assert not reasons_of(out, "RequiredCellMissing")  # the model columns are not asked of a --fasttrack-url run
    # 25.6.0 is required by to-be and every G6 (">=25.1"); to-be, G6 and G6b fail only with W3, G6b-G6d and G6g
    # only with W1, each accepted by its id
    required = {(r["gateway"], r["fasttrack"]) for r in out["reasons"] if r["kind"] == "NewCell" and r["required"]}
    assert required == {(g, "external") for g in ("to-be", "G6", "G6b", "G6c", "G6d", "G6g")}
    known = {(r["gateway"], frozenset(r["findings"])) for r in out["reasons"] if r["kind"] == "KnownIssue"}
    w1, w3 = "W1-pooled-cookie-jar-leak", "W3-duplicated-credential-headers"
    assert known == {("to-be", frozenset({w3})), ("G6", frozenset({w3})), ("G6b", frozenset({w1, w3})),
                     *((g, frozenset({w1})) for g in ("G6c", "G6d", "G6g"))}


async def test_gate_on_a_real_fasttrack_that_accepts_everything_is_not_deployable(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = await gated(tmp_path, ["--accept-all"], capsys)
    assert (code, out["verdict"]) == (1, "not deployable")
    assert ("to-be", "external") in reasons_of(out, "RequiredCellFailing")


async def test_gate_on_a_real_fasttrack_without_a_version_is_never_deployable(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = await gated(tmp_path, ["--no-version"], capsys)
    assert code in (1, 3) and out["verdict"] != "deployable"
    # required wherever anything could be required: G6d's cell is unknown (nothing but the version failed there),
    # to-be's is incompatible (its W3 failure needs no version, next to the failures for the missing one), and the
    # SSO-era rows, which a TO-BE FastTrack fails, count against it too
    assert ("G6d", "external") in reasons_of(out, "RequiredCellUnknown")
    assert {("to-be", "external"), ("as-is", "external")} <= reasons_of(out, "RequiredCellFailing")


@pytest.mark.parametrize("argv", [["--out", "{tmp}"], ["--out", "{tmp}", "--run", "{tmp}/matrix.json",
                                                       "--fasttrack-url", "http://127.0.0.1:9"]])
def test_gate_refuses_out_where_it_writes_no_accounts(argv: list[str], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["gate", *(a.format(tmp=tmp_path) for a in argv)]) == 2
    assert "--out is where a --fasttrack-url run writes accounts.json" in capsys.readouterr().err
    assert not (tmp_path / "accounts.json").exists()
