"""pytest plugin: scenario files become one item per (scenario, gateway, FastTrack) cell.

``pytest`` at the repository root collects ``scenarios/*.yaml`` and the executable diagrams ``scenarios/*.mmd``
(only in a directory named ``scenarios``, so unrelated YAML is never picked up). Items of required cells must pass;
items of other cells follow the reviewed baseline (``reports/baseline.json``): a recorded failure is
``xfail(strict=True)``, so a crossed cell that unexpectedly passes is surfaced, and a recorded pass must keep
passing. The selected items are run together, concurrently, the first time one of them runs; a failure shows step,
hop, header, expected and actual instead of a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from harness.compare.gate.baseline import check_baseline
from harness.engine import workers
from harness.engine.matrix_run import DEFAULT_JWT_SECRET, MAX_CONCURRENCY, Options, applicable
from harness.errors import ScenarioError, UsageError
from harness.judge import cell_verdict, support_policy
from harness.protocol import fasttrack_models, generations
from harness.results import document
from harness.results.model import CellResult, RunResult, ScenarioResult
from harness.results.redact import Redactor
from harness.scenario.failures import render
from harness.scenario.loader import load_scenario
from harness.scenario.mermaid import SUFFIXES as DIAGRAM_SUFFIXES
from harness.scenario.model import Scenario

_RESULTS = pytest.StashKey[dict[tuple[str, str, str], tuple[CellResult, ScenarioResult]]]()
_BASELINE = pytest.StashKey[dict[tuple[str, str, str], str]]()
_ACCEPTED = pytest.StashKey[dict[tuple[str, str, str], str]]()  # (gateway, FastTrack, scenario) -> finding id
DEFAULT_BASELINE = Path(__file__).resolve().parents[2] / "reports" / "baseline.json"


class ScenarioFailed(Exception):
    """A scenario's expectations did not hold in its cell (an incompatibility, not a harness problem)."""

    def __init__(self, cell: CellResult, result: ScenarioResult) -> None:
        super().__init__(result.reason)
        self.cell, self.result = cell, result


class ScenarioRunError(Exception):
    """The harness could not judge the cell (set-up failure, unreachable target): never an expected failure."""


class UnacceptedFailure(Exception):
    """A failure the baseline accepts only under a finding id, failing as something else: never expected."""

    def __init__(self, message: str, result: ScenarioResult) -> None:
        super().__init__(message)
        self.result = result


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness")
    group.addoption("--harness-policy", default=str(support_policy.DEFAULT_POLICY), help="support policy YAML")
    group.addoption("--harness-baseline", default=str(DEFAULT_BASELINE),
                    help="baseline whose recorded failures are the expected failures of cells not required")
    group.addoption("--harness-show-secrets", action="store_true", help="do not redact secrets in failures")
    group.addoption("--harness-concurrency", type=int, default=Options.concurrency,
                    help="scenario runs in flight at once")
    group.addoption("--harness-jobs", default="auto", metavar="N|auto",
                    help="worker processes for the scenario cells (default: one per core)")
    group.addoption("--harness-jwt-secret", default=DEFAULT_JWT_SECRET, metavar="SECRET",
                    help="pipeline JWT secret the reference gateways mint with and the scenarios verify with")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> ScenarioFile | None:
    if file_path.suffix in (".yaml", *DIAGRAM_SUFFIXES) and file_path.parent.name == "scenarios":
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


def _policy(config: pytest.Config) -> Mapping[str, frozenset[str]]:
    return support_policy.load_policy(config.getoption("--harness-policy"))


