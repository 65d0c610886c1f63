"""The benchmark's verdict on a ratio target: met, missed, or a run too noisy to tell."""

from __future__ import annotations

import math
import statistics

from bench.stats import median_interval, verdict

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
