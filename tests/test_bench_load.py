"""Pooling earlier benchmark runs into one report (``bench/load.py --report-only``)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from bench.load import RECORDS_DIR, WrkResult, keep_record, pooled_runs, report_late_look, slice_order


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


def test_late_looks_pool_on_the_rounds_of_their_first_looks_and_give_each_rounds_difference() -> None:
    """``--late-look`` files: the late runs of round r pair with the first runs of round r, also
    when several files are pooled, and the report gives each target's per-round difference."""

    def with_late_look(rounds: int, late_rps: float) -> dict[str, Any]:
        result = results_file("tracing", ("off", "trace100", "trace10"), rounds)
        result["late_runs"] = [
            {**run, "rps": late_rps if run["target"] == "trace10" else run["rps"]} for run in result["runs"]
        ]
        return result

    files = [with_late_look(5, 550.0), with_late_look(4, 450.0)]  # trace10: +0.1 later, then -0.1
    runs, late_runs = pooled_runs(files), pooled_runs(files, "late_runs")
    assert sorted((r.round, r.target) for r in runs) == sorted((r.round, r.target) for r in late_runs)
    rows = {
        row["target"]: row for row in report_late_look(runs, late_runs, ["get"], ("off", "trace100", "trace10"), "off")
    }
    assert set(rows) == {"trace100", "trace10"}
    assert (rows["trace100"]["rounds"], rows["trace100"]["median_difference"]) == (9, 0.0)
    assert rows["trace10"]["rounds"] == 9
    assert rows["trace10"]["median_difference"] == pytest.approx(0.1)  # five rounds of +0.1, four of -0.1
    assert rows["trace10"]["mean_difference"] == pytest.approx((5 * 0.1 - 4 * 0.1) / 9, abs=1e-3)
