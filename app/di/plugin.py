"""The plugin that runs after every other: overrides, then one traced registration per key."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.plugins import InitPluginProtocol
from opentelemetry.trace import Tracer

from app.di.registry import TracedProvide, traced_dependencies
from app.health.checks import CheckFunction, Group, HealthCheck, health_registry

Overrides = Mapping[str, Callable[..., Any] | Provide]


class DependencyRegistryPlugin(InitPluginProtocol):
    """Applies ``create_app(overrides=...)`` and routes every app-level registration through ``provide``.

    Plugins of libraries (advanced-alchemy's ``db_engine``, say) register plain
    ``Provide`` objects; this makes them traced too, so no key resolves untraced.
    Being the last plugin, an override replaces a key whichever plugin registered it.
    """

    def __init__(self, overrides: Overrides, tracer: Tracer | None) -> None:
        self.overrides = overrides
        self.tracer = tracer

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        registrations = {**app_config.dependencies, **self.overrides}
        traced = traced_dependencies(registrations, self.tracer)
        app_config.dependencies = dict(traced)
        with_fallback = [dependency for dependency in traced.values() if dependency.policy.fallback is not None]
        if with_fallback:
            health_registry(app_config).register(
                HealthCheck("fallbacks", Group.SERVICES, _no_fallback_in_use(with_fallback), required=False)
            )
        return app_config


def _no_fallback_in_use(dependencies: list[TracedProvide]) -> CheckFunction:
    """A dependency serving its fallback shows as degraded in health (the seed's cache fallback)."""

    async def check(_: Litestar) -> str:
        degraded = sorted(dependency.key for dependency in dependencies if dependency.degraded)
        if degraded:
            raise RuntimeError(f"serving the fallback of: {', '.join(degraded)}")
        return f"primary in use: {', '.join(sorted(d.key for d in dependencies))}"

    return check
