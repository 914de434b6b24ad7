"""``harness peer census``: the latest release of every webserver release line on PyPI, installed, run and
identified; ``reports/census.md`` and ``reports/census.json``.

Per release: the generation its version claims (protocol-history §2), the generation ``identify`` names with
its agreement and margin over the runner-up, its row of verdicts (one per FastTrack column), and every
difference from its generation's reference row with the finding that explains it (``harness/data/
peer-findings.yaml``; none is UNDOCUMENTED). A release that cannot be installed, started or logged in is
reported with its cause and the census goes on. Installs overlap (``--installs``, default 2: this machine has
two cores); runs are one at a time, since each starts a real webserver with its workers.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version
from tabulate import tabulate

import harness
from harness import errors
from harness.engine import supervisor
from harness.engine.matrix_run import Options, mock_columns, run_matrix
from harness.engine.selection import DEFAULT_SCENARIOS, select
from harness.engine.targets import ReferenceLauncher, contract_for_profiles
from harness.errors import HarnessError
from harness.judge import findings, support_policy
from harness.peers import builds, identify
from harness.protocol import generations
from harness.results.document import CellDoc, DifferenceDoc, RunDoc, subject
from harness.results.redact import Redactor
from harness.scenario.loader import discover

FIRST_LINE = "23.3"  # the first line whose latest release carries a G2+ pipeline (the #1350 backport)
SCHEMA = "harness/census@1"
SETUP_TAIL = 4096  # bytes of a set-up failure kept (the build's own output tail)


@dataclass
class CensusOptions:
    since: str = FIRST_LINE
    lines: list[str] | None = None
    installs: int = 2
    out: Path = Path("reports")
    scenarios_dir: str = str(DEFAULT_SCENARIOS)
    scenario: str = "*"
    policy: str = str(support_policy.DEFAULT_POLICY)
    seed: str = "harness"
    timeout: float = 30.0
    concurrency: int = Options.concurrency
    fresh: bool = False
    show_secrets: bool = False
    resume: bool = False  # keep what an earlier census.json in ``out`` judged (not its errors); run the rest


@dataclass
class Entry:
    line: str
    version: str
    python: str = ""
    source: str = "pypi"
    claimed: str = ""  # by version
    constraints: str = ""
    install_s: float | None = None
    run_s: float | None = None
    identified: str | None = None
    agreement: float | None = None
    margin: float | None = None
    runner_up: str | None = None
    verdicts: dict[str, str] = field(default_factory=dict)
    required: dict[str, bool] = field(default_factory=dict)
    differences: list[DifferenceDoc] = field(default_factory=list)
    error: dict[str, str] | None = None  # {"stage": install|start|login|run, "cause": ...}
    # When and with what this entry was judged: a census resumed or re-judged line by line keeps older entries,
    # and the document must say when its rows were judged with different scenarios (None: not recorded).
    judged_at: str | None = None
    harness_commit: str | None = None
    scenario_set: str | None = None

    @property
    def undocumented(self) -> int:
        return sum(1 for d in self.differences if d["finding"] is None)

    def status(self) -> str:
        if self.error:
            return f"error ({self.error['stage']})"
        if self.identified != self.claimed:
            return "misidentified"
        return "undocumented differences" if self.undocumented else "ok"

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "version": self.version, "python": self.python, "claimed": self.claimed,
                "identified": self.identified, "agreement": self.agreement, "margin": self.margin,
                "runner_up": self.runner_up, "status": self.status(), "constraints": self.constraints,
                "install_s": self.install_s, "run_s": self.run_s,
                "verdicts": self.verdicts, "required": self.required, "differences": self.differences,
                "undocumented": self.undocumented, "error": self.error, "judged_at": self.judged_at,
                "harness_commit": self.harness_commit, "scenario_set": self.scenario_set}


def _from_json(r: dict[str, Any]) -> Entry:
    keys = ("line", "version", "python", "claimed", "constraints", "install_s", "run_s", "identified", "agreement",
            "margin", "runner_up", "verdicts", "required", "differences", "error")
    recorded = ("judged_at", "harness_commit", "scenario_set")  # absent from censuses before they were recorded
    fields: dict[str, Any] = {k: r[k] for k in keys} | {k: r.get(k) for k in recorded}
    return Entry(**fields)


def scenario_set(paths: list[Path]) -> dict[str, Any]:
    """The scenario files a census judges with, by content: ``digest`` names the set (file names and bytes), so two
    entries judged with different scenarios never pass for one census."""
    h = hashlib.sha256()
    for p in sorted(paths, key=lambda p: p.name):
        data = p.read_bytes()
        h.update(f"{p.name}\0{len(data)}\0".encode() + data)
    return {"digest": h.hexdigest()[:16], "files": sorted(p.name for p in paths)}


def previous(out: Path) -> tuple[dict[str, Entry], float]:
    """Releases an earlier census in ``out`` judged (errors are run again), and the wall time it took."""
    path = out / "census.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        kept = {r["version"]: _from_json(r) for r in doc["releases"] if not r["error"]}
        return kept, float(doc.get("wall_s", 0.0))
    except FileNotFoundError:
        return {}, 0.0
    except (ValueError, KeyError, TypeError) as exc:
        raise errors.UsageError(f"{path}: cannot resume from it ({exc})") from None


def latest_per_line(versions: list[Version], since: str, lines: list[str] | None = None) -> list[Version]:
    """The newest final release of every X.Y line from ``since`` on (pre-releases and dev builds excluded)."""
    try:
        first = Version(since)
        wanted = {Version(x).release[:2] for x in lines} if lines else None
    except InvalidVersion as exc:
        raise errors.UsageError(f"release line: {exc}") from None
    best: dict[tuple[int, ...], Version] = {}
    for v in versions:
        key = v.release[:2]
        if v.is_prerelease or v.is_devrelease or Version(".".join(map(str, key))) < first:
            continue
        if wanted is not None and key not in wanted:
            continue
        if key not in best or v > best[key]:
            best[key] = v
    return [best[k] for k in sorted(best)]


def _prepare(version: str, fresh: bool) -> tuple[builds.Release, Path, float, dict[str, Any]]:
    rel = builds.release(version)
    python, seconds = builds.install(rel, fresh=fresh, pip_lines=False)
    return rel, python, seconds, builds.installed_info(rel)


def _setup_cause(cells: list[CellDoc]) -> tuple[str, str] | None:
    """(stage, cause) when the build did not get as far as its scenarios: it never listened, or every run
    errored at login (a manager contract it rejects)."""
    for c in cells:
        if c["verdict"] == "error" and not c.get("scenarios"):
            return "start", str(c.get("reason") or "")
    runs = [s for c in cells for s in c.get("scenarios", [])]
    if runs and all(s["outcome"] == "error" for s in runs):
        first = next((s.get("error") or s.get("reason") or "" for s in runs), "")
        return ("login" if "login" in str(first) else "run"), str(first)
    return None


class Census:
    def __init__(self, opts: CensusOptions) -> None:
        self.opts = opts
        self.sel = select(None, None, opts.scenario, opts.scenarios_dir)
        self.policy = support_policy.load_policy(opts.policy)
        self.findings = findings.load_findings()
        self.references: dict[str, RunDoc] = {}
        self.scenarios = scenario_set(discover(Path(opts.scenarios_dir), opts.scenario))
        self.commit = harness.build()["commit"]  # read once: a commit made while the census runs is not its code
        self.current = {**self.scenarios, "harness_commit": self.commit}

    def _options(self, rel: builds.Release) -> Options:
        return Options(concurrency=self.opts.concurrency, seed=self.opts.seed, timeout=self.opts.timeout,
                       manager_contract=rel.manager)

    def reference(self, profile_id: str) -> RunDoc:
        if profile_id not in self.references:
            profile = generations.resolve(profile_id)
            opts = Options(seed=self.opts.seed, manager_contract=contract_for_profiles("auto", [profile]))
            result = supervisor.run(run_matrix([ReferenceLauncher(profile)], mock_columns(self.sel.fasttracks),
                                            self.sel.scenarios, self.policy, opts))
            self.references[profile_id] = result.to_json()
        return self.references[profile_id]

    def judge(self, entry: Entry, rel: builds.Release, python: Path) -> None:
        """The build as itself in every column, then identified (each candidate in its era's column)."""
        launcher = builds.PeerLauncher(rel, python)
        started = time.monotonic()
        result = supervisor.run(run_matrix([launcher], mock_columns(self.sel.fasttracks), self.sel.scenarios,
                                           self.policy, self._options(rel)))
        redact = Redactor(result.secrets(), enabled=not self.opts.show_secrets)
        doc: RunDoc = redact.document(result.to_json())
        own = [c for c in doc["cells"] if c["gateway"] == launcher.label]
        entry.verdicts = {c["fasttrack"]: c["verdict"] for c in own}
        entry.required = {c["fasttrack"]: bool(c["required"]) for c in own}
        setup = _setup_cause(own)
        if setup is not None:
            entry.run_s = round(time.monotonic() - started, 1)
            entry.error = {"stage": setup[0], "cause": setup[1][-SETUP_TAIL:]}
            return
        diffs = findings.compare(doc, launcher.label, self.reference(rel.profile), rel.profile, rel.version,
                                 self.findings)
        entry.differences = [d.to_json() for d in diffs]
        ranking = identify.observe(launcher, list(self.sel.gateways), self.sel.scenarios, self.policy,
                                   self._options(rel), show_secrets=self.opts.show_secrets)
        entry.run_s = round(time.monotonic() - started, 1)
        if not ranking.named:
            entry.error = {"stage": "identify", "cause": ranking.why_unnamed()[-SETUP_TAIL:]}
            return
        entry.identified = ranking.best.profile.id
        entry.agreement = round(ranking.best.agreement, 4)
        entry.margin = None if ranking.margin is None else round(ranking.margin / 100, 4)
        entry.runner_up = ranking.candidates[1].profile.id if len(ranking.candidates) > 1 else None


def run_census(opts: CensusOptions) -> int:
    """Exit 0 when every release is identified as its generation and every difference names a finding; 1 when
    one is misidentified or differs without a finding; 3 when one could not be installed or run (the others
    are still reported)."""
    started = time.monotonic()
    census = Census(opts)
    versions = builds.pypi_versions()
    targets = latest_per_line(versions, opts.since, opts.lines)
    every = sorted(set(latest_per_line(versions, opts.since)) | set(targets))  # the document covers every line
    if not targets:
        raise errors.UsageError(f"no release line on the index matches (since {opts.since}, lines {opts.lines})")
    print(f"census: {len(targets)} release lines: {', '.join(str(v) for v in targets)}", file=sys.stderr,
          flush=True)
    kept, earlier = previous(opts.out) if opts.resume else ({}, 0.0)
    if opts.lines:  # the lines named are judged again, whatever an earlier census found; the others are kept
        kept = {v: e for v, e in kept.items() if v not in {str(t) for t in targets}}
    started -= earlier  # the wall time reported covers the earlier census too
    if kept:
        print(f"census: resuming: {len(kept)} release(s) already judged", file=sys.stderr, flush=True)
    entries: list[Entry] = []
    with ThreadPoolExecutor(max_workers=opts.installs, thread_name_prefix="census-install") as pool:
        futures: dict[Version, Future[tuple[builds.Release, Path, float, dict[str, Any]]]] = {
            v: pool.submit(_prepare, str(v), opts.fresh) for v in targets if str(v) not in kept}
        for v in targets:
            if str(v) in kept:
                entries.append(kept[str(v)])
                continue
            entry = Entry(line=".".join(map(str, v.release[:2])), version=str(v), judged_at=_now(),
                          harness_commit=census.commit, scenario_set=census.scenarios["digest"])
            try:
                rel, python, seconds, info = futures[v].result()
            except HarnessError as exc:
                entry.error = {"stage": "install", "cause": str(exc)[-SETUP_TAIL:]}
            else:
                entry.python, entry.claimed = rel.python, rel.profile
                entry.constraints = str(info.get("constraints", {}).get("describe", ""))
                entry.install_s = round(seconds or float(info.get("seconds") or 0.0), 1)
                print(f"census: {rel.version}: running (Python {rel.python}, claims {rel.profile})", file=sys.stderr,
                      flush=True)
                try:
                    census.judge(entry, rel, python)
                except HarnessError as exc:
                    entry.error = {"stage": "run", "cause": str(exc)[-SETUP_TAIL:]}
            if (signum := supervisor.requested()) is not None:
                # Stopped: this release was not judged (its runs were cut short), nor are the ones ahead; the
                # document says so, and no further install starts.
                write(_every_line(entries, kept, every), opts.out, time.monotonic() - started, len(every),
                      census.current)
                pool.shutdown(wait=False, cancel_futures=True)
                raise supervisor.Interrupted(signum)
            entries.append(entry)
            print(f"census: {entry.version}: {entry.status()}" + (
                f", identified {entry.identified} at {entry.agreement:.0%} (margin {entry.margin:.0%})"
                if entry.agreement is not None and entry.margin is not None else "")
                + (f": {entry.error['cause'].splitlines()[0][:200]}" if entry.error else ""),
                file=sys.stderr, flush=True)
            write(_every_line(entries, kept, every), opts.out, time.monotonic() - started, len(every), census.current)
    wall = time.monotonic() - started
    entries = _every_line(entries, kept, every)
    paths = write(entries, opts.out, wall, len(every), census.current)
    print(render_md(document(entries, wall, len(every), census.current)))
    print(f"\ncensus of {len(entries)} releases in {wall:.0f} s; reports: {', '.join(str(p) for p in paths)}")
    if any(e.error for e in entries):
        return errors.EXIT_RUNTIME
    if any(e.status() != "ok" for e in entries):
        return errors.EXIT_INCOMPATIBLE
    return errors.EXIT_OK


NOT_JUDGED = "not judged"
_NOT_JUDGED_WHY = ("no census has judged this release yet: the census stopped before it, or --line left it out "
                   "(`peer census --resume` runs it)")


def _every_line(judged: list[Entry], kept: dict[str, Entry], every: list[Version]) -> list[Entry]:
    """``judged`` plus, for every other release line, what an earlier census judged (``--resume``) or an entry
    saying it was not judged and why: a census stopped midway, or one of a few ``--line``, loses nothing an
    earlier one judged and leaves no line out silently."""
    have = {e.version: e for e in judged}
    return [have.get(str(v)) or kept.get(str(v)) or Entry(line=".".join(map(str, v.release[:2])), version=str(v),
                                                          error={"stage": NOT_JUDGED, "cause": _NOT_JUDGED_WHY})
            for v in every]


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def document(entries: list[Entry], wall: float, planned: int, current: dict[str, Any] | None = None) -> dict[str, Any]:
    """The census document; ``current``: the scenario set (and harness commit) of the census writing it."""
    judged = [e for e in entries if not (e.error and e.error["stage"] == NOT_JUDGED)]
    sets = sorted({str(e.scenario_set) for e in judged})  # "None": judged before sets were recorded
    return {"schema": SCHEMA, "generated": _now(),
            "wall_s": round(wall, 1), "planned": planned, "complete": len(judged) == planned,
            "scenario_set": current, "mixed_scenario_sets": len(sets) > 1 or (
                current is not None and bool(sets) and sets != [current["digest"]]),
            "releases": [e.to_json() for e in entries]}


def write(entries: list[Entry], out: Path, wall: float, planned: int,
          current: dict[str, Any] | None = None) -> list[Path]:
    """census.json and census.md, rewritten after every release (an interrupted census keeps what it has)."""
    out.mkdir(parents=True, exist_ok=True)
    doc = document(entries, wall, planned, current)
    paths = [out / "census.json", out / "census.md"]
    for path, text in zip(paths, (json.dumps(doc, indent=2) + "\n", render_md(doc) + "\n"), strict=True):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    return paths


def _pct(x: float | None) -> str:
    return "" if x is None else f"{x:.0%}"


def _judged_with(doc: dict[str, Any]) -> list[str]:
    """Which scenario set the rows were judged with: one sentence when it is one set, else the lines of each set,
    so that rows judged with different scenarios never read as one census."""
    by_set: dict[str, list[str]] = {}
    for r in doc["releases"]:
        if not (r["error"] and r["error"]["stage"] == NOT_JUDGED):
            by_set.setdefault(r.get("scenario_set") or "not recorded", []).append(r["line"])
    current = doc.get("scenario_set") or {}
    files = f" ({len(current['files'])} scenario files)" if current.get("files") else ""
    commit = f", harness commit {str(current['harness_commit'])[:12]}" if current.get("harness_commit") else ""
    if not doc.get("mixed_scenario_sets"):
        return [f"Every row judged with scenario set {next(iter(by_set), current.get('digest', ''))}{files}{commit}.",
                ""] if by_set else []
    out = ["**Rows judged with different scenario sets**: their verdicts are not comparable with each other; "
           "`peer census --resume --line X.Y` re-judges the named lines with the current set "
           f"({current.get('digest', 'not recorded')}{files}{commit}).", ""]
    for digest, lines in by_set.items():
        mark = " (current)" if digest == current.get("digest") else ""
        out.append(f"- scenario set {digest}{mark}: {len(lines)} line(s): {', '.join(lines)}")
    return [*out, ""]


def render_md(doc: dict[str, Any]) -> str:
    rows = doc["releases"]
    columns = list(dict.fromkeys(ft for r in rows for ft in r["verdicts"]))
    short = {"compatible": "ok", "incompatible": "FAIL", "unknown": "?", "error": "ERR"}
    table = []
    for r in rows:
        verdicts = [(short.get(r["verdicts"][c], r["verdicts"][c]) + ("*" if r["required"].get(c) else ""))
                    if c in r["verdicts"] else "" for c in columns]
        diffs = f"{len(r['differences'])} ({r['undocumented']} undocumented)" if r["differences"] else "0"
        table.append([r["line"], r["version"], r["python"], r["claimed"], r["identified"] or "",
                      _pct(r["agreement"]), _pct(r["margin"]), *verdicts, diffs, r["status"],
                      "" if r["install_s"] is None else f"{r['install_s']:.0f}",
                      "" if r["run_s"] is None else f"{r['run_s']:.0f}"])
    head = ["line", "release", "Python", "claims", "identified", "agreement", "margin", *columns, "differences",
            "status", "install s", "run s"]
    ok = sum(1 for r in rows if r["status"] == "ok")
    judged = sum(1 for r in rows if not (r["error"] and r["error"]["stage"] == NOT_JUDGED))
    lines = ["# Census of backend.ai-webserver release lines", "",
             f"Generated {doc['generated']} by `python -m harness peer census`: {judged} of {doc['planned']} "
             f"release lines{'' if doc['complete'] else ' (incomplete)'}, {ok} identified as the generation their "
             f"version belongs to with every difference explained; wall time {doc['wall_s']:.0f} s.", "",
             "`claims`: the generation of the version (protocol-history §2); `identified`: `identify`'s best match, "
             "`agreement` its share of passing scenarios, `margin` its lead over the runner-up. Verdicts per "
             "FastTrack column (`*` = required by the support policy): ok compatible, FAIL incompatible, "
             "? unknown, ERR error. `install s`: what installing the venv took when it was made (cached venvs are "
             "reused); `run s`: the one matrix run that judges the build as itself and as every candidate.", "",
             *_judged_with(doc), tabulate(table, headers=head, tablefmt="github", disable_numparse=True), ""]
    for r in rows:
        if not (r["differences"] or r["error"] or r["constraints"]):
            continue
        lines += [f"## {r['version']} ({r['line']})", ""]
        if r["constraints"]:
            lines.append(f"- constraints: {r['constraints']}")
        if r["runner_up"]:
            lines.append(f"- runner-up: {r['runner_up']}")
        if r.get("judged_at"):
            lines.append(f"- judged {r['judged_at']} with scenario set {r.get('scenario_set') or 'not recorded'}, "
                         f"harness commit {str(r.get('harness_commit') or 'not recorded')[:12]}")
        if r["error"]:
            cause = r["error"]["cause"].rstrip()
            lines += [f"- failed at {r['error']['stage']}:", "", "```", cause, "```"]
        for d in r["differences"]:
            where = d["peer_failure"] or d["reference_failure"]
            what = subject(where) if where else ""
            lines.append(f"- {d['fasttrack']} / {d['scenario']}: release {d['peer_outcome']}, reference "
                         f"{d['reference_outcome']} at {where['hop'] if where else ''} {what} -> "
                         f"{d['finding'] or 'UNDOCUMENTED'}")
        lines.append("")
    return "\n".join(lines).rstrip()
