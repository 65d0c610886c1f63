"""Logs: JSON lines in production with the request id and trace id on each, one access line per request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.otlp_receiver import otlp_receiver
from tests.server import running_server


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
