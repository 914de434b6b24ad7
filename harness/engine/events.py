"""Typed events the engine emits while it runs; progress displays and live reporters subscribe to them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from harness.results.model import CellResult, RunResult, ScenarioResult


@dataclass(frozen=True)
class RunStarted:
    total: int  # scenario runs planned
    cells: int = 0  # cells planned


@dataclass(frozen=True)
class ScenarioFinished:
    gateway: str
    fasttrack: str
    result: ScenarioResult
    done: int
    total: int


@dataclass(frozen=True)
class CellFinished:
    cell: CellResult


@dataclass(frozen=True)
class RunFinished:
    result: RunResult


Event = RunStarted | ScenarioFinished | CellFinished | RunFinished
Listener = Callable[[Event], None]
