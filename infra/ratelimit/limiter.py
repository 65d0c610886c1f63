"""Moving-window rate limits shared by every pod through Redis, with per-process memory while Redis is down.

``limits`` runs each hit as one Lua script in Redis, so concurrent requests (from
any pod) are counted atomically: 200 concurrent requests against a limit of 50 let
exactly 50 through.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from limits import RateLimitItem
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from redis.asyncio import Redis

from infra.cache.circuit import REDIS_UNAVAILABLE, RedisCircuit


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_after: float
    """Seconds until the window has room again."""
    shared: bool
    """Counted in Redis (all pods) rather than in this process alone."""


class RateLimiter:
    def __init__(self, redis: Redis | None, circuit: RedisCircuit | None, namespace: str) -> None:
        self._memory = MovingWindowRateLimiter(MemoryStorage())
        self._circuit = circuit or RedisCircuit()
        self._redis: MovingWindowRateLimiter | None = None
        if redis is not None:
            storage = RedisStorage(
                "async+redis://",
                implementation="redispy",
                connection_pool=redis.connection_pool,  # type: ignore[arg-type]  # documented, not in its hints
                key_prefix=f"{namespace}:ratelimit",
                wrap_exceptions=True,
            )
            self._redis = MovingWindowRateLimiter(storage)

    async def hit(self, item: RateLimitItem, *identifiers: str) -> Decision:
        shared = self._redis
        if shared is not None:
            done, decision = await self._circuit.attempt(
                lambda: self._decide(shared, item, identifiers, shared=True), (StorageError, *REDIS_UNAVAILABLE)
            )
            if done and decision is not None:
                return decision
        return await self._decide(self._memory, item, identifiers, shared=False)

    @staticmethod
    async def _decide(
        limiter: MovingWindowRateLimiter, item: RateLimitItem, identifiers: tuple[str, ...], *, shared: bool
    ) -> Decision:
        allowed = await limiter.hit(item, *identifiers)
        stats = await limiter.get_window_stats(item, *identifiers)
        return Decision(
            allowed=allowed,
            limit=item.amount,
            remaining=max(0, stats.remaining),
            reset_after=max(0.0, stats.reset_time - time.time()),
            shared=shared,
        )
