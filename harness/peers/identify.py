"""``harness identify``: which gateway generation does a target behave like?

Observation mode: the target gateway (a reference profile, a build, a gateway command or a running gateway) is
run once per candidate profile, each time judged by that candidate's expectations (its scenario modes) and
paired with the FastTrack of the candidate's era (the first release model its support policy requires). The
candidates are ranked by agreement over the same scenarios: a scenario that errored or never ran for any
candidate is evidence about the set-up, not the target, and counts for none; the others count for each
candidate they apply to (share that pass, or fail with the candidate's own documented defect, then the
number of passing steps). The best match is named with its margin over the runner-up and, for the close
candidates, the first difference of every scenario that disagrees is listed. When most runs errored at set-up, no
generation is named: the first error is shown in full (exit 3).
``--judge-as auto`` (:func:`judge`) uses the same ranking to pick the profile a real build is judged as."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness import errors
from harness.engine import supervisor
from harness.engine.matrix_run import Options, applicable, mock_columns, run_matrix
from harness.engine.targets import GatewayLauncher, JudgedAs, RealGateway
from harness.protocol import fasttrack_models, generations
from harness.protocol.fasttrack_models import FastTrackModel
from harness.protocol.generations import GatewayProfile
from harness.results.model import RunResult
from harness.results.redact import Redactor
from harness.scenario.model import Scenario

CLOSE = 0.25  # candidates within this share of the best agreement get their differences listed


@dataclass
class Candidate:
    profile: GatewayProfile
    fasttrack: str
    passed: int = 0
    total: int = 0
    steps_passed: int = 0
    errors: int = 0
    differences: list[dict[str, str]] = field(default_factory=list)

    @property
    def agreement(self) -> float:
        """Share of the counted scenarios (applicable to this candidate, and run to a verdict for every
        candidate) that pass when judged as this candidate."""
        return self.passed / self.total if self.total else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"profile": self.profile.id, "generation": self.profile.generation, "title": self.profile.title,
                "releases": self.profile.releases, "proposal": self.profile.proposal, "fasttrack": self.fasttrack,
                "agreement": round(self.agreement, 4), "scenarios_passed": self.passed,
                "scenarios_total": self.total, "steps_passed": self.steps_passed, "errors": self.errors,
                "differences": self.differences}


def era_fasttrack(profile: GatewayProfile, policy: Mapping[str, frozenset[str]]) -> FastTrackModel:
    """The FastTrack a candidate is judged with: its policy's first required release model (else a proposal)."""
    required = [m for m in fasttrack_models.MODELS if m.id in policy.get(profile.id, frozenset())]
    ranked = [m for m in required if not m.proposal] + [m for m in required if m.proposal]
    if not ranked:
        raise errors.UsageError(f"the support policy requires no FastTrack for {profile.id}: cannot judge it")
    return ranked[0]


@dataclass
class Ranking:
    """The candidates, best first, over the same counted scenarios, and what could not be counted."""

    candidates: list[Candidate]
    planned: int  # scenario runs planned (every candidate's applicable scenarios)
    errored: int  # of those, runs that errored or never ran (a gateway that could not start)
    first_error: str | None  # the first set-up error, in full (redacted)
    uncounted: list[str] = field(default_factory=list)  # scenarios that errored for some candidate

    @property
    def named(self) -> bool:
        """A generation can be named only when most runs reached a verdict and someone was judged."""
        return self.planned > 0 and 2 * self.errored <= self.planned and any(c.total for c in self.candidates)

    @property
    def best(self) -> Candidate:
        return self.candidates[0]

    @property
    def margin(self) -> float | None:
        """Agreement points between the best match and the runner-up."""
        if len(self.candidates) < 2:
            return None
        return round(100 * (self.best.agreement - self.candidates[1].agreement), 1)

    def why_unnamed(self) -> str:
        if self.planned == 0:
            return "no scenario applies to any candidate"
        what = f"{self.errored} of {self.planned} scenario runs errored at set-up or never ran"
        return f"no generation can be named: {what}; the first error:\n{self.first_error or '(none recorded)'}"


def score(result: RunResult, candidates: dict[str, Candidate], redact: Redactor, planned: int) -> Ranking:
    """Ranks the candidates over the same scenarios: a scenario that errored (or never ran) for any candidate
    says nothing about the target and is counted for none; the rest count for every candidate they apply to."""
    errored_ids = {sc.id for cell in result.cells for sc in cell.scenarios if sc.outcome in ("error", "skip")}
    ran = sum(len(cell.scenarios) for cell in result.cells)
    errored = planned - ran + sum(1 for cell in result.cells for sc in cell.scenarios if sc.outcome == "error")
    first_error = next((sc.error for cell in result.cells for sc in cell.scenarios if sc.error), None)
    first_error = first_error or next((c.reason for c in result.cells if c.verdict == "error" and c.reason), None)
    for cell in result.cells:
        cand = candidates[cell.gateway]
        for sc in cell.scenarios:
            if sc.id in errored_ids:
                cand.errors += sc.outcome == "error"
                continue
            cand.total += 1
            cand.steps_passed += sum(1 for st in sc.steps if st.outcome == "pass")
            # A failure that is the candidate's own documented defect (peer-findings, e.g. W1 on G6b-G6g) is
            # behaving like that candidate: the scenarios state the secure contract, its profile fails it too.
            if sc.outcome == "pass" or sc.finding is not None:
                cand.passed += 1
                continue
            first = sc.failures[0] if sc.failures else None
            cand.differences.append({
                "scenario": sc.id,
                "step": first.step if first else "",
                "hop": first.hop if first else "",
                "what": redact.text(sc.reason or sc.outcome),
            })
    ranked = sorted(candidates.values(), key=lambda c: (-c.agreement, -c.passed, -c.steps_passed, c.profile.id))
    return Ranking(ranked, planned, errored, redact.text(first_error) if first_error else None,
                   sorted(errored_ids))


