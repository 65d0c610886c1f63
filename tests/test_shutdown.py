"""Graceful shutdown on SIGTERM: readiness 503 at once, in-flight requests finish, pools close in reverse."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from tests.backends import REDIS_URL
from tests.server import create_user, running_server, token_for

JWT_SECRET = "shutdown-test-secret-0123456789-0123456789"


async def trickle(payload: bytes, seconds: float, pieces: int = 10) -> AsyncIterator[bytes]:
    """A request body that takes ``seconds`` to arrive: the request is in flight all that time."""
    size = max(1, len(payload) // pieces)
    chunks = [payload[i : i + size] for i in range(0, len(payload), size)]
    for chunk in chunks:
        yield chunk
        await asyncio.sleep(seconds / len(chunks))


async def test_sigterm_drains_in_flight_requests_then_closes_pools_in_reverse(tmp_path: Path) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'drain.db'}"
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "CACHE_NAMESPACE": f"drain-{tmp_path.name}",
        "JWT_SECRET": JWT_SECRET,
        "SHUTDOWN_DRAIN_DELAY": "1.5",
        "SHUTDOWN_DRAIN_TIMEOUT": "20",
    }
    with running_server(env, tmp_path) as server:
        await create_user(database_url, "drain@example.com", "long-enough-password", frozenset({"projects:write"}))
        token = token_for(server.url, "drain@example.com", "long-enough-password")
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        body = json.dumps({"name": "finished during the drain", "description": "x" * 2000}).encode()
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            in_flight = asyncio.create_task(client.post("/projects", content=trickle(body, 3.0), headers=headers))
            await asyncio.sleep(0.5)
            server.process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.2)
            async with httpx.AsyncClient(base_url=server.url, timeout=5) as fresh:
                ready = await fresh.get("/health/ready")
                live = await fresh.get("/health/live")
            response = await in_flight
        exit_code = await asyncio.to_thread(server.process.wait, 30)
        log = server.log()

    assert (ready.status_code, ready.json()) == (503, {"status": "unavailable"})
    assert live.status_code == 200
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "finished during the drain"
    # uvicorn re-raises the signal once shut down, so the exit status says "ended by SIGTERM"
    assert exit_code in {0, -signal.SIGTERM}, log[-3000:]
    assert "Application shutdown complete." in log
    closing = ["health monitor stopped", "http client pool closed", "redis pool closed", "database pool closed"]
    positions = [log.find(line) for line in closing]
    assert all(p >= 0 for p in positions), log[-3000:]
    assert positions == sorted(positions), f"pools closed out of order: {positions}"
    opening = [log.find(line) for line in ("database pool opened", "redis pool opened", "http client pool opened")]
    assert all(p >= 0 for p in opening)
    assert opening == sorted(opening)
