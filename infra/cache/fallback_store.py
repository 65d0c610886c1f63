"""A Litestar store on Redis that falls back to per-process memory while Redis is down (the seed's fallback)."""

from __future__ import annotations

from datetime import timedelta

from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore

from infra.cache.circuit import RedisCircuit


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
        done, _ = await self.circuit.attempt(lambda: self.primary.set(key, value, expires_in))
        if not done:
            await self.fallback.set(key, value, expires_in)

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None:
        done, value = await self.circuit.attempt(lambda: self.primary.get(key, renew_for))
        return value if done else await self.fallback.get(key, renew_for)

    async def delete(self, key: str) -> None:
        await self.fallback.delete(key)
        await self.circuit.attempt(lambda: self.primary.delete(key))

    async def delete_all(self) -> None:
        await self.fallback.delete_all()
        await self.primary.delete_all()

    async def exists(self, key: str) -> bool:
        return await self.get(key) is not None

    async def expires_in(self, key: str) -> int | None:
        done, value = await self.circuit.attempt(lambda: self.primary.expires_in(key))
        return value if done else await self.fallback.expires_in(key)
