"""The engine behind the gate's :data:`~harness.compare.gate.evaluate.Runner`: the whole matrix, or one cell of it
for ``--confirm``, run on the same target."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import errors
from harness.engine import accounts, workers
from harness.engine.matrix_run import Options
from harness.engine.selection import DEFAULT_SCENARIOS, select
from harness.engine.targets import FastTrackTarget, JudgedAs, ReferenceLauncher
from harness.protocol.accounts import User
from harness.results.document import RunDoc
from harness.results.redact import Redactor


@dataclass
class EngineRunner:
    """Runs the matrix, or one cell of it (``--confirm``), through the engine. A real row is re-run with the
    very launcher that ran it (same command, venv or URL, judged as the same profile), never with a reference
    profile of the same name; a reference row with its reference gateway."""

    policy: Mapping[str, frozenset[str]]
    columns: list[FastTrackTarget]
    options: Options
    real: JudgedAs | None = None
    real_labels: frozenset[str] = frozenset()  # rows of the run that are real gateways
    scenarios_dir: str | Path = DEFAULT_SCENARIOS
    jobs: int = 1

    def whole(self) -> RunDoc:
        gateways, scenarios = self._whole()
        return self._run(gateways, self.columns, scenarios, keep_empty=True)

    def planned_users(self) -> list[User]:
        """Every user :meth:`whole` will log in (a real FastTrack learns them from the accounts file)."""
        gateways, scenarios = self._whole()
        return accounts.planned(gateways, self.columns, scenarios, self.options)

    def _whole(self) -> tuple[list[Any], list[Any]]:
        sel = select(None, None, "*", self.scenarios_dir)
        return [self.real] if self.real is not None else list(sel.gateways), sel.scenarios

    def __call__(self, gateway: str, fasttrack: str, scenario: str = "*") -> RunDoc:
        real = self.real is not None and gateway == self.real.label
        if not real and gateway in self.real_labels:
            raise errors.UsageError(f"cannot re-run {gateway}: it is a real gateway and the target it ran with is not "
                                    "given (--peer, --gateway-cmd or --gateway-url)")
        column = next((c for c in self.columns if c.id == fasttrack), None)
        if column is None:
            raise errors.UsageError(f"cannot re-run FastTrack column {fasttrack}: it is neither a FastTrack model nor "
                                    "the --fasttrack-url column given")
        sel = select(None if real else [gateway], None, scenario, self.scenarios_dir)  # a reference row: its profile
        launcher: Any = self.real if real else ReferenceLauncher(sel.gateways[0])
        return self._run([launcher], [column], sel.scenarios, keep_empty=False)

    def _run(self, gateways: list[Any], columns: list[FastTrackTarget], scenarios: list[Any],
             keep_empty: bool) -> RunDoc:
        result = workers.run(gateways, columns, scenarios, self.policy, self.options, jobs=self.jobs,
                             keep_empty=keep_empty)
        doc: RunDoc = Redactor(result.secrets()).document(result.to_json())
        return doc

