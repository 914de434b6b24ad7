"""Real Backend.AI webserver builds as peers: any PyPI release, a wheel, an sdist or a source tree.

``python -m harness peer install TARGET`` reads the build's metadata (Requires-Python, Requires-Dist), picks the
Python it admits (3.11 on PATH, pyenv 3.12/3.13, ...), chooses constraints (the release's own lock when shipped
in ``harness/data/locks``; else the nearest shipped lock of the same Python minus the pins the build's own
Requires-Dist contradicts; else none: without pins 23.9.10 installs but every pipeline request fails, see
shared/reference/real-webserver-peers.md) and installs it into a cached venv. ``peer run TARGET [run options]``
runs the matrix with that build as the gateway row, configured for its release line and served by the manager
contract its version needs. Venvs live outside the repository, in ``$HARNESS_PEER_CACHE`` (default
``~/.cache/harness/peers``), one directory per target (a PyPI version by its version, a file by its hash),
guarded by a file lock so that two installs of one target never interleave.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from packaging.markers import default_environment
from packaging.metadata import Metadata
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from harness.engine import services, supervisor
from harness.engine.targets import CLASSIC_CONFIG, CONFIG_26, CONFIG_2303, Shared, render_config, url_port
from harness.errors import HarnessError, UsageError
from harness.protocol import generations, manager_rules
from harness.protocol.generations import GatewayProfile
from harness.protocol.manager_rules import ManagerContract

DATA = Path(__file__).resolve().parents[1] / "data"
LOCKS = DATA / "locks"
DIST = "backend.ai-webserver"
PYTHONS = ("3.11", "3.12", "3.13")  # tried in this order; the first that Requires-Python admits is used
FIRST_26_CONFIG = Version("26.0")  # 26.x validates a pydantic config without [pipeline] jwt / [ui] brand
FIRST_ADDR_CONFIG = Version("23.9.0a0")  # before: [session.redis] host/port (the 23.03 line's trafaret schema)
Log = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Constraints:
    """What ``pip install -c`` got, and why (said on the terminal and in matrix.json)."""

    kind: str  # "own lock" | "derived" | "none"
    file: str | None = None  # a lock shipped in harness/data/locks that is used as it is
    base: str | None = None  # derived: the upstream lock it was derived from
    relaxed: tuple[str, ...] = ()  # derived: the base's pins dropped because the build contradicts them
    text: str = ""  # derived here: the constraint file's content

    def describe(self) -> str:
        if self.kind == "own lock":
            return f"the release's own lock {self.file}"
        if self.kind == "derived":
            how = f"derived from {self.base} minus {len(self.relaxed)} pin(s) the build contradicts" + (
                f" ({' '.join(self.relaxed)})" if self.relaxed else "")
            return f"shipped {self.file}, {how}" if self.file else how
        return "none (no shipped lock for this Python)"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "file": self.file, "base": self.base, "relaxed": list(self.relaxed),
                "describe": self.describe()}


@dataclass(frozen=True)
class Release:
    """One webserver build: what the harness installs and how it runs it."""

    version: str  # the build's version (PyPI's, or from the wheel/sdist/source metadata)
    python: str  # the interpreter minor its Requires-Python admits
    profile: str  # the generation the release map claims for this version (protocol-history §2)
    manager: ManagerContract = field(default_factory=ManagerContract)
    source: str = "pypi"  # pypi | wheel | sdist | source
    location: str = ""  # the file or directory (not for pypi)
    key: str = ""  # cache directory name; two targets never share one
    requires_python: str = ""
    requires_dist: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        # One scheme for every source, so a wheel's row and the release's row have one name (diff, baseline).
        return f"webserver-{self.version}"

    @property
    def requirement(self) -> str:
        return f"{DIST}=={self.version}" if self.source == "pypi" else self.location

    @property
    def config_template(self) -> Path:
        v = Version(self.version)
        return CONFIG_26 if v >= FIRST_26_CONFIG else CLASSIC_CONFIG if v >= FIRST_ADDR_CONFIG else CONFIG_2303

    def describe(self) -> str:
        where = f"PyPI {DIST}=={self.version}" if self.source == "pypi" else f"{self.source} {self.location}"
        return f"{DIST} {self.version} ({where})"

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "source": self.source, "location": self.location or None,
                "python": self.python, "requires_python": self.requires_python, "profile": self.profile,
                "manager_contract": self.manager.id, "config_template": self.config_template.name,
                "requires_dist": list(self.requires_dist)}


# --- metadata ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Meta:
    name: str
    version: str
    requires_python: str
    requires_dist: tuple[str, ...]


def _pip(args: Sequence[str], *, what: str) -> subprocess.CompletedProcess[str]:
    """pip of the harness's own interpreter (it only reads metadata: the build's Python does not matter)."""
    argv = [sys.executable, "-m", "pip", *args, "--disable-pip-version-check"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise HarnessError(f"{what}: pip could not run: {exc}") from None
    return done


def pypi_versions() -> list[Version]:
    """Every version of the webserver on the package index, newest first (pip's own list, any Python)."""
    done = _pip(["index", "versions", "--ignore-requires-python", "--pre", DIST], what="listing PyPI versions")
    match = re.search(r"^Available versions: (.*)$", done.stdout, re.M)
    if done.returncode != 0 or match is None:
        raise HarnessError(f"cannot list {DIST} versions on the package index:\n{_tail(done.stdout + done.stderr)}")
    out = []
    for text in match.group(1).split(","):
        with contextlib.suppress(InvalidVersion):
            out.append(Version(text.strip()))
    return sorted(out, reverse=True)


def index_metadata(requirements: Sequence[str]) -> dict[str, Meta]:
    """Metadata of exact requirements (``name==version``) or local paths, by pip's dry-run report: no install,
    no dependencies, any Python. Keyed by canonical name."""
    with tempfile.TemporaryDirectory(prefix="harness-pip-report-") as tmp:
        report = Path(tmp) / "report.json"
        done = _pip(["install", "--dry-run", "--no-deps", "--ignore-installed", "--ignore-requires-python", "-q",
                     "--report", str(report), *requirements], what="reading metadata")
        if done.returncode != 0 or not report.exists():
            raise HarnessError(f"pip could not read the metadata of {' '.join(requirements)}:\n"
                               f"{_tail(done.stdout + done.stderr)}")
        doc = json.loads(report.read_text(encoding="utf-8"))
    out: dict[str, Meta] = {}
    for item in doc.get("install", []):
        m = item.get("metadata", {})
        meta = Meta(str(m.get("name", "")), str(m.get("version", "")), str(m.get("requires_python") or ""),
                    tuple(m.get("requires_dist") or ()))
        out[canonicalize_name(meta.name)] = meta
    return out


def _from_email(text: str, origin: str) -> Meta:
    try:
        md = Metadata.from_email(text, validate=False)
    except Exception as exc:  # packaging raises an ExceptionGroup of its own kinds
        raise UsageError(f"{origin}: unreadable package metadata ({exc})") from None
    return Meta(str(md.name or ""), str(md.version or ""), str(md.requires_python or ""),
                tuple(str(r) for r in (md.requires_dist or ())))


def wheel_metadata(path: Path) -> Meta:
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)]
            if not names:
                raise UsageError(f"{path}: not a wheel (no *.dist-info/METADATA inside)")
            return _from_email(zf.read(names[0]).decode("utf-8", "replace"), str(path))
    except (OSError, zipfile.BadZipFile) as exc:
        raise UsageError(f"{path}: not a readable wheel ({exc})") from None


