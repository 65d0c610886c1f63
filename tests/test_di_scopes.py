"""The seed's dependency scopes: singleton, cached with a TTL, request, retry with backoff, fallback."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

import pytest
from litestar import Litestar
from litestar.di import NamedDependency, Provide
from sqlalchemy.ext.asyncio import AsyncSession

from app.di import Scope, TracedProvide, as_traced, cached, provide, retrying, singleton, with_fallback
from app.di.scopes import Retry
from app.health import health_registry
from domain.base import Page
from domain.errors import ServiceUnavailableError
from domain.projects.schemas import ProjectOut
from domain.projects.service import ProjectService
from tests.conftest import Actor, serve
from tests.tracing import RecordedTraces


class Calls:
    def __init__(self) -> None:
        self.count = 0


async def resolve_traced(dependency: TracedProvide, traces: RecordedTraces) -> object:
    """Resolve inside a recording parent span, as a sampled request would."""
    tracer = traces.provider.get_tracer("test")
    dependency.tracer = tracer
    with tracer.start_as_current_span("request"):
        return await dependency()


async def test_request_scope_calls_the_provider_every_time() -> None:
    calls = Calls()

    def make() -> int:
        calls.count += 1
        return calls.count

    dependency = provide("counter", make)
    assert dependency.policy.scope is Scope.REQUEST
    assert [await dependency(), await dependency()] == [1, 2]


async def test_singleton_runs_once_and_reports_cache_hits() -> None:
    calls = Calls()

    @singleton
    async def make() -> object:
        calls.count += 1
        await asyncio.sleep(0.01)
        return object()

    dependency = provide("pool", make)
    traces = RecordedTraces()
    first = await resolve_traced(dependency, traces)
    results = await asyncio.gather(*(dependency() for _ in range(10)))
    second = await resolve_traced(dependency, traces)
    assert calls.count == 1
    assert all(result is first for result in results)
    assert second is first
    hits = [span.attributes["di.cache_hit"] for span in traces.spans() if span.name == "di pool" and span.attributes]
    assert hits == [False, True]
    assert {
        span.attributes["di.scope"] for span in traces.spans() if span.attributes and "di.scope" in span.attributes
    } == {"app"}


async def test_cached_ten_concurrent_first_calls_run_the_provider_once_then_expire() -> None:
    calls = Calls()

    @cached(ttl=0.2)
    async def load_flags() -> dict[str, int]:
        calls.count += 1
        await asyncio.sleep(0.05)  # slow enough that all ten callers arrive while it runs
        return {"version": calls.count}

    dependency = provide("feature_flags", load_flags)
    results = await asyncio.gather(*(dependency() for _ in range(10)))
    assert calls.count == 1
    assert all(result == {"version": 1} for result in results)
    assert await dependency() == {"version": 1}  # within the TTL: from the cache
    await asyncio.sleep(0.25)
    assert await dependency() == {"version": 2}  # after the TTL: computed again
    assert calls.count == 2


async def test_a_cached_dependency_is_traced_with_its_scope_and_cache_hits() -> None:
    @cached(ttl=300)
    def load_model_config() -> dict[str, str]:
        return {"model": "highlights-v2"}

    dependency = provide("model_config", load_model_config)
    traces = RecordedTraces()
    for _ in range(3):
        assert await resolve_traced(dependency, traces) == {"model": "highlights-v2"}
    spans = [span for span in traces.spans() if span.name == "di model_config"]
    assert [span.attributes["di.scope"] for span in spans if span.attributes] == ["cached"] * 3
    assert [span.attributes["di.cache_hit"] for span in spans if span.attributes] == [False, True, True]


def test_retry_delays_double_from_the_first_up_to_the_cap() -> None:
    retry = Retry(attempts=5, initial_delay=0.1, max_delay=0.3)
    assert [retry.delay(attempt) for attempt in range(1, 5)] == pytest.approx([0.1, 0.2, 0.3, 0.3])


async def test_retry_waits_at_most_the_backoff_between_attempts(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def recorded_sleep(seconds: float) -> None:
        waits.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr("app.di.registry.asyncio.sleep", recorded_sleep)

    @retrying(attempts=4, initial_delay=0.2, max_delay=0.5)
    def down() -> str:
        raise ConnectionError("down")

    with pytest.raises(ServiceUnavailableError):
        await provide("model", down)()
    # three pauses (none after the last attempt), each a random share of its backoff (full jitter)
    assert len(waits) == 3
    assert all(0 <= wait <= bound for wait, bound in zip(waits, [0.2, 0.4, 0.5], strict=True))


async def test_retry_recovers_from_a_flaky_provider() -> None:
    calls = Calls()

    @retrying(attempts=4, initial_delay=0.001)
    def flaky() -> str:
        calls.count += 1
        if calls.count < 3:
            raise ConnectionError("not yet")
        return "ready"

    traces = RecordedTraces()
    assert await resolve_traced(provide("model", flaky), traces) == "ready"
    span = next(s for s in traces.spans() if s.name == "di model")
    assert span.attributes is not None
    assert span.attributes["di.attempts"] == 3
    assert [event.name for event in span.events] == ["di.retry", "di.retry"]


async def test_retry_gives_up_with_service_unavailable() -> None:
    calls = Calls()

    @retrying(attempts=3, initial_delay=0.001, retry_after=7)
    def down() -> str:
        calls.count += 1
        raise TimeoutError("still down")

    with pytest.raises(ServiceUnavailableError) as raised:
        await provide("model", down)()
    assert calls.count == 3
    assert raised.value.retry_after == 7


async def test_retry_exhausted_is_a_503_in_the_error_shape(build_app: Callable[..., Litestar], alice: Actor) -> None:
    @retrying(attempts=2, initial_delay=0.001, retry_after=11)
    def unreachable(db_session: NamedDependency[AsyncSession]) -> ProjectService:
        raise ConnectionError("model server unreachable")

    async with serve(build_app(overrides={"project_service": unreachable})) as client:
        response = await client.get("/projects", headers=alice.headers)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "11"
    body = response.json()
    assert body == {"error": "project_service is unavailable (failed 2 times)", "request_id": body["request_id"]}


async def test_fallback_serves_memory_logs_once_each_way_and_shows_degraded(caplog: pytest.LogCaptureFixture) -> None:
    primary_up = False

    def memory_cache() -> str:
        return "memory"

    @with_fallback(memory_cache, on=(ConnectionError,))
    def redis_cache() -> str:
        if not primary_up:
            raise ConnectionError("redis is down")
        return "redis"

    dependency = provide("cache", redis_cache)
    traces = RecordedTraces()
    with caplog.at_level(logging.INFO, logger="app.di"):
        assert [await resolve_traced(dependency, traces) for _ in range(3)] == ["memory"] * 3
        assert dependency.degraded
        primary_up = True
        assert [await resolve_traced(dependency, traces) for _ in range(2)] == ["redis"] * 2
        assert not dependency.degraded
    messages = [record.getMessage() for record in caplog.records if record.name == "app.di"]
    assert len(messages) == 2
    assert "serving its fallback" in messages[0]
    assert "recovered" in messages[1]
    # the trace shows which requests the fallback served
    cache_spans = [span for span in traces.spans() if span.name == "di cache"]
    served_by_fallback = [bool(span.attributes and span.attributes.get("di.fallback")) for span in cache_spans]
    assert served_by_fallback == [True, True, True, False, False]


def test_generator_providers_must_be_request_scoped() -> None:
    @singleton
    async def session() -> object:  # pragma: no cover - never called
        yield object()

    with pytest.raises(ValueError, match="request-scoped"):
        provide("session", session)


async def test_a_dependency_on_its_fallback_shows_degraded_in_health(
    build_app: Callable[..., Litestar], alice: Actor
) -> None:
    def memory_service() -> ProjectService:
        return FakeEmptyProjects()

    @with_fallback(memory_service, on=(ConnectionError,))
    def remote_service(db_session: NamedDependency[AsyncSession]) -> ProjectService:
        raise ConnectionError("the remote catalogue is down")

    # a timeout that a busy machine's database meets (0.2 s did not, once: then the database looked down)
    app = build_app(overrides={"project_service": remote_service}, health_check_interval=2.0, health_check_timeout=1.5)
    async with serve(app) as client:
        before = (await client.get("/health/detailed")).json()
        assert before["checks"]["fallbacks"]["status"] == "healthy"
        assert (await client.get("/projects", headers=alice.headers)).json()["total"] == 0  # served by the fallback
        health_registry(app).recheck_soon()
        for _ in range(50):
            after = (await client.get("/health/detailed")).json()
            if after["checks"]["fallbacks"]["status"] == "degraded":
                break
            await asyncio.sleep(0.05)
        ready = await client.get("/health/ready")
    assert after["checks"]["fallbacks"]["status"] == "degraded"
    assert after["dependencies"]["overall"] is True
    assert ready.status_code == 200  # degraded, not unready


class FakeEmptyProjects(ProjectService):
    def __init__(self) -> None:
        pass

    async def list(self, *, limit: int, offset: int, q: str | None = None) -> Page[ProjectOut]:
        return Page(items=[], total=0, limit=limit, offset=offset)


async def test_a_provider_registered_to_run_in_a_thread_still_does_once_traced() -> None:
    ran_in: list[int] = []

    def blocking_lookup() -> str:
        ran_in.append(threading.get_ident())
        return "found"

    threaded = as_traced("lookup", Provide(blocking_lookup, sync_to_thread=True))
    assert await threaded() == "found"
    assert ran_in[-1] != threading.get_ident()  # not on the event loop's thread
    assert threaded.provider is blocking_lookup
    assert threaded.provider_name.endswith("blocking_lookup")
    assert (await threaded.rekeyed("lookup_again")()) == "found"
    assert ran_in[-1] != threading.get_ident()

    inline = as_traced("lookup", Provide(blocking_lookup, sync_to_thread=False))
    assert await inline() == "found"
    assert ran_in[-1] == threading.get_ident()
