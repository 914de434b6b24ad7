"""Mutation testing of the scenarios (issue #6, item 4): every deviant gateway of harness/mutants.py is told from
its reference profile, in the base profile's required cells, at the hop where the deviation shows."""

from __future__ import annotations

import json

import pytest

from harness import cli, matrix
from harness.actors.gateway import Mutation
from harness.catalog import select
from harness.engine.matrix_run import Options
from harness.mutants import MUTANTS, resolve_mutant
from harness.mutate import run_mutants
from harness.protocol import gateway_rules as rules
from harness.protocol import generations
from harness.protocol.headers import Headers
from harness.records import HOPS

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")


def test_catalogue_shape():
    assert len(MUTANTS) >= 15
    assert len({m.id for m in MUTANTS}) == len(MUTANTS)
    policy = matrix.load_policy()
    for m in MUTANTS:
        assert m.base_profile.id == m.base, m.id  # resolve() by the profile id
        assert policy.get(m.base), f"{m.id}: base {m.base} has no required cells"
        assert m.hop in HOPS, m.id
        # Exactly one deviation: one hook set.
        hooks = [h for h in (m.change, m.upstream, m.reply, m.downstream) if h is not None]
        assert len(hooks) == 1, m.id
        launcher = m.launcher()
        assert launcher.label == m.id and launcher.profile is m.base_profile and launcher.mutation is m
        if m.change is not None:
            assert m.profile(m.base_profile) != m.base_profile, f"{m.id}: the profile change changes nothing"


def test_default_mutation_is_the_reference():
    plain = Mutation()
    profile = generations.resolve("as-is")
    assert plain.profile(profile) is profile
    reply = rules.unauthorized()
    assert plain.plan(None, None, reply, rules.GatewayConfig("s")) is reply  # type: ignore[arg-type]
    relay = rules.Relay(200, "OK", Headers.of([("X-BackendAI-FastTrack-Version", "25.1.0")]), None)
    assert plain.relay(relay) is relay


async def test_every_mutant_is_killed_at_its_intended_hop():
    sel = select(None, None)
    run = await run_mutants(MUTANTS, sel.scenarios, matrix.load_policy(), Options())
    base_broken = [r.mutant.id for r in run.results if not r.base_ok]
    assert not base_broken, f"base profile not compatible for {base_broken}"
    survivors = [r.mutant.id for r in run.results if not r.killed]
    assert not survivors, f"surviving mutants (a gap in the scenarios): {survivors}"
    elsewhere = {r.mutant.id: (r.mutant.hop, r.caught_at) for r in run.results if not r.at_intended_hop}
    assert not elsewhere, f"mutants not caught at their intended hop (intended, caught): {elsewhere}"
    assert run.kill_rate == 1.0 and run.ok
    for r in run.results:  # what the caught hops are made of: failing scenarios in the mutant's required cells
        assert any(c["hop"] == r.mutant.hop and c["scenario"] for c in r.catches)
        assert set(r.cells) == set(matrix.load_policy()[r.mutant.base])


def test_mutate_command_json_and_exit_codes(tmp_path, capsys):
    out = tmp_path / "mutation.json"
    code = cli.main(["mutate", "--mutant", "G6d~upstream-401-as-200", "--mutant", "as-is~jwt-hs384",
                     "--json", str(out), "--quiet"])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "kill rate: 2/2 (100 %); caught at the intended hop: 2/2" in text
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["schema"] == "harness/mutation@1" and doc["kill_rate"] == 1.0
    assert [(m["id"], m["killed"], m["intended_hop"], m["at_intended_hop"]) for m in doc["mutants"]] == [
        ("G6d~upstream-401-as-200", True, "gateway_to_client", True),
        ("as-is~jwt-hs384", True, "gateway_to_fasttrack", True)]
    assert "gateway_to_fasttrack" in doc["mutants"][1]["caught_at"]


def test_a_surviving_mutant_fails_the_command(capsys):
    # upstream-errors asks for the version header only with `present`: a duplicated one passes it.
    code = cli.main(["mutate", "--mutant", "G6d~version-header-twice", "--scenario", "upstream-errors", "--quiet"])
    text = capsys.readouterr().out
    assert code == 1
    assert "SURVIVED" in text and "kill rate: 0/1 (0 %)" in text


def test_unknown_mutant_is_a_usage_error(capsys):
    assert cli.main(["mutate", "--mutant", "nope"]) == 2
    assert "unknown mutant 'nope'" in capsys.readouterr().err
    with pytest.raises(KeyError):
        resolve_mutant("nope")
