"""A Litestar store on Redis that falls back to per-process memory while Redis is down (the seed's fallback)."""

from __future__ import annotations

from datetime import timedelta

from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore

from infra.cache.circuit import REDIS_UNAVAILABLE, RedisCircuit


class FallbackStore(Store):
    """Reads and writes go to ``primary``; when it is unreachable, to a memory store of this process.

    Values written during an outage stay in memory only: after Redis returns they are
    not copied back (a cache may forget; nothing durable lives here).
    """

    def __init__(self, primary: Store, circuit: RedisCircuit, fallback: Store | None = None) -> None:
        self.primary = primary
        self.fallback = fallback or MemoryStore()
        self.circuit = circuit

    async def set(self, key: str, value: str | bytes, expires_in: int | timedelta | None = None) -> None:
        if self.circuit.should_try():
            try:
                await self.primary.set(key, value, expires_in)
            except REDIS_UNAVAILABLE as exc:
                self.circuit.record_failure(exc)
            else:
                self.circuit.record_success()
                return
        await self.fallback.set(key, value, expires_in)

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None:
        if self.circuit.should_try():
            try:
                value = await self.primary.get(key, renew_for)
            except REDIS_UNAVAILABLE as exc:
                self.circuit.record_failure(exc)
            else:
                self.circuit.record_success()
                return value
        return await self.fallback.get(key, renew_for)

    async def delete(self, key: str) -> None:
        await self.fallback.delete(key)
        if self.circuit.should_try():
            try:
                await self.primary.delete(key)
            except REDIS_UNAVAILABLE as exc:
                self.circuit.record_failure(exc)
            else:
                self.circuit.record_success()

    async def delete_all(self) -> None:
        await self.fallback.delete_all()
        await self.primary.delete_all()

    async def exists(self, key: str) -> bool:
        return await self.get(key) is not None

    async def expires_in(self, key: str) -> int | None:
        if self.circuit.should_try():
            try:
                return await self.primary.expires_in(key)
            except REDIS_UNAVAILABLE as exc:
                self.circuit.record_failure(exc)
        return await self.fallback.expires_in(key)
