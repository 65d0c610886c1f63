"""Probes. Liveness checks nothing outside the process; readiness checks the schema and the database."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from litestar import Controller, Response, get
from litestar.datastructures import State
from litestar.di import NamedDependency
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.plugins.database import SCHEMA_READY_STATE_KEY

STARTED_AT_STATE_KEY = "started_at"
DB_CHECK_TIMEOUT = 2.0


async def _database_ok(engine: AsyncEngine) -> bool:
    try:
        async with asyncio.timeout(DB_CHECK_TIMEOUT), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:
        return False
    return True


class HealthController(Controller):
    path = "/health"
    tags = ["health"]
    include_in_schema = True

    @get("/", summary="Overall status")
    async def health(self, state: State) -> dict[str, Any]:
        started = state.get(STARTED_AT_STATE_KEY, time.monotonic())
        return {
            "status": "healthy",
            "uptime": round(time.monotonic() - started, 3),
            "timestamp": datetime.now(UTC).isoformat(),
        }

    @get("/live", summary="Liveness: the process can serve")
    async def live(self) -> dict[str, str]:
        return {"status": "ok"}

    @get("/ready", summary="Readiness: every required dependency answers")
    async def ready(self, state: State, db_engine: NamedDependency[AsyncEngine]) -> Response[dict[str, Any]]:
        checks = {
            "schema": bool(state.get(SCHEMA_READY_STATE_KEY, False)),
            "database": await _database_ok(db_engine),
        }
        ok = all(checks.values())
        body = {
            "status": "ok" if ok else "unavailable",
            "checks": {k: "ok" if v else "failed" for k, v in checks.items()},
        }
        return Response(body, status_code=200 if ok else 503)

    @get("/startup", summary="Start-up work is done")
    async def startup(self, state: State) -> Response[dict[str, str]]:
        ok = bool(state.get(SCHEMA_READY_STATE_KEY, False))
        return Response({"status": "ok" if ok else "starting"}, status_code=200 if ok else 503)
