"""harness.engine.selection: the user's choice of profiles, FastTrack versions and scenario files, validated."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.engine.selection import select
from harness.errors import UsageError
from harness.protocol import fasttrack_models, generations


def test_no_choice_means_every_profile_model_and_shipped_scenario():
    sel = select(None, None)
    assert sel.gateways == list(generations.PROFILES) and sel.fasttracks == list(fasttrack_models.MODELS)
    assert len(sel.scenarios) > 10 and len({s.id for s in sel.scenarios}) == len(sel.scenarios)


def test_a_profile_named_twice_runs_once_in_the_order_given():
    sel = select(["to-be", "as-is", "to-be"], ["25.1.0"], "pr3353-*")
    assert [g.id for g in sel.gateways] == ["to-be", "as-is"] and [f.id for f in sel.fasttracks] == ["25.1.0"]
    assert {s.id for s in sel.scenarios} == {"pr3353-as-is", "pr3353-to-be"}


@pytest.mark.parametrize(("gateways", "fasttracks", "glob", "message"), [
    (["G99"], None, "*", "G99"),
    (None, ["99.1.0"], "*", "99.1.0"),
    (None, None, "no-such-scenario-*", "no scenario file"),
])
def test_bad_choices_are_usage_errors_naming_what_was_asked(gateways, fasttracks, glob, message):
    with pytest.raises(UsageError, match=message):
        select(gateways, fasttracks, glob)


def test_a_missing_scenario_directory_is_a_usage_error(tmp_path: Path):
    with pytest.raises(UsageError, match="does not exist"):
        select(None, None, "*", tmp_path / "nowhere")
