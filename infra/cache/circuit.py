"""Is Redis usable right now? One answer shared by every user of the Redis pool.

When a call fails with a connection error the circuit opens: callers skip Redis
(and use their per-process fallback) instead of each paying a connect timeout.
After ``retry_after`` seconds one caller tries again; the health monitor's ping
also closes the circuit as soon as Redis answers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger("infra.cache")

T = TypeVar("T")

REDIS_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError, OSError)
"""The errors that mean "Redis is not there", as opposed to a bad command."""


class RedisCircuit:
    def __init__(self, retry_after: float = 5.0) -> None:
        self.retry_after = retry_after
        self._open_until = 0.0
        self._open = False

    async def attempt(
        self, operation: Callable[[], Awaitable[T]], errors: tuple[type[BaseException], ...] = REDIS_UNAVAILABLE
    ) -> tuple[bool, T | None]:
        """Run ``operation`` on Redis unless the circuit is open: ``(True, its result)``, or
        ``(False, None)`` when it was skipped or Redis was unavailable (the caller then falls back)."""
        if not self.should_try():
            return False, None
        try:
            result = await operation()
        except errors as exc:
            self.record_failure(exc)
            return False, None
        self.record_success()
        return True, result

    def should_try(self) -> bool:
        return not self._open or time.monotonic() >= self._open_until

    def record_failure(self, error: BaseException) -> None:
        if not self._open:
            logger.warning(
                "redis unavailable (%s: %s); using per-process memory until it returns", type(error).__name__, error
            )
        self._open = True
        self._open_until = time.monotonic() + self.retry_after

    def record_success(self) -> None:
        if self._open:
            logger.info("redis is back; shared state is in redis again")
        self._open = False