def sdist_metadata(path: Path) -> Meta:
    try:
        with tarfile.open(path) as tf:
            member = next((m for m in tf.getmembers() if re.fullmatch(r"[^/]+/PKG-INFO", m.name)), None)
            handle = tf.extractfile(member) if member is not None else None
            if handle is None:
                raise UsageError(f"{path}: not an sdist (no top-level */PKG-INFO inside)")
            return _from_email(handle.read().decode("utf-8", "replace"), str(path))
    except (OSError, tarfile.TarError) as exc:
        raise UsageError(f"{path}: not a readable sdist ({exc})") from None


def source_metadata(path: Path) -> Meta:
    """A webserver source tree: pip-installable (pyproject.toml / setup.py / setup.cfg) and holding the package
    ``ai.backend.web`` (``ai/backend/web/server.py``, under ``src/`` or not). Its metadata comes from its build
    backend, through pip."""
    packaged = [n for n in ("pyproject.toml", "setup.py", "setup.cfg") if (path / n).is_file()]
    server = [p for p in (path / "ai/backend/web/server.py", path / "src/ai/backend/web/server.py") if p.is_file()]
    if not server:
        raise UsageError(f"{path}: not a webserver source tree (no ai/backend/web/server.py or "
                         "src/ai/backend/web/server.py)")
    if not packaged:
        raise UsageError(f"{path}: has the webserver's code but no pyproject.toml, setup.py or setup.cfg, so pip "
                         "cannot build it; build a wheel (the Backend.AI monorepo: pants package src/ai/backend/web:"
                         "dist) and give the wheel, or run the tree with --gateway-cmd (README, 'Real gateways')")
    metas = index_metadata([str(path)])
    meta = next(iter(metas.values()), None)
    if meta is None or canonicalize_name(meta.name) != canonicalize_name(DIST):
        raise UsageError(f"{path}: its build says it is {meta.name if meta else 'nothing'!r}, not {DIST} (the "
                         "Backend.AI monorepo root is not one distribution: build the webserver's wheel and give "
                         "that, or run the tree with --gateway-cmd)")
    return meta


