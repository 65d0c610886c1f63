"""Degraded modes against the real server: PostgreSQL and Redis go away behind a TCP proxy, then return."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
import redis.asyncio as redis

from infra.cache.circuit import RedisCircuit
from infra.cache.redis import create_redis_client, redis_store_registry
from tests.backends import POSTGRES_ADMIN_DSN, REDIS_URL, postgres_database
from tests.server import create_user, running_server, token_for
from tests.tcp_proxy import tcp_proxy

JWT_SECRET = "degraded-test-secret-0123456789-0123456789"
FAST_HEALTH = {"HEALTH_CHECK_INTERVAL": "0.5", "HEALTH_CHECK_TIMEOUT": "0.4"}


async def eventually(condition: Callable[[], Awaitable[bool]], within: float, what: str) -> float:
    """Poll ``condition`` until it holds; the seconds it took. Fails after ``within`` seconds."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        if await condition():
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {within} s")


async def test_postgres_outage_gives_503_then_recovers_without_losing_a_committed_write(tmp_path: Path) -> None:
    pg = urlsplit(POSTGRES_ADMIN_DSN)
    async with postgres_database() as direct_url:
        database = direct_url.rsplit("/", 1)[1]
        with tcp_proxy(pg.hostname or "127.0.0.1", pg.port or 5432) as proxy:
            proxied_url = f"postgresql+asyncpg://{pg.username or 'postgres'}@127.0.0.1:{proxy.port}/{database}"
            env = {
                "DATABASE_URL": proxied_url,
                "DB_AUTO_MIGRATE": "true",
                "JWT_SECRET": JWT_SECRET,
                "RATE_LIMIT_DEFAULT": "100000/minute",
                **FAST_HEALTH,
            }
            with running_server(env, tmp_path) as server:
                await create_user(proxied_url, "pg@example.com", "long-enough-password", frozenset({"projects:write"}))
                token = token_for(server.url, "pg@example.com", "long-enough-password")
                headers = {"Authorization": f"Bearer {token}"}
                outcomes: list[tuple[str, httpx.Response]] = []
                stop = asyncio.Event()

                async with httpx.AsyncClient(base_url=server.url, timeout=15) as client:

                    async def writer() -> None:
                        while not stop.is_set():
                            name = f"p-{uuid.uuid4().hex}"
                            response = await client.post("/projects", json={"name": name}, headers=headers)
                            outcomes.append((name, response))
                            await asyncio.sleep(0.02)

                    async def ready_status() -> int:
                        return (await client.get("/health/ready")).status_code

                    writers = [asyncio.create_task(writer()) for _ in range(4)]
                    await asyncio.sleep(1.0)
                    assert await ready_status() == 200

                    proxy.cut()
                    took = await eventually(lambda: _is(ready_status(), 503), within=3.0, what="readiness turning 503")
                    assert (await client.get("/health/live")).status_code == 200
                    await asyncio.sleep(1.5)  # load keeps hitting the outage
                    failed_during_outage = sum(1 for _, r in outcomes if r.status_code == 503)

                    proxy.restore()
                    recovered_in = await eventually(
                        lambda: _is(ready_status(), 200), within=10.0, what="readiness coming back"
                    )
                    await asyncio.sleep(1.0)  # writes succeed again
                    stop.set()
                    await asyncio.gather(*writers)
        stored = await _project_names(direct_url)

    assert took <= 1.5, f"readiness took {took:.1f} s to turn 503 (interval 0.5 s)"
    assert recovered_in <= 5.0
    statuses = {r.status_code for _, r in outcomes}
    assert statuses <= {201, 503}, statuses
    assert failed_during_outage > 0
    for _, response in outcomes:
        if response.status_code == 503:
            assert response.headers["retry-after"].isdigit()
            assert set(response.json()) == {"error", "request_id"}
            assert "Traceback" not in response.text
    assert outcomes[-1][1].status_code == 201, "writes did not succeed again after PostgreSQL returned"
    committed = [name for name, r in outcomes if r.status_code == 201]
    assert set(committed) <= stored, "a write that answered 201 is missing"


