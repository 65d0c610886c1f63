"""A pooled redis.asyncio client and the Litestar store registry on top of it."""

from __future__ import annotations

from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore
from litestar.stores.redis import RedisStore
from litestar.stores.registry import StoreRegistry
from redis.asyncio import BlockingConnectionPool, Redis

from infra.cache.circuit import RedisCircuit
from infra.cache.fallback_store import FallbackStore


def create_redis_client(url: str, *, max_connections: int = 50, timeout: float = 2.0) -> Redis:
    """A client on a *blocking* pool: under a burst, callers wait (up to ``timeout``) for a free
    connection instead of failing with "Too many connections". Connections open lazily."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        health_check_interval=30,
    )
    return Redis(connection_pool=pool)


def redis_store_registry(client: Redis, namespace: str, circuit: RedisCircuit) -> StoreRegistry:
    """Stores on the shared pool, each falling back to process memory while Redis is down."""

    def factory(name: str) -> Store:
        redis_store = RedisStore(client, namespace=f"{namespace}:{name}", handle_client_shutdown=False)
        return FallbackStore(redis_store, circuit)

    return StoreRegistry(default_factory=factory)


def memory_store_registry() -> StoreRegistry:
    return StoreRegistry(default_factory=lambda _: MemoryStore())