# --- targets ----------------------------------------------------------------------------------------------

def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _tree_digest(path: Path) -> str:
    """Path, size and mtime of every file: a changed tree gets a new venv, an unchanged one reuses it."""
    h = hashlib.sha256(str(path.resolve()).encode())
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d not in (".git", "__pycache__", ".venv", "build", "dist"))
        for name in sorted(files):
            st = (Path(root) / name).stat()
            h.update(f"{Path(root, name).relative_to(path)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def release(target: str, *, versions: Callable[[], list[Version]] = pypi_versions,
            find: Callable[[str], str] | None = None) -> Release:
    """The build ``target`` names: a PyPI version (any that the index has), a wheel, an sdist or a source tree.

    Raises UsageError for what is not a webserver build (an unknown version, a file that is not one), and
    HarnessError when this machine has no Python the build admits."""
    text = target.strip()
    if not text:
        raise UsageError("empty peer target: give a backend.ai-webserver version, a wheel, an sdist or a directory")
    path = Path(text).expanduser()
    if path.is_dir():
        meta, source, key = source_metadata(path), "source", "source-" + _tree_digest(path)[:16]
    elif path.is_file() or text.endswith((".whl", ".tar.gz", ".zip")) or os.sep in text:
        if not path.is_file():
            raise UsageError(f"{text}: no such file or directory")
        if path.name.endswith(".whl"):
            meta, source = wheel_metadata(path), "wheel"
        elif path.name.endswith((".tar.gz", ".zip")):
            meta, source = sdist_metadata(path), "sdist"
        else:
            raise UsageError(f"{path}: not a wheel (.whl) or sdist (.tar.gz); give a version, a wheel, an sdist or "
                             "a source directory")
        key = f"{source}-" + _sha256(path)[:16]
    else:
        try:
            wanted = Version(text)
        except InvalidVersion:
            raise UsageError(f"{text!r} is not a version, a wheel, an sdist or a directory") from None
        cached = _known_release(wanted, find)
        if cached is not None:
            return cached
        known = versions()
        if wanted not in known:
            near = ", ".join(str(v) for v in known[:5])
            raise UsageError(f"{DIST} {text} is not on the package index (newest: {near}; {len(known)} versions)")
        meta = index_metadata([f"{DIST}=={wanted}"])[canonicalize_name(DIST)]
        source, key = "pypi", str(wanted)
        path = Path()
    if canonicalize_name(meta.name) != canonicalize_name(DIST):
        raise UsageError(f"{text}: this is {meta.name!r}, not {DIST}")
    try:
        version = str(Version(meta.version))
    except InvalidVersion:
        raise UsageError(f"{text}: its metadata has no valid version ({meta.version!r})") from None
    claimed = generations.generation_of(version)
    if claimed is None:
        raise UsageError(f"{DIST} {version} predates the /pipeline/ proxy (22.06.0b2): nothing to judge")
    python = choose_python(meta.requires_python, origin=f"{DIST} {version}", find=find,
                           wheel=path.name if source == "wheel" else None)
    return Release(version=version, python=python, profile=claimed.id, manager=manager_rules.for_version(version),
                   source=source, location="" if source == "pypi" else str(path.resolve()), key=key,
                   requires_python=meta.requires_python, requires_dist=meta.requires_dist)


