"""The accounts a run's mock manager will issue, written for a real FastTrack (``run --fasttrack-url``).

A real FastTrack verifies what the gateway sends against the manager's keypairs: the keypair signature of a
TO-BE login, the ``access_key`` claim of an SSO-era JWT. Each run logs in its own user, whose keypair is
derived from ``--seed`` and the run's id, so every account is known before anything runs: the file is complete
when the run starts, and the same for every run with the same seed and selection. It holds the secret keys of
these throwaway accounts (that is its purpose); nothing else of the run is in it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from harness.engine.matrix_run import Options, plan_runs
from harness.engine.runner import run_usernames
from harness.engine.targets import FastTrackTarget, GatewayLauncher
from harness.protocol.accounts import Directory, User
from harness.scenario.model import Scenario

FILE = "accounts.json"
SCHEMA = "harness/accounts@1"


def planned(gateways: Sequence[GatewayLauncher], columns: Sequence[FastTrackTarget], scenarios: list[Scenario],
            options: Options, shard: tuple[int, int] | None = None) -> list[User]:
    """Every user the run will log in, in run order."""
    plan = plan_runs(gateways, columns, scenarios, shard=shard)
    directory = Directory(options.seed)
    return [directory.create(name) for g, f in plan.cells for sc in plan.wanted[(g.label, f.id)]
            for name in run_usernames(sc, g.label, f.id)]


def write_for_run(out: str | Path, users: list[User], manager_listen: tuple[str, int] | None) -> Path:
    """``OUT/accounts.json`` of a ``--fasttrack-url`` run (``run`` and ``gate`` alike), before its first request;
    ``manager_url`` is the fixed ``--manager-listen`` address, else null (the manager's port is the OS's)."""
    manager = f"http://{manager_listen[0]}:{manager_listen[1]}" if manager_listen else None
    return write(Path(out) / FILE, users, manager)


def notice(path: Path) -> str:
    return f"harness: the accounts of this run are in {path} (for the real FastTrack)"


def write(path: Path, users: list[User], manager_url: str | None = None) -> Path:
    doc = {
        "schema": SCHEMA,
        "note": "the mock manager's accounts for this run (seeded): a real FastTrack verifies keypair signatures "
                "and JWT access keys against them",
        "manager_url": manager_url,
        "accounts": [{"username": u.username, "password": u.password, "access_key": u.access_key,
                      "secret_key": u.secret_key} for u in users],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)  # a FastTrack reading it never sees half a file
    return path
