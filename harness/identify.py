"""``harness identify``: which gateway generation does a target behave like?

Observation mode: the target gateway (a reference profile, a gateway command or a running gateway) is run once
per candidate profile, each time judged by that candidate's expectations (its scenario modes) and paired with
the FastTrack of the candidate's era (the first release model its support policy requires). The candidates
are ranked by agreement (share of applicable scenarios that pass, then the number of passing steps); the best
match is named and, for the close candidates, the first difference of every scenario that disagrees is listed.
A scenario stops at its first failing step, so a difference list shows one hop per scenario.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import errors, matrix, peers
from harness.catalog import DEFAULT_SCENARIOS, select
from harness.engine import services, supervisor
from harness.engine.matrix_run import Options, applicable, mock_columns, run_matrix
from harness.engine.targets import CommandLauncher, GatewayLauncher, ReferenceLauncher, Shared, UrlLauncher
from harness.protocol import fasttrack_models, generations
from harness.protocol.fasttrack_models import FastTrackModel
from harness.protocol.generations import GatewayProfile
from harness.protocol.manager_rules import ManagerContract
from harness.report.redact import Redactor
from harness.results import RunResult

CLOSE = 0.25  # candidates within this share of the best agreement get their differences listed


@dataclass
class ObservedAs:
    """The target gateway, judged by a candidate profile's expectations (a matrix row per candidate)."""

    target: GatewayLauncher
    profile: GatewayProfile

    @property
    def label(self) -> str:
        return self.profile.id

    @property
    def shared(self) -> bool:
        return self.target.shared

    @contextlib.asynccontextmanager
    async def running(self, fasttrack_url: str, manager_url: str, env: Shared) -> AsyncIterator[str]:
        async with self.target.running(fasttrack_url, manager_url, env) as url:
            yield url


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


def score(result: RunResult, candidates: dict[str, Candidate], redact: Redactor) -> list[Candidate]:
    for cell in result.cells:
        cand = candidates[cell.gateway]
        for sc in cell.scenarios:
            cand.total += 1
            cand.steps_passed += sum(1 for st in sc.steps if st.outcome == "pass")
            if sc.outcome == "pass":
                cand.passed += 1
                continue
            cand.errors += sc.outcome == "error"
            first = sc.failures[0] if sc.failures else None
            cand.differences.append({
                "scenario": sc.id,
                "step": first.step if first else "",
                "hop": first.hop if first else "",
                "what": redact.text(sc.reason or sc.outcome),
            })
    return sorted(candidates.values(), key=lambda c: (-c.agreement, -c.passed, -c.steps_passed, c.profile.id))