def observe(target: GatewayLauncher, profiles: list[GatewayProfile], scenarios: list[Scenario],
            policy: Mapping[str, frozenset[str]], opts: Options, fasttrack_listen: tuple[str, int] | None = None,
            show_secrets: bool = False) -> Ranking:
    """Runs ``target`` once per candidate profile (judged by its expectations, against the FastTrack of its era)
    and ranks the candidates."""
    candidates = {p.id: Candidate(p, era_fasttrack(p, policy).id) for p in profiles}
    models = [m for m in fasttrack_models.MODELS if m.id in {c.fasttrack for c in candidates.values()}]
    only = {(sc.id, c.profile.id, c.fasttrack) for c in candidates.values() for sc in scenarios
            if applicable(sc, c.profile)}
    rows = [JudgedAs(target, c.profile, name=c.profile.id) for c in candidates.values()]
    result = supervisor.run(run_matrix(rows, mock_columns(models, fasttrack_listen), scenarios, {}, opts, only=only))
    return score(result, candidates, Redactor(result.secrets(), enabled=not show_secrets), len(only))


def judge(real: RealGateway, scenarios: list[Scenario], policy: Mapping[str, frozenset[str]], opts: Options,
          fasttrack_listen: tuple[str, int] | None = None) -> JudgedAs:
    """The real gateway judged as the profile it claims (``--judge-as PROFILE``), or with ``--judge-as auto``
    as the best match of ``identify`` over these scenarios; says which on stderr. No nameable generation (most
    runs errored) is a runtime error (exit 3) with the first set-up error."""
    if real.judge_as is not None:
        return real.judged(real.judge_as, "--judge-as")
    print(f"judge-as auto: identifying {real.described}", file=sys.stderr)
    ranking = observe(real.launcher, list(generations.PROFILES), scenarios, policy, opts, fasttrack_listen)
    if not ranking.named:
        raise errors.HarnessError(f"cannot judge {real.described}: {ranking.why_unnamed()}")
    best = ranking.best
    margin = "" if ranking.margin is None else f", margin {ranking.margin:g} points"
    how = f"identify: best match at {best.agreement:.0%} ({best.passed}/{best.total}){margin}"
    if real.claimed is not None and real.claimed.id != best.profile.id:
        how += f"; its version belongs to {real.claimed.id}"
    print(f"judged as {best.profile.id} ({best.profile.generation}), {how}", file=sys.stderr)
    return real.judged(best.profile, how)


def render(target: str, ranking: Ranking) -> str:
    lines = [f"identify: {target}", ""]
    if not ranking.named:
        return "\n".join([*lines, ranking.why_unnamed()])
    best = ranking.best
    lines.append(f"{'rank':<5}{'profile':<32}{'agreement':>10}{'scenarios':>11}{'steps':>7}  FastTrack")
    for i, c in enumerate(ranking.candidates, 1):
        name = f"{c.profile.id} ({c.profile.generation})" + (" [proposal]" if c.profile.proposal else "")
        lines.append(f"{i:<5}{name:<32}{c.agreement:>9.0%}{f'{c.passed}/{c.total}':>11}{c.steps_passed:>7}"
                     f"  {c.fasttrack}")
    ties = [c for c in ranking.candidates if (c.agreement, c.passed) == (best.agreement, best.passed)]
    margin = "" if ranking.margin is None else f"; margin {ranking.margin:g} points over the runner-up"
    lines += ["", f"best match: {best.profile.id} ({best.profile.generation}): {best.profile.title}; "
                  f"releases {best.profile.releases}{margin}"]
    if ranking.uncounted:
        lines.append(f"not counted for any candidate (errored in {ranking.errored} of {ranking.planned} runs): "
                     + ", ".join(ranking.uncounted))
    if len(ties) > 1:
        lines.append("indistinguishable by this suite: " + ", ".join(c.profile.id for c in ties))
    if best.agreement < 1:
        lines.append("no candidate agrees on every scenario: the target matches no known generation exactly")
    close = [c for c in ranking.candidates if c.differences and c.agreement >= best.agreement - CLOSE]
    if close:
        lines += ["", "differences (first failing check per scenario) for the close candidates:"]
        for c in close:
            lines.append(f"  {c.profile.id}: {len(c.differences)} scenario(s) disagree")
            lines += [f"    {d['scenario']}: {d['what']}" for d in c.differences]
    return "\n".join(lines)
