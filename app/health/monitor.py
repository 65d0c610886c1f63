"""The seed's background health monitor, as a lifespan plugin.

Every ``HEALTH_CHECK_INTERVAL`` seconds it runs every registered check, keeps the
results for the probes (so readiness never hits the database itself), updates the
``dependency_health`` gauge and logs each transition once: healthy to unhealthy,
and back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.datastructures import State
from litestar.plugins import InitPluginProtocol

from app.di import provide, singleton
from app.health.checks import REGISTRY_STATE_KEY, CheckResult, HealthRegistry, health_registry
from app.health.controller import HealthController
from infra.telemetry.metrics import DEPENDENCY_HEALTH

logger = logging.getLogger("app.health")


class HealthPlugin(InitPluginProtocol):
    """Register it after the plugins whose resources it checks: it starts after them and stops first."""

    def __init__(self, *, interval: float, timeout: float) -> None:
        self.interval = interval
        self.timeout = timeout

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        health_registry(app_config).default_timeout = self.timeout
        app_config.dependencies["health_registry"] = provide("health_registry", provide_health_registry)
        app_config.route_handlers.append(HealthController)
        app_config.lifespan.append(self._lifespan)
        return app_config

    @asynccontextmanager
    async def _lifespan(self, app: Litestar) -> AsyncIterator[None]:
        registry = health_registry(app)
        await self.check_now(app, registry)  # probes answer from real results from the first request on
        task = asyncio.create_task(self._monitor(app, registry), name="health-monitor")
        registry.monitor = task
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            logger.info("health monitor stopped")

    async def _monitor(self, app: Litestar, registry: HealthRegistry) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(registry.wake.wait(), timeout=self.interval)
            registry.wake.clear()
            try:
                await self.check_now(app, registry)
            except Exception:  # a bug in a check must not stop the monitor (liveness watches it)
                logger.exception("health monitor run failed")

    @staticmethod
    async def check_now(app: Litestar, registry: HealthRegistry) -> None:
        for result in (await registry.run(app)).values():
            DEPENDENCY_HEALTH.labels(result.name).set(1 if result.ok else 0)
            _log_transition(registry, result)


@singleton
def provide_health_registry(state: State) -> HealthRegistry:
    registry: HealthRegistry = state[REGISTRY_STATE_KEY]
    return registry


def _log_transition(registry: HealthRegistry, now: CheckResult) -> None:
    """Once per change. While start-up work runs, failures are expected (a model still loading) and
    are not logged; one still failing after start-up is."""
    if not now.ok and now.name not in registry.reported_failures and registry.started:
        registry.reported_failures.add(now.name)
        level = logging.ERROR if now.required else logging.WARNING
        logger.log(level, "dependency %s is %s: %s", now.name, now.status.value, now.error)
    elif now.ok and now.name in registry.reported_failures:
        registry.reported_failures.discard(now.name)
        logger.info("dependency %s is healthy again", now.name)
