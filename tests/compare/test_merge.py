"""``harness report merge``: shards of one matrix joined into one document, refused when they disagree."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness import cli, errors
from harness.compare import merge
from tests.compare.documents import ROOT, cell, good_run, write


def shard(run: dict[str, Any], keep: int) -> dict[str, Any]:
    return {**run, "cells": [c for i, c in enumerate(run["cells"]) if i % 2 == keep]}


def test_merge_joins_disjoint_shards_in_matrix_order() -> None:
    run = good_run()
    merged = merge.merge([("b", shard(run, 1)), ("a", shard(run, 0))])
    # No profile lists here: cells fall back to (gateway, FastTrack) order.
    assert merged["cells"] == sorted(run["cells"], key=lambda c: (c["gateway"], c["fasttrack"]))
    assert merged["schema"] == "harness/matrix@2"
    assert merged["http_exchanges"] == 2


def test_merge_orders_cells_by_the_profile_lists() -> None:
    run = good_run()
    run["gateways"] = [{"id": "to-be"}, {"id": "as-is"}]
    run["fasttracks"] = [{"id": "25.1.0"}, {"id": "24.09.0"}]
    merged = merge.merge([("a", shard(run, 0)), ("b", shard(run, 1))])
    assert [(c["gateway"], c["fasttrack"]) for c in merged["cells"]] == [
        ("to-be", "25.1.0"), ("to-be", "24.09.0"), ("as-is", "25.1.0"), ("as-is", "24.09.0")]


def test_merge_accepts_an_identical_overlap_and_refuses_a_different_one() -> None:
    run = good_run()
    again = copy.deepcopy(run)
    again["cells"][0]["scenarios"][0]["duration_ms"] = 99.0  # timings are not content
    assert len(merge.merge([("a", run), ("b", again)])["cells"]) == 4
    again["cells"][0] = cell("as-is", "24.09.0", "incompatible", required=True)
    with pytest.raises(errors.UsageError, match=r"as-is×24\.09\.0 is also in a .*verdict"):
        merge.merge([("a", run), ("b", again)])


@pytest.mark.parametrize("bad", ["schema", "overlap", "profile", "unreadable"])
def test_merge_command_refuses_with_exit_2(bad: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = shard(good_run(), 0), shard(good_run(), 1)
    if bad == "schema":
        b["schema"] = "harness/matrix@1"
    elif bad == "overlap":
        b["cells"].append(dict(a["cells"][0], verdict="error"))
    elif bad == "profile":
        a["gateways"], b["gateways"] = [{"id": "as-is", "generation": "G4"}], [{"id": "as-is", "generation": "G5"}]
    paths = [write(tmp_path / "a.json", a), write(tmp_path / "b.json", b)]
    if bad == "unreadable":
        paths.append(str(tmp_path / "missing.json"))
    assert cli.main(["report", "merge", *paths, "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.startswith("harness: ")
    assert not (tmp_path / "out").exists()


def test_report_from_json_still_works_next_to_merge(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write(tmp_path / "m.json", {**good_run(), "gateways": [], "fasttracks": []})
    assert cli.main(["report", src, "--out", str(tmp_path / "r"), "--format", "json"]) == 0
    assert json.loads((tmp_path / "r" / "matrix.json").read_text())["cells"] == good_run()["cells"]


def test_merged_shards_of_a_real_run_equal_the_unsharded_run(tmp_path: Path) -> None:
    """``run --shard 1/2`` and ``2/2``, merged, give the unsharded run's cells (three real runs side by side)."""
    select = ["--gateway", "as-is", "--gateway", "to-be", "--quiet"]
    outs = {name: tmp_path / name for name in ("s1", "s2", "all")}
    shards = {"s1": ["--shard", "1/2"], "s2": ["--shard", "2/2"], "all": []}
    procs = [subprocess.Popen([sys.executable, "-m", "harness", "run", *select, *shards[n], "--out", str(o)],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for n, o in outs.items()]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode in (0, 1), err.decode()
    merged_dir = tmp_path / "merged"
    assert cli.main(["report", "merge", str(outs["s1"] / "matrix.json"), str(outs["s2"] / "matrix.json"),
                     "--out", str(merged_dir)]) in (0, 1)
    assert {p.name for p in merged_dir.iterdir()} >= {"matrix.json", "matrix.md", "junit.xml"}

    def judged(path: Path) -> list[tuple[Any, ...]]:
        d = json.loads(path.read_text())
        return [(c["gateway"], c["fasttrack"], c["verdict"], tuple((s["id"], s["outcome"]) for s in c["scenarios"]))
                for c in d["cells"]]

    s1, s2 = judged(outs["s1"] / "matrix.json"), judged(outs["s2"] / "matrix.json")
    assert s1 and s2 and not {c[:2] for c in s1} & {c[:2] for c in s2}  # disjoint shards
    assert judged(merged_dir / "matrix.json") == judged(outs["all"] / "matrix.json")
    assert cli.main(["diff", str(merged_dir / "matrix.json"), str(outs["all"] / "matrix.json")]) == 0
