"""The one way a dependency is registered: :func:`provide`, which makes a :class:`TracedProvide`.

Every resolution of a key becomes a span named ``di <key>``, a child of the request
span, with the key, the scope, whether the value came from a cache, and the
exception when the provider raised. Generator (``yield``) providers get their
set-up traced under ``di <key>`` and their teardown under ``di <key> teardown``.
Every resolution also counts in ``dependency_requests_total`` and
``dependency_duration_seconds``.

When the request is not sampled (its span is not recording) or tracing is off, the
wrapper creates no span object: it reads one context variable and calls the
provider.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import random
import time
from collections.abc import AsyncGenerator, Callable, Generator, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from litestar.di import Provide
from litestar.utils.sync import AsyncCallable
from opentelemetry.trace import Span, Status, StatusCode, Tracer

from app.di.scopes import Policy, Scope, policy_of
from domain.errors import ServiceUnavailableError
from infra.telemetry.current_span import current_span_is_recording, enter_span, leave_span
from infra.telemetry.metrics import DEPENDENCY_DURATION, DEPENDENCY_REQUESTS
from infra.telemetry.tracing import child_span

__all__ = ["TracedProvide", "as_traced", "provide"]

logger = logging.getLogger("app.di")

_OK, _ERROR = "ok", "error"


def _describe(provider: Callable[..., Any]) -> str:
    module = getattr(provider, "__module__", None) or ""
    name = getattr(provider, "__qualname__", None) or type(provider).__qualname__
    return f"{module}.{name}" if module else name


class TracedProvide(Provide):
    """A Litestar ``Provide`` that knows its key and scope, and traces and counts each resolution."""

    __slots__ = (
        "_cached",
        "_degraded",
        "_lock",
        "attributes",
        "key",
        "metrics",
        "policy",
        "provider",
        "provider_name",
        "span_attributes",
        "span_name",
        "teardown_span_name",
        "tracer",
    )

    def __init__(
        self,
        key: str,
        dependency: Callable[..., Any],
        *,
        policy: Policy | None = None,
        tracer: Tracer | None = None,
        sync_to_thread: bool = False,
    ) -> None:
        """``sync_to_thread``: run a plain sync provider in a worker thread (one that blocks on I/O),
        as Litestar's ``Provide`` does; a ``Provide`` that already wrapped its provider for that hands
        over the wrapper, which is unwrapped here."""
        if isinstance(dependency, AsyncCallable):
            dependency, sync_to_thread = dependency.func, True
        is_plain_sync = not (
            inspect.iscoroutinefunction(dependency)
            or inspect.isasyncgenfunction(dependency)
            or inspect.isgeneratorfunction(dependency)
            or inspect.iscoroutinefunction(getattr(dependency, "__call__", None))  # noqa: B004
        )
        # Litestar warns unless sync_to_thread is given for plain sync callables and None for the rest
        super().__init__(dependency, sync_to_thread=sync_to_thread if is_plain_sync else None)
        self.provider = dependency
        """The provider as registered (``dependency`` is Litestar's thread wrapper of it when it runs in a thread)."""
        self.key = key
        self.policy = policy or policy_of(dependency)
        if self.is_generator and (self.policy.scope is not Scope.REQUEST or self.policy.retry or self.policy.fallback):
            raise ValueError(f"dependency {key!r}: a generator provider can only be request-scoped, without retry")
        self.tracer = tracer
        self.provider_name = _describe(dependency)
        self.span_name = f"di {key}"
        self.teardown_span_name = f"di {key} teardown"
        # the provider's name is not repeated on every span: ``litestar deps`` shows it for each key
        self.attributes: dict[str, str] = {"di.key": key, "di.scope": self.policy.scope.value}
        # a request-scoped value never comes from a cache: its span can say so from the start
        self.span_attributes: dict[str, str | bool] = (
            {**self.attributes, "di.cache_hit": False} if self.policy.scope is Scope.REQUEST else dict(self.attributes)
        )
        self.metrics = (
            DEPENDENCY_REQUESTS.labels(key, _OK),
            DEPENDENCY_REQUESTS.labels(key, _ERROR),
            DEPENDENCY_DURATION.labels(key),
        )
        self._cached: tuple[Any, float] | None = None
        self._lock = asyncio.Lock()
        self._degraded = False

    @property
    def is_generator(self) -> bool:
        return self.has_sync_generator_dependency or self.has_async_generator_dependency

    @property
    def degraded(self) -> bool:
        """True while a provider with a fallback is serving the fallback."""
        return self._degraded

    def rekeyed(self, key: str) -> TracedProvide:
        return TracedProvide(
            key, self.provider, policy=self.policy, tracer=self.tracer, sync_to_thread=self.sync_to_thread
        )

    async def __call__(self, **kwargs: Any) -> Any:
        if self.is_generator:
            generator = self.dependency(**kwargs)
            if self.has_async_generator_dependency:
                return self._traced_async_generator(generator)
            return self._traced_generator(generator)
        started = time.perf_counter()
        ok_count, error_count, duration = self.metrics
        try:
            if self.tracer is None or not current_span_is_recording():
                value = await self._resolve(kwargs, None)
            else:
                value = await self._resolve_traced(kwargs, self.tracer)
        except BaseException:
            error_count.inc()
            raise
        finally:
            duration.observe(time.perf_counter() - started)
        ok_count.inc()
        return value

    async def _resolve_traced(self, kwargs: dict[str, Any], tracer: Tracer) -> Any:
        """The span of this resolution. Only an async provider's span becomes the current one: an
        async provider may await I/O whose spans belong under it; a sync one cannot, and skipping
        the context switch saves a few microseconds on every sampled request."""
        span = tracer.start_span(self.span_name, attributes=self.span_attributes)
        try:
            if self.has_sync_callable and self.policy.retry is None:
                return await self._resolve(kwargs, span)
            token = enter_span(span)
            try:
                return await self._resolve(kwargs, span)
            finally:
                leave_span(token)
        except BaseException as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            raise
        finally:
            span.end()

    async def _resolve(self, kwargs: dict[str, Any], span: Span | None) -> Any:
        if self.policy.scope is Scope.REQUEST:
            value, _ = await self._produce(kwargs, span)
            return value
        hit, value = self._cache_lookup()
        if not hit:
            async with self._lock:
                hit, value = self._cache_lookup()
                if not hit:
                    value, from_fallback = await self._produce(kwargs, span)
                    if not from_fallback:
                        ttl = self.policy.ttl if self.policy.scope is Scope.CACHED else None
                        self._cached = (value, math.inf if ttl is None else time.monotonic() + ttl)
        if span is not None:
            span.set_attribute("di.cache_hit", hit)
        return value

    def _cache_lookup(self) -> tuple[bool, Any]:
        cached = self._cached
        if cached is not None and cached[1] > time.monotonic():
            return True, cached[0]
        return False, None

    async def _produce(self, kwargs: dict[str, Any], span: Span | None) -> tuple[Any, bool]:
        """The value (retried as the policy says) or the fallback's, and whether it is the fallback's."""
        fallback = self.policy.fallback
        if fallback is None:
            return await self._call_with_retry(kwargs, span), False
        try:
            value = await self._call_with_retry(kwargs, span)
        except fallback.on as exc:
            if not self._degraded:
                self._degraded = True
                logger.warning("dependency %s failed (%s: %s); serving its fallback", self.key, type(exc).__name__, exc)
            if span is not None:
                span.set_attribute("di.fallback", True)
            result = fallback.provider()
            return (await result if inspect.isawaitable(result) else result), True
        if self._degraded:
            self._degraded = False
            logger.info("dependency %s recovered; its fallback is no longer used", self.key)
        return value, False

    async def _call_with_retry(self, kwargs: dict[str, Any], span: Span | None) -> Any:
        retry = self.policy.retry
        if retry is None:
            return await self._call(kwargs)
        for attempt in range(1, retry.attempts + 1):
            try:
                value = await self._call(kwargs)
            except retry.retry_on as exc:
                if span is not None:
                    span.add_event("di.retry", {"attempt": attempt, "exception.type": type(exc).__name__})
                if attempt == retry.attempts:
                    raise ServiceUnavailableError(
                        f"{self.key} is unavailable (failed {attempt} times)", retry_after=retry.retry_after
                    ) from exc
                # full jitter keeps many pods from retrying in step
                await asyncio.sleep(random.uniform(0, retry.delay(attempt)))
            else:
                if span is not None:
                    span.set_attribute("di.attempts", attempt)
                return value
        raise AssertionError("unreachable")  # pragma: no cover

    async def _call(self, kwargs: dict[str, Any]) -> Any:
        if self.has_sync_callable:
            return self.dependency(**kwargs)
        return await self.dependency(**kwargs)

    # generator providers --------------------------------------------------------------------------

    def _span(self, name: str) -> AbstractContextManager[Span | None]:
        """A current span for a generator's set-up or teardown; nothing at all when not traced."""
        return child_span(self.tracer, name, self.attributes)

    @contextmanager
    def _measured(self) -> Iterator[None]:
        """Count one resolution (ok or error) and its duration, as :meth:`__call__` does inline."""
        started = time.perf_counter()
        ok_count, error_count, duration = self.metrics
        try:
            yield
        except BaseException:
            error_count.inc()
            raise
        else:
            ok_count.inc()
        finally:
            duration.observe(time.perf_counter() - started)

    async def _traced_async_generator(self, generator: AsyncGenerator[Any, None]) -> AsyncGenerator[Any, None]:
        with self._measured(), self._span(self.span_name):
            value = await anext(generator)
        try:
            yield value
        except BaseException as exc:
            with self._span(self.teardown_span_name) as span:
                if span is not None:
                    span.set_attribute("di.teardown.exception", type(exc).__name__)
                try:
                    await generator.athrow(exc)
                except StopAsyncIteration:
                    return
            raise RuntimeError(f"dependency {self.key!r}: generator did not stop after its teardown") from None
        with self._span(self.teardown_span_name):
            try:
                await anext(generator)
            except StopAsyncIteration:
                return
        raise RuntimeError(f"dependency {self.key!r}: generator yielded more than once")

    def _traced_generator(self, generator: Generator[Any, None, None]) -> Generator[Any, None, None]:
        with self._measured(), self._span(self.span_name):
            value = next(generator)
        try:
            yield value
        except BaseException as exc:
            with self._span(self.teardown_span_name) as span:
                if span is not None:
                    span.set_attribute("di.teardown.exception", type(exc).__name__)
                try:
                    generator.throw(exc)
                except StopIteration:
                    return
            raise RuntimeError(f"dependency {self.key!r}: generator did not stop after its teardown") from None
        with self._span(self.teardown_span_name):
            try:
                next(generator)
            except StopIteration:
                return
        raise RuntimeError(f"dependency {self.key!r}: generator yielded more than once")


def provide(
    key: str,
    provider: Callable[..., Any],
    *,
    scope: Scope | None = None,
    ttl: float | None = None,
) -> TracedProvide:
    """Register ``provider`` under ``key``. The policy comes from the scope decorators on the provider,
    or from ``scope``/``ttl`` here (``provide("flags", load_flags, scope=Scope.CACHED, ttl=300)``)."""
    policy = policy_of(provider)
    if scope is not None or ttl is not None:
        policy = Policy(
            scope=scope or policy.scope,
            ttl=ttl if ttl is not None else policy.ttl,
            retry=policy.retry,
            fallback=policy.fallback,
        )
    return TracedProvide(key, provider, policy=policy)


def as_traced(key: str, registration: Provide | Callable[..., Any]) -> TracedProvide:
    """Route any registration through :func:`provide`: ours, a plugin's plain ``Provide``, or a bare callable."""
    if isinstance(registration, TracedProvide):
        return registration if registration.key == key else registration.rekeyed(key)
    if isinstance(registration, Provide):
        scope = Scope.APP if registration.use_cache else Scope.REQUEST
        # a Provide(..., sync_to_thread=True) hands over its thread wrapper, which TracedProvide unwraps
        return TracedProvide(key, registration.dependency, policy=Policy(scope=scope))
    return provide(key, registration)


def traced_dependencies(
    registrations: Mapping[str, Provide | Callable[..., Any]], tracer: Tracer | None
) -> dict[str, TracedProvide]:
    """Every registration as a :class:`TracedProvide` bound to ``tracer`` (None: tracing off)."""
    traced = {key: as_traced(key, registration) for key, registration in registrations.items()}
    for dependency in traced.values():
        dependency.tracer = tracer
    return traced
