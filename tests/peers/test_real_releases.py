"""Real backend.ai-webserver releases from PyPI, one per generation the census distinguishes (G3, G4, G5, G6d,
G6g); the full census of every release line is a command (``python -m harness peer census``), not a test.

Each is installed once into the peer cache (outside the repository; about a minute each the first time),
then: ``identify`` must name its generation, and its matrix row must equal its reference profile's row on
every scenario and FastTrack column, except where a documented finding (harness/data/peer-findings.yaml)
explains the difference.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness import cli
from harness.peers import builds
from harness.protocol import generations

pytestmark = [
    pytest.mark.peers,
    pytest.mark.skipif(shutil.which("redis-server") is None,
                       reason="redis-server is not installed (scripts/test installs it as root)"),
]
RELEASES = ["23.9.10", "24.9.14", "25.1.1", "25.19.2", "26.9.6"]  # each ships its lock: no index look-up
LEAVES_GLIDE_SOCKETS = {"25.19.2"}  # valkey-glide 2.2.3; 26.9.6's 2.5.3 removes its own, older lines have none


@pytest.fixture(scope="module", params=RELEASES)
def release(request: pytest.FixtureRequest) -> builds.Release:
    rel = builds.release(request.param)
    builds.install(rel, log=False)
    return rel


def test_identify_names_the_generation_of_the_release(release: builds.Release, tmp_path: Path) -> None:
    out = tmp_path / "identify.json"
    code = cli.main(["identify", "--peer", release.version, "--json", str(out)])
    doc = json.loads(out.read_text())
    assert code == 0
    assert doc["best"] == generations.resolve(release.profile).id, doc["ranking"][:3]
    assert doc["ranking"][0]["agreement"] >= 0.95 and doc["margin"] >= 10, doc["ranking"][:3]  # margin in points


def test_release_row_matches_its_reference_profile_or_a_documented_finding(
        release: builds.Release, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stops: list[tuple[set[int], float]] = []  # the pids of every start of the build, and when it started
    removed: list[Path] = []

    def sweep(pids: set[int], since: float, where: Path = builds.GLIDE_SOCKETS) -> list[Path]:
        stops.append((set(pids), since))
        gone = real_sweep(pids, since, where)
        removed.extend(gone)
        return gone

    real_sweep = builds.remove_glide_sockets
    monkeypatch.setattr(builds, "remove_glide_sockets", sweep)
    code = cli.main(["peer", "run", release.version, "--out", str(tmp_path), "--quiet"])
    # valkey-glide 2.0-2.3 (25.11-26.8) leaves a socket per webserver worker in /tmp: gone once the build has
    # stopped (the pids collected are the webserver's and its worker's; /tmp also holds older sockets of other
    # processes that had the same pid numbers).
    assert stops
    left = [p for pids, since in stops for pid in pids for p in builds.GLIDE_SOCKETS.glob(f"glide-socket-{pid}-*.sock")
            if p.lstat().st_mtime >= since - 1.0]
    assert left == []
    assert bool(removed) == (release.version in LEAVES_GLIDE_SOCKETS), removed
    doc = json.loads((tmp_path / "matrix.json").read_text())
    peer = doc["peer"]
    assert peer["reference_profile"] == generations.resolve(release.profile).id
    undocumented = [d for d in peer["differences"] if d["finding"] is None]
    assert undocumented == [], "a real release differs from its profile without a documented finding"
    # Every required cell of the real release is compatible, or fails only with a documented defect of the
    # release (W1 on 25.12+: the scenarios state the secure contract); then the run says so with exit 1.
    failing = [c for c in doc["cells"] if c["required"] and c["verdict"] != "compatible"]
    unexplained = [(c["gateway"], c["fasttrack"], s["id"]) for c in failing for s in c["scenarios"]
                   if s["outcome"] in ("fail", "error") and not s["finding"]]
    assert unexplained == [], [c["reason"] for c in failing]
    assert all(c["verdict"] == "incompatible" for c in failing), [c["reason"] for c in failing]
    assert code == (1 if failing else 0)
    assert all(c["verdict"] != "error" for c in doc["cells"]), [c["reason"] for c in doc["cells"]]
    assert "versus reference profile" in (tmp_path / "matrix.md").read_text()
    assert peer["build"]["constraints"]["kind"] in ("own lock", "derived")
    assert peer["build"]["workers"] == 1  # per-worker state (W1's jars) is then seen on every run
