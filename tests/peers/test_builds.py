"""Peer targets without the network: what a TARGET is, which Python and constraints it gets, the 26.4 manager
contract, and every kind of bad input (an unknown version, a wheel for the wrong Python, a directory that is not
a webserver tree, a build that never listens, a manager contract the build rejects)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from packaging.version import Version

from harness import cli
from harness.engine import services, supervisor
from harness.engine.matrix_run import Options, mock_columns, run_matrix
from harness.engine.targets import CLASSIC_CONFIG, CONFIG_26, CONFIG_2303, TEMPLATE_FIELDS
from harness.errors import HarnessError, UsageError
from harness.peers import builds, census
from harness.protocol import fasttrack_models, generations, manager_rules
from harness.scenario.loader import load_scenario

DATA = Path(__file__).resolve().parents[1] / "data"
SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
VERSIONS = [Version(v) for v in ("26.9.6", "26.9.5", "26.8.1", "25.1.1", "24.9.14", "23.9.10", "23.3.13")]
needs_redis = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "peer-cache"
    monkeypatch.setenv("HARNESS_PEER_CACHE", str(cache))
    return cache


def any_python(minor: str) -> str:
    return sys.executable  # the tests only need a Python to be "found"


def fake_wheel(tmp_path: Path, *, version: str = "26.9.6", requires_python: str = ">=3.13,<3.14",
               tag: str = "py3-none-any", name: str = "backend.ai-webserver") -> Path:
    path = tmp_path / f"{name.replace('.', '_').replace('-', '_')}-{version}-{tag}.whl"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nRequires-Python: {requires_python}\n" \
           "Requires-Dist: aiohttp~=3.14.3\n\n"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"backend_ai_webserver-{version}.dist-info/METADATA", meta)
    return path


# --- what a target is -------------------------------------------------------------------------------------

def test_derivation_reproduces_the_shipped_26_9_6_lock_from_26_8_1() -> None:
    # lock-26.9.6.txt was made by hand from lock-26.8.1.txt and 26.9.6's wheels (real-webserver-peers); the
    # harness derives the same pins from the recorded Requires-Dist of those wheels.
    fixture = json.loads((DATA / "requires-26.9.6.json").read_text())
    base = (builds.LOCKS / "lock-26.8.1.txt").read_text().splitlines()
    lines, relaxed = builds.derive_lock("lock-26.8.1.txt", base, fixture["requires_dist"], fixture["companions"],
                                       python="3.13", build="26.9.6")
    expected = (builds.LOCKS / "lock-26.9.6.txt").read_text().splitlines()
    assert [ln for ln in lines if not ln.startswith("#")] == [ln for ln in expected if not ln.startswith("#")]
    assert sorted(relaxed) == sorted(re.search(r"relaxed: ([^)]*)", expected[0]).group(1).split())
    assert "pydantic-core" in relaxed  # not in any Requires-Dist: pinned exactly by the relaxed pydantic


PIP_CONFLICT = """\
INFO: pip is looking at multiple versions of opentelemetry-sdk to determine which version is compatible.
ERROR: Cannot install backend.ai-logging and opentelemetry-instrumentation-aiohttp-client because these package \
versions have conflicting dependencies.

The conflict is caused by:
    opentelemetry-exporter-otlp-proto-grpc 1.33.1 depends on opentelemetry-api~=1.15
    opentelemetry-instrumentation-aiohttp-client 0.60b1 depends on opentelemetry-api~=1.12
    opentelemetry-instrumentation 0.60b1 depends on opentelemetry-api~=1.4
    opentelemetry-semantic-conventions 0.60b1 depends on opentelemetry-api==1.39.1
    The user requested (constraint) protobuf==6.33.2
    opentelemetry-sdk 1.33.1 depends on opentelemetry-api==1.33.1

