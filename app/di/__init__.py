"""Dependency injection: every key is registered through :func:`provide`, and every resolution is traced.

- :mod:`app.di.scopes`: the scopes (request, app, cached with a TTL) and the retry and
  fallback wrappers, as decorators on provider functions;
- :mod:`app.di.registry`: :class:`TracedProvide`, the span-and-metrics wrapper;
- :mod:`app.di.providers`: the service keys;
- :mod:`app.di.plugin`: the plugin that runs last, applies ``create_app(overrides=...)``
  and routes every registration of every plugin through :func:`provide`.
"""

from app.di.registry import TracedProvide, as_traced, provide
from app.di.scopes import Scope, cached, retrying, singleton, with_fallback

__all__ = ["Scope", "TracedProvide", "as_traced", "cached", "provide", "retrying", "singleton", "with_fallback"]
