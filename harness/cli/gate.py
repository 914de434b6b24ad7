"""``harness gate``: the command around :mod:`harness.compare.gate` (its options, targets, files and output)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness import errors
from harness.cli import options
from harness.compare.gate.baseline import (
    BASELINE_SCHEMA,
    DEFAULT_BASELINE,
    BaselineDoc,
    baseline_from,
    check_baseline,
    write_baseline,
)
from harness.compare.gate.evaluate import Runner, gate
from harness.compare.gate.reasons import GateResult, Reason, RequiredCellMissing, VersionNotObserved
from harness.compare.gate.render import judged_as, render_markdown, render_text, shown_path
from harness.compare.gate.runner import EngineRunner
from harness.engine import accounts, workers
from harness.engine.matrix_run import Options
from harness.engine.selection import select
from harness.engine.targets import JudgedAs
from harness.judge import support_policy
from harness.peers import identify
from harness.protocol import fasttrack_models
from harness.report import output
from harness.results import document
from harness.results.document import RunDoc, real_rows

EPILOG = """verdicts and exit codes:
  0  deployable      no required cell or scenario got worse than the baseline
  1  not deployable  a Regression (a required cell/scenario passed in the baseline and does not now), a required
                     cell failing that the baseline does not accept, or --strict and the run differs at all
  2  usage error     bad option, unreadable run/baseline/policy file
  3  unknown         cannot tell: a required cell missing from the run, 'unknown'/'error' where the baseline does
                     not say so, a required scenario no longer run, a required FastTrack version never answered