class ScenarioFile(pytest.File):
    def collect(self) -> Iterator[ScenarioItem]:
        try:
            scenario = load_scenario(self.path, str(self.path.relative_to(self.config.rootpath)))
        except ScenarioError as exc:
            raise self.CollectError(exc.render()) from None
        policy = _policy(self.config)
        baseline = _baseline(self.config)
        accepted = self.config.stash[_ACCEPTED]
        for gw in generations.PROFILES:
            if not applicable(scenario, gw):
                continue
            for ft in fasttrack_models.MODELS:
                required = ft.id in policy.get(gw.id, frozenset())
                item: ScenarioItem = ScenarioItem.from_parent(self, name=f"{scenario.id}[{gw.id}-{ft.id}]",
                                                              scenario=scenario, gateway=gw.id, fasttrack=ft.id,
                                                              required=required)
                finding = accepted.get((gw.id, ft.id, scenario.id))
                if finding is not None:  # a documented defect the reviewed baseline accepts under its id
                    item.accepted = finding
                    item.add_marker(pytest.mark.xfail(reason=f"known issue {finding}, accepted in the baseline",
                                                      raises=ScenarioFailed, strict=True))
                elif not required:
                    _expect_from_baseline(item, baseline.get((gw.id, ft.id, scenario.id)))
                yield item


def _baseline(config: pytest.Config) -> dict[tuple[str, str, str], str]:
    """(gateway, FastTrack, scenario) -> outcome recorded in the reviewed baseline (empty if none)."""
    cached = config.stash.get(_BASELINE, None)
    if cached is None:
        path = Path(config.getoption("--harness-baseline"))
        config.stash[_ACCEPTED] = {}
        if not path.exists() and path == DEFAULT_BASELINE:  # none yet: a cell not required may go either way
            cached = {}
        elif not path.exists():  # a baseline the user named must be there: never silently an empty one
            raise pytest.UsageError(f"--harness-baseline: {path} does not exist")
        else:
            # A baseline that cannot be read or says something unknown is a usage error, never an empty baseline.
            try:
                doc = check_baseline(document.read_json(path), str(path))
            except UsageError as exc:
                raise pytest.UsageError(f"--harness-baseline: {exc}") from None
            cached = {(c["gateway"], c["fasttrack"], sid): outcome
                      for c in doc["cells"] for sid, outcome in c["scenarios"].items()}
            config.stash[_ACCEPTED] = {(c["gateway"], c["fasttrack"], sid): finding
                                       for c in doc["cells"] for sid, finding in (c.get("accepted") or {}).items()}
        config.stash[_BASELINE] = cached
    return cached


def _expect_from_baseline(item: ScenarioItem, recorded: str | None) -> None:
    """A cell that is not required is information: its expected outcome is what the reviewed baseline recorded.
    A recorded failure is a strict expected failure (an unexpected pass is surfaced); a recorded pass must keep
    passing; a scenario the baseline does not know yet may go either way until the baseline is updated."""
    where = f"{item.gateway} is not required to support FastTrack {item.fasttrack} (support policy)"
    if recorded in ("fail", "error"):
        item.add_marker(pytest.mark.xfail(reason=f"{where}; the baseline records this scenario failing here",
                                          raises=ScenarioFailed, strict=True))
    elif recorded is None:
        item.add_marker(pytest.mark.xfail(reason=f"{where}; not in the baseline yet (gate --update-baseline)",
                                          raises=ScenarioFailed, strict=False))


