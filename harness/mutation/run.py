"""``python -m harness mutate``: run the suite against every deviant gateway of :mod:`harness.mutation.catalogue`.

Each mutant runs in its base profile's required cells, next to the base profile itself, in one matrix run. A
mutant is *killed* when a scenario that passes on the base fails (or errs) on the mutant, in one of those cells;
it is caught at the first failing hop of each such scenario. The base must judge cleanly: its cells compatible,
or failing only as documented defects (a base that reproduces W1 still fails security-isolation; that scenario
then cannot catch anything, the others can). A surviving mutant, or one caught only at another hop than
intended, is a gap in the scenarios.

Exit codes:
  0  every mutant is killed, each at its intended hop
  1  a mutant survived, was caught only elsewhere, or its base profile is not compatible itself
  2  usage error (unknown mutant, bad scenario or policy file)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tabulate import tabulate

from harness import errors
from harness.engine.matrix_run import Options, applicable, mock_columns, run_matrix
from harness.engine.targets import GatewayLauncher, ReferenceLauncher
from harness.mutation.catalogue import Mutant
from harness.protocol import fasttrack_models
from harness.protocol.hops import HOPS
from harness.results.model import CellResult, RunResult
from harness.scenario.model import Scenario

SCHEMA = "harness/mutation@1"


@dataclass
class MutantResult:
    mutant: Mutant
    cells: dict[str, str]  # required FastTrack id -> the mutant row's verdict
    base_cells: dict[str, str]  # the same cells of the base profile's row
    catches: list[dict[str, Any]] = field(default_factory=list)  # first failure of each failing scenario

    base_clean: bool = True  # every failure of the base is a documented defect (and nothing errs)

    @property
    def base_ok(self) -> bool:
        return bool(self.base_cells) and self.base_clean

    @property
    def killed(self) -> bool:
        return self.base_ok and bool(self.catches)

    @property
    def caught_at(self) -> list[str]:
        """The first failing hops of the failing scenarios, in hop order ('error' for a scenario error)."""
        hops = {c["hop"] for c in self.catches}
        return [h for h in (*HOPS, "error") if h in hops]

    @property
    def at_intended_hop(self) -> bool:
        """Caught at its hop; a mutant of a named header by a failure on that very header."""
        if not self.killed or self.mutant.hop not in self.caught_at:
            return False
        header = self.mutant.header
        return header is None or any(c["hop"] == self.mutant.hop and str(c["check"]).lower() == f"header {header}"
                                     .lower() for c in self.catches)

    def to_json(self) -> dict[str, Any]:
        return {**self.mutant.to_json(), "killed": self.killed, "caught_at": self.caught_at,
                "at_intended_hop": self.at_intended_hop, "base_compatible": self.base_ok,
                "cells": self.cells, "base_cells": self.base_cells, "catches": self.catches}


@dataclass
class MutationRun:
    results: list[MutantResult]
    run: RunResult

    @property
    def killed(self) -> int:
        return sum(r.killed for r in self.results)

    @property
    def at_intended_hop(self) -> int:
        return sum(r.at_intended_hop for r in self.results)

    @property
    def kill_rate(self) -> float:
        return self.killed / len(self.results) if self.results else 0.0

    @property
    def ok(self) -> bool:
        return bool(self.results) and self.at_intended_hop == len(self.results)

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "total": len(self.results), "killed": self.killed,
                "kill_rate": round(self.kill_rate, 4), "at_intended_hop": self.at_intended_hop,
                "mutants": [r.to_json() for r in self.results]}


def _catches(cell: CellResult, base: CellResult) -> list[dict[str, Any]]:
    """The first failure of each scenario that passes on the base and not on the mutant."""
    passing = {sc.id for sc in base.scenarios if sc.outcome == "pass"}
    out: list[dict[str, Any]] = []
    for sc in cell.scenarios:
        if sc.id not in passing:
            continue
        if sc.outcome == "fail" and sc.failures:
            f = sc.failures[0]
            out.append({"fasttrack": cell.fasttrack, "scenario": sc.id, "step": f.step, "hop": f.hop,
                        "check": f.subject})
        elif sc.outcome == "error":
            out.append({"fasttrack": cell.fasttrack, "scenario": sc.id, "step": None, "hop": "error",
                        "check": sc.error})
    return out


async def run_mutants(mutants: Sequence[Mutant], scenarios: list[Scenario], policy: Mapping[str, frozenset[str]],
                      options: Options | None = None, listener: Any = None) -> MutationRun:
    """Every mutant and every base profile in the base's required cells, in one (concurrent) matrix run."""
    bases = list(dict.fromkeys(m.base_profile for m in mutants))
    for base in bases:
        if not policy.get(base.id):
            raise errors.UsageError(f"base profile {base.id} has no required cells in the support policy")
    launchers: list[GatewayLauncher] = [ReferenceLauncher(b) for b in bases]
    launchers += [m.launcher() for m in mutants]
    wanted = set().union(*(policy[b.id] for b in bases))
    models = [m for m in fasttrack_models.MODELS if m.id in wanted]
    only = {(sc.id, g.label, f) for g in launchers for f in policy[g.profile.id] for sc in scenarios
            if applicable(sc, g.profile)}
    run = await run_matrix(launchers, mock_columns(models), scenarios, policy, options, listener, only=only)
    cells = {(c.gateway, c.fasttrack): c for c in run.cells}
    results = []
    for m in mutants:
        required = sorted(policy[m.base])
        base_row = [cells[(m.base, f)] for f in required]
        clean = all(c.verdict in ("compatible", "incompatible") and all(
            sc.outcome == "pass" or (sc.outcome == "fail" and sc.finding) for sc in c.scenarios) for c in base_row)
        results.append(MutantResult(
            m, {f: cells[(m.id, f)].verdict for f in required}, {f: cells[(m.base, f)].verdict for f in required},
            [c for f in required for c in _catches(cells[(m.id, f)], cells[(m.base, f)])], clean))
    return MutationRun(results, run)


def render(run: MutationRun) -> str:
    rows = []
    for r in run.results:
        if not r.base_ok:
            status = "INCONCLUSIVE (base fails beyond its documented defects)"
        elif not r.killed:
            status = "SURVIVED"
        else:
            status = "killed" if r.at_intended_hop else "killed elsewhere"
        rows.append([r.mutant.id, r.mutant.base, r.mutant.hop, ", ".join(r.caught_at) or "-", status])
    table = tabulate(rows, headers=["mutant", "base", "intended hop", "caught at", "result"], tablefmt="simple")
    n = len(run.results)
    return (f"{table}\n\nkill rate: {run.killed}/{n} ({100 * run.kill_rate:.0f} %); "
            f"caught at the intended hop: {run.at_intended_hop}/{n}")
