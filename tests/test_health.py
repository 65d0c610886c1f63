"""The probes of API.md, answered from the background monitor's latest results."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import pytest
from litestar import Litestar
from sqlalchemy import event

from app.health import Group, HealthCheck, HealthRegistry, health_registry
from app.health.monitor import HealthPlugin
from app.plugins.database import DatabasePlugin
from tests.conftest import Api, serve
from tests.openapi_document import allows, response_schema
from tests.test_metrics import samples


async def test_probes_answer_when_everything_is_up(api: Api) -> None:
    client = api.client
    assert (await client.get("/health/live")).json() == {"status": "ok"}
    assert (await client.get("/health/startup")).json() == {"status": "started"}
    ready = await client.get("/health/ready")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
    health = await client.get("/health")
    assert health.status_code == 200
    assert health.json()["status"] == "healthy"
    assert set(health.json()) == {"status", "uptime", "timestamp"}


async def test_ready_verbose_lists_each_check_like_kubernetes_readyz(api: Api, document: dict[str, Any]) -> None:
    response = await api.client.get("/health/ready?verbose")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    for status in ("200", "503"):  # the document gives both answers
        assert {"application/json", "text/plain"} <= set(
            document["paths"]["/health/ready"]["get"]["responses"][status]["content"]
        )
    lines = response.text.splitlines()
    for check in ("database", "schema", "cache", "http_client"):
        assert f"[+]{check} ok" in lines
    assert lines[-1] == "readyz check passed"


async def test_detailed_shows_statuses_to_everyone_and_latencies_to_admins(api: Api) -> None:
    public = await api.client.get("/health/detailed")
    assert public.status_code == 200
    body = public.json()
    assert body["dependencies"] == {
        "database": True,
        "cache": True,
        "models": True,
        "services": True,
        "overall": True,
    }
    assert body["checks"]["database"] == {"status": "healthy", "required": True}
    assert body["checks"]["cache"]["required"] is False

    admin = await api.actor(scopes=["admin"])
    detailed = (await api.client.get("/health/detailed", headers=admin.headers)).json()
    database = detailed["checks"]["database"]
    assert database["status"] == "healthy"
    assert isinstance(database["latency_ms"], float)
    assert database["error"] is None
    assert database["detail"] in {"sqlite", "postgresql"}

    not_admin = await api.actor(scopes=["projects:read"])
    plain = (await api.client.get("/health/detailed", headers=not_admin.headers)).json()
    assert "latency_ms" not in plain["checks"]["database"]


async def test_probes_never_touch_the_database(api: Api) -> None:
    engine = api.app.plugins.get(DatabasePlugin).engine(api.app)
    statements: list[str] = []
    probing: ContextVar[bool] = ContextVar("probing", default=False)

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if probing.get():  # issued while serving a probe, not by the monitor or the job reaper
            statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    token = probing.set(True)
    try:
        for path in ("/health/live", "/health/ready", "/health/ready?verbose", "/health", "/health/detailed") * 5:
            assert (await api.client.get(path)).status_code == 200
    finally:
        probing.reset(token)
        event.remove(engine.sync_engine, "before_cursor_execute", count)
    assert statements == []


async def test_the_monitor_publishes_dependency_health(api: Api) -> None:
    # the gauge belongs to the process, and other tests' apps publish to it too: this app's monitor
    # runs again before it is read
    registry = health_registry(api.app)
    checked_before = max(result.checked_at for result in registry.latest.values())
    registry.recheck_soon()
    for _ in range(100):
        if max(result.checked_at for result in registry.latest.values()) > checked_before:
            break
        await asyncio.sleep(0.05)
    metrics = samples((await api.client.get("/metrics")).text)
    health = {s.labels["dependency"]: s.value for s in metrics["dependency_health"]}
    assert health["database"] == 1.0
    assert health["schema"] == 1.0
    assert health["http_client"] == 1.0


async def test_draining_turns_readiness_503_and_keeps_liveness(build_app: Callable[..., Litestar]) -> None:
    app = build_app()
    async with serve(app) as client:
        health_registry(app).draining = True
        ready = await client.get("/health/ready")
        assert (ready.status_code, ready.json()) == (503, {"status": "unavailable"})
        assert "[-]draining" in (await client.get("/health/ready?verbose")).text
        assert (await client.get("/health/live")).status_code == 200


async def test_startup_waits_for_every_gate(build_app: Callable[..., Litestar]) -> None:
    app = build_app()
    async with serve(app) as client:
        health_registry(app).require_startup("models")
        startup = await client.get("/health/startup")
        assert (startup.status_code, startup.json()) == (503, {"status": "starting", "pending": ["models"]})
        assert (await client.get("/health/ready")).status_code == 503
        health_registry(app).startup_done("models")
        assert (await client.get("/health/startup")).status_code == 200


async def test_probe_answers_match_their_documented_schemas(
    api: Api, document: dict[str, Any], build_app: Callable[..., Litestar]
) -> None:
    probes = ("/health", "/health/detailed", "/health/live", "/health/ready", "/health/startup")
    admin = await api.actor(scopes=["admin"])
    for path in probes:
        for headers in ({}, admin.headers):  # admins see more of /health/detailed
            response = await api.client.get(path, headers=headers)
            assert response.status_code == 200, (path, response.text)
            assert allows(response_schema(document, "GET", path, 200), response.json()), (path, response.text)
    app = build_app()
    async with serve(app) as client:
        health_registry(app).require_startup("models")
        for path in probes:
            response = await client.get(path)
            status = 200 if path == "/health/live" else 503
            assert response.status_code == status, (path, response.text)
            assert allows(response_schema(document, "GET", path, status), response.json()), (path, response.text)


async def test_a_slow_check_cannot_hang_the_run_and_checks_run_concurrently() -> None:
    together = asyncio.Barrier(3)

    async def meets_the_others(_: Litestar) -> str:
        async with asyncio.timeout(5):
            await together.wait()  # passes only if all three checks run at the same time
        return "met"

    async def hangs(_: Litestar) -> str:
        await asyncio.sleep(3600)
        return "never"

    registry = HealthRegistry(default_timeout=0.2)
    for name in ("a", "b", "c"):
        registry.register(HealthCheck(name, Group.SERVICES, meets_the_others, timeout=5))
    registry.register(HealthCheck("stuck", Group.SERVICES, hangs, required=False))
    results = await asyncio.wait_for(registry.run(None), timeout=10)  # type: ignore[arg-type]
    assert [results[name].ok for name in ("a", "b", "c")] == [True, True, True]
    assert not results["stuck"].ok
    assert results["stuck"].error == "no answer within 0.2 s"
    assert registry.ready  # "stuck" is optional: degraded, not unready


async def test_transitions_are_logged_once_each_way(caplog: pytest.LogCaptureFixture) -> None:
    up = True

    async def flapping(_: Litestar) -> str:
        if not up:
            raise ConnectionError("refused")
        return "up"

    registry = HealthRegistry()
    registry.register(HealthCheck("flappy", Group.SERVICES, flapping))
    with caplog.at_level(logging.INFO, logger="app.health"):
        for state in (True, True, False, False, False, True, True):
            up = state
            await HealthPlugin.check_now(None, registry)  # type: ignore[arg-type]
    messages = [r.getMessage() for r in caplog.records if r.name == "app.health"]
    assert messages == [
        "dependency flappy is unhealthy: ConnectionError: refused",
        "dependency flappy is healthy again",
    ]