class ScenarioItem(pytest.Item):
    def __init__(self, *, scenario: Scenario, gateway: str, fasttrack: str, required: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario, self.gateway, self.fasttrack, self.required = scenario, gateway, fasttrack, required
        self.accepted: str | None = None  # the finding id the baseline accepts this item's failure under
        self.add_marker(pytest.mark.harness_cell(gateway=gateway, fasttrack=fasttrack))

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.scenario.id, self.gateway, self.fasttrack)

    def runtest(self) -> None:
        results = self.session.stash.get(_RESULTS, None)
        if results is None or self.key not in results:
            results = _run_selected(self.session)
        cell, result = results[self.key]
        if result.outcome == "error":
            raise ScenarioRunError(result.error)
        if result.outcome == "fail":
            if self.accepted is not None and result.finding != self.accepted:
                raise UnacceptedFailure(f"fails as {result.finding or 'no documented finding'}; the baseline "
                                        f"accepts only {self.accepted}: {result.reason}", result)
            raise ScenarioFailed(cell, result)
        # Judged on this scenario's own observations, never on the cell's verdict (which depends on what else
        # was selected): a scenario that heard FastTrack must have heard exactly one well-formed version.
        _, problem = cell_verdict.observed_version(result.versions_seen)
        if self.required and result.versions_seen and problem:
            raise ScenarioRunError(f"the FastTrack version is unknown in {self.gateway} × {self.fasttrack}: {problem}")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ScenarioFailed):
            text = format_failure(excinfo.value.cell, excinfo.value.result)
            return Redactor(excinfo.value.result.secrets, enabled=not self.config.getoption("--harness-show-secrets")
                            ).text(text)
        if isinstance(excinfo.value, UnacceptedFailure):
            return Redactor(excinfo.value.result.secrets, enabled=not self.config.getoption(
                "--harness-show-secrets")).text(str(excinfo.value))
        if isinstance(excinfo.value, ScenarioRunError):
            return f"harness error in {self.gateway} × {self.fasttrack}: {excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"{self.scenario.id} in {self.gateway} × FastTrack {self.fasttrack}"


def format_failure(cell: CellResult, result: ScenarioResult) -> str:
    lines = [f"{result.id} in {cell.gateway} × FastTrack {cell.fasttrack} "
             f"(observed version {cell.fasttrack_version or 'none'}): {result.outcome}"]
    for f in result.failures:
        lines += [f"  {line}" for line in render(f)] + [""]
    failing = next((s for s in result.steps if s.outcome != "pass"), None)
    if failing and result.failures:
        record = failing.hops.get(result.failures[0].hop)
        if record is not None:
            first = f"{record.method} {record.path}" if record.method else f"{record.status} {record.reason}"
            lines.append(f"  what crossed {result.failures[0].hop}: {first}")
            lines += [f"    {k}: {v}" for k, v in record.headers]
    return "\n".join(lines)


def _jobs(config: pytest.Config) -> int:
    jobs = str(config.getoption("--harness-jobs"))
    if jobs != "auto":
        if not jobs.isdigit() or int(jobs) < 1:
            raise pytest.UsageError(f"--harness-jobs takes a whole number >= 1 or 'auto', not {jobs!r}")
        return min(int(jobs), workers.available_cores())  # as run --jobs: at most one worker per core
    # Under pytest-xdist the cores are xdist's already: each of its workers runs its items in one process.
    return 1 if os.environ.get("PYTEST_XDIST_WORKER") else workers.available_cores()


def _run_selected(session: pytest.Session) -> dict[tuple[str, str, str], tuple[CellResult, ScenarioResult]]:
    items = [i for i in session.items if isinstance(i, ScenarioItem)]
    scenarios = list({i.scenario.id: i.scenario for i in items}.values())
    gateways = [generations.resolve(g) for g in dict.fromkeys(i.gateway for i in items)]
    fasttracks = [fasttrack_models.resolve(f) for f in dict.fromkeys(i.fasttrack for i in items)]
    opts = Options(concurrency=session.config.getoption("--harness-concurrency"),
                   jwt_secret=session.config.getoption("--harness-jwt-secret"))
    run: RunResult = workers.run(gateways, fasttracks, scenarios, _policy(session.config), opts,
                                 jobs=_jobs(session.config), only={i.key for i in items})
    results = {(s.id, c.gateway, c.fasttrack): (c, s) for c in run.cells for s in c.scenarios}
    session.stash[_RESULTS] = results
    return results


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "harness_cell(gateway, fasttrack): a scenario item's matrix cell")
    _jobs(config)  # a bad --harness-jobs is a usage error before anything runs
    if not 1 <= config.getoption("--harness-concurrency") <= MAX_CONCURRENCY:  # as run --concurrency
        raise pytest.UsageError(f"--harness-concurrency takes 1-{MAX_CONCURRENCY}")
    _baseline(config)  # so is a baseline that cannot be read or says something unknown