def render(target: str, ranking: list[Candidate]) -> str:
    best = ranking[0]
    lines = [f"identify: {target}", "",
             f"{'rank':<5}{'profile':<32}{'agreement':>10}{'scenarios':>11}{'steps':>7}  FastTrack"]
    for i, c in enumerate(ranking, 1):
        name = f"{c.profile.id} ({c.profile.generation})" + (" [proposal]" if c.profile.proposal else "")
        lines.append(f"{i:<5}{name:<32}{c.agreement:>9.0%}{f'{c.passed}/{c.total}':>11}{c.steps_passed:>7}"
                     f"  {c.fasttrack}")
    ties = [c for c in ranking if (c.agreement, c.passed) == (best.agreement, best.passed)]
    lines += ["", f"best match: {best.profile.id} ({best.profile.generation}): {best.profile.title}; "
                  f"releases {best.profile.releases}"]
    if len(ties) > 1:
        lines.append("indistinguishable by this suite: " + ", ".join(c.profile.id for c in ties))
    if best.agreement < 1:
        lines.append("no candidate agrees on every scenario: the target matches no known generation exactly")
    close = [c for c in ranking if c.differences and c.agreement >= best.agreement - CLOSE]
    if close:
        lines += ["", "differences (first failing check per scenario) for the close candidates:"]
        for c in close:
            lines.append(f"  {c.profile.id}: {len(c.differences)} scenario(s) disagree")
            lines += [f"    {d['scenario']}: {d['what']}" for d in c.differences]
    return "\n".join(lines)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("identify", help="rank gateway profiles by how well a target gateway matches them",
                       description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--gateway", metavar="ID", help="a reference gateway profile to identify (the 'unknown' target)")
    p.add_argument("--gateway-cmd", metavar="TEMPLATE", help="a gateway command (placeholders as for 'run')")
    p.add_argument("--gateway-url", metavar="URL", help="an already running gateway")
    p.add_argument("--peer", metavar="VERSION", help="a real backend.ai-webserver release "
                   f"({', '.join(peers.RELEASES)}), installed into the peer cache if needed")
    p.add_argument("--fasttrack-listen", type=services.parse_listen, metavar="HOST:PORT",
                   help="fixed mock FastTrack address (for --gateway-url)")
    p.add_argument("--manager-listen", type=services.parse_listen, metavar="HOST:PORT",
                   help="fixed mock manager address (for --gateway-url)")
    p.add_argument("--candidate", action="append", metavar="ID", help="candidate profile (repeatable; default all)")
    p.add_argument("--scenario", default="*", metavar="GLOB")
    p.add_argument("--scenarios-dir", default=str(DEFAULT_SCENARIOS), metavar="DIR")
    p.add_argument("--policy", default=str(matrix.DEFAULT_POLICY), metavar="FILE")
    p.add_argument("--json", metavar="FILE", help="also write the ranking as JSON ('-' for stdout only)")
    p.add_argument("--concurrency", type=int, default=Options.concurrency)
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--ready-timeout", type=float, default=60.0)
    p.add_argument("--seed", default="harness")
    p.add_argument("--show-secrets", action="store_true")
    p.set_defaults(handler=cmd_identify)


def _target(args: argparse.Namespace) -> tuple[GatewayLauncher, str, ManagerContract]:
    given = [x for x in (args.gateway, args.gateway_cmd, args.gateway_url, args.peer) if x]
    if len(given) != 1:
        raise errors.UsageError("give exactly one of --gateway ID, --gateway-cmd TEMPLATE, --gateway-url URL, "
                                "--peer VERSION")
    any_profile = generations.PROFILES[0]  # replaced by each candidate; never used for expectations
    if args.peer:
        rel = peers.release(args.peer)
        python, _ = peers.install(rel)
        return peers.PeerLauncher(rel, python), f"backend.ai-webserver {rel.version} (real release)", rel.manager
    if args.gateway:
        try:
            profile = generations.resolve(args.gateway)
        except KeyError as exc:
            raise errors.UsageError(str(exc.args[0])) from None
        return ReferenceLauncher(profile), f"reference gateway {profile.id} ({profile.generation})", ManagerContract()
    if args.gateway_cmd:
        launcher = CommandLauncher(args.gateway_cmd, any_profile, "target", args.ready_timeout)
        return launcher, "gateway command", ManagerContract()
    if not (args.fasttrack_listen and args.manager_listen):
        raise errors.UsageError("--gateway-url needs --fasttrack-listen and --manager-listen")
    return UrlLauncher(args.gateway_url, any_profile, "target"), f"gateway at {args.gateway_url}", ManagerContract()


def cmd_identify(args: argparse.Namespace) -> int:
    target, described, contract = _target(args)
    sel = select(args.candidate, None, args.scenario, args.scenarios_dir)
    policy = matrix.load_policy(args.policy)
    candidates = {p.id: Candidate(p, era_fasttrack(p, policy).id) for p in sel.gateways}
    models = [m for m in fasttrack_models.MODELS if m.id in {c.fasttrack for c in candidates.values()}]
    only = {(sc.id, c.profile.id, c.fasttrack) for c in candidates.values() for sc in sel.scenarios
            if applicable(sc, c.profile)}
    opts = Options(concurrency=args.concurrency, seed=args.seed, timeout=args.timeout,
                   manager_listen=args.manager_listen, manager_contract=contract)
    rows = [ObservedAs(target, c.profile) for c in candidates.values()]
    result = supervisor.run(run_matrix(rows, mock_columns(models, args.fasttrack_listen), sel.scenarios, {}, opts,
                                    only=only))
    ranking = score(result, candidates, Redactor(result.secrets(), enabled=not args.show_secrets))
    doc = {"target": described, "best": ranking[0].profile.id,
           "exact": [c.profile.id for c in ranking if c.total and c.agreement == 1],
           "ranking": [c.to_json() for c in ranking]}
    if args.json == "-":
        print(json.dumps(doc, indent=2))
    else:
        print(render(described, ranking))
        if args.json:
            Path(args.json).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
            print(f"\nranking: {args.json}", file=sys.stderr)
    return errors.EXIT_OK if doc["exact"] else errors.EXIT_INCOMPATIBLE