'not deployable' wins over 'unknown'. Failures the baseline already records are accepted (the baseline is a
ratchet); improvements, new/removed cells and scenarios and flaky results are reported and fail only with --strict.
--update-baseline writes the baseline from the run (unless required cells are missing: exit 3) and exits 0.
A real gateway (--peer, --gateway-cmd, --gateway-url, or a --run document's real row) is judged as the profile
it claims (--judge-as PROFILE, or auto: identify first); --confirm re-runs that same target (with --run: give
the target option it ran with). Empty or contradictory target options are usage errors (2).
"""


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "gate", help="CI gate: compare a run with the support policy and the committed baseline",
        description="Compare a run with the support policy and the committed baseline, per cell and scenario. "
                    "A real gateway (--peer, --gateway-cmd, --gateway-url, or the real row of a --run document) is "
                    "judged as the profile it claims: that profile's required cells and baseline entries apply.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=options.nonempty, metavar="FROM.json",
                   help="a run's verdict.json (default: run the matrix now)")
    p.add_argument("--baseline", default=DEFAULT_BASELINE, metavar="FILE",
                   help=f"committed baseline (default {DEFAULT_BASELINE}); a verdict.json is accepted too")
    options.add(p, "policy")
    p.add_argument("--strict", action="store_true",
                   help="also fail on improvements, new/removed cells and scenarios, flaky results")
    p.add_argument("--update-baseline", action="store_true", help="rewrite the baseline from the run")
    p.add_argument("--confirm", type=options.count, default=0, metavar="N",
                   help="re-run each suspected regression N times (only its cell, on the same target: a real "
                        "gateway needs its target option, also with --run); flips are reported as Flaky")
    p.add_argument("--summary", metavar="FILE", help="write the Markdown summary here (also appended to "
                   "$GITHUB_STEP_SUMMARY when set)")
    p.add_argument("--json", action="store_true", help="print the verdict and reasons as JSON")
    options.add(p, "timeout")
    p.add_argument("--out", metavar="DIR", help=f"with --fasttrack-url: where the run writes {accounts.FILE}, the "
                   f"mock manager's accounts the real FastTrack reads, before its first request (as run; default "
                   f"{output.DEFAULT_OUT}/)")
    options.add_target_options(p, peer_option=True)
    p.set_defaults(handler=cmd_gate)
    return p


def load_policy(path: str | Path) -> Mapping[str, frozenset[str]]:
    try:
        return support_policy.load_policy(path)
    except OSError as exc:
        raise errors.UsageError(f"cannot read policy {path}: {exc}") from None


def _target(args: argparse.Namespace, run: RunDoc | None, policy: Mapping[str, frozenset[str]],
            opts: Options) -> tuple[JudgedAs | None, Options]:
    """The real gateway the gate runs (or, with ``--run``, re-runs for ``--confirm``), judged as it claims, and
    the options to run it with (its manager contract)."""
    real = options.real_gateway(args)
    if real is None:
        return None, opts
    opts = replace(opts, manager_contract=real.manager)
    if run is None:
        return identify.judge(real, select(None, None, "*").scenarios, policy, opts,
                              getattr(args, "fasttrack_listen", None)), opts
    if not args.confirm:
        raise errors.UsageError(f"{options.real_gateway_options(args)[0]} with --run: the run is judged from "
                                "the file; a target there only serves --confirm N")
    rows = real_rows(run)
    if len(rows) != 1:
        raise errors.UsageError(f"{args.run}: --confirm re-runs one real gateway, the run has {len(rows)} real rows")
    [(label, profile_id)] = rows.items()
    candidate = real.judged(options.resolve_profile(profile_id), "as in the run")
    if candidate.label != label:
        raise errors.UsageError(f"{args.run}: its real row is {label!r}, the target given is {candidate.label!r} "
                                "(give the target it ran with, and --gateway-name if it had one)")
    if real.judge_as is not None and real.judge_as.id != profile_id:
        raise errors.UsageError(f"{args.run}: {label} was judged as {profile_id}, not as {real.judge_as.id}")
    return candidate, opts


def cmd_gate(args: argparse.Namespace, runner: Runner | None = None) -> int:
    options.check(args)
    # Where the gate will write, checked before it runs anything.
    if args.summary:
        output.check_file(args.summary, "--summary")
    step = os.environ.get("GITHUB_STEP_SUMMARY")
    if step:
        output.check_file(step, "$GITHUB_STEP_SUMMARY")
    if args.update_baseline:
        output.check_file(args.baseline, "--baseline (to update)")
    # The accounts file is written only by a run the gate makes itself, with a real FastTrack: --out anywhere
    # else would be an option silently ignored.
    writes_accounts = bool(args.fasttrack_url) and not args.run
    if args.out is not None and not writes_accounts:
        raise errors.UsageError(f"--out is where a --fasttrack-url run writes {accounts.FILE}; "
                                + ("with --run the gate runs no matrix" if args.run else "there is no --fasttrack-url"))
    out = args.out if args.out is not None else output.DEFAULT_OUT
    if writes_accounts:
        output.check_dir(out)
    policy = load_policy(args.policy)
    baseline_path = Path(args.baseline)
    baseline: BaselineDoc
    if baseline_path.exists():
        baseline = check_baseline(document.read_json(baseline_path), str(baseline_path))
    elif args.update_baseline:
        baseline = {"schema": BASELINE_SCHEMA, "cells": []}
    else:
        raise errors.UsageError(f"baseline {baseline_path} does not exist (create it with --update-baseline)")
    run = document.read(args.run) if args.run else None
    opts = Options(timeout=args.timeout, manager_listen=getattr(args, "manager_listen", None))
    real, opts = _target(args, run, policy, opts)
    rows = real_rows(run) if run is not None else {}
    if args.confirm and rows and real is None:
        raise errors.UsageError(f"{args.run}: --confirm re-runs the real gateway {', '.join(rows)}: give the target it "
                                "ran with (--peer, --gateway-cmd or --gateway-url), never a reference profile")
    engine = EngineRunner(policy, options.fasttrack_columns(args, list(fasttrack_models.MODELS)), opts, real,
                          frozenset(rows),
                          jobs=workers.available_cores())
    if run is None:
        print(f"gate: running {real.label + ' judged as ' + real.profile.id if real else 'the matrix'}",
              file=sys.stderr)
        if writes_accounts:
            print(accounts.notice(accounts.write_for_run(out, engine.planned_users(), opts.manager_listen)),
                  file=sys.stderr)
        run = engine.whole()
        rows = real_rows(run)
    if args.update_baseline and rows:
        raise errors.UsageError("--update-baseline records reference runs: a real gateway is judged against the "
                                "baseline of the profile it claims, not written into it")
    result = gate(run, baseline, policy, strict=args.strict, confirm_times=args.confirm, runner=runner or engine)
    if args.update_baseline:
        # What the new baseline cannot accept: required cells the run lacks, versions nobody answered.
        missing: list[Reason] = [r for r in result.reasons if isinstance(r, RequiredCellMissing | VersionNotObserved)]
        if missing:
            result = GateResult("unknown", missing, args.strict)
        else:
            write_baseline(baseline_from(run), baseline_path)
            print(f"gate: wrote {baseline_path} ({len(run['cells'])} cells)", file=sys.stderr)
            result = GateResult("deployable", result.reasons, args.strict, updated=True)
    summary = render_markdown(result, run, policy, shown_path(baseline_path), shown_path(args.policy), baseline)
    if args.summary:
        output.write_text(args.summary, summary, "--summary")
    if step:
        output.append_text(step, summary, "$GITHUB_STEP_SUMMARY")
    print(json.dumps(result.to_json() | {"judged_as": judged_as(run)}, indent=2, ensure_ascii=False) if args.json
          else render_text(result, run))
    return result.exit_code
