"""The path a tracing dashboard uses: the real server exports OTLP over HTTP to a receiver."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx

from tests.otlp_receiver import ReceivedSpan, otlp_receiver
from tests.server import create_user, running_server, token_for

JWT_SECRET = "otlp-test-secret-0123456789-0123456789"


def _has_post_projects_tree(spans: list[ReceivedSpan]) -> bool:
    names = {span.name for span in spans}
    return {"POST /projects", "di project_service", "di db_session teardown"} <= names


async def test_spans_reach_an_otlp_receiver_with_parent_links_intact(tmp_path: Path) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'otlp.db'}"
    with otlp_receiver() as receiver:
        env = {
            "DATABASE_URL": database_url,
            "JWT_SECRET": JWT_SECRET,
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_SERVICE_NAME": "opusclip-under-test",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
        with running_server(env, tmp_path) as server:
            await create_user(database_url, "tracer@example.com", "long-enough-password", frozenset({"projects:write"}))
            token = token_for(server.url, "tracer@example.com", "long-enough-password")
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
                response = await client.post(
                    "/projects", json={"name": "seen on the dashboard"}, headers={"Authorization": f"Bearer {token}"}
                )
            assert response.status_code == 201, response.text
            spans = receiver.wait_for(_has_post_projects_tree)

    request = next(span for span in spans if span.name == "POST /projects")
    assert request.service_name == "opusclip-under-test"
    assert request.attributes["http.route"] == "/projects"
    in_trace = [span for span in spans if span.trace_id == request.trace_id]
    children = {span.name for span in in_trace if span.parent_span_id == request.span_id}
    assert {"di db_session", "di project_service", "di current_user", "di db_session teardown"} <= children
    statements = [span for span in in_trace if "db.system" in span.attributes]
    assert statements
    assert all(span.parent_span_id == request.span_id for span in statements)


async def test_spans_still_queued_at_sigterm_reach_the_receiver(tmp_path: Path) -> None:
    with otlp_receiver() as receiver:
        env = {
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'flush.db'}",
            "JWT_SECRET": JWT_SECRET,
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "600000",  # ten minutes: only the shutdown can send them
            "SHUTDOWN_DRAIN_DELAY": "0",
        }
        with running_server(env, tmp_path) as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
                for _ in range(3):
                    assert (await client.get("/projects")).status_code == 401
            await asyncio.sleep(0.5)
            with receiver.lock:
                assert receiver.spans == []  # still in the batch processor's queue
            exit_code = server.terminate()
            log = server.log()
        assert exit_code in {0, -signal.SIGTERM}, log[-3000:]
        spans = receiver.wait_for(lambda spans: len(spans) >= 3, timeout=10)

    assert [span.name for span in spans] == ["GET /projects"] * 3
