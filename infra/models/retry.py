"""Exponential backoff with jitter for background load retries."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """When to try loading a model again after a failed attempt.

    The n-th retry waits ``min(max_delay, initial_delay * multiplier ** (n - 1))`` seconds,
    spread by +/- ``jitter`` (a fraction) so that replicas that failed together do not retry
    in lockstep. ``max_attempts`` bounds the total attempts (first one included); ``None``
    retries for ever. The defaults give up after about a quarter of an hour.
    """

    initial_delay: float = 1.0
    max_delay: float = 60.0
    multiplier: float = 2.0
    jitter: float = 0.2
    max_attempts: int | None = 20

    def __post_init__(self) -> None:
        if self.initial_delay < 0 or self.max_delay < self.initial_delay:
            raise ValueError("need 0 <= initial_delay <= max_delay")
        if self.multiplier < 1:
            raise ValueError("multiplier must be >= 1")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1 or None")

    def allows(self, attempts: int) -> bool:
        """Whether another attempt may follow ``attempts`` failed ones."""
        return self.max_attempts is None or attempts < self.max_attempts

    def delay(self, failures: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before the attempt that follows ``failures`` (>= 1) failed ones."""
        exponent = max(failures - 1, 0)
        # Cap the exponent so that a long outage cannot overflow the float.
        base = min(self.max_delay, self.initial_delay * self.multiplier ** min(exponent, 64))
        spread = (rng or random).uniform(-self.jitter, self.jitter)
        return max(0.0, base * (1.0 + spread))
