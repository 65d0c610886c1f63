"""How sure a benchmark's ratio is: an interval for the median of the rounds' ratios, an estimate
that cancels the start order's effect with its interval, a verdict against a target, and how noisy
the machine was while it ran.

A median of per-round ratios is only as good as the spread of the rounds. On the shared 2-core
machines of this project that spread moves from day to day by a factor of five (a standard deviation
of 0.027 one day, 0.13 another), so the same median can settle a target one day and say nothing the
next. The interval says which; the noise probe says why.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Literal

Verdict = Literal["met", "missed", "undecided"]

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 4000


def _bootstrap_interval(
    resampled_estimate: Callable[[Callable[..., list[float]]], float], confidence: float, resamples: int
) -> tuple[float, float]:
    """The middle ``confidence`` of ``resamples`` estimates, each made by ``resampled_estimate`` from
    values it draws with replacement through the function it is given (``random.choices``, seeded,
    so that the same values always give the same interval)."""
    draw = random.Random(0).choices
    estimates = sorted(resampled_estimate(draw) for _ in range(resamples))
    tail = (1.0 - confidence) / 2.0
    return estimates[int(tail * resamples)], estimates[math.ceil((1.0 - tail) * resamples) - 1]


def median_interval(
    values: Sequence[float], confidence: float = CONFIDENCE, resamples: int = BOOTSTRAP_RESAMPLES
) -> tuple[float, float]:
    """A bootstrap (percentile) interval for the median of ``values``: the middle ``confidence`` of the
    medians of ``resamples`` resamples drawn with replacement. No assumption about how the rounds
    spread (one slow round is common here and would drag a mean and its t-interval). Seeded, so the
    same values always give the same interval; NaN for fewer than two values."""
    if len(values) < 2:
        return math.nan, math.nan
    return _bootstrap_interval(lambda draw: statistics.median(draw(values, k=len(values))), confidence, resamples)


def balanced_ratio(groups: Sequence[Sequence[float]]) -> float:
    """The geometric mean over ``groups`` of each group's geometric mean of ratios.

    Why: on these machines a process's speed depends on where it was started in a round's start
    order (one run: the copy started first served 11 % more than the one started second). The
    benchmark rotates the start order, so each copy takes each place equally often. Under that
    rotation the places' effects multiply out of the product of the groups' ratios, one group per
    start order. The median of all rounds does not cancel them: it lands in whichever group is in
    the middle. Each group counts once however many rounds it has; NaN when a group is empty."""
    if not groups or any(not group for group in groups):
        return math.nan
    return math.exp(statistics.fmean(statistics.fmean(map(math.log, group)) for group in groups))


def balanced_interval(
    groups: Sequence[Sequence[float]], confidence: float = CONFIDENCE, resamples: int = BOOTSTRAP_RESAMPLES
) -> tuple[float, float]:
    """A bootstrap interval for :func:`balanced_ratio`: each resample draws each group's rounds with
    replacement from that group (a stratified bootstrap, so that the balance is kept). NaN when a
    group has fewer than two rounds."""
    if not groups or any(len(group) < 2 for group in groups):
        return math.nan, math.nan
    return _bootstrap_interval(
        lambda draw: balanced_ratio([draw(group, k=len(group)) for group in groups]), confidence, resamples
    )


def verdict(interval: tuple[float, float], target: float) -> Verdict:
    """``met`` when the whole interval is at or above ``target``, ``missed`` when it is wholly below,
    else ``undecided``: the run cannot tell."""
    low, high = interval
    if low >= target:
        return "met"
    if high < target:
        return "missed"
    return "undecided"


def _fixed_work() -> int:
    """A few tens of milliseconds of pure-Python work (dict inserts, string formatting): the same
    kind of work as the service's, with no I/O."""
    table: dict[str, int] = {}
    for n in range(60_000):
        table[f"key-{n}"] = n * 3
    return len(table)


def machine_noise(samples: int = 12) -> float:
    """The coefficient of variation (per cent) of the CPU time of one fixed piece of work, run
    ``samples`` times back to back. A quiet machine gives 1-3 %; well above that, the host is taking
    the CPU's speed away in bursts, and ratios of seconds-long runs wander by as much."""
    times: list[float] = []
    for _ in range(samples):
        started = time.process_time()
        _fixed_work()
        times.append(time.process_time() - started)
    return 100.0 * statistics.stdev(times) / statistics.mean(times)
