"""harness.cli.main: exit codes, report files and their documented keys, and re-rendering from verdict.json."""

from __future__ import annotations

import argparse
import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.cli import main
from harness.engine.selection import DEFAULT_SCENARIOS, select
from harness.errors import UsageError
from harness.judge import support_policy
from harness.protocol import generations
from harness.scenario.loader import discover, load_scenario

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

PINNED = ["--gateway", "as-is", "--gateway", "to-be", "--fasttrack", "24.09.0", "--fasttrack", "25.1.0"]
SHIPPED = ["--scenario", "pr3353-*"]


def run(tmp_path: Path, *extra: str) -> int:
    return main(["run", "--quiet", "--out", str(tmp_path / "out"), *extra])


def light_scenarios(tmp_path: Path) -> Path:
    """The shipped scenarios minus those streaming generated megabyte bodies (they carry no auth and would make
    this suite slow); everything else about the default run (profiles, FastTracks, policy) is unchanged."""
    out = tmp_path / "scenarios"
    out.mkdir()
    for path in discover(DEFAULT_SCENARIOS):
        if not any(step.request.body_bytes for step in load_scenario(path).steps):
            shutil.copy(path, out / path.name)
    assert (out / "pr3353-as-is.yaml").is_file() and (out / "pr3353-to-be.yaml").is_file()
    return out


def test_default_matrix_run_fails_only_on_the_documented_defects(tmp_path):
    # G6b-G6d and G6g reproduce W1 (the pooled cookie jar of 25.12+): security-isolation fails in their required
    # cells; every stream-route profile reproduces W2 (a close FastTrack starts is not relayed): websocket-close
    # fails in its required cells; every profile up to G6b answers a repeated credential header 500 (W3):
    # duplicate-credentials fails there; nothing else fails anywhere that is required. `gate` accepts them through the
    # baseline, by their ids; `run` does not hide them.
    code = run(tmp_path, "--scenarios-dir", str(light_scenarios(tmp_path)))
    doc = json.loads((tmp_path / "out" / "matrix.json").read_text(encoding="utf-8"))
    not_ok = {(c["gateway"], c["fasttrack"]): sorted((s["id"], s["finding"], s["security"]) for s in c["scenarios"]
                                                     if s["outcome"] != "pass")
              for c in doc["cells"] if c["required"] and c["verdict"] != "compatible"}
    policy = support_policy.load_policy()
    expected: dict[tuple[str, str], list[tuple[str, str, bool]]] = {}
    for p in generations.PROFILES:
        for f in policy.get(p.id, ()):
            w1 = [("security-isolation", "W1-pooled-cookie-jar-leak", True)] if p.cookie_jar == "pooled" else []
            w2 = [("websocket-close", "W2-stream-close-not-relayed", False)] if p.stream_route else []
            w3 = ([("duplicate-credentials", "W3-duplicated-credential-headers", False)]
                  if p.duplicate_headers == "server-error" else [])
            if w1 or w2 or w3:
                expected[(p.id, f)] = sorted(w1 + w2 + w3)
    assert {g for g, _ in expected if any(x[0] == "security-isolation" for x in expected[(g, _)])} == {
        "G6b", "G6c", "G6d", "G6g"}
    assert (code, not_ok) == (1, expected)


