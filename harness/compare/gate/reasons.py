"""The gate's vocabulary: one frozen dataclass per reason it can give, each with its effect, and the result
they add up to (:class:`GateResult`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal

EXIT_DEPLOYABLE = 0
EXIT_NOT_DEPLOYABLE = 1
EXIT_UNKNOWN = 3

Effect = Literal["not deployable", "unknown", "info"]
GateVerdict = Literal["deployable", "not deployable", "unknown"]
EXIT_CODES: dict[str, int] = {"deployable": EXIT_DEPLOYABLE, "not deployable": EXIT_NOT_DEPLOYABLE,
                              "unknown": EXIT_UNKNOWN}
KNOWN = "Accepted in the baseline"


# --- typed reasons ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Reason:
    """Why the gate decided what it did. ``effect`` is what it does without ``--strict``; ``strict`` whether
    ``--strict`` turns it into ``not deployable``."""

    effect: ClassVar[Effect] = "info"
    strict: ClassVar[bool] = False

    @property
    def kind(self) -> str:
        return type(self).__name__

    @property
    def where(self) -> str:
        g, f, s = (getattr(self, k, None) for k in ("gateway", "fasttrack", "scenario"))
        cell = f"{g}×{f}" if g is not None else f"FastTrack {f}"
        return f"{cell}/{s}" if s else cell

    def describe(self) -> str:
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "effect": self.effect, "where": self.where, **asdict(self),
                "message": self.describe()}


def shown_state(value: str | None) -> str:
    return value if value is not None else "absent"


@dataclass(frozen=True)
class Regression(Reason):
    """A required cell (scenario=None) or scenario that was compatible/pass in the baseline and is not now."""

    gateway: str
    fasttrack: str
    scenario: str | None
    was: str
    now: str
    detail: str | None = None
    confirmed: int = 0  # re-runs (--confirm) that reproduced it
    effect: ClassVar[Effect] = "not deployable"

    def describe(self) -> str:
        what = f"scenario {self.scenario}" if self.scenario else "required cell"
        again = f"; reproduced in {self.confirmed} re-run(s)" if self.confirmed else ""
        detail = f": {self.detail}" if self.detail else ""
        return f"{what} was {self.was} in the baseline, is {self.now} now{detail}{again}"


@dataclass(frozen=True)
class RequiredCellFailing(Reason):
    """A required cell is incompatible and the baseline does not record that (it was absent, unknown or error)."""

    gateway: str
    fasttrack: str
    verdict: str
    was: str | None
    detail: str | None = None
    confirmed: int = 0
    effect: ClassVar[Effect] = "not deployable"

    def describe(self) -> str:
        again = f"; reproduced in {self.confirmed} re-run(s)" if self.confirmed else ""
        detail = f": {self.detail}" if self.detail else ""
        return f"required cell is {self.verdict} (baseline: {shown_state(self.was)}){detail}{again}"


@dataclass(frozen=True)
class RequiredCellMissing(Reason):
    """The policy requires the cell but the run has no result for it."""

    gateway: str
    fasttrack: str
    was: str | None
    effect: ClassVar[Effect] = "unknown"

    def describe(self) -> str:
        return f"required by the policy but not in the run (baseline: {shown_state(self.was)})"


@dataclass(frozen=True)
class RequiredCellUnknown(Reason):
    """A required cell is 'unknown' or 'error' (the harness could not judge it) and the baseline says otherwise."""

    gateway: str
    fasttrack: str
    verdict: str
    was: str | None
    detail: str | None = None
    effect: ClassVar[Effect] = "unknown"

    def describe(self) -> str:
        detail = f": {self.detail}" if self.detail else ""
        return f"required cell is {self.verdict} (baseline: {shown_state(self.was)}){detail}"


@dataclass(frozen=True)
class ScenarioNotRun(Reason):
    """A scenario that passed in a required cell in the baseline did not run to a verdict (error, skip, absent)."""

    gateway: str
    fasttrack: str
    scenario: str
    was: str
    now: str
    effect: ClassVar[Effect] = "unknown"

    def describe(self) -> str:
        return f"was {self.was} in the baseline, is {self.now} now"


@dataclass(frozen=True)
class VersionNotObserved(Reason):
    """No cell of the run heard X-BackendAI-FastTrack-Version from a FastTrack the policy requires."""

    fasttrack: str
    gateways: tuple[str, ...]
    effect: ClassVar[Effect] = "unknown"

    def describe(self) -> str:
        return f"required by {', '.join(self.gateways)} but no cell observed its X-BackendAI-FastTrack-Version"


@dataclass(frozen=True)
class KnownIssue(Reason):
    """A required cell is not compatible, exactly as the baseline records: accepted (under the finding ids the
    baseline accepted its failing scenarios with, if any)."""

    gateway: str
    fasttrack: str
    verdict: str
    detail: str | None = None
    findings: tuple[str, ...] = ()

    def describe(self) -> str:
        accepted = f" (accepted as {', '.join(self.findings)})" if self.findings else ""
        return f"{self.verdict}, as in the baseline{accepted}" + (f": {self.detail}" if self.detail else "")


@dataclass(frozen=True)
class _NotAccepted(Reason):
    """A failure of a required cell that only an explicit acceptance by its finding id can accept."""

    gateway: str
    fasttrack: str
    scenario: str
    finding: str | None
    accepted: str | None
    detail: str | None = None
    effect: ClassVar[Effect] = "not deployable"

    def _says(self, head: str) -> str:
        was = f"the baseline accepts {self.accepted}" if self.accepted else "the baseline accepts no finding here"
        return f"{head}{was})" + (f": {self.detail}" if self.detail else "")


@dataclass(frozen=True)
class SecurityFailure(_NotAccepted):
    """A security scenario fails in a required cell and the baseline does not accept that failure under the
    finding id the run matched it to (a security failure is never accepted by the ratchet alone)."""

    def describe(self) -> str:
        what = f"documented as {self.finding}" if self.finding else "matches no documented finding"
        return self._says(f"security failure ({what}; ")


@dataclass(frozen=True)
class DefectNotAccepted(_NotAccepted):
    """A required cell fails with a documented defect (a finding of kind ``defect``) that the baseline does not
    accept under that id: a known defect is accepted explicitly, never by the ratchet alone."""

    def describe(self) -> str:
        return self._says(f"known defect {self.finding}, not accepted (")


@dataclass(frozen=True)
class Improvement(Reason):
    gateway: str
    fasttrack: str
    scenario: str | None
    was: str
    now: str
    strict: ClassVar[bool] = True

    def describe(self) -> str:
        return f"was {self.was} in the baseline, is {self.now} now (update the baseline to lock it in)"


@dataclass(frozen=True)
class NewCell(Reason):
    gateway: str
    fasttrack: str
    verdict: str
    required: bool
    strict: ClassVar[bool] = True

    def describe(self) -> str:
        return f"not in the baseline; {self.verdict}" + (" (required)" if self.required else "")


@dataclass(frozen=True)
class NewScenario(Reason):
    gateway: str
    fasttrack: str
    scenario: str
    outcome: str
    strict: ClassVar[bool] = True

    def describe(self) -> str:
        return f"not in the baseline; {self.outcome}"


@dataclass(frozen=True)
class Removed(Reason):
    """A cell or scenario of the baseline that the run no longer has (and nothing required depends on it)."""

    gateway: str
    fasttrack: str
    scenario: str | None
    was: str
    strict: ClassVar[bool] = True

    def describe(self) -> str:
        return f"in the baseline ({self.was}) but not in the run"


@dataclass(frozen=True)
class Changed(Reason):
    """A cell or scenario the policy does not require changed (other than improving)."""

    gateway: str
    fasttrack: str
    scenario: str | None
    was: str
    now: str
    strict: ClassVar[bool] = True

    def describe(self) -> str:
        return f"was {self.was} in the baseline, is {self.now} now (not required)"


@dataclass(frozen=True)
class PolicyChanged(Reason):
    gateway: str
    fasttrack: str
    was_required: bool
    now_required: bool
    strict: ClassVar[bool] = True

    def describe(self) -> str:
        state = {True: "required", False: "not required"}
        return f"{state[self.was_required]} in the baseline, {state[self.now_required]} by the policy now"


@dataclass(frozen=True)
class Flaky(Reason):
    """A suspected regression whose outcome flipped when re-run (--confirm): not counted as a regression."""

    gateway: str
    fasttrack: str
    scenario: str | None
    outcomes: tuple[str, ...]
    strict: ClassVar[bool] = True

    def describe(self) -> str:
        return f"flipped between runs: {' → '.join(self.outcomes)}"


REASON_TYPES: tuple[type[Reason], ...] = (Regression, RequiredCellFailing, SecurityFailure, DefectNotAccepted,
                                          RequiredCellMissing,
                                          RequiredCellUnknown, ScenarioNotRun, VersionNotObserved, Flaky, Improvement,
                                          NewCell, NewScenario, Removed, Changed, PolicyChanged, KnownIssue)



@dataclass
class GateResult:
    verdict: GateVerdict
    reasons: list[Reason]
    strict: bool = False
    updated: bool = False  # --update-baseline: the reasons were accepted into the new baseline

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def groups(self) -> list[tuple[str, list[Reason]]]:
        blocking = [r for r in self.reasons if r.effect == "not deployable"]
        unknown = [r for r in self.reasons if r.effect == "unknown"]
        changes = [r for r in self.reasons if r.effect == "info" and r.strict]
        known = [r for r in self.reasons if r.effect == "info" and not r.strict]
        if self.updated:
            return [("Accepted into the new baseline", blocking + unknown + changes), (KNOWN, known)]
        title = "Changes (fail the gate with --strict)" if not self.strict else "Changes (fail the gate: --strict)"
        return [("Not deployable", blocking), ("Unknown", unknown), (title, changes),
                (KNOWN, known)]

    def to_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "exit_code": self.exit_code, "strict": self.strict, "updated": self.updated,
                "reasons": [r.to_json() for r in self.reasons]}

