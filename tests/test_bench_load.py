"""Pooling earlier benchmark runs into one report (``bench/load.py --report-only``)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from bench.load import RECORDS_DIR, WrkResult, keep_record, pooled_runs, slice_order


def results_file(compare: str, targets: tuple[str, ...], rounds: int) -> dict[str, Any]:
    runs = [
        asdict(WrkResult(endpoint="get", target=t, round=r, rps=500.0, p50_ms=60.0, p99_ms=90.0, requests=2000))
        for r in range(1, rounds + 1)
        for t in targets
    ]
    return {"machine": {"compare": compare}, "runs": runs}


def test_pooled_rounds_keep_their_start_order_and_do_not_collide() -> None:
    targets = ("off", "trace100", "trace10")
    first, second = results_file("tracing", targets, 25), results_file("tracing", targets, 7)
    pooled = pooled_runs([first, second])
    assert len(pooled) == 3 * (25 + 7)
    rounds = sorted({run.round for run in pooled})
    assert len(rounds) == 25 + 7  # no round of the second run landed on one of the first
    originals = [run["round"] for run in first["runs"] + second["runs"]]
    # round r started its processes in rotation (r - 1) % 3: renumbering keeps it
    assert [(run.round - 1) % 3 for run in pooled] == [(r - 1) % 3 for r in originals]


def test_runs_of_different_comparisons_are_not_pooled() -> None:
    with pytest.raises(SystemExit, match="one comparison"):
        pooled_runs([results_file("tracing", ("off", "trace10"), 2), results_file("control", ("off", "off-again"), 2)])


def test_kept_runs_pool_with_later_ones(tmp_path: Path) -> None:
    targets = ("off", "trace100", "trace10")
    kept = [
        keep_record(json.dumps(results_file("tracing", targets, rounds)), stamp, "tracing", tmp_path)
        for stamp, rounds in (("20261126T094458Z", 25), ("20261127T080000Z", 12))
    ]
    assert [path.name for path in sorted(tmp_path.glob("*-tracing.json"))] == [path.name for path in kept]
    pooled = pooled_runs([json.loads(path.read_text()) for path in kept])
    assert len({run.round for run in pooled}) == 25 + 12


def test_the_runs_of_record_in_git_pool_into_one_report() -> None:
    """The runs kept in bench/records/ stay readable by --report-only, whatever later code does."""
    kept = sorted(RECORDS_DIR.glob("*-tracing.json"))
    assert kept, "bench/records/ holds the figure-of-record runs of #3"
    results = [json.loads(path.read_text()) for path in kept]
    pooled = pooled_runs(results)
    assert {run.target for run in pooled} == {"off", "trace100", "trace10"}
    assert all(result["machine"]["restart_each_round"] for result in results)


def test_slices_alternate_and_the_middle_copy_is_followed_by_both_ends_alike() -> None:
    """The order the tracing runs load their copies in (bench/README.md reasons from it)."""
    sequence = slice_order(("off", "trace100", "trace10"), 4)
    assert sequence == ["off", "trace100", "trace10", "trace10", "trace100", "off"] * 2
    followers = Counter(after for before, after in pairwise(sequence) if before == "trace100")
    assert followers == Counter({"off": 2, "trace10": 2})
    assert slice_order(("off", "trace10"), 1) == ["off", "trace10"]
