"""Profiles are data: a typo in a new entry, or two entries claiming one name, fails when the data loads."""

from __future__ import annotations

import dataclasses

import pytest

from harness.protocol import generations


def test_every_shipped_profile_has_a_unique_set_of_names():
    table = generations.by_name()
    assert {p.id for p in table.values()} == {p.id for p in generations.PROFILES}


def test_an_unknown_option_value_names_the_profile_and_the_field():
    with pytest.raises(ValueError, match=r"'as-is': signed='everything' is not one of"):
        dataclasses.replace(generations.G4, signed="everything")


def test_two_profiles_claiming_one_name_are_refused():
    twin = dataclasses.replace(generations.G4, id="as-is-2", aliases=("G4",))
    with pytest.raises(ValueError, match="both claim the name 'G4'"):
        generations.by_name((generations.G4, twin))
