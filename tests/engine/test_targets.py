"""Real-target plumbing: a gateway command, a tapped FastTrack in another process, and their failures.

The reference gateway and the mock FastTrack are run as separate processes (``python -m harness serve``),
standing in for a real webserver build and a real FastTrack.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness import cli
from harness.engine import services
from harness.results import document

SERVE_GW = (f"{sys.executable} -m harness serve gateway --profile {{profile}} --port {{{{port}}}} "
            "--fasttrack-url {{fasttrack_url}} --manager-url {{manager_url}} --jwt-secret {{jwt_secret}}")


def run(tmp_path: Path, *args: str) -> tuple[int, dict]:
    code = cli.main(["run", "--quiet", "--out", str(tmp_path), "--scenario", "pr3353*", *args])
    doc = document.read(tmp_path / "matrix.json", whole=True) if (tmp_path / "matrix.json").exists() else {}
    return code, doc


def verdicts(doc: dict) -> dict[tuple[str, str], str]:
    return {(c["gateway"], c["fasttrack"]): c["verdict"] for c in doc["cells"]}


def test_gateway_command_is_judged_like_the_profile_it_claims(tmp_path: Path) -> None:
    code, doc = run(tmp_path, "--gateway-cmd", SERVE_GW.format(profile="as-is"), "--judge-as", "as-is",
                    "--gateway-name", "as-is-process", "--fasttrack", "24.09.0", "--fasttrack", "25.1.0")
    assert code == 0
    assert verdicts(doc) == {("as-is-process", "24.09.0"): "compatible", ("as-is-process", "25.1.0"): "incompatible"}
    assert doc["gateways"][0]["external"] is True


def test_a_gateway_that_behaves_like_another_generation_fails_its_claim(tmp_path: Path) -> None:
    # A TO-BE build claiming to be AS-IS: the required cell is incompatible, exit 1.
    code, doc = run(tmp_path, "--gateway-cmd", SERVE_GW.format(profile="to-be"), "--judge-as", "as-is",
                    "--fasttrack", "24.09.0")
    assert code == 1
    cell = doc["cells"][0]
    assert cell["required"] and cell["verdict"] == "incompatible"
    assert "gateway_to_fasttrack" in cell["reason"] or "fasttrack_to_gateway" in cell["reason"]


def test_unknown_template_placeholder_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run(tmp_path, "--gateway-cmd", "serve --port {port} --oops {nope}", "--judge-as", "as-is")
    assert code == 2
    assert "unknown placeholder(s) nope" in capsys.readouterr().err


def test_gateway_that_exits_early_is_an_error_with_its_output(tmp_path: Path) -> None:
    code, doc = run(tmp_path, "--gateway-cmd", "echo starting {port}; echo boom >&2; exit 7", "--judge-as", "as-is",
                    "--fasttrack", "24.09.0")
    assert code == 3
    cell = doc["cells"][0]
    assert cell["verdict"] == "error"
    assert "exited with code 7" in cell["reason"] and "boom" in cell["reason"]


def test_gateway_that_never_listens_times_out_as_an_error(tmp_path: Path) -> None:
    code, doc = run(tmp_path, "--gateway-cmd", f"{sys.executable} -c 'import time; time.sleep(60)' {{port}}",
                    "--judge-as", "as-is", "--fasttrack", "24.09.0", "--ready-timeout", "0.5")
    assert code == 3
    assert "did not listen" in doc["cells"][0]["reason"]


def test_gateway_url_needs_the_listen_addresses(tmp_path: Path) -> None:
    code, _ = run(tmp_path, "--gateway-url", "http://127.0.0.1:1", "--judge-as", "as-is")
    assert code == 2


async def test_tap_records_a_fasttrack_in_another_process(tmp_path: Path) -> None:
    port = services.free_port()
    argv = [sys.executable, "-m", "harness", "serve", "fasttrack", "--profile", "25.1.0", "--port", str(port)]
    async with services.process("mock FastTrack process", argv, host="127.0.0.1", port=port, ready_timeout=20):
        code, doc = await _in_thread(tmp_path, "--gateway", "to-be", "--gateway", "as-is",
                                     "--fasttrack-url", f"http://127.0.0.1:{port}", "--fasttrack-name", "25.1.0")
    assert code == 0
    assert verdicts(doc) == {("to-be", "25.1.0"): "compatible", ("as-is", "25.1.0"): "incompatible"}
    cell = next(c for c in doc["cells"] if c["gateway"] == "to-be")
    assert cell["fasttrack_version"] == "25.1.0"  # keyed by what the real responses said
    login = cell["scenarios"][0]["steps"][0]["hops"]
    hop2 = dict((k.lower(), v) for k, v in login["gateway_to_fasttrack"]["headers"])
    assert hop2["authorization"].startswith("BackendAI signMethod=HMAC-SHA256")
    assert login["fasttrack_to_gateway"]["status"] == 200


async def test_tap_to_a_refusing_fasttrack_is_an_error(tmp_path: Path) -> None:
    port = services.free_port()  # nothing listens there
    code, doc = await _in_thread(tmp_path, "--gateway", "to-be", "--fasttrack-url", f"http://127.0.0.1:{port}",
                                 "--fasttrack-name", "25.1.0")
    assert code == 3
    assert doc["cells"][0]["verdict"] == "error"
    assert "unreachable" in doc["cells"][0]["reason"]


async def _in_thread(tmp_path: Path, *args: str) -> tuple[int, dict]:
    """cli.main runs its own event loop; keep it off this test's loop."""
    import asyncio

    return await asyncio.to_thread(run, tmp_path, *args)
