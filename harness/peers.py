"""Real Backend.AI webserver releases as peers: install from PyPI into cached venvs, configure, run.

``python -m harness peer install 24.9.14`` installs a release on the Python its wheel requires, constrained
by the release's own lock (``harness/data/locks``; without the pins 23.9.10 installs but every pipeline
request fails, see shared/reference/real-webserver-peers.md). ``python -m harness peer run 24.9.14 [run
options]`` runs the matrix with that release as the gateway row (judged as the generation it belongs to).
Venvs live outside the repository, in ``$HARNESS_PEER_CACHE`` (default ``~/.cache/harness/peers``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from harness.engine import services
from harness.engine.targets import Shared
from harness.errors import HarnessError, UsageError
from harness.protocol import generations
from harness.protocol.generations import GatewayProfile
from harness.protocol.manager_rules import ManagerContract

DATA = Path(__file__).parent / "data"


@dataclass(frozen=True)
class Release:
    version: str  # as on PyPI
    python: str  # what the wheel's Requires-Python admits
    lock: str  # file in harness/data/locks
    profile: str  # the generation profile this release belongs to (protocol-history §2)
    manager: ManagerContract = field(default_factory=ManagerContract)


# One release per generation that PyPI offers (25.1.0 is not on PyPI; 25.1.1 is).
RELEASES: dict[str, Release] = {r.version: r for r in (
    Release("23.9.10", "3.11", "lock-23.09.10.txt", "G3"),
    Release("24.9.14", "3.12", "lock-24.09.14.txt", "as-is"),
    Release("25.1.1", "3.12", "lock-25.1.1.txt", "to-be"),
    Release("25.19.2", "3.13", "lock-25.19.2.txt", "G6e"),
)}


def release(version: str) -> Release:
    try:
        return RELEASES[version]
    except KeyError:
        known = ", ".join(RELEASES)
        raise UsageError(f"no peer recipe for backend.ai-webserver {version} (known: {known}; add a lock to "
                         "harness/data/locks and an entry to harness.peers.RELEASES)") from None


def cache_root() -> Path:
    return Path(os.environ.get("HARNESS_PEER_CACHE", Path.home() / ".cache" / "harness" / "peers"))


def find_python(minor: str) -> str:
    """A working Python ``minor``: a pyenv build ``$(pyenv root)/versions/X.Y.*``, else ``pythonX.Y`` on PATH
    (pyenv shims are tried too, but only used if they really run that version)."""
    roots = [os.environ.get("PYENV_ROOT", ""), str(Path.home() / ".pyenv")]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        roots.insert(0, subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=True).stdout.strip())
    candidates = [b for root in filter(None, roots) for b in sorted(glob.glob(f"{root}/versions/{minor}.*/bin/python3"),
                                                                    reverse=True)]
    if (on_path := shutil.which(f"python{minor}")) is not None:
        candidates.append(on_path)
    for candidate in candidates:
        probe = subprocess.run([candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                               capture_output=True, text=True, check=False)
        if probe.returncode == 0 and probe.stdout.strip() == minor:
            return candidate
    raise HarnessError(f"Python {minor} is needed for this release but was not found (a pyenv build under "
                       f"$(pyenv root)/versions/{minor}.* or python{minor} on PATH)")


def venv_python(rel: Release) -> Path:
    return cache_root() / rel.version / "venv" / "bin" / "python"


def install(rel: Release, *, fresh: bool = False, log: bool = True) -> tuple[Path, float]:
    """Install once into the cache; returns (venv python, seconds spent, 0 when cached)."""
    home = cache_root() / rel.version
    marker = home / "installed"
    if fresh and home.exists():
        shutil.rmtree(home)
    if marker.exists():
        return venv_python(rel), 0.0
    started = time.monotonic()
    home.mkdir(parents=True, exist_ok=True)
    base = find_python(rel.python)
    steps = [
        [base, "-m", "venv", "--clear", str(home / "venv")],
        [str(venv_python(rel)), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "-c", str(DATA / "locks" / rel.lock), f"backend.ai-webserver=={rel.version}"],
    ]
    for argv in steps:
        if log:
            print(f"peer {rel.version}: {' '.join(argv)}", flush=True)
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise HarnessError(f"installing backend.ai-webserver {rel.version} failed ({' '.join(argv[:3])} ...):\n"
                               f"{(done.stdout + done.stderr)[-3000:]}")
    marker.write_text(f"{rel.version}\n", encoding="utf-8")
    return venv_python(rel), time.monotonic() - started


def render_config(*, port: int, fasttrack_port: int, manager_port: int, redis_port: int, jwt_secret: str,
                  workdir: str) -> str:
    text = (DATA / "webserver.conf.tmpl").read_text(encoding="utf-8")
    values = {"port": port, "fasttrack_port": fasttrack_port, "manager_port": manager_port,
              "redis_port": redis_port, "jwt_secret": jwt_secret, "workdir": workdir}
    for key, value in values.items():
        text = text.replace("{" + key + "}", str(value))
    return text


@dataclass
class PeerLauncher:
    """A real webserver release as the gateway row: its own Redis and config per FastTrack column."""

    rel: Release
    python: Path
    ready_timeout: float = 90.0
    shared: bool = True

    @property
    def label(self) -> str:
        return f"webserver-{self.rel.version}"

    @property
    def profile(self) -> GatewayProfile:
        return generations.resolve(self.rel.profile)

    @contextlib.asynccontextmanager
    async def running(self, fasttrack_url: str, manager_url: str, env: Shared) -> AsyncIterator[str]:
        port = services.free_port()
        async with contextlib.AsyncExitStack() as stack:
            workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix=f"harness-peer-{self.rel.version}-"))
            redis_url = await stack.enter_async_context(services.redis_server())
            conf = Path(workdir) / "webserver.conf"
            conf.write_text(render_config(port=port, fasttrack_port=_port(fasttrack_url),
                                          manager_port=_port(manager_url), redis_port=_port(redis_url),
                                          jwt_secret=env.config.jwt_secret, workdir=workdir), encoding="utf-8")
            (Path(workdir) / "ipc").mkdir()
            argv = [str(self.python), "-m", "ai.backend.web.server", "-f", str(conf)]
            await stack.enter_async_context(services.process(
                f"backend.ai-webserver {self.rel.version}", argv, host="127.0.0.1", port=port,
                ready_timeout=self.ready_timeout, cwd=workdir))
            yield f"http://127.0.0.1:{port}"


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])
