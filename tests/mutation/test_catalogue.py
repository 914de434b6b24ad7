"""Mutation testing of the scenarios (issue #6, item 4): every deviant gateway of harness/mutation/catalogue.py is told
from its reference profile, in the base profile's required cells, at the hop where the deviation shows."""

from __future__ import annotations

import json

import pytest

from harness import cli
from harness.actors.gateway import Mutation
from harness.engine.matrix_run import Options
from harness.engine.selection import select
from harness.judge import support_policy
from harness.mutation.catalogue import MUTANTS, resolve_mutant
from harness.mutation.run import MutantResult, run_mutants
from harness.protocol import gateway_rules as rules
from harness.protocol import generations
from harness.protocol.headers import Headers
from harness.protocol.hops import HOPS

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")


def test_catalogue_shape():
    assert len(MUTANTS) >= 15
    assert len({m.id for m in MUTANTS}) == len(MUTANTS)
    policy = support_policy.load_policy()
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
    run = await run_mutants(MUTANTS, sel.scenarios, support_policy.load_policy(), Options())
    base_broken = [r.mutant.id for r in run.results if not r.base_ok]
    assert not base_broken, f"base profile not compatible for {base_broken}"
    survivors = [r.mutant.id for r in run.results if not r.killed]
    assert not survivors, f"surviving mutants (a gap in the scenarios): {survivors}"
    elsewhere = {r.mutant.id: (r.mutant.hop, r.caught_at) for r in run.results if not r.at_intended_hop}
    assert not elsewhere, f"mutants not caught at their intended hop (intended, caught): {elsewhere}"
    assert run.kill_rate == 1.0 and run.ok
    for r in run.results:  # what the caught hops are made of: failing scenarios in the mutant's required cells
        assert any(c["hop"] == r.mutant.hop and c["scenario"] for c in r.catches)
        assert set(r.cells) == set(support_policy.load_policy()[r.mutant.base])


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


# Headers the contract names on a gateway hop that no Mutation hook can change, and why (anything else must have a
# mutant of its own, caught at that hop by a failure on that header: harness/mutation/run.py checks the latter).
NO_MUTANT = {
    ("gateway_to_fasttrack", "upgrade"):
        "on the HTTP route a forwarded Upgrade makes FastTrack take the request for a handshake that fails before "
        "anything is recorded (G1a~client-upgrade-forwarded is killed at hop 2, as nothing recorded); on the stream "
        "route the handshake is aiohttp's ws_connect, which no Mutation hook reaches",
    ("gateway_to_client", "server"):
        "the reference gateway drops Server as each response is prepared (as the webserver does), after every hook",
    ("gateway_to_client", "x-backendai-sessionid"):
        "only on /server/login's answer, the webserver's own handler, which no hook reaches (they act on /pipeline/)",
}


def contract_headers() -> dict[str, set[str]]:
    """Per gateway hop, every header a shipped scenario's contract checks name (model sections left out)."""
    out: dict[str, set[str]] = {"gateway_to_fasttrack": set(), "gateway_to_client": set()}
    for sc in select(None, None).scenarios:
        for st in sc.steps:
            for hop, expect in st.expect.items():
                if hop in out:
                    out[hop] |= {f.name.lower() for f in expect.headers}
    return out


def test_every_header_the_contract_names_on_a_gateway_hop_has_a_mutant_of_its_own():
    named = contract_headers()
    assert len(named["gateway_to_fasttrack"]) >= 20 and len(named["gateway_to_client"]) >= 8
    covered = {(m.hop, m.header.lower()) for m in MUTANTS if m.header is not None}
    for hop, header in covered:
        assert header in named.get(hop, set()), f"a mutant names {header} at {hop}, which no contract check names"
    assert set(NO_MUTANT) <= {(hop, h) for hop, hs in named.items() for h in hs}, "a stale exemption"
    missing = sorted((hop, h) for hop, hs in named.items() for h in hs if (hop, h) not in covered | set(NO_MUTANT))
    assert not missing, f"contract headers without a mutant: {missing}"


def test_a_header_mutant_counts_as_caught_at_its_hop_only_on_that_header():
    m = resolve_mutant("to-be~host-changed")

    def caught(check: str) -> MutantResult:
        return MutantResult(m, {"25.1.0": "incompatible"}, {"25.1.0": "compatible"},
                            [{"fasttrack": "25.1.0", "scenario": "s", "step": "x", "hop": m.hop, "check": check}])
    assert caught("header host").at_intended_hop
    assert caught("header Authorization").killed and not caught("header Authorization").at_intended_hop