def test_run_writes_reports_with_documented_keys(tmp_path, capsys):
    assert run(tmp_path, *PINNED, *SHIPPED) == 0
    out = tmp_path / "out"
    assert {"matrix.json", "matrix.md", "junit.xml"} <= {p.name for p in out.iterdir()}
    doc = json.loads((out / "matrix.json").read_text(encoding="utf-8"))
    cells = {(c["gateway"], c["fasttrack"]): c for c in doc["cells"]}
    assert set(cells) == {("as-is", "24.09.0"), ("as-is", "25.1.0"), ("to-be", "24.09.0"), ("to-be", "25.1.0")}
    for c in doc["cells"]:
        assert {"gateway", "fasttrack", "fasttrack_version", "verdict", "required", "scenarios"} <= set(c)
        for sc in c["scenarios"]:
            assert {"id", "outcome", "failures"} <= set(sc)
            for f in sc["failures"]:
                assert {"step", "hop", "what", "name", "kind", "expected", "actual", "fasttrack_reason",
                        "where"} <= set(f)
    assert cells[("as-is", "24.09.0")]["verdict"] == "compatible" and cells[("as-is", "24.09.0")]["required"]
    assert cells[("to-be", "25.1.0")]["verdict"] == "compatible" and cells[("to-be", "25.1.0")]["required"]
    assert cells[("as-is", "24.09.0")]["fasttrack_version"] == "24.09.0"
    assert cells[("to-be", "25.1.0")]["fasttrack_version"] == "25.1.0"

    crossed_as_is = cells[("as-is", "25.1.0")]
    assert crossed_as_is["verdict"] == "incompatible" and not crossed_as_is["required"]
    assert "fasttrack_to_gateway" in crossed_as_is["reason"] and "X-BackendAI-SSO" in crossed_as_is["reason"]
    crossed_to_be = cells[("to-be", "24.09.0")]
    assert crossed_to_be["verdict"] == "incompatible" and not crossed_to_be["required"]
    assert "fasttrack_to_gateway" in crossed_to_be["reason"] and "X-BackendAI-SSO" in crossed_to_be["reason"]
    failure = crossed_as_is["scenarios"][0]["failures"][0]
    assert failure["step"] == "pipeline login" and failure["hop"] == "fasttrack_to_gateway"
    assert (failure["what"], failure["name"], failure["kind"]) == ("header", "X-BackendAI-SSO", "present")
    assert failure["where"]["file"].endswith(".yaml") and failure["where"]["line"] > 0
    assert (failure["expected"], failure["actual"]) == ("present", "absent")

    ET.parse(out / "junit.xml")  # well-formed
    md = (out / "matrix.md").read_text(encoding="utf-8")
    assert "as-is × 25.1.0: incompatible" in md
    printed = capsys.readouterr().out
    # not required: summarised on the terminal (every reason is in verdict.md)
    assert "2 cells the policy does not require are incompatible" in printed and "4 cells" in printed
    assert "All 2 required cells are compatible." in printed


def test_report_re_renders_identical_markdown(tmp_path, capsys):
    assert run(tmp_path, *PINNED, *SHIPPED) == 0
    again = tmp_path / "again"
    assert main(["report", str(tmp_path / "out" / "matrix.json"), "--out", str(again)]) == 0
    for name in ("matrix.md", "junit.xml", "matrix.json"):
        assert (again / name).read_text(encoding="utf-8") == (tmp_path / "out" / name).read_text(encoding="utf-8")
    only_md = tmp_path / "md-only"
    assert main(["report", str(tmp_path / "out" / "matrix.json"), "--out", str(only_md), "--format", "md"]) == 0
    assert [p.name for p in only_md.iterdir()] == ["matrix.md"]
    # --format on both sides of the document: every format given is written, none silently dropped
    both = tmp_path / "both"
    assert main(["report", "--format", "md", str(tmp_path / "out" / "matrix.json"), "--format", "junit",
                 "--out", str(both)]) == 0
    assert sorted(p.name for p in both.iterdir()) == ["junit.xml", "matrix.md"]