To fix this you could try to:
1. loosen the range of package versions you've specified
"""


def test_pins_pip_names_as_conflicting_are_the_ones_dropped() -> None:
    # pip's own words from 25.8.1's install.log (lock-25.19.2 minus what 25.8.1 contradicts): the kept
    # instrumentation 0.60b1 pins clash with the build's opentelemetry-sdk~=1.33.1 only through opentelemetry-api.
    pinned = {"opentelemetry-instrumentation-aiohttp-client", "opentelemetry-instrumentation", "protobuf", "yarl"}
    assert builds.conflicting_pins(PIP_CONFLICT, pinned) == [
        "opentelemetry-instrumentation-aiohttp-client", "opentelemetry-instrumentation", "protobuf"]
    assert builds.conflicting_pins("ERROR: No matching distribution found for x", pinned) == []


def test_shipped_locks_are_indexed_and_exist() -> None:
    locks = builds.shipped_locks()
    assert {str(lk.version) for lk in locks} >= {"23.9.10", "24.9.14", "25.1.1", "25.19.2", "26.8.1", "26.9.6"}
    for lk in locks:
        assert (builds.LOCKS / lk.file).is_file(), lk


def test_constraints_own_lock_shipped_derived_and_none() -> None:
    own = builds.plan_constraints(builds.release("25.1.1", versions=lambda: VERSIONS, find=any_python))
    assert (own.kind, own.file) == ("own lock", "lock-25.1.1.txt")
    shipped = builds.plan_constraints(builds.release("26.9.6", versions=lambda: VERSIONS, find=any_python))
    assert (shipped.kind, shipped.file, shipped.base) == ("derived", "lock-26.9.6.txt", "lock-26.8.1.txt")
    assert "valkey-glide" in shipped.relaxed and "lock-26.8.1.txt" in shipped.describe()
    no_lock = builds.Release("22.9.23", "3.10", "G0", key="x")
    assert builds.plan_constraints(no_lock).kind == "none"


def test_a_pypi_version_with_a_shipped_lock_needs_no_index(tmp_path: Path) -> None:
    def no_index() -> list[Version]:
        raise AssertionError("the index was asked")

    rel = builds.release("24.9.14", versions=no_index, find=any_python)
    assert (rel.python, rel.profile, rel.manager.id, rel.label) == ("3.12", "as-is", "classic", "webserver-24.9.14")
    assert builds.release("26.9.6", versions=no_index, find=any_python).manager.id == "26.4"


def test_release_map_follows_protocol_history() -> None:
    claims = {v: generations.generation_of(v).id for v in ("23.3.13", "23.9.10", "24.3.11", "24.9.14", "25.1.1",
                                                            "25.5.2", "25.13.2", "25.13.4", "25.19.2", "26.8.1",
                                                            "26.9.6")}
    assert claims == {"23.3.13": "G2", "23.9.10": "G3", "24.3.11": "as-is", "24.9.14": "as-is", "25.1.1": "to-be",
                      "25.5.2": "G6", "25.13.2": "G6b", "25.13.4": "G6c", "25.19.2": "G6d", "26.8.1": "G6d",
                      "26.9.6": "G6g"}
    assert generations.generation_of("22.3.1") is None


def test_a_wheel_is_read_from_its_metadata_and_cached_by_its_hash(tmp_path: Path) -> None:
    wheel = fake_wheel(tmp_path)
    rel = builds.release(str(wheel), find=any_python)
    assert (rel.version, rel.source, rel.python, rel.profile) == ("26.9.6", "wheel", "3.13", "G6g")
    assert rel.label == "webserver-26.9.6"  # the same row name as the PyPI release: diff and baseline match
    assert rel.key.startswith("wheel-") and rel.requirement == str(wheel.resolve())
    (tmp_path / "b").mkdir()
    other = fake_wheel(tmp_path / "b", requires_python=">=3.13")  # same name, other content
    assert builds.release(str(other), find=any_python).key != rel.key


def test_python_is_the_first_that_requires_python_admits() -> None:
    assert builds.choose_python(">=3.11,<3.12", origin="x", find=any_python) == "3.11"
    assert builds.choose_python(">=3.12,<3.13", origin="x", find=any_python) == "3.12"
    assert builds.choose_python(">=3.13,<3.14", origin="x", find=any_python) == "3.13"
    assert builds.choose_python(">=3.12", origin="x", find=any_python) == "3.12"


def test_config_template_per_release_line_and_every_placeholder_is_offered() -> None:
    assert builds.Release("25.19.2", "3.13", "G6d").config_template == CLASSIC_CONFIG
    assert builds.Release("26.9.6", "3.13", "G6g").config_template == CONFIG_26
    assert builds.Release("23.3.12", "3.11", "G2").config_template == CONFIG_2303
    assert builds.Release("23.9.10", "3.11", "G3").config_template == CLASSIC_CONFIG
    for template in (CLASSIC_CONFIG, CONFIG_26, CONFIG_2303):
        used = set(re.findall(r"\{([a-z_]+)\}", template.read_text()))
        assert used and used <= TEMPLATE_FIELDS, (template.name, used - TEMPLATE_FIELDS)
    settings = [ln for ln in CONFIG_26.read_text().splitlines() if not ln.lstrip().startswith("#")]
    assert not any("cookie_secure" in ln for ln in settings)  # the secure default is kept


@needs_redis
def test_gateway_cmd_offers_a_rendered_config_for_the_release_line(tmp_path: Path) -> None:
    # The command only starts when {config} is the 26.x template filled with this column's ports.
    serve = (f"{sys.executable} -m harness serve gateway --profile G6g --port {{port}} --fasttrack-url "
             "{fasttrack_url} --manager-url {manager_url} --jwt-secret {jwt_secret}")
    command = ("grep -q 'port = {port}' {config} && grep -q '127.0.0.1:{manager_port}' {config} && grep -q "
               "'127.0.0.1:{redis_port}' {config} && grep -q 'health-check-probe-path' {config} && exec " + serve)
    code = cli.main(["run", "--quiet", "--out", str(tmp_path), "--scenario", "act-as-login", "--gateway-cmd",
                     command, "--judge-as", "G6g", "--fasttrack", "25.1.0"])
    doc = json.loads((tmp_path / "matrix.json").read_text())
    assert code == 0, doc["cells"][0]["reason"]
    assert doc["cells"][0]["verdict"] == "compatible"


# --- bad input --------------------------------------------------------------------------------------------

def test_unknown_pypi_version_is_a_usage_error_naming_it(capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UsageError, match=r"backend\.ai-webserver 26\.9\.99 is not on the package index"):
        builds.release("26.9.99", versions=lambda: VERSIONS)
    monkeypatch.setattr(builds, "pypi_versions", lambda: VERSIONS)
    assert cli.main(["peer", "install", "26.9.99"]) == 2
    err = capsys.readouterr().err
    assert "26.9.99 is not on the package index" in err and "Traceback" not in err


def test_not_a_target_at_all_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["peer", "run", "latest-please"]) == 2
    assert "is not a version, a wheel, an sdist or a directory" in capsys.readouterr().err
    assert cli.main(["peer", "run", str(tmp_path / "missing.whl")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert cli.main(["peer", "run"]) == 2
    assert "TARGET" in capsys.readouterr().err


def test_a_wheel_for_the_wrong_python_is_refused_naming_the_cause(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(HarnessError, match=r"needs Python >=3\.14.*none of the Pythons"):
        builds.release(str(fake_wheel(tmp_path, requires_python=">=3.14")), find=any_python)
    tagged = fake_wheel(tmp_path, requires_python=">=3.9", tag="cp39-cp39-manylinux_2_17_x86_64")
    with pytest.raises(HarnessError, match="wheel tag"):
        builds.release(str(tagged), find=any_python)
    assert cli.main(["peer", "install", str(tagged)]) == 3
    assert "cp39" in capsys.readouterr().err


def test_a_wheel_of_another_distribution_or_garbage_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"not backend\.ai-webserver"):
        builds.release(str(fake_wheel(tmp_path, name="backend.ai-manager")), find=any_python)
    junk = tmp_path / "backend_ai_webserver-1.0-py3-none-any.whl"
    junk.write_bytes(b"not a zip")
    with pytest.raises(UsageError, match="not a readable wheel"):
        builds.release(str(junk), find=any_python)


def test_an_sdist_is_read_from_pkg_info(tmp_path: Path) -> None:
    sdist = tmp_path / "backend.ai-webserver-25.1.1.tar.gz"
    info = b"Metadata-Version: 2.1\nName: backend.ai-webserver\nVersion: 25.1.1\nRequires-Python: >=3.12,<3.13\n\n"
    with tarfile.open(sdist, "w:gz") as tf:
        member = tarfile.TarInfo("backend.ai-webserver-25.1.1/PKG-INFO")
        member.size = len(info)
        tf.addfile(member, io.BytesIO(info))
    rel = builds.release(str(sdist), find=any_python)
    assert (rel.source, rel.version, rel.python, rel.profile) == ("sdist", "25.1.1", "3.12", "to-be")
    empty = tmp_path / "empty.tar.gz"
    with tarfile.open(empty, "w:gz"):
        pass
    with pytest.raises(UsageError, match="not an sdist"):
        builds.release(str(empty), find=any_python)


def test_a_directory_that_is_not_a_webserver_tree_is_refused(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'something-else'\n")
    assert cli.main(["peer", "install", str(tmp_path)]) == 2
    assert "not a webserver source tree (no ai/backend/web/server.py" in capsys.readouterr().err
    code_only = tmp_path / "code-only"
    (code_only / "src/ai/backend/web").mkdir(parents=True)
    (code_only / "src/ai/backend/web/server.py").write_text("")
    with pytest.raises(UsageError, match=r"no pyproject\.toml, setup\.py or setup\.cfg.*--gateway-cmd"):
        builds.release(str(code_only))


def test_an_undeclared_import_the_constraints_pin_is_installed_at_that_pin(tmp_path: Path) -> None:
    # valkey-glide 2.0.1 imports sniffio without declaring it (25.11-25.13 failed to start: ModuleNotFoundError).
    rel = builds.Release("25.11.4", "3.13", "G6", key="undeclared")
    python = builds.venv_python(rel)
    python.parent.mkdir(parents=True)
    have = tmp_path / "have"
    python.write_text(f"#!/bin/sh\nif [ \"$1\" = -m ]; then echo \"$@\" >> {have}; exit 0; fi\n"
                      f"grep -q sniffio {have} 2>/dev/null && exit 0\n"
                      "echo \"ModuleNotFoundError: No module named 'sniffio'\"; exit 1\n")
    python.chmod(0o755)
    cfile = tmp_path / "constraints.txt"
    cfile.write_text("# derived\nanyio==4.12.0\nsniffio==1.3.1\n")
    said: list[str] = []
    assert builds._add_undeclared_imports(rel, cfile, said.append, lambda _: None, tmp_path) == ["sniffio"]
    assert "sniffio==1.3.1" in have.read_text() and "declares no dependency" in said[0]
    cfile.write_text("anyio==4.12.0\n")  # not pinned: nothing is guessed, the start shows the traceback
    have.unlink()
    assert builds._add_undeclared_imports(rel, cfile, said.append, lambda _: None, tmp_path) == []


def test_a_reserved_port_is_bindable_only_by_a_reuse_port_server() -> None:
    # A real webserver binds its port with SO_REUSEPORT; while the harness holds the port for it, no other server
    # (a mock FastTrack, another build's free port) can take it, and the reservation itself takes no connection.
    with services.reserved_port() as port:
        with socket.socket() as plain, pytest.raises(OSError):
            plain.bind(("127.0.0.1", port))
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0  # nothing listens: the ready probe waits
        with socket.socket() as webserver:
            webserver.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            webserver.bind(("127.0.0.1", port))
            webserver.listen()
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                pass


def _never_listening_build(tmp_path: Path) -> tuple[Path, Path]:
    """A stand-in 'venv python' that prints a banner, forks a worker (as the webserver does) and never listens."""
    pidfile = tmp_path / "worker.pid"
    script = tmp_path / "python"
    script.write_text(f"#!/bin/sh\necho 'fake webserver: loading config'\nsleep 300 &\necho $! > {pidfile}\n"
                      "echo 'fake webserver: waiting for workers' >&2\nwait\n")
    script.chmod(0o755)
    return script, pidfile


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


@needs_redis
def test_a_build_that_never_listens_is_an_error_with_its_output_and_leaves_no_process(tmp_path: Path) -> None:
    fake, pidfile = _never_listening_build(tmp_path)
    rel = builds.Release("25.1.1", "3.12", "to-be", key="fake")
    launcher = builds.PeerLauncher(rel, fake, ready_timeout=2.0)
    model = fasttrack_models.resolve("25.1.0")
    scenario = load_scenario(SCENARIOS / "pr3353-to-be.yaml")
    result = asyncio.run(run_matrix([launcher], mock_columns([model]), [scenario], {"to-be": frozenset({"25.1.0"})},
                                    Options()))
    cell = result.cells[0]
    assert cell.verdict == "error"
    assert "did not listen" in (cell.reason or "") and "fake webserver: waiting for workers" in (cell.reason or "")
    worker = int(pidfile.read_text())
    assert not _alive(worker), "the build's forked worker outlived the run"


def test_a_manager_contract_the_build_rejects_keeps_the_whole_problem_body() -> None:
    # The G6g reference gateway, like real 26.x, rejects a manager answer without session_token.
    scenario = load_scenario(SCENARIOS / "act-as-login.yaml")
    model = fasttrack_models.resolve("25.1.0")
    result = asyncio.run(run_matrix([generations.resolve("G6g")], mock_columns([model]), [scenario], {},
                                    Options(manager_contract=manager_rules.CLASSIC)))
    run = result.cells[0].scenarios[0]
    assert run.outcome == "error"
    assert "schema-validation-failed" in (run.error or "")
    assert "AuthSuccessResponse: session_token" in (run.error or "")  # beyond the old 200-byte cut


# --- census -----------------------------------------------------------------------------------------------

def test_census_takes_the_latest_final_release_of_each_line() -> None:
    versions = [Version(v) for v in ("23.3.13", "23.3.12", "23.9.10", "23.9.11rc1", "24.3.0", "22.9.23", "26.9.6",
                                     "26.9.5", "26.10.0.dev1")]
    assert [str(v) for v in census.latest_per_line(versions, "23.3")] == ["23.3.13", "23.9.10", "24.3.0", "26.9.6"]
    assert [str(v) for v in census.latest_per_line(versions, "23.3", ["26.9"])] == ["26.9.6"]


def test_census_reports_a_failed_release_and_goes_on(tmp_path: Path) -> None:
    ok = census.Entry("25.1", "25.1.1", python="3.12", claimed="to-be", identified="to-be", agreement=1.0, margin=0.2,
                      verdicts={"25.1.0": "compatible"}, required={"25.1.0": True})
    bad = census.Entry("26.9", "26.9.6", error={"stage": "install", "cause": "pip said: ResolutionImpossible"})
    paths = census.write([ok, bad], tmp_path, 12.0, 3)
    doc = json.loads(paths[0].read_text())
    assert [r["status"] for r in doc["releases"]] == ["ok", "error (install)"] and doc["complete"] is False
    md = paths[1].read_text()
    assert "ResolutionImpossible" in md and "| 25.1 " in md and "2 of 3 release lines (incomplete)" in md


def test_a_resumed_census_stopped_midway_keeps_what_the_earlier_one_judged_ahead(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 25.1.1 is run again (it failed before); 26.9.6 was judged before and is still ahead when 25.1.1's result is
    # written: a stop right then must not drop it from census.json.
    judged = census.Entry("26.9", "26.9.6", python="3.13", claimed="G6g", identified="G6g", agreement=1.0,
                          margin=0.2, verdicts={"25.1.0": "compatible"}, required={"25.1.0": True})
    failed = census.Entry("25.1", "25.1.1", error={"stage": "install", "cause": "pip said: ResolutionImpossible"})
    census.write([failed, judged], tmp_path, 12.0, 2)
    monkeypatch.setattr(builds, "pypi_versions", lambda: [Version("26.9.6"), Version("25.1.1")])

    def prepare(version: str, fresh: bool) -> None:
        raise HarnessError(f"installing {version} failed again")

    written: list[list[str]] = []
    real_write = census.write

    def spy(entries: list[census.Entry], out: Path, wall: float, planned: int,
            current: dict[str, object] | None = None) -> list[Path]:
        written.append([e.version for e in entries])
        return real_write(entries, out, wall, planned, current)

    monkeypatch.setattr(census, "_prepare", prepare)
    monkeypatch.setattr(census, "write", spy)
    assert census.run_census(census.CensusOptions(out=tmp_path, resume=True)) == 3
    assert written[0] == ["25.1.1", "26.9.6"]  # the first write, before 26.9.6 is reached
    doc = json.loads((tmp_path / "census.json").read_text())
    assert [r["version"] for r in doc["releases"]] == ["25.1.1", "26.9.6"]
    assert doc["releases"][1]["identified"] == "G6g"
    # --line 25.1 with --resume: the other lines stay as judged, and a line no census judged says so.
    monkeypatch.setattr(builds, "pypi_versions", lambda: [Version("26.9.6"), Version("25.1.1"), Version("24.9.14")])
    assert census.run_census(census.CensusOptions(out=tmp_path, resume=True, lines=["25.1"])) == 3
    doc = json.loads((tmp_path / "census.json").read_text())
    assert [(r["version"], r["status"]) for r in doc["releases"]] == [
        ("24.9.14", "error (not judged)"), ("25.1.1", "error (install)"), ("26.9.6", "ok")]
    assert doc["planned"] == 3 and doc["complete"] is False
    assert "--resume" in doc["releases"][0]["error"]["cause"]
    assert "2 of 3 release lines (incomplete)" in (tmp_path / "census.md").read_text()


def test_census_resume_with_line_rejudges_the_named_lines_and_keeps_the_others(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 25.3.3 was judged before (an older scenario set, not recorded); --line 25.3 --resume judges it again with
    # the current set and keeps 26.9.6 as it was: census.md must say that the rows' scenario sets differ.
    stale = census.Entry("25.3", "25.3.3", python="3.12", claimed="G6", identified="G6", agreement=1.0, margin=0.1,
                         verdicts={"25.1.0": "error"}, required={"25.1.0": True})
    other = census.Entry("26.9", "26.9.6", python="3.13", claimed="G6g", identified="G6g", agreement=1.0,
                         margin=0.11, verdicts={"25.1.0": "incompatible"}, required={"25.1.0": True})
    census.write([stale, other], tmp_path, 12.0, 2)
    monkeypatch.setattr(builds, "pypi_versions", lambda: [Version("26.9.6"), Version("25.3.3")])
    judged: list[str] = []

    def prepare(version: str, fresh: bool) -> tuple[object, Path, float, dict[str, object]]:
        return builds.Release(version, "3.12", "G6"), Path("python"), 0.0, {}

    def judge(self: census.Census, entry: census.Entry, rel: builds.Release, python: Path) -> None:
        judged.append(rel.version)
        entry.identified, entry.agreement, entry.margin = "G6", 1.0, 0.1
        entry.verdicts, entry.required = {"25.1.0": "compatible"}, {"25.1.0": True}

    monkeypatch.setattr(census, "_prepare", prepare)
    monkeypatch.setattr(census.Census, "judge", judge)
    assert census.run_census(census.CensusOptions(out=tmp_path, resume=True, lines=["25.3"])) == 0
    assert judged == ["25.3.3"]
    doc = json.loads((tmp_path / "census.json").read_text())
    new, kept = doc["releases"]
    assert new["verdicts"] == {"25.1.0": "compatible"} and kept == {**other.to_json()}
    current = doc["scenario_set"]
    assert new["scenario_set"] == current["digest"] and len(current["digest"]) == 16
    assert new["harness_commit"] == current["harness_commit"] and new["judged_at"] is not None
    assert kept["scenario_set"] is None and doc["mixed_scenario_sets"] is True
    md = (tmp_path / "census.md").read_text()
    assert "**Rows judged with different scenario sets**" in md
    assert f"- scenario set {current['digest']} (current): 1 line(s): 25.3" in md
    assert "- scenario set not recorded: 1 line(s): 26.9" in md
    # Both judged with the current set: one sentence says so, nothing is flagged.
    assert census.run_census(census.CensusOptions(out=tmp_path, resume=True, lines=["26.9"])) == 0
    doc = json.loads((tmp_path / "census.json").read_text())
    assert doc["mixed_scenario_sets"] is False and judged == ["25.3.3", "26.9.6"]
    md = (tmp_path / "census.md").read_text()
    assert f"Every row judged with scenario set {current['digest']}" in md and "different scenario sets" not in md


def test_census_scenario_set_names_the_scenarios_by_content(tmp_path: Path) -> None:
    a = tmp_path / "a.yaml"
    a.write_text("id: a\n")
    before = census.scenario_set([a])
    assert before == census.scenario_set([a]) and before["files"] == ["a.yaml"]
    a.write_text("id: a  # changed\n")
    assert census.scenario_set([a])["digest"] != before["digest"]


def test_a_stopped_census_records_no_cut_short_release_and_runs_nothing_more(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A SIGTERM while 25.1.1 runs: its runs were cut short, so it is "not judged", as is 26.9.6 ahead (it used
    # to go on and record every remaining release as an identify error).
    monkeypatch.setattr(builds, "pypi_versions", lambda: [Version("26.9.6"), Version("25.1.1")])
    prepared: list[str] = []

    def prepare(version: str, fresh: bool) -> tuple[object, Path, float, dict[str, object]]:
        prepared.append(version)
        return builds.Release(version, "3.12", "to-be"), Path("python"), 0.0, {}

    def judge(self: census.Census, entry: census.Entry, rel: builds.Release, python: Path) -> None:
        monkeypatch.setattr(supervisor, "requested", lambda: signal.SIGTERM)
        entry.error = {"stage": "identify", "cause": "no generation can be named: runs interrupted"}

    monkeypatch.setattr(census, "_prepare", prepare)
    monkeypatch.setattr(census.Census, "judge", judge)
    with pytest.raises(supervisor.Interrupted):
        census.run_census(census.CensusOptions(out=tmp_path, installs=1))
    doc = json.loads((tmp_path / "census.json").read_text())
    assert [(r["version"], r["status"]) for r in doc["releases"]] == [
        ("25.1.1", "error (not judged)"), ("26.9.6", "error (not judged)")]


def test_peer_census_takes_no_target(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["peer", "census", "26.9.6"]) == 2
    assert "unrecognized arguments: 26.9.6" in capsys.readouterr().err


def test_glide_sockets_of_ended_processes_are_removed_and_nothing_else(tmp_path: Path) -> None:
    # 25.11-26.8's glide client leaves /tmp/glide-socket-<pid>-<uuid>.sock behind: removed only for a pid the
    # harness started that is gone, made since it started; a live process's socket, another pid's, an older one
    # of the same pid number and other files stay.
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                           check=True)
    gone, alive = int(ended.stdout), os.getpid()
    litter = [tmp_path / f"glide-socket-{gone}-{n}.sock" for n in ("3f2a-1", "9c1b-2")]
    kept = [tmp_path / f"glide-socket-{alive}-77aa.sock", tmp_path / f"glide-socket-{gone}0-1.sock",
            tmp_path / f"glide-socket-{gone}-1.log", tmp_path / f"other-{gone}-1.sock"]
    older = tmp_path / f"glide-socket-{gone}-0ld.sock"  # an earlier process's of the same pid number
    older.touch()
    os.utime(older, (1_000_000, 1_000_000))
    for path in (*litter, *kept):
        path.touch()
    since = time.time() - 0.5
    assert sorted(builds.remove_glide_sockets({gone, alive}, since, tmp_path)) == sorted(litter)
    assert sorted(tmp_path.iterdir()) == sorted([*kept, older])
    assert builds.remove_glide_sockets(set(), since, tmp_path) == []


def test_install_lock_is_exclusive_per_target(tmp_path: Path) -> None:
    # fcntl locks belong to the open file: a second opener (another install of the same target) must wait.
    import fcntl

    with builds._locked(tmp_path / "t"), open(tmp_path / "t.lock") as other:
        with pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with open(tmp_path / "u.lock", "w") as unrelated:
            fcntl.flock(unrelated, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another target is not held up
    with open(tmp_path / "t.lock") as again:
        fcntl.flock(again, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_a_stop_during_an_install_step_ends_its_process_group(tmp_path: Path) -> None:
    """pip runs in its own session (so a signal to the harness alone does not reach it): the supervisor's stop
    must end it, and the install step must report the stop, not an install failure."""
    started = threading.Event()
    pid_file = tmp_path / "child.pid"
    child = (f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); "
             "print('Collecting something', flush=True); time.sleep(600)")
    outcome: list[BaseException] = []

    def install_step() -> None:
        try:
            build = SimpleNamespace(describe=lambda: "a test build")
            builds._run([sys.executable, "-c", child], build, lambda line: started.set(), tmp_path)
        except BaseException as exc:  # the Interrupted the thread must end with
            outcome.append(exc)

    thread = threading.Thread(target=install_step)
    thread.start()
    try:
        assert started.wait(60), "the install step never printed its first line"
        pid = int(pid_file.read_text())
        supervisor.stop(signal.SIGTERM)
        thread.join(60)
        assert not thread.is_alive()
        assert [type(e) for e in outcome] == [supervisor.Interrupted]
        with pytest.raises(ProcessLookupError):  # reaped by Popen.wait: gone, not a zombie of ours
            os.kill(pid, 0)
    finally:
        supervisor._requested = None
