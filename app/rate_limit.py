"""Rate limiting as the seed has it: per user (per client IP when anonymous), a default limit and
stricter ones for costly routes, ``RateLimit-*`` headers on every answer and 429 with ``Retry-After``.

Runs after authentication (so it knows the user) and skips probes and metrics, which
Kubernetes and Prometheus must always reach.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import limits
from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.datastructures import MutableScopeHeaders
from litestar.exceptions import TooManyRequestsException
from litestar.middleware import ASGIMiddleware
from litestar.plugins import InitPluginProtocol

from app.errors import send_error_response
from app.plugins.cache import REDIS_CIRCUIT_STATE_KEY, REDIS_STATE_KEY
from domain.principal import Principal
from infra.ratelimit.limiter import Decision, RateLimiter

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

LIMITER_STATE_KEY = "rate_limiter"
EXEMPT_PATH_PREFIXES = ("/health", "/metrics")


@dataclass(frozen=True, slots=True)
class RouteLimit:
    method: str
    path: str
    rate: limits.RateLimitItem
    bucket: str


class RateLimitMiddleware(ASGIMiddleware):
    scopes = ("http",)  # type: ignore[assignment]

    def __init__(self, default: limits.RateLimitItem, routes: tuple[RouteLimit, ...]) -> None:
        self.default = default
        self.routes = {(r.method, r.path): r for r in routes}

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        path = scope["path"]
        if path.startswith(EXEMPT_PATH_PREFIXES):
            await next_app(scope, receive, send)
            return
        method = str(scope.get("method", ""))
        route = self.routes.get((method, path))
        rate, bucket = (route.rate, route.bucket) if route else (self.default, "default")
        user = scope.get("user")
        caller = f"user:{user.id}" if isinstance(user, Principal) else f"ip:{_client_ip(scope)}"
        limiter: RateLimiter = scope["litestar_app"].state[LIMITER_STATE_KEY]
        decision = await limiter.hit(rate, bucket, caller)
        headers = _headers(decision, rate)
        if not decision.allowed:
            retry_after = str(max(1, math.ceil(decision.reset_after)))
            exc = TooManyRequestsException(
                detail=f"rate limit exceeded: {rate.amount} per {rate.get_expiry()} s; retry in {retry_after} s",
                headers={**headers, "Retry-After": retry_after},
            )
            await send_error_response(scope, receive, send, exc)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                mutable = MutableScopeHeaders.from_message(message)
                for name, value in headers.items():
                    mutable[name] = value
            await send(message)

        await next_app(scope, receive, send_with_headers)


def _client_ip(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


def _headers(decision: Decision, rate: limits.RateLimitItem) -> dict[str, str]:
    """The IETF draft's fields (draft-ietf-httpapi-ratelimit-headers)."""
    return {
        "RateLimit-Limit": str(decision.limit),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(math.ceil(decision.reset_after)),
        "RateLimit-Policy": f"{rate.amount};w={rate.get_expiry()}",
    }


class RateLimitPlugin(InitPluginProtocol):
    """Register after the cache plugin (it shares its Redis pool) and after auth (it reads the user)."""

    def __init__(self, *, default: str, routes: dict[tuple[str, str], str], namespace: str) -> None:
        self.default = limits.parse(default)
        self.routes = tuple(
            RouteLimit(method, path, limits.parse(rate), f"{method} {path}") for (method, path), rate in routes.items()
        )
        self.namespace = namespace

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.middleware.append(RateLimitMiddleware(self.default, self.routes))
        app_config.lifespan.append(self._lifespan)
        return app_config

    @asynccontextmanager
    async def _lifespan(self, app: Litestar) -> AsyncIterator[None]:
        state: Any = app.state
        app.state[LIMITER_STATE_KEY] = RateLimiter(
            state.get(REDIS_STATE_KEY), state.get(REDIS_CIRCUIT_STATE_KEY), self.namespace
        )
        yield