def _known_release(version: Version, find: Callable[[str], str] | None) -> Release | None:
    """A PyPI release the harness knows without asking the index: installed before (install.json), or one whose
    lock ships with the harness (its Python is recorded in locks.yaml)."""
    claimed = generations.generation_of(str(version))
    if claimed is None:
        return None
    info = cache_root() / str(version) / "install.json"
    if info.exists():
        with contextlib.suppress(ValueError, KeyError, TypeError):
            recorded = json.loads(info.read_text(encoding="utf-8"))["release"]
            return Release(version=str(version), python=str(recorded["python"]), profile=claimed.id,
                           manager=manager_rules.for_version(str(version)), key=str(version),
                           requires_python=str(recorded.get("requires_python") or ""),
                           requires_dist=tuple(recorded.get("requires_dist") or ()))
    lock = next((lk for lk in shipped_locks() if lk.version == version), None)
    if lock is None:
        return None
    (find or find_python)(lock.python)
    return Release(version=str(version), python=lock.python, profile=claimed.id,
                   manager=manager_rules.for_version(str(version)), key=str(version))


def _wheel_fits(wheel: str, minor: str) -> bool:
    """Whether a wheel's Python tags admit CPython ``minor`` (py3, py3N with N <= minor, cpXY of this minor)."""
    major, mnr = minor.split(".")
    for tag in parse_wheel_filename(wheel)[3]:
        interp = tag.interpreter
        if interp in ("py3", f"py{major}", f"cp{major}{mnr}"):
            return True
        if re.fullmatch(rf"py{major}\d+", interp) and int(interp[3:]) <= int(mnr):
            return True
    return False


def choose_python(requires_python: str, *, origin: str, find: Callable[[str], str] | None = None,
                  wheel: str | None = None) -> str:
    """The first of :data:`PYTHONS` that ``Requires-Python`` (and a wheel's tags) admit and this machine has."""
    try:
        spec = SpecifierSet(requires_python or "")
    except InvalidSpecifier:
        raise UsageError(f"{origin}: invalid Requires-Python {requires_python!r}") from None
    admitted = [m for m in PYTHONS if spec.contains(f"{m}.0", prereleases=True) or spec.contains(f"{m}.99")]
    if wheel is not None:
        try:
            admitted = [m for m in admitted if _wheel_fits(wheel, m)]
        except ValueError as exc:
            raise UsageError(f"{wheel}: not a valid wheel file name ({exc})") from None
    if not admitted:
        raise HarnessError(f"{origin} needs Python {requires_python or '(any)'}"
                           + (f" and a wheel tag of {wheel}" if wheel else "")
                           + f": none of the Pythons the harness uses ({', '.join(PYTHONS)}) fits")
    finder = find or find_python
    missing = []
    for minor in admitted:
        try:
            finder(minor)
            return minor
        except HarnessError as exc:
            missing.append(str(exc))
    raise HarnessError(f"{origin} needs Python {requires_python}; " + "; ".join(missing))


# --- constraints ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ShippedLock:
    version: Version
    file: str
    python: str
    origin: str  # upstream | derived


def shipped_locks() -> list[ShippedLock]:
    doc = yaml.safe_load((LOCKS / "locks.yaml").read_text(encoding="utf-8"))
    return sorted((ShippedLock(Version(v), str(e["file"]), str(e["python"]), str(e["origin"]))
                   for v, e in doc["locks"].items()), key=lambda lk: lk.version)


