"""Every dependency resolution is a span under the request span; unsampled requests cost no spans."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from litestar import Litestar, Request
from litestar.di import NamedDependency, Provide
from litestar.routes import HTTPRoute
from opentelemetry.sdk.trace.export import ConsoleSpanExporter
from opentelemetry.trace import StatusCode, Tracer
from sqlalchemy.ext.asyncio import AsyncSession

from app.di import TracedProvide
from app.settings import Settings, load_settings
from app.telemetry import TelemetryPlugin
from domain.principal import Principal
from domain.projects.service import ProjectService
from tests.backends import Backend
from tests.conftest import Actor, Api, serve
from tests.tracing import RecordedTraces, names


def unsampled_traceparent() -> str:
    """A W3C ``traceparent`` whose sampled flag is off: the caller decided not to trace this request."""
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00"


async def test_post_projects_is_a_request_span_with_a_child_per_dependency(
    build_app: Callable[..., Litestar], alice: Actor
) -> None:
    traces = RecordedTraces()
    async with serve(build_app(tracer_provider=traces.provider)) as client:
        traces.clear()
        response = await client.post("/projects", json={"name": "traced"}, headers=alice.headers)
        assert response.status_code == 201, response.text

    request = traces.named("POST /projects")
    assert request.attributes is not None
    assert request.attributes["http.route"] == "/projects"
    children = traces.children_of(request)
    child_names = names(children)
    for expected in ("di db_session", "di project_service", "di current_user", "di db_session teardown"):
        assert expected in child_names, child_names

    service = traces.named("di project_service")
    assert service.attributes is not None
    assert service.attributes["di.key"] == "project_service"
    assert service.attributes["di.scope"] == "request"
    assert service.attributes["di.cache_hit"] is False
    teardown = traces.named("di db_session teardown")
    assert teardown.attributes is not None
    assert teardown.attributes["db.transaction.outcome"] == "commit"

    statements = [s for s in children if s.attributes and "db.system" in s.attributes]
    assert statements, f"no database span under the request span: {child_names}"
    assert any("INSERT" in str(s.attributes.get("db.statement", "")) for s in statements if s.attributes)
    # the teardown (commit) comes after the statements it commits
    assert teardown.start_time is not None
    assert all(s.end_time is not None and s.end_time <= teardown.start_time for s in statements)


async def test_concurrent_resolutions_are_siblings_under_the_request_span(
    build_app: Callable[..., Litestar], alice: Actor
) -> None:
    traces = RecordedTraces()
    async with serve(build_app(tracer_provider=traces.provider)) as client:
        project = (await client.post("/projects", json={"name": "siblings"}, headers=alice.headers)).json()
        traces.clear()
        response = await client.get(f"/projects/{project['id']}/tasks", headers=alice.headers)
        assert response.status_code == 200

    request = traces.named("GET /projects/{project_id}/tasks")
    assert request.context is not None
    di_spans = [s for s in traces.spans() if s.name.startswith("di ")]
    assert {"di project_service", "di tag_service", "di task_service"} <= set(names(di_spans))
    for span in di_spans:
        assert span.parent is not None
        assert span.parent.span_id == request.context.span_id, span.name


async def test_a_failing_provider_marks_its_span_as_error(build_app: Callable[..., Litestar], alice: Actor) -> None:
    def broken_project_service(db_session: NamedDependency[AsyncSession]) -> ProjectService:
        raise RuntimeError("the provider broke")

    traces = RecordedTraces()
    app = build_app(overrides={"project_service": broken_project_service}, tracer_provider=traces.provider)
    async with serve(app) as client:
        traces.clear()
        response = await client.get("/projects", headers=alice.headers)
    assert response.status_code == 500
    assert "the provider broke" not in response.text
    span = traces.named("di project_service")
    assert span.status.status_code is StatusCode.ERROR
    assert [event.name for event in span.events] == ["exception"]
    assert span.events[0].attributes is not None
    assert span.events[0].attributes["exception.type"] == "RuntimeError"


async def test_generator_dependencies_get_their_teardown_traced(
    build_app: Callable[..., Litestar], alice: Actor
) -> None:
    closed: list[bool] = []

    async def current_user_with_cleanup(request: Request[Principal, Any, Any]) -> AsyncIterator[Principal]:
        yield request.user
        closed.append(True)

    traces = RecordedTraces()
    app = build_app(overrides={"current_user": current_user_with_cleanup}, tracer_provider=traces.provider)
    async with serve(app) as client:
        traces.clear()
        assert (await client.get("/auth/me", headers=alice.headers)).status_code == 200
    assert closed == [True]
    request = traces.named("GET /auth/me")
    assert {"di current_user", "di current_user teardown"} <= set(names(traces.children_of(request)))


class CountingTracer:
    """Wraps a tracer and counts the spans asked of it."""

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer
        self.started = 0

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        self.started += 1
        return self.tracer.start_as_current_span(*args, **kwargs)

    def start_span(self, *args: Any, **kwargs: Any) -> Any:
        self.started += 1
        return self.tracer.start_span(*args, **kwargs)


async def test_an_unsampled_request_creates_no_dependency_span(
    build_app: Callable[..., Litestar], alice: Actor
) -> None:
    traces = RecordedTraces()
    app = build_app(tracer_provider=traces.provider)
    counting = CountingTracer(traces.provider.get_tracer("test"))
    for dependency in app.dependencies.values():
        assert isinstance(dependency, TracedProvide)
        dependency.tracer = counting  # type: ignore[assignment]
    async with serve(app) as client:
        traces.clear()
        unsampled = {**alice.headers, "traceparent": unsampled_traceparent()}
        assert (await client.post("/projects", json={"name": "unsampled"}, headers=unsampled)).status_code == 201
        assert counting.started == 0
        assert [s for s in traces.spans() if s.name.startswith("di ")] == []

        assert (await client.get("/projects", headers=alice.headers)).status_code == 200
        assert counting.started >= 3  # the same route, sampled: the spans are there


def test_every_dependency_of_every_route_is_traced(build_app: Callable[..., Litestar]) -> None:
    app = build_app(overrides={"tag_service": Provide(lambda: None, sync_to_thread=False)})
    seen: set[str] = set()
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            for key, dependency in handler.resolve_dependencies().items():
                assert isinstance(dependency, TracedProvide), f"{route.path}: {key!r} is not traced"
                assert dependency.key == key
                seen.add(key)
    assert {"db_session", "db_engine", "current_user", "project_service", "tag_service", "task_service"} <= seen


async def test_request_spans_skip_probes_and_metrics(build_app: Callable[..., Litestar]) -> None:
    traces = RecordedTraces()
    async with serve(build_app(tracer_provider=traces.provider)) as client:
        traces.clear()
        for path in ("/health", "/health/live", "/metrics"):
            assert (await client.get(path)).status_code == 200
    assert traces.spans() == []


@pytest.mark.parametrize("backend_env", ["postgres"], indirect=True)  # the embedded default has no Redis
async def test_redis_commands_are_spans_under_the_request_that_issued_them(
    build_app: Callable[..., Litestar], backend_env: Backend, alice: Actor
) -> None:
    assert backend_env.redis_url is not None
    traces = RecordedTraces()
    app = build_app(tracer_provider=traces.provider)
    async with serve(app) as client:
        editor = await Api(app, client, backend_env).actor(scopes=["video:process"])
        traces.clear()
        response = await client.post(
            "/video/process?wait=false",
            files={"file": ("clip.mp4", b"not really a video", "video/mp4")},
            data={"processing_type": "thumbnail", "max_length": "1"},
            headers=editor.headers,
        )
        assert response.status_code == 202, response.text
    request = traces.named("POST /video/process")
    redis_spans = [s for s in traces.children_of(request) if s.attributes and s.attributes.get("db.system") == "redis"]
    assert redis_spans, names(traces.spans())  # the job went to the SAQ queue through the traced pool


def test_the_exporter_setting_decides_whether_the_app_owns_a_provider() -> None:
    off = TelemetryPlugin(Settings(otel_traces_exporter="none"), "1.2.3")
    assert (off.exporter, off.owned_provider, off.tracer_provider) == (None, None, None)

    console = TelemetryPlugin(Settings(otel_traces_exporter="console"), "1.2.3")
    assert isinstance(console.exporter, ConsoleSpanExporter)
    provider = console.owned_provider
    assert provider is not None
    assert console.tracer_provider is provider
    assert provider.resource.attributes["service.version"] == "1.2.3"
    provider.shutdown()


@pytest.mark.parametrize(
    ("sampler", "ratio", "recorded"),
    [
        ("always_on", "0.0", True),
        ("always_off", "1.0", False),
        ("traceidratio", "0.0", False),
        ("traceidratio", "1.0", True),
        ("parentbased_traceidratio", "0.0", False),
        ("parentbased_always_on", "0.0", True),
    ],
)
def test_the_sampler_variables_decide_which_requests_are_recorded(sampler: str, ratio: str, recorded: bool) -> None:
    settings = load_settings(
        {
            "OTEL_TRACES_EXPORTER": "console",
            "OTEL_SERVICE_NAME": "opusclip-sampled",
            "OTEL_TRACES_SAMPLER": sampler,
            "OTEL_TRACES_SAMPLER_ARG": ratio,
        },
        env_file=None,
    )
    plugin = TelemetryPlugin(settings, "4.5.6")
    provider = plugin.owned_provider
    assert provider is not None
    try:
        tracer = provider.get_tracer("test")
        root_spans = [tracer.start_span("GET /projects") for _ in range(50)]
        assert [span.is_recording() for span in root_spans] == [recorded] * 50
        assert provider.resource.attributes["service.name"] == "opusclip-sampled"
        assert provider.resource.attributes["service.version"] == "4.5.6"
        assert provider.resource.attributes["deployment.environment.name"] == "development"
    finally:
        provider.shutdown()


async def test_a_failed_request_traces_its_rollback(build_app: Callable[..., Litestar], alice: Actor) -> None:
    traces = RecordedTraces()
    async with serve(build_app(tracer_provider=traces.provider)) as client:
        assert (await client.post("/projects", json={"name": "taken"}, headers=alice.headers)).status_code == 201
        traces.clear()
        duplicate = await client.post("/projects", json={"name": "taken"}, headers=alice.headers)
        assert duplicate.status_code == 409, duplicate.text

    request = traces.named("POST /projects")
    teardown = traces.named("di db_session teardown")
    assert teardown.parent is not None
    assert request.context is not None
    assert teardown.parent.span_id == request.context.span_id
    assert teardown.attributes is not None
    assert teardown.attributes["db.transaction.outcome"] == "rollback"
