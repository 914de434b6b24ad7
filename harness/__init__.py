"""Compatibility test harness for the Backend.AI webserver <-> FastTrack pipeline authentication contract."""

from __future__ import annotations

import functools
from pathlib import Path

__version__ = "0.1.0"


@functools.cache
def build() -> dict[str, str | None]:
    """``{version, commit}`` of the harness that runs: the commit when it runs from a git checkout (read from the
    checkout's files, not by starting git, so start-up stays fast), else None."""
    return {"version": __version__, "commit": _commit(Path(__file__).resolve().parent.parent)}


def describe() -> str:
    info = build()
    return f"harness {info['version']}" + (f" (commit {str(info['commit'])[:12]})" if info["commit"] else "")


def _commit(root: Path) -> str | None:
    dot = root / ".git"
    try:
        gitdir = dot if dot.is_dir() else (root / dot.read_text(encoding="utf-8").split("gitdir:", 1)[1].strip())
        head = (gitdir / "HEAD").read_text(encoding="utf-8").strip()
        if not head.startswith("ref: "):
            return head or None  # detached
        ref = head[5:]
        common = gitdir / (gitdir / "commondir").read_text(encoding="utf-8").strip() \
            if (gitdir / "commondir").is_file() else gitdir  # a worktree keeps its branches in the main .git
        for base in (gitdir, common):
            if (base / ref).is_file():
                return (base / ref).read_text(encoding="utf-8").strip() or None
        for line in (common / "packed-refs").read_text(encoding="utf-8").splitlines():
            sha, _, name = line.partition(" ")
            if name == ref:
                return sha
    except (OSError, IndexError, UnicodeDecodeError):
        return None
    return None