def _pins(lines: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in lines:
        name, sep, version = line.strip().partition("==")
        if sep and not line.lstrip().startswith("#"):
            out[canonicalize_name(name)] = version.strip()
    return out


def _marker_env(python: str) -> dict[str, str]:
    """Environment markers of the build's interpreter (requirements for extras are not installed)."""
    env: dict[str, str] = {k: str(v) for k, v in default_environment().items()}
    return {**env, "python_version": python, "python_full_version": f"{python}.0", "extra": ""}


def contradicted(pins: dict[str, str], requirements: Sequence[str], env: dict[str, str], *,
                 exact_only: bool = False, skip: Sequence[str] = ()) -> list[str]:
    """Pinned names a requirement (whose marker holds) excludes; ``exact_only``: those it pins with ``==``."""
    out: list[str] = []
    for text in requirements:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        name = canonicalize_name(req.name)
        if name not in pins or name in out or name in skip or (req.marker is not None and not req.marker.evaluate(env)):
            continue
        if (any(s.operator in ("==", "===") for s in req.specifier) if exact_only
                else not req.specifier.contains(pins[name], prereleases=True)):
            out.append(name)
    return out


def derive_lock(base_name: str, base_lines: Sequence[str], requirements: Sequence[str],
                companions: dict[str, Sequence[str]], *, python: str, build: str) -> tuple[list[str], list[str]]:
    """The base lock minus every pin a requirement of the build contradicts, and minus the exact pins of those
    relaxed packages' locked versions (``companions``: Requires-Dist of ``name`` at its locked version; pydantic
    pins pydantic-core, so a relaxed pydantic needs its pydantic-core relaxed too). Returns (lines, relaxed)."""
    env = _marker_env(python)
    pins = _pins(base_lines)
    relaxed = contradicted(pins, requirements, env)
    done = 0
    while done < len(relaxed):  # relaxed packages' own exact pins, transitively
        relaxed += contradicted(pins, companions.get(relaxed[done], ()), env, exact_only=True, skip=relaxed)
        done += 1
    header = f"# {base_name} minus the pins that {build} contradicts (relaxed: {' '.join(relaxed)})"
    kept = [line for line in base_lines if not (line.strip() and not line.lstrip().startswith("#")
                                                 and canonicalize_name(line.partition("==")[0]) in relaxed)]
    return [header, *kept], relaxed


def _own_requirements(rel: Release, log: Log) -> tuple[list[str], dict[str, Sequence[str]]]:
    """Requires-Dist of the build and of its same-version backend.ai-* dependencies (one release's wheels)."""
    reqs = list(rel.requires_dist)
    seen = {canonicalize_name(DIST)}
    frontier: list[str] = reqs
    while True:
        own = []
        for text in frontier:
            with contextlib.suppress(InvalidRequirement):
                req = Requirement(text)
                name = canonicalize_name(req.name)
                if name.startswith("backend-ai-") and name not in seen and any(
                        s.operator == "==" for s in req.specifier):
                    seen.add(name)
                    own.append(f"{req.name}{req.specifier}")
        if not own:
            return reqs, {}
        log(f"reading the metadata of {len(own)} dependent backend.ai wheel(s)")
        frontier = [r for meta in index_metadata(own).values() for r in meta.requires_dist]
        reqs += frontier


def plan_constraints(rel: Release, log: Log = _stderr) -> Constraints:
    """The release's own shipped lock; else one derived from the nearest upstream lock of the same Python; else
    none. A shipped lock that was itself derived is used as it is (its first line says so)."""
    locks = shipped_locks()
    version = Version(rel.version)
    own = next((lk for lk in locks if lk.version == version), None)
    if own is not None and rel.source == "pypi":
        if own.origin == "upstream":
            return Constraints("own lock", own.file)
        first = (LOCKS / own.file).read_text(encoding="utf-8").splitlines()[0]
        found = re.match(r"# (\S+) minus .*\(relaxed: ([^)]*)\)", first)
        base_name, relaxed = (found.group(1), tuple(found.group(2).split())) if found else (None, ())
        return Constraints("derived", own.file, base_name, relaxed)
    same = [lk for lk in locks if lk.python == rel.python and lk.origin == "upstream"]
    if not same:
        return Constraints("none")
    older = [lk for lk in same if lk.version <= version]
    base = older[-1] if older else same[0]
    base_lines = (LOCKS / base.file).read_text(encoding="utf-8").splitlines()
    reqs, _ = _own_requirements(rel, log)
    pins = _pins(base_lines)
    names = contradicted(pins, reqs, _marker_env(rel.python))
    companions: dict[str, Sequence[str]] = {}
    if names:
        log(f"reading the metadata of {len(names)} pinned package(s) the build contradicts")
        companions = {n: m.requires_dist for n, m in index_metadata([f"{n}=={pins[n]}" for n in names]).items()}
    build = rel.version if rel.source == "pypi" else f"the {rel.source} {Path(rel.location).name} ({rel.version})"
    lines, dropped = derive_lock(base.file, base_lines, reqs, companions, python=rel.python, build=build)
    return Constraints("derived", None, base.file, tuple(dropped), "\n".join(lines) + "\n")


# --- install ----------------------------------------------------------------------------------------------

def cache_root() -> Path:
    return Path(os.environ.get("HARNESS_PEER_CACHE", Path.home() / ".cache" / "harness" / "peers"))


def _python_version(binary: str) -> str | None:
    try:
        probe = subprocess.run([binary, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                               capture_output=True, text=True, check=False, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return probe.stdout.strip() if probe.returncode == 0 else None


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
        full = _python_version(candidate)
        if full is not None and full.rsplit(".", 1)[0] == minor:
            return candidate
    raise HarnessError(f"Python {minor} is needed for this release but was not found (a pyenv build under "
                       f"$(pyenv root)/versions/{minor}.* or python{minor} on PATH)")


def home(rel: Release) -> Path:
    return cache_root() / (rel.key or rel.version)


def venv_python(rel: Release) -> Path:
    return home(rel) / "venv" / "bin" / "python"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path``'s lock file: concurrent installs of one target wait for each other."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def installed_info(rel: Release) -> dict[str, Any]:
    """What the cached install recorded (Python, constraints, seconds); empty if not installed."""
    info = home(rel) / "install.json"
    if info.exists():
        loaded: dict[str, Any] = json.loads(info.read_text(encoding="utf-8"))
        return loaded
    if (home(rel) / "installed").exists():  # installed before the harness recorded this
        own = next((lk for lk in shipped_locks() if lk.version == Version(rel.version)), None)
        return {"python": rel.python, "constraints": (Constraints("own lock", own.file).to_json() if own else
                                                      {"kind": "unrecorded", "describe": "not recorded"})}
    return {}


_CAUSE = re.compile(r"^\s+(?:The user requested \(constraint\) ([A-Za-z0-9_.\-]+)=="
                    r"|([A-Za-z0-9_.\-]+) \S+ depends on )", re.M)


def conflicting_pins(pip_output: str, pinned: Collection[str]) -> list[str]:
    """The pinned names pip's last "The conflict is caused by:" block names: a constraint it cannot satisfy, or a
    pinned package whose locked version depends on something the build excludes (25.8-25.17 keep the base lock's
    opentelemetry-instrumentation-* 0.60b1, which pin opentelemetry-api 1.39.1, while the build's own
    opentelemetry-sdk~=1.33.1 pins opentelemetry-api 1.33.1)."""
    block = pip_output.rpartition("The conflict is caused by:")[2].partition("To fix this")[0]
    out: list[str] = []
    for match in _CAUSE.finditer(block):
        name = canonicalize_name(match.group(1) or match.group(2))
        if name in pinned and name not in out:
            out.append(name)
    return out


def install(rel: Release, *, fresh: bool = False, log: bool = True, say: Log | None = None,
            pip_lines: bool = True) -> tuple[Path, float]:
    """Install once into the cache; returns (venv python, seconds spent, 0 when cached). Progress goes to
    ``say`` (default stderr) as a line per step and (``pip_lines``) pip's own progress lines, unless ``log`` is
    false; everything pip says is in the cache's install.log."""
    out: Log = (say or _stderr) if log else (lambda _line: None)

    def step(text: str) -> None:
        out(f"peer {rel.version}: {text}")

    where = home(rel)
    with _locked(where):
        marker = where / "installed"
        if fresh and where.exists():
            shutil.rmtree(where)
        if marker.exists() and venv_python(rel).exists():
            return venv_python(rel), 0.0
        started = time.monotonic()
        where.mkdir(parents=True, exist_ok=True)
        base = find_python(rel.python)
        step(f"[1/3] constraints for {rel.describe()} on Python {rel.python}")
        constraints = plan_constraints(rel, step)
        step(f"      constraints: {constraints.describe()}")
        cfile: Path | None = None
        if constraints.file is not None:
            cfile = LOCKS / constraints.file
        elif constraints.text:
            cfile = where / "constraints.txt"
            cfile.write_text(constraints.text, encoding="utf-8")
        step(f"[2/3] venv from {base} ({_python_version(base)})")
        shown = step if pip_lines else (lambda _line: None)
        _run([base, "-m", "venv", "--clear", str(where / "venv")], rel, shown, where)
        relaxed_after: list[str] = []
        while True:  # ends: every retry drops at least one more pin, and there are finitely many
            # --no-compile: the webserver compiles what it imports on first start; compiling every module of
            # ~130 packages up front is most of an install's CPU time on a 2-core machine.
            argv = [str(venv_python(rel)), "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar",
                    "off", "--no-compile", *(["-c", str(cfile)] if cfile else []), rel.requirement]
            step(f"[3/3] {' '.join(argv[2:])}")
            code, tail = _run(argv, rel, shown, where, check=False)
            if code == 0:
                break
            dropped = conflicting_pins(tail, _pins(cfile.read_text(encoding="utf-8").splitlines())) if cfile else []
            if cfile is None or not dropped:
                raise HarnessError(f"installing {rel.describe()} failed (pip exit {code}); pip said:\n{tail}")
            # pip names the pins it cannot satisfy together with the build: drop exactly those, as the derivation
            # drops the pins the build's own Requires-Dist contradicts, and say so.
            relaxed_after += dropped
            step(f"      pip rejects the pin(s) {' '.join(dropped)}: retrying without them")
            lines = [ln for ln in cfile.read_text(encoding="utf-8").splitlines()
                     if canonicalize_name(ln.partition("==")[0]) not in relaxed_after or ln.startswith("#")]
            cfile = where / "constraints.txt"
            cfile.write_text("\n".join(lines) + "\n", encoding="utf-8")
        if relaxed_after:
            constraints = Constraints("derived", None, constraints.base or constraints.file,
                                      (*constraints.relaxed, *relaxed_after),
                                      cfile.read_text(encoding="utf-8") if cfile else "")
        undeclared = _add_undeclared_imports(rel, cfile, step, shown, where)
        seconds = time.monotonic() - started
        info = {"release": rel.to_json(), "python": rel.python, "interpreter": _python_version(base),
                "constraints": constraints.to_json(), "undeclared_added": undeclared, "seconds": round(seconds, 1)}
        (where / "install.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        marker.write_text(f"{rel.version}\n", encoding="utf-8")
        step(f"installed in {seconds:.0f} s")
        return venv_python(rel), seconds


_NO_MODULE = re.compile(r"ModuleNotFoundError: No module named '([A-Za-z0-9_]+)")


def _add_undeclared_imports(rel: Release, cfile: Path | None, step: Log, shown: Log, where: Path) -> list[str]:
    """Import the webserver once; a module it needs that no Requires-Dist declares, but that the constraints pin
    (their lock's environment had it), is installed at that pin. valkey-glide 2.0.1 (25.11-25.12) imports sniffio
    without declaring it; anyio pulled it in until 4.12, which the 25.19.2 lock pins. Returns what was added; a
    module no constraint names is left to fail the start, which then shows the build's own traceback."""
    pins = _pins(cfile.read_text(encoding="utf-8").splitlines()) if cfile else {}
    added: list[str] = []
    python = str(venv_python(rel))
    while True:
        code, tail = _run([python, "-c", "import ai.backend.web.server"], rel, shown, where, check=False)
        missing = [canonicalize_name(m) for m in _NO_MODULE.findall(tail)]
        if code == 0 or not missing or missing[-1] not in pins or missing[-1] in added:
            return added
        name = missing[-1]
        step(f"      the build imports {name} but declares no dependency on it: installing {name}=={pins[name]} "
             "(pinned by the constraints)")
        _run([python, "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off", "--no-compile",
              "-c", str(cfile), f"{name}=={pins[name]}"], rel, shown, where)
        added.append(name)


_SHOWN = ("Collecting ", "Processing ", "Building ", "Installing collected", "Successfully ", "ERROR", "error:")


def _run(argv: list[str], rel: Release, step: Log, where: Path, check: bool = True) -> tuple[int, str]:
    """Run a step, streaming pip's progress lines (Collecting ..., Installing ...) and logging everything."""
    lines: list[str] = []
    with (where / "install.log").open("a", encoding="utf-8") as logf:
        logf.write(f"$ {' '.join(argv)}\n")
        try:
            # Its own session, stopped by the supervisor: a SIGTERM to the harness alone (or a stop while the
            # census installs in threads) must not leave pip and its build processes running.
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    start_new_session=True)
        except OSError as exc:
            raise HarnessError(f"installing {rel.describe()}: cannot run {argv[0]}: {exc}") from None
        assert proc.stdout is not None

        def stop() -> None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # an install has nothing to save: no grace needed

        with supervisor.on_stop(stop):
            for line in proc.stdout:
                logf.write(line)
                lines.append(line.rstrip("\n"))
                if line.startswith(_SHOWN):
                    step("      " + line.rstrip()[:160])
            code = proc.wait()
        if (signum := supervisor.requested()) is not None:
            raise supervisor.Interrupted(signum)
    tail = _tail("\n".join(lines))
    if check and code != 0:
        raise HarnessError(f"installing {rel.describe()} failed ({' '.join(argv[:3])} ... exit {code}):\n{tail}")
    return code, tail


def _tail(text: str, limit: int = 3000) -> str:
    return text[-limit:].strip()


# --- running ----------------------------------------------------------------------------------------------

# Every release starts ``aiotools.start_server(num_workers=min(4, os.cpu_count()))`` and has no setting for it.
# Per-worker state (25.12+'s pooled cookie jars, W1) then decides what a scenario sees by which worker the kernel
# hands each client connection to: on 2 cores a credential-less request missed the leaking worker in 1 of 4 runs,
# a false pass of security-isolation. The harness runs one worker, the same for every build, as
# ``python -m ai.backend.web.server`` would run on a one-core machine (recorded as the build's ``workers``).
WORKERS = 1
ONE_WORKER = (f"import os, runpy; os.cpu_count = lambda: {WORKERS}; "
              "runpy.run_module('ai.backend.web.server', run_name='__main__', alter_sys=True)")

GLIDE_SOCKETS = Path("/tmp")  # valkey-glide (26.x's Redis client) puts its sockets here, whatever TMPDIR says


def remove_glide_sockets(pids: Collection[int], since: float, where: Path = GLIDE_SOCKETS) -> list[Path]:
    """Remove the ``glide-socket-<pid>-*.sock`` files that the given processes made (at ``since`` or later, a
    time.time()) and left behind when they ended: valkey-glide 2.0-2.3 (25.11-26.8) leaves one per webserver
    worker (hundreds after a census; 2.5.3 in 26.9.6 removes its own). Only the pids the harness started, only
    once they have ended: a live process's socket (another run's, even of the same build) and an older one of a
    pid number used again are left alone."""
    removed = []
    for pid in sorted(set(pids)):
        if supervisor.running(pid):
            continue
        for sock in where.glob(f"glide-socket-{pid}-*.sock"):
            with contextlib.suppress(FileNotFoundError):
                if sock.lstat().st_mtime >= since - 1.0:  # 1 s: file times are not finer than the clock
                    sock.unlink()
                    removed.append(sock)
    return removed


@dataclass
class PeerLauncher:
    """A real webserver build as the gateway row: its own Redis and config per FastTrack column."""

    rel: Release
    python: Path
    ready_timeout: float = 90.0
    shared: bool = True

    @property
    def label(self) -> str:
        return self.rel.label

    @property
    def profile(self) -> GatewayProfile:
        return generations.resolve(self.rel.profile)

    @contextlib.asynccontextmanager
    async def running(self, fasttrack_url: str, manager_url: str, env: Shared) -> AsyncIterator[str]:
        async with contextlib.AsyncExitStack() as stack:
            port = stack.enter_context(services.reserved_port())
            workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix=f"harness-peer-{self.rel.version}-"))
            redis_url = await stack.enter_async_context(services.redis_server())
            conf = Path(workdir) / "webserver.conf"
            conf.write_text(render_config(self.rel.config_template, port=port, fasttrack_port=url_port(fasttrack_url),
                                          manager_port=url_port(manager_url), redis_port=url_port(redis_url),
                                          jwt_secret=env.config.jwt_secret, workdir=workdir), encoding="utf-8")
            (Path(workdir) / "ipc").mkdir()
            argv = [str(self.python), "-c", ONE_WORKER, "-f", str(conf)]
            started: set[int] = set()
            stack.callback(remove_glide_sockets, started, time.time())  # runs once the build has stopped
            await stack.enter_async_context(services.process(
                self.rel.describe(), argv, host="127.0.0.1", port=port, ready_timeout=self.ready_timeout,
                cwd=workdir, pids=started))
            yield f"http://127.0.0.1:{port}"

