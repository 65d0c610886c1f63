"""A pooled redis.asyncio client and the Litestar store registry on top of it."""

from __future__ import annotations

from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore
from litestar.stores.redis import RedisStore
from litestar.stores.registry import StoreRegistry
from redis.asyncio import Redis


def create_redis_client(url: str, *, max_connections: int = 50, timeout: float = 2.0) -> Redis:
    """Connections are opened lazily, so this touches no network until first use."""
    return Redis.from_url(
        url,
        max_connections=max_connections,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        health_check_interval=30,
    )


def redis_store_registry(client: Redis, namespace: str) -> StoreRegistry:
    def factory(name: str) -> Store:
        return RedisStore(client, namespace=f"{namespace}:{name}", handle_client_shutdown=False)

    return StoreRegistry(default_factory=factory)


def memory_store_registry() -> StoreRegistry:
    return StoreRegistry(default_factory=lambda _: MemoryStore())
