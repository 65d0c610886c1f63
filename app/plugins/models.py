"""The model pool as a lifespan plugin: loads and warms every model, serves them batched, drains on shutdown.

Start-up loading runs in the background so that the probes answer meanwhile:
``/health/startup`` passes once every model had its first load attempt (the ones
that loaded are warm), and the required ``models`` check keeps readiness at 503
while a model is not serving. A model that failed keeps being retried with backoff;
requests that need it get 503 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.datastructures import State
from litestar.plugins import InitPluginProtocol

from app.di import provide, singleton
from app.health import Group, HealthCheck, health_registry
from app.settings import Settings
from app.telemetry import TRACER_PROVIDER_STATE_KEY
from infra.models import BUILTIN_REPOSITORY, ModelPool, ModelState

logger = logging.getLogger("app.models")

MODEL_POOL_STATE_KEY = "model_pool"


@singleton
def provide_model_pool(state: State) -> ModelPool:
    pool: ModelPool = state[MODEL_POOL_STATE_KEY]
    return pool


class ModelPlugin(InitPluginProtocol):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def repositories(self) -> list[Path]:
        extra = [Path(self.settings.model_dir)] if self.settings.model_dir else []
        return [BUILTIN_REPOSITORY, *extra]

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        registry = health_registry(app_config)
        registry.register(HealthCheck("models", Group.MODELS, _check_models))
        registry.require_startup("models")
        app_config.dependencies["model_pool"] = provide("model_pool", provide_model_pool)
        app_config.lifespan.append(self._lifespan)
        return app_config

    def build_pool(self, app: Litestar | None = None) -> ModelPool:
        settings = self.settings
        return ModelPool(
            self.repositories(),
            device=None if settings.model_device == "auto" else settings.model_device,
            mixed_precision=None if settings.model_mixed_precision == "none" else settings.model_mixed_precision,
            num_threads=settings.model_threads or None,
            batching=settings.model_batching,
            max_pending_items=settings.model_max_pending_items,
            request_timeout=settings.model_request_timeout,
            drain_timeout=settings.shutdown_drain_timeout,
            tracer_provider=None if app is None else app.state.get(TRACER_PROVIDER_STATE_KEY),
        )

    @asynccontextmanager
    async def _lifespan(self, app: Litestar) -> AsyncIterator[None]:
        pool = self.build_pool(app)
        app.state[MODEL_POOL_STATE_KEY] = pool
        registry = health_registry(app)

        async def load() -> None:
            await pool.start()
            registry.startup_done("models")
            registry.recheck_soon()

        loading = asyncio.create_task(load(), name="model-pool-start")
        try:
            yield
        finally:
            if not loading.done():
                loading.cancel()
            await asyncio.gather(loading, return_exceptions=True)
            await pool.close()  # it logs "model pool closed"


async def _check_models(app: Litestar) -> str:
    pool: ModelPool | None = app.state.get(MODEL_POOL_STATE_KEY)
    if pool is None or not pool.started:
        raise RuntimeError("the model pool is starting")
    statuses = pool.status()
    not_serving = {name: s for name, s in statuses.items() if s.state is not ModelState.READY}
    if not_serving:
        raise RuntimeError(
            "; ".join(f"{name} {s.state.value}: {s.last_error or 'loading'}" for name, s in not_serving.items())
        )
    return ", ".join(f"{name} v{s.version} on {s.device}" for name, s in statuses.items())
