"""Shared fixtures of the harness's own tests."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from harness.engine.matrix_run import run_matrix
from harness.engine.selection import select
from harness.judge import support_policy
from harness.results.redact import Redactor


@pytest.fixture(scope="session")
def full_run_doc() -> dict[str, Any]:
    """The redacted result document of the full default matrix, run once for every report test."""
    sel = select(None, None)
    run = asyncio.run(run_matrix(sel.gateways, sel.fasttracks, sel.scenarios, support_policy.load_policy()))
    out: dict[str, Any] = Redactor(run.secrets()).document(run.to_json())
    return out


@pytest.fixture(autouse=True)
def _no_step_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    """The gate appends to $GITHUB_STEP_SUMMARY; tests running in GitHub Actions must not."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