async def _project_names(database_url: str) -> set[str]:
    connection = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return {row["name"] for row in await connection.fetch("SELECT name FROM projects")}
    finally:
        await connection.close()


async def _is(status: Awaitable[int], expected: int) -> bool:
    try:
        return await status == expected
    except httpx.TransportError:
        return False


async def test_redis_outage_falls_back_to_memory_and_returns_to_redis(tmp_path: Path) -> None:
    redis_url = urlsplit(REDIS_URL)
    namespace = f"degraded-{uuid.uuid4().hex[:8]}"
    direct = redis.Redis.from_url(REDIS_URL)
    with tcp_proxy(redis_url.hostname or "127.0.0.1", redis_url.port or 6379) as proxy:
        env = {
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'redis.db'}",
            "REDIS_URL": f"redis://127.0.0.1:{proxy.port}/0",
            "CACHE_NAMESPACE": namespace,
            "RATE_LIMIT_DEFAULT": "10000/minute",
            "JWT_SECRET": JWT_SECRET,
            **FAST_HEALTH,
        }
        with running_server(env, tmp_path) as server:
            await create_user(
                env["DATABASE_URL"], "r@example.com", "long-enough-password", frozenset({"projects:read"})
            )
            token = token_for(server.url, "r@example.com", "long-enough-password")
            headers = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:

                async def cache_healthy() -> bool:
                    return bool((await client.get("/health/detailed")).json()["dependencies"]["cache"])

                async def counted_in_redis() -> int:
                    keys = [key async for key in direct.scan_iter(f"{namespace}:ratelimit*")]
                    return sum([await direct.llen(key) for key in keys])

                assert (await client.get("/auth/me", headers=headers)).status_code == 200
                before = await counted_in_redis()
                assert before >= 1

                proxy.cut()
                statuses = [(await client.get("/auth/me", headers=headers)).status_code for _ in range(20)]
                await eventually(lambda: _not(cache_healthy()), within=3.0, what="the cache showing degraded")
                detailed = (await client.get("/health/detailed")).json()
                ready = await client.get("/health/ready?verbose")
                statuses += [(await client.get("/auth/me", headers=headers)).status_code for _ in range(20)]
                assert await counted_in_redis() == before  # counted in process memory meanwhile

                proxy.restore()
                await eventually(cache_healthy, within=5.0, what="the cache healthy again")
                for _ in range(5):
                    assert (await client.get("/auth/me", headers=headers)).status_code == 200
                after = await counted_in_redis()
    await direct.aclose()

    assert statuses == [200] * 40, "a request failed because Redis was away"
    assert detailed["dependencies"]["cache"] is False
    assert detailed["dependencies"]["overall"] is True
    assert detailed["checks"]["cache"]["status"] == "degraded"
    assert ready.status_code == 200
    assert "[-]cache degraded: reason withheld" in ready.text
    assert after >= before + 5, "requests are not counted in Redis again after it returned"


async def _not(value: Awaitable[bool]) -> bool:
    return not await value


async def test_the_store_falls_back_to_memory_and_returns_to_redis() -> None:
    redis_url = urlsplit(REDIS_URL)
    with tcp_proxy(redis_url.hostname or "127.0.0.1", redis_url.port or 6379) as proxy:
        client = create_redis_client(f"redis://127.0.0.1:{proxy.port}/0", timeout=1)
        circuit = RedisCircuit(retry_after=0.1)
        store = redis_store_registry(client, f"degraded-{uuid.uuid4().hex[:8]}", circuit).get("cache")
        try:
            await store.set("in-redis", b"1", expires_in=60)
            proxy.cut()
            await store.set("in-memory", b"2", expires_in=60)  # no error: memory takes it
            assert await store.get("in-memory") == b"2"
            assert await store.get("in-redis") is None  # Redis is away: not reachable meanwhile
            proxy.restore()
            await asyncio.sleep(0.15)  # the circuit tries Redis again after retry_after
            assert await store.get("in-redis") == b"1"
        finally:
            await client.aclose()
