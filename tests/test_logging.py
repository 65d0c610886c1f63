"""Logs: JSON lines in production with the request id and trace id on each, one access line per request."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from litestar import Litestar
from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

from domain.projects.service import ProjectService
from infra.telemetry.logging import configure_logging, flush_logging
from tests.conftest import Actor, serve
from tests.otlp_receiver import otlp_receiver
from tests.server import running_server
from tests.tracing import RecordedTraces


def json_lines(text: str) -> list[dict[str, Any]]:
    lines = []
    for line in text.splitlines():
        if line.startswith("{") and '"event"' in line:
            lines.append(json.loads(line))
    return lines


async def test_production_logs_are_json_with_request_and_trace_ids(tmp_path: Path) -> None:
    with otlp_receiver() as receiver:
        env = {
            "APP_ENV": "production",
            "JWT_SECRET": "logging-test-secret-0123456789-0123456789",
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'logs.db'}",
            "DB_AUTO_MIGRATE": "true",
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        }
        with running_server(env, tmp_path) as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
                missing = await client.get("/projects", headers={"X-Request-ID": "trace-me-123"})
                assert missing.status_code == 401
                assert missing.headers["x-request-id"] == "trace-me-123"
                await client.get("/health/live")
            log = server.log()

    lines = json_lines(log)
    assert lines, log[-2000:]
    assert all({"event", "level", "timestamp", "logger"} <= line.keys() for line in lines)
    access = [line for line in lines if line["logger"] == "app.access"]
    assert len(access) == 1, access  # the probe is logged at DEBUG, below the INFO default
    line = access[0]
    assert line["request_id"] == "trace-me-123"
    assert (line["method"], line["route"], line["status"]) == ("GET", "/projects", 401)
    assert isinstance(line["duration_ms"], float)
    assert len(line["trace_id"]) == 32
    assert len(line["span_id"]) == 16
    assert "Traceback" not in log


@contextmanager
def captured_logs(*, json_lines: bool) -> Iterator[Callable[[], str]]:
    """The service's logging, as ``create_app`` sets it up, into a buffer; the function returns what
    was written so far (the queue drained first)."""
    stream = io.StringIO()
    configure_logging("INFO", json_lines=json_lines, stream=stream)

    def written() -> str:
        flush_logging()
        return stream.getvalue()

    try:
        yield written
    finally:
        configure_logging("INFO", json_lines=False)


async def test_every_line_logged_in_a_request_carries_its_request_and_trace_ids(
    build_app: Callable[..., Litestar], alice: Actor
) -> None:
    def broken_project_service(db_session: NamedDependency[AsyncSession]) -> ProjectService:
        raise RuntimeError("the provider broke")

    traces = RecordedTraces()
    app = build_app(overrides={"project_service": broken_project_service}, tracer_provider=traces.provider)
    with captured_logs(json_lines=True) as written:
        async with serve(app) as client:
            traces.clear()
            response = await client.get("/projects", headers={**alice.headers, "X-Request-ID": "broken-42"})
            assert response.status_code == 500
        lines = json_lines(written())

    request = traces.named("GET /projects")
    assert request.context is not None
    in_request = [line for line in lines if line.get("request_id") == "broken-42"]
    # the error handler's line, not only the access line (which names its request id itself)
    assert {line["event"] for line in in_request} >= {"unhandled error", "GET /projects 500"}, lines
    for line in in_request:
        assert line["trace_id"] == format(request.context.trace_id, "032x"), line
        assert len(line["span_id"]) == 16


async def test_development_logs_are_readable_lines_with_the_request_id(
    build_app: Callable[..., Litestar], alice: Actor
) -> None:
    app = build_app()
    with captured_logs(json_lines=False) as written:
        async with serve(app) as client:
            response = await client.get("/projects", headers={**alice.headers, "X-Request-ID": "dev-7"})
            assert response.status_code == 200
        text = written()

    access = [line for line in text.splitlines() if "GET /projects 200" in line]
    assert len(access) == 1, text
    assert not access[0].lstrip().startswith("{")
    assert "request_id=dev-7" in access[0]
    assert "[app.access" in access[0]
    assert re.search(r"duration_ms=\d", access[0])


async def test_an_unusable_request_id_is_replaced_by_a_new_one(build_app: Callable[..., Litestar]) -> None:
    async with serve(build_app()) as client:
        for sent in ("has spaces in it", "x" * 129, 'quote"d'):
            response = await client.get("/projects", headers={"X-Request-ID": sent})
            assert response.status_code == 401
            answered = response.headers["x-request-id"]
            assert answered != sent
            assert re.fullmatch(r"[0-9a-f]{32}", answered), answered
            assert response.json()["request_id"] == answered
