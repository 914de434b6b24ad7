"""The hostile battery of issue 13, as a CI system and a careless user would try it, with its counts.

    python benchmarks/battery.py            # about 2-4 minutes; prints the counts, exit 1 if any is not 0

Counts: tracebacks and undocumented exit codes over bad input (options, files, documents, unwritable outputs,
a closed stdout); processes and listening ports of a run left 5 s after SIGTERM/SIGINT at several moments;
half-written or lost reports; secrets readable and non-secrets hidden in the reports of the default matrix; a
scenario broken at run time whose error reaches other scenarios. The checks are those of
tests/engine/test_supervisor.py, tests/cli/test_robustness.py and tests/report/test_redact.py, run here as one
battery.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from test_redact import check_redaction  # noqa: E402 - the tests' checks, shared
from test_signals import LIGHT, SERVE, listening, listening_ports, marked, wait_gone  # noqa: E402

PY = [sys.executable, "-m", "harness"]
SMALL = ["--gateway", "to-be", "--fasttrack", "25.1.0", "--scenario", "pr3353-to-be", "--quiet"]


def cli(argv: list[str], env: dict[str, str] | None = None, close_stdout: bool = False) -> tuple[int, str]:
    proc = subprocess.Popen([*PY, *argv], stdout=subprocess.PIPE if close_stdout else subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}, cwd=ROOT)
    if close_stdout and proc.stdout is not None:
        proc.stdout.close()
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


def bad_input(tmp: Path) -> tuple[int, int, int]:
    """(attempts, tracebacks, undocumented exit codes)."""
    (tmp / "file").write_text("x")
    doc_dir = tmp / "small"
    cli(["run", *SMALL, "--out", str(doc_dir)])
    doc = doc_dir / "matrix.json"
    bomb = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    bomb += [f"{k}: &{k} [{','.join([f'*{p}'] * 10)}]" for p, k in zip("abcde", "bcdef", strict=True)]
    files = {"bomb.yaml": "\n".join(bomb) + "\n", "deep.yaml": "x: " + "[" * 500 + "]" * 500 + "\n",
             "policy.yaml": "required:\n  G0: [{a: 1}]\n", "trunc.json": '{"schema": "harness/matrix@2", "cells": [',
             "cells.json": '{"schema": "harness/matrix@2", "cells": [1], "gateways": [], "fasttracks": [], '
                           '"scenarios": []}'}
    for name, text in files.items():
        (tmp / name).write_text(text)
    scen = tmp / "scen"
    scen.mkdir()
    (scen / "bomb.yaml").write_text(files["bomb.yaml"])
    (scen / "deep.yaml").write_text(files["deep.yaml"])
    attempts: list[tuple[list[str], dict[str, str] | None, bool]] = [
        (["run", *SMALL, "--timeout", t], None, False) for t in ("0", "-1", "nan", "inf")]
    attempts += [(["run", *SMALL, "--jobs", "100000", "--out", str(tmp / "j")], None, False),
                 (["run", *SMALL, "--concurrency", "100000"], None, False)]
    attempts += [(["run", *SMALL, opt, v], None, False) for opt, v in (
        ("--fasttrack-listen", "nonsense"), ("--fasttrack-listen", "127.0.0.1:99999"),
        ("--gateway-url", "not a url"), ("--policy", str(tmp / "policy.yaml")),
        ("--scenarios-dir", str(scen)))]
    attempts += [(["run", *SMALL, "--out", o], None, False)
                 for o in (str(tmp / "file"), str(tmp / "file" / "sub"), "/proc", "/proc/x")]
    for bad in ("trunc.json", "cells.json"):
        p = str(tmp / bad)
        attempts += [(["report", p, "--out", str(tmp / "r")], None, False),
                     (["report", "merge", p, "--out", str(tmp / "r")], None, False),
                     (["diff", p, p], None, False), (["gate", "--run", p, "--baseline", str(doc)], None, False)]
    attempts += [(["gate", "--run", str(doc), "--baseline", str(doc), "--summary", "/proc/x"], None, False),
                 (["gate", "--run", str(doc), "--baseline", str(doc)], {"GITHUB_STEP_SUMMARY": "/proc/y"}, False),
                 (["gate", "--run", str(doc), "--update-baseline", "--baseline", "/proc/b.json"], None, False),
                 (["gate", "--run", str(doc), "--baseline", str(doc), "--json"], None, True)]
    tracebacks = undocumented = 0
    for argv, env, close in attempts:
        code, err = cli(argv, env, close)
        tracebacks += "Traceback" in err or "internal error" in err
        undocumented += code not in (0, 1, 2, 3)
    return len(attempts), tracebacks, undocumented


def signals(tmp: Path) -> tuple[int, int, int, int]:
    """(attempts, processes left, ports left, half-written or lost report sets)."""
    attempts = left = ports = broken = 0
    for sig in (signal.SIGTERM, signal.SIGINT):
        for moment in ("mid-run with workers", "gateway command start-up", "daemonising launcher", "writing"):
            attempts += 1
            work = tmp / f"{sig}-{moment.replace(' ', '-')}"
            work.mkdir()
            mark = uuid.uuid4().hex
            out = work / "out"
            args = ["--jobs", "2"] if moment == "mid-run with workers" else LIGHT
            fifo = work / "up"
            if "gateway" in moment or "daemon" in moment:
                os.mkfifo(fifo)
                command = (f"setsid -f {SERVE} </dev/null >/dev/null 2>&1; echo up > {fifo}; exec sleep 600"
                           if "daemon" in moment else f"echo up > {fifo}; exec {SERVE}") + " # {redis_url}"
                args = ["--gateway-cmd", command, "--judge-as", "as-is", "--scenario", "pr3353-*", "--fasttrack",
                        "24.09.0"]
            proc = subprocess.Popen([*PY, "run", "--out", str(out), *args], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, text=True, cwd=ROOT, start_new_session=True,
                                    env={**os.environ, "HARNESS_TEST_MARK": mark})
            assert proc.stderr is not None
            if fifo.exists():
                with open(fifo, encoding="ascii") as fh:
                    fh.read()
            else:
                wanted = "finished " if moment == "writing" else "running "
                for line in proc.stderr:
                    if line.startswith(wanted):
                        break
            pids = marked(mark)
            held = listening_ports(pids)
            proc.send_signal(sig)
            proc.stderr.read()
            proc.wait(timeout=120)
            left += len(wait_gone(marked(mark), 5.0))
            ports += len(held & {port for port, _ in listening()})
            names = sorted(p.name for p in out.glob("*")) if out.exists() else []
            whole = names == ["index.html", "junit.xml", "matrix.json", "matrix.md"] and all(
                (out / n).stat().st_size > 0 for n in names)
            if whole:
                try:
                    json.loads((out / "matrix.json").read_text(encoding="utf-8"))
                except ValueError:
                    whole = False
            broken += not whole
    return attempts, left, ports, broken


def redaction(tmp: Path) -> tuple[int, int]:
    """(readable secrets, hidden non-secrets) in the default matrix's reports: check_redaction asserts both 0."""
    from harness.engine import workers
    from harness.engine.matrix_run import Options
    from harness.engine.selection import select
    from harness.judge import support_policy

    sel = select(None, None, "*")
    result = workers.run(sel.gateways, sel.fasttracks, sel.scenarios, support_policy.load_policy(), Options(),
                         jobs=workers.available_cores())
    try:
        check_redaction(result, tmp)
    except AssertionError as exc:
        text = str(exc)
        return (1, 0) if "leaks" in text else (0, 1)
    return 0, 0


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="harness-battery-") as name:
        tmp = Path(name)
        (tmp / "bad").mkdir()
        (tmp / "sig").mkdir()
        (tmp / "red").mkdir()
        n_bad, tracebacks, undocumented = bad_input(tmp / "bad")
        n_sig, left, ports, broken = signals(tmp / "sig")
        secrets, hidden = redaction(tmp / "red")
    counts = {"bad-input attempts": n_bad, "tracebacks": tracebacks, "undocumented exit codes": undocumented,
              "signal attempts": n_sig, "processes left 5 s after a signal": left,
              "ports left 5 s after a signal": ports, "half-written or lost report sets": broken,
              "readable secrets (reports with any)": secrets, "hidden non-secrets (reports with any)": hidden}
    for k, v in counts.items():
        print(f"{k:42} {v}")
    bad = tracebacks + undocumented + left + ports + broken + secrets + hidden
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
