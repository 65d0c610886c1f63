"""The cache: a redis.asyncio pool behind Litestar's stores when ``REDIS_URL`` is set, memory otherwise."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.datastructures import State
from litestar.plugins import InitPluginProtocol
from redis.asyncio import Redis

from app.di import provide, singleton
from app.telemetry import TRACER_PROVIDER_STATE_KEY
from infra.cache.redis import create_redis_client, memory_store_registry, redis_store_registry
from infra.telemetry.instrumentation import instrument_redis

REDIS_STATE_KEY = "redis"


@singleton
def provide_redis(state: State) -> Redis | None:
    client: Redis | None = state.get(REDIS_STATE_KEY)
    return client


class CachePlugin(InitPluginProtocol):
    def __init__(self, redis_url: str | None, namespace: str) -> None:
        self.redis_url = redis_url
        self.namespace = namespace

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        if self.redis_url is None:
            app_config.stores = memory_store_registry()
            app_config.state[REDIS_STATE_KEY] = None
        else:
            client = create_redis_client(self.redis_url)
            app_config.stores = redis_store_registry(client, self.namespace)
            app_config.state[REDIS_STATE_KEY] = client
            app_config.lifespan.append(self._lifespan)
        app_config.dependencies["redis"] = provide("redis", provide_redis)
        return app_config

    @asynccontextmanager
    async def _lifespan(self, app: Litestar) -> AsyncIterator[None]:
        client: Redis = app.state[REDIS_STATE_KEY]
        tracer_provider = app.state.get(TRACER_PROVIDER_STATE_KEY)
        if tracer_provider is not None:
            instrument_redis(client, tracer_provider)
        try:
            yield
        finally:
            await client.aclose()
            await client.connection_pool.disconnect()
