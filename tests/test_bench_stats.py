"""The benchmark's verdict on a ratio target: met, missed, or a run too noisy to tell; and its estimate
that cancels the effect of the order in which a round's processes were started."""

from __future__ import annotations

import itertools
import math
import statistics

from bench.stats import balanced_interval, balanced_ratio, median_interval, verdict

# per-round throughput ratios of two real runs of `bench/load.py --compare tracing` (10 % sampling)
QUIET_DAY = [0.97, 0.98, 0.96, 0.97, 0.99, 0.97, 0.96, 0.98, 0.97, 0.98, 0.97, 0.96, 0.98, 0.97, 0.99]
NOISY_DAY = [1.01, 0.91, 1.17, 0.93, 1.09, 1.06, 0.99, 0.93, 1.23, 0.89, 0.94, 1.26, 1.08, 0.80, 1.00]


def test_the_interval_holds_the_median_and_narrows_with_the_spread() -> None:
    for rounds in (QUIET_DAY, NOISY_DAY):
        low, high = median_interval(rounds)
        assert min(rounds) <= low <= statistics.median(rounds) <= high <= max(rounds)
    quiet_low, quiet_high = median_interval(QUIET_DAY)
    noisy_low, noisy_high = median_interval(NOISY_DAY)
    assert quiet_high - quiet_low < (noisy_high - noisy_low) / 3


def test_the_same_rounds_give_the_same_interval() -> None:
    assert median_interval(NOISY_DAY) == median_interval(list(NOISY_DAY))


def test_verdicts() -> None:
    assert verdict(median_interval(QUIET_DAY), 0.96) == "met"
    assert verdict(median_interval(QUIET_DAY), 0.99) == "missed"
    assert verdict(median_interval(NOISY_DAY), 0.97) == "undecided"
    assert verdict((0.97, 0.99), 0.97) == "met"  # the bound itself counts as kept


def test_one_round_gives_no_interval() -> None:
    low, high = median_interval([0.97])
    assert math.isnan(low)
    assert math.isnan(high)
    assert verdict((low, high), 0.97) == "undecided"


def rotated_rounds(true_ratio: float, speed_by_place: tuple[float, ...], noise: list[float]) -> list[list[float]]:
    """Per-round ratios target/baseline of a run whose start order rotates through three copies
    (baseline, other, target) as bench/load.py's does, where a process's speed depends on its place
    in the start order, one group of rounds per rotation."""
    copies = ["baseline", "other", "target"]
    groups: list[list[float]] = []
    for shift in range(3):
        order = copies[shift:] + copies[:shift]
        place_effect = speed_by_place[order.index("target")] / speed_by_place[order.index("baseline")]
        groups.append([true_ratio * place_effect * wobble for wobble in noise])
    return groups


def test_the_balanced_estimate_cancels_the_start_order() -> None:
    # measured on 2026-11-26: the copy started first ran about 11 % faster than the one started second
    groups = rotated_rounds(0.97, (1.0, 0.89, 0.93), noise=[1.0])
    assert math.isclose(balanced_ratio(groups), 0.97, rel_tol=1e-12)
    rounds = list(itertools.chain.from_iterable(groups))
    assert abs(statistics.median(rounds) - 0.97) > 0.03  # the median lands in one start order's group


def test_the_balanced_interval_holds_the_estimate_and_shrinks_with_more_rounds() -> None:
    wobble = [0.97, 1.03, 0.99, 1.01, 0.98, 1.02]
    few = rotated_rounds(0.97, (1.0, 0.89, 0.93), noise=wobble)
    many = rotated_rounds(0.97, (1.0, 0.89, 0.93), noise=wobble * 4)
    widths = []
    for groups in (few, many):
        low, high = balanced_interval(groups)
        assert low < balanced_ratio(groups) < high
        widths.append(high - low)
    assert widths[1] < widths[0]


def test_a_start_order_without_rounds_gives_no_estimate() -> None:
    assert math.isnan(balanced_ratio([[0.97, 0.98], []]))
    assert all(math.isnan(bound) for bound in balanced_interval([[0.97, 0.98], [0.99]]))
