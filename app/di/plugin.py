"""The plugin that runs after every other: overrides, then one traced registration per key."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.plugins import InitPluginProtocol
from opentelemetry.trace import Tracer

from app.di.registry import traced_dependencies

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
        app_config.dependencies = dict(traced_dependencies(registrations, self.tracer))
        return app_config
