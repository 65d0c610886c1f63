"""The seed's dependency scopes, as policies a provider is registered with.

A provider function is registered under a key with :func:`app.di.provide`; the
policy says how its value lives:

- ``Scope.REQUEST`` (the default): called once per request that needs it;
- ``Scope.APP``: called once, its value shared by every request for the life of the
  app (a singleton; pools and clients that lifespan plugins put in ``app.state``);
- ``Scope.CACHED``: shared for ``ttl`` seconds, then recomputed (model configs,
  feature flags). Ten concurrent first calls run the provider once.

Two wrappers add resilience to any scope:

- :class:`Retry`: a flaky provider is retried with exponential backoff; after the
  last attempt the request gets 503 with ``Retry-After`` (the seed's model retry);
- :class:`Fallback`: when the provider fails, a fallback value is served instead
  (the seed's cache fallback to memory); the switch is logged once each way and the
  dependency reports itself degraded, which health shows.

The decorators (:func:`singleton`, :func:`cached`, :func:`retrying`,
:func:`with_fallback`) attach a policy to a provider function without changing its
signature, so Litestar still sees what the provider depends on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, TypeVar

__all__ = [
    "Fallback",
    "Policy",
    "Retry",
    "Scope",
    "cached",
    "policy_of",
    "retrying",
    "singleton",
    "with_fallback",
]

F = TypeVar("F", bound=Callable[..., Any])

_POLICY_ATTRIBUTE = "__di_policy__"


class Scope(StrEnum):
    APP = "app"
    REQUEST = "request"
    CACHED = "cached"


@dataclass(frozen=True, slots=True)
class Retry:
    """Retry a failing provider: ``attempts`` calls in all, delays doubling from ``initial_delay``."""

    attempts: int = 3
    initial_delay: float = 0.05
    max_delay: float = 1.0
    retry_on: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError, OSError)
    retry_after: int = 5
    """The ``Retry-After`` (seconds) of the 503 that follows the last failed attempt."""

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("Retry.attempts must be at least 1")

    def delay(self, attempt: int) -> float:
        """The pause after failed attempt number ``attempt`` (1-based)."""
        return float(min(self.max_delay, self.initial_delay * 2 ** (attempt - 1)))


@dataclass(frozen=True, slots=True)
class Fallback:
    """Serve ``provider()`` (no arguments, sync or async) when the primary provider raises one of ``on``."""

    provider: Callable[[], Any] | Callable[[], Awaitable[Any]]
    on: tuple[type[BaseException], ...] = (Exception,)


@dataclass(frozen=True, slots=True)
class Policy:
    scope: Scope = Scope.REQUEST
    ttl: float | None = None
    retry: Retry | None = None
    fallback: Fallback | None = None

    def __post_init__(self) -> None:
        if self.scope is Scope.CACHED and (self.ttl is None or self.ttl <= 0):
            raise ValueError("a cached dependency needs a positive ttl")
        if self.scope is not Scope.CACHED and self.ttl is not None:
            raise ValueError("ttl applies to Scope.CACHED only")


def policy_of(provider: Callable[..., Any]) -> Policy:
    """The policy the decorators attached to ``provider`` (request scope when none)."""
    policy = getattr(provider, _POLICY_ATTRIBUTE, None)
    return policy if isinstance(policy, Policy) else Policy()


def _with_policy(provider: F, **changes: Any) -> F:
    setattr(provider, _POLICY_ATTRIBUTE, replace(policy_of(provider), **changes))
    return provider


def singleton(provider: F) -> F:
    """App scope: the provider runs once; every request shares its value."""
    return _with_policy(provider, scope=Scope.APP)


def cached(*, ttl: float) -> Callable[[F], F]:
    """Share the provider's value for ``ttl`` seconds; concurrent first calls run it once."""

    def decorate(provider: F) -> F:
        return _with_policy(provider, scope=Scope.CACHED, ttl=ttl)

    return decorate


def retrying(
    *,
    attempts: int = 3,
    initial_delay: float = 0.05,
    max_delay: float = 1.0,
    retry_on: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError, OSError),
    retry_after: int = 5,
) -> Callable[[F], F]:
    """Retry the provider with exponential backoff; 503 with ``Retry-After`` after the last attempt."""
    retry = Retry(attempts, initial_delay, max_delay, retry_on, retry_after)

    def decorate(provider: F) -> F:
        return _with_policy(provider, retry=retry)

    return decorate


def with_fallback(
    fallback: Callable[[], Any] | Callable[[], Awaitable[Any]],
    *,
    on: tuple[type[BaseException], ...] = (Exception,),
) -> Callable[[F], F]:
    """Serve ``fallback()`` while the provider fails; the dependency then reports itself degraded."""

    def decorate(provider: F) -> F:
        return _with_policy(provider, fallback=Fallback(fallback, on))

    return decorate