def test_policy_requiring_a_crossed_cell_exits_1(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text('required:\n  as-is: ["24.09.0", "25.1.0"]\n  to-be: ["25.1.0"]\n')
    assert run(tmp_path, *PINNED, *SHIPPED, "--policy", str(policy)) == 1
    doc = json.loads((tmp_path / "out" / "matrix.json").read_text(encoding="utf-8"))
    crossed = next(c for c in doc["cells"] if (c["gateway"], c["fasttrack"]) == ("as-is", "25.1.0"))
    assert crossed["required"] and crossed["verdict"] == "incompatible"


def test_policy_with_nothing_required_is_a_usage_error(tmp_path, capsys):
    # It could only ever say "every required cell is compatible", whatever the cells are.
    policy = tmp_path / "policy.yaml"
    policy.write_text("required: {}\n")
    assert run(tmp_path, *PINNED, *SHIPPED, "--policy", str(policy)) == 2
    assert "the policy requires nothing" in capsys.readouterr().err


def test_unknown_gateway_is_a_usage_error(tmp_path, capsys):
    assert run(tmp_path, "--gateway", "nope") == 2
    err = capsys.readouterr().err
    assert "unknown gateway profile 'nope'" in err and "as-is" in err
    assert not (tmp_path / "out").exists()


def test_jobs_takes_a_whole_number_or_auto(tmp_path, capsys):
    assert run(tmp_path, "--jobs", "0") == 2
    assert "--jobs" in capsys.readouterr().err and not (tmp_path / "out").exists()
    assert run(tmp_path, *PINNED, *SHIPPED, "--jobs", "2") == 0
    assert run(tmp_path, *PINNED, *SHIPPED, "--jobs", "auto") == 0


def test_select_resolves_aliases_dedupes_and_rejects_unknown_ids():
    sel = select(["G4", "as-is", "to-be"], ["25.1.0", "25.1.0"], "pr3353-*")
    assert [g.id for g in sel.gateways] == ["as-is", "to-be"]
    assert [f.id for f in sel.fasttracks] == ["25.1.0"]
    assert sorted(s.id for s in sel.scenarios) == ["pr3353-as-is", "pr3353-to-be"]
    with pytest.raises(UsageError, match="unknown gateway profile 'G9'"):
        select(["G9"], None)
    with pytest.raises(UsageError, match="unknown FastTrack profile"):
        select(None, ["1.0"])


def test_unknown_fasttrack_is_a_usage_error(tmp_path, capsys):
    assert run(tmp_path, "--fasttrack", "99.0") == 2
    assert "unknown FastTrack profile '99.0'" in capsys.readouterr().err


def test_broken_scenario_dir_is_a_usage_error_with_file_and_line(tmp_path, capsys):
    scenarios = tmp_path / "scenarios"
    shutil.copytree(DEFAULT_SCENARIOS, scenarios)
    broken = scenarios / "pr3353-as-is.yaml"
    lines = broken.read_text(encoding="utf-8").splitlines()
    index = next(i for i, line in enumerate(lines) if line.strip() == "method: POST")
    lines[index] = lines[index].replace("method:", "methd:")
    broken.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert run(tmp_path, "--scenarios-dir", str(scenarios)) == 2
    err = capsys.readouterr().err
    assert f"{broken}:{index + 1}:" in err
    assert "unknown key 'methd'" in err and "^" in err
    assert not (tmp_path / "out").exists()


def test_missing_scenario_dir_and_unmatched_glob_are_usage_errors(tmp_path, capsys):
    assert run(tmp_path, "--scenarios-dir", str(tmp_path / "nowhere")) == 2
    assert "does not exist" in capsys.readouterr().err
    assert run(tmp_path, "--scenario", "no-such-scenario-*") == 2
    assert "no scenario file" in capsys.readouterr().err


def test_bad_policy_is_a_usage_error_with_line(tmp_path, capsys):
    policy = tmp_path / "policy.yaml"
    policy.write_text('required:\n  as-is: ["24.09.0"]\n  to-be: [">=25.1,<"]\n')
    assert run(tmp_path, *PINNED, *SHIPPED, "--policy", str(policy)) == 2
    assert f"{policy}:3:" in capsys.readouterr().err


def test_missing_policy_file_is_a_usage_error(tmp_path, capsys):
    assert run(tmp_path, *PINNED, *SHIPPED, "--policy", str(tmp_path / "missing.yaml")) == 2
    assert "missing.yaml" in capsys.readouterr().err


def test_report_from_unreadable_source_is_a_usage_error(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing.json"), "--out", str(tmp_path / "o")]) == 2
    assert "cannot read" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "a result"}')
    assert main(["report", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert f"{bad}: schema is None, expected 'harness/matrix@2'" in capsys.readouterr().err


def test_report_from_a_partial_document_is_a_usage_error(tmp_path, capsys):
    partial = tmp_path / "partial.json"
    partial.write_text('{"cells": []}')
    assert main(["report", str(partial), "--out", str(tmp_path / "o")]) == 2
    assert "partial.json" in capsys.readouterr().err


def test_report_exit_code_follows_required_cells(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text('required:\n  as-is: ["25.1.0"]\n')
    assert run(tmp_path, *PINNED, *SHIPPED, "--policy", str(policy)) == 1
    assert main(["report", str(tmp_path / "out" / "matrix.json"), "--out", str(tmp_path / "r")]) == 1


def test_argparse_errors_and_help(capsys):
    assert main(["run", "--no-such-option"]) == 2
    assert main([]) == 2
    assert main(["--help"]) == 0
    assert "exit codes" in capsys.readouterr().out


def test_show_secrets_disables_redaction(tmp_path):
    assert run(tmp_path, *PINNED, *SHIPPED, "--show-secrets") == 0
    text = (tmp_path / "out" / "matrix.json").read_text(encoding="utf-8")
    assert "‹signature›" not in text and "Bearer ftk_" in text
    assert run(tmp_path, *PINNED, *SHIPPED) == 0
    text = (tmp_path / "out" / "matrix.json").read_text(encoding="utf-8")
    assert "‹signature›" in text and "Bearer ftk_" not in text


def test_version_and_help_per_subcommand(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("harness 0.1.0")
    texts = {}
    for argv in (["--help"], ["run", "--help"], ["peer", "install", "--help"], ["peer", "run", "--help"],
                 ["report", "--help"], ["gate", "--help"], ["serve", "--help"]):
        assert main(argv) == 0
        texts[" ".join(argv[:-1]) or "harness"] = capsys.readouterr().out
    assert "every required cell is compatible" not in texts["harness"]  # run's codes are run's
    assert "Each command's --help gives its exit codes" in texts["harness"]
    assert texts["peer install"] != texts["peer run"] and "installed (or already cached)" in texts["peer install"]
    assert "documented finding" in texts["peer run"]
    for name, text in texts.items():
        assert name == "harness" or "exit codes" in text, name


def test_report_committed_needs_a_document(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["report", "--committed"]) == 2  # no harness-reports/matrix.json here
    assert "harness-reports/matrix.json" in capsys.readouterr().err
    assert main(["report"]) == 2


CMD = "serve --port {port}"
URL = ["--gateway-url", "http://127.0.0.1:1", "--fasttrack-listen", "127.0.0.1:2", "--manager-listen", "127.0.0.1:3"]
BAD_TARGETS = {
    "empty --gateway-cmd": ["run", "--gateway-cmd", "", "--judge-as", "as-is"],
    "blank --gateway-cmd": ["run", "--gateway-cmd", "  ", "--judge-as", "as-is"],
    "empty --gateway-url": ["run", "--gateway-url", "", "--judge-as", "as-is"],
    "empty --fasttrack-url": ["run", "--fasttrack-url", ""],
    "empty --judge-as": ["run", "--gateway-cmd", CMD, "--judge-as", ""],
    "empty --gateway-name": ["run", "--gateway-cmd", CMD, "--judge-as", "as-is", "--gateway-name", ""],
    "--judge-as without a real gateway": ["run", "--judge-as", "as-is"],
    "--gateway-name without a real gateway": ["run", "--gateway-name", "rc"],
    "--ready-timeout without a started gateway": ["run", "--ready-timeout", "5"],
    "--ready-timeout with --gateway-url": ["run", *URL, "--judge-as", "as-is", "--ready-timeout", "5"],
    "--gateway-cmd with --gateway-url": ["run", "--gateway-cmd", CMD, *URL, "--judge-as", "as-is"],
    "--gateway-cmd with --gateway": ["run", "--gateway-cmd", CMD, "--judge-as", "as-is", "--gateway", "as-is"],
    "a real gateway without --judge-as": ["run", "--gateway-cmd", CMD],
    "unknown --judge-as": ["run", "--gateway-cmd", CMD, "--judge-as", "G99"],
    "--fasttrack-listen without --gateway-url": ["run", "--fasttrack-listen", "127.0.0.1:9500"],
    "--manager-listen with --gateway-cmd": ["run", "--gateway-cmd", CMD, "--judge-as", "as-is",
                                            "--manager-listen", "127.0.0.1:9501"],
    "--gateway-url without the listen addresses": ["run", "--gateway-url", "http://127.0.0.1:1", "--judge-as", "as-is"],
    "--fasttrack-name without --fasttrack-url": ["run", "--fasttrack-name", "25.1.0"],
    "--fault with --fasttrack-url": ["run", "--fault", "refused", "--fasttrack-url", "http://127.0.0.1:1"],
    "empty peer target": ["peer", "run", ""],
    "peer --judge-as unknown": ["peer", "run", "25.1.1", "--judge-as", "nosuch"],
    "gate: empty --gateway-cmd": ["gate", "--gateway-cmd", ""],
    "gate: empty --peer": ["gate", "--peer", ""],
    "gate: empty --run": ["gate", "--run", ""],
    "gate: --judge-as without a real gateway": ["gate", "--judge-as", "as-is"],
    "gate: --peer with --gateway-cmd": ["gate", "--peer", "25.1.1", "--gateway-cmd", CMD, "--judge-as", "as-is"],
    "identify: empty --gateway-cmd": ["identify", "--gateway-cmd", ""],
    "identify: --gateway with --gateway-cmd": ["identify", "--gateway", "as-is", "--gateway-cmd", CMD],
    "identify: no target": ["identify"],
    "identify: --manager-listen without --gateway-url": ["identify", "--gateway", "as-is",
                                                         "--manager-listen", "127.0.0.1:9501"],
}


@pytest.mark.parametrize("argv", list(BAD_TARGETS.values()), ids=list(BAD_TARGETS))
def test_empty_or_contradictory_target_options_are_usage_errors(argv, tmp_path, capsys):
    # Never silently ignored: the reference matrix running instead of the named build would be a false pass.
    assert main([*argv, *(["--out", str(tmp_path)] if argv[0] in ("run", "peer") else [])]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() and "Traceback" not in captured.err
    assert not (tmp_path / "matrix.json").exists()


def test_each_subcommand_is_imported_only_when_it_runs_and_lists_the_same_help(tmp_path):
    import subprocess
    import sys

    from harness import cli

    # `harness --help` lists every command from the registry, without importing them
    code = ("import sys; from harness import cli; rc = cli.main(['--version']); "
            "print(sorted(m for m in sys.modules if m.startswith('harness.')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert all(name not in loaded for name in ("harness.compare.gate", "harness.peers.census", "harness.mutation.run",
                                                "harness.cli.run", "harness.cli.options", "harness.peers.builds"))
    full = cli.build_parser()
    sub = next(a for a in full._actions if a.__class__.__name__ == "_SubParsersAction")
    listed = {a.dest: a.help for a in sub._choices_actions}
    assert listed == {name: text for name, (_module, text) in cli.COMMANDS.items()}


def test_every_command_is_a_module_of_the_cli_and_report_merge_a_subcommand_in_the_helps(capsys):
    from harness import cli

    assert all(module.startswith("harness.cli.") for module, _help in cli.COMMANDS.values())
    assert main(["--help"]) == 0
    assert "join shard results (report merge)" in " ".join(capsys.readouterr().out.split())
    assert main(["report", "--help"]) == 0
    forms = capsys.readouterr().out
    assert "FROM.json | merge" in forms and "    merge " in forms and "    FROM.json " in forms
    assert main(["report", "merge", "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: harness report merge ")


def _parsers(parser, path=()):
    """Every (sub)command's parser, with its words."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action._name_parser_map.items():
                yield from _parsers(sub, (*path, name))


def test_a_shared_option_has_one_definition_in_every_command():
    # --concurrency, --timeout, --seed, ... mean one thing with one type and default wherever they appear (mutate's
    # --concurrency defaulted to 32 and --timeout took 0 while run's did not).
    from harness import cli
    from harness.cli import options

    reference = argparse.ArgumentParser()
    options.add(reference, *options.SHARED)
    flags = {a.option_strings[0]: a for a in reference._actions if a.dest in options.SHARED}
    seen: dict[str, list[str]] = {}
    for path, parser in _parsers(cli.build_parser()):
        if path == ("serve",):  # one actor as a process: its --seed/--jwt-secret are the actor's, kept off the
            continue            # option groups' imports (the engine, reports, builds) so that it starts fast
        for action in parser._actions:
            for flag in set(action.option_strings) & set(flags):
                if (path, flag) == (("gate",), "--out"):  # only where a --fasttrack-url run writes accounts.json
                    continue
                one = flags[flag]
                seen.setdefault(flag, []).append(" ".join(path))
                assert (action.help, action.type, action.choices) == (one.help, one.type, one.choices), (path, flag)
                assert action.default in (one.default, argparse.SUPPRESS), (path, flag)
    assert all(len(where) > 1 for where in seen.values()), seen  # shared: declared here once, used twice or more
    assert {"run", "identify", "mutate", "peer run"} <= set(seen["--concurrency"])
    assert {"run", "identify", "mutate", "gate"} <= set(seen["--timeout"])
    assert main(["mutate", "--timeout", "0"]) == main(["identify", "--concurrency", "0"]) == 2


def test_manager_contract_option_replaces_the_session_token_flag(capsys: pytest.CaptureFixture[str]) -> None:
    for command in (["run"], ["peer", "run", "x"], ["identify"]):
        assert main([*command, "--manager-contract", "26.5"]) == 2
        assert "invalid choice: '26.5'" in capsys.readouterr().err
    assert main(["run", "--manager-session-token"]) == 2
