"""The cache: a redis.asyncio pool behind Litestar's stores when ``REDIS_URL`` is set, memory otherwise.

Redis is optional at run time: while it is down, stores and rate limits fall back to
per-process memory (the circuit in ``app.state`` says which is in use), the ``cache``
health check shows the cache degraded, and no request fails because of it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.datastructures import State
from litestar.plugins import InitPluginProtocol
from redis.asyncio import Redis

from app.di import provide, singleton
from app.health import Group, HealthCheck, health_registry
from app.telemetry import TRACER_PROVIDER_STATE_KEY
from infra.cache.circuit import RedisCircuit
from infra.cache.redis import create_redis_client, memory_store_registry, redis_store_registry
from infra.telemetry.instrumentation import instrument_redis

logger = logging.getLogger("app.cache")

REDIS_STATE_KEY = "redis"
REDIS_CIRCUIT_STATE_KEY = "redis_circuit"


@singleton
def provide_redis(state: State) -> Redis | None:
    client: Redis | None = state.get(REDIS_STATE_KEY)
    return client


class CachePlugin(InitPluginProtocol):
    def __init__(self, redis_url: str | None, namespace: str) -> None:
        self.redis_url = redis_url
        self.namespace = namespace

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        registry = health_registry(app_config)
        if self.redis_url is None:
            app_config.stores = memory_store_registry()
            app_config.state[REDIS_STATE_KEY] = None
            app_config.state[REDIS_CIRCUIT_STATE_KEY] = None
            registry.register(HealthCheck("cache", Group.CACHE, _memory_cache_check, required=False))
        else:
            client = create_redis_client(self.redis_url)
            circuit = RedisCircuit()
            app_config.stores = redis_store_registry(client, self.namespace, circuit)
            app_config.state[REDIS_STATE_KEY] = client
            app_config.state[REDIS_CIRCUIT_STATE_KEY] = circuit
            registry.register(HealthCheck("cache", Group.CACHE, _redis_check, required=False))
            app_config.lifespan.append(self._lifespan)
        app_config.dependencies["redis"] = provide("redis", provide_redis)
        return app_config

    @asynccontextmanager
    async def _lifespan(self, app: Litestar) -> AsyncIterator[None]:
        client: Redis = app.state[REDIS_STATE_KEY]
        tracer_provider = app.state.get(TRACER_PROVIDER_STATE_KEY)
        if tracer_provider is not None:
            instrument_redis(client, tracer_provider)
        logger.info("redis pool opened")
        try:
            yield
        finally:
            await client.aclose()
            await client.connection_pool.disconnect()
            logger.info("redis pool closed")


async def _memory_cache_check(_: Litestar) -> str:
    return "in-process memory (no REDIS_URL)"


async def _redis_check(app: Litestar) -> str:
    """PING through the pool; the result also opens or closes the circuit, so Redis is used again
    within one monitor interval after it returns."""
    client: Redis = app.state[REDIS_STATE_KEY]
    circuit: RedisCircuit = app.state[REDIS_CIRCUIT_STATE_KEY]
    try:
        await client.ping()  # type: ignore[misc]  # redis-py types ping for sync and async clients at once
    except Exception as exc:
        circuit.record_failure(exc)
        raise
    circuit.record_success()
    return "redis"
