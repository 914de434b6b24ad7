"""Resolve the user's selection (profiles, FastTrack versions, scenario files) into validated objects."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.errors import UsageError
from harness.protocol import fasttrack_models, generations
from harness.protocol.fasttrack_models import FastTrackModel
from harness.protocol.generations import GatewayProfile
from harness.scenario.loader import discover, load_all
from harness.scenario.model import Scenario

DEFAULT_SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


@dataclass
class Selection:
    gateways: list[GatewayProfile]
    fasttracks: list[FastTrackModel]
    scenarios: list[Scenario]


def select(gateway_ids: list[str] | None, fasttrack_ids: list[str] | None, scenario_glob: str = "*",
           scenarios_dir: str | Path = DEFAULT_SCENARIOS) -> Selection:
    try:
        gateways = [generations.resolve(g) for g in gateway_ids] if gateway_ids else list(generations.PROFILES)
        fasttracks = ([fasttrack_models.resolve(f) for f in fasttrack_ids] if fasttrack_ids
                      else list(fasttrack_models.MODELS))
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from None
    gateways = list(dict.fromkeys(gateways))
    fasttracks = list(dict.fromkeys(fasttracks))
    directory = Path(scenarios_dir)
    if not directory.is_dir():
        raise UsageError(f"scenario directory {directory} does not exist")
    files = discover(directory, scenario_glob)
    if not files:
        raise UsageError(f"no scenario file in {directory} matches {scenario_glob!r}")
    return Selection(gateways, fasttracks, load_all(files))
