"""The two backends every behavioural test runs on, and throwaway databases for them.

PostgreSQL and Redis are required: when they cannot be reached the tests fail with a
clear message (CI has both; so does every developer machine of this project).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import redis.asyncio as redis

POSTGRES_ADMIN_DSN = os.environ.get("TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@dataclass(frozen=True)
class Backend:
    name: str
    database_url: str
    redis_url: str | None
    work_dir: Path
    """Files of the apps on this backend (media); the same for every app built on it."""
    queue_name: str = field(default_factory=lambda: f"video-test-{uuid.uuid4().hex[:10]}")


def _asyncpg_dsn_for(database: str) -> str:
    base, _, _ = POSTGRES_ADMIN_DSN.rpartition("/")
    return f"{base}/{database}"


@asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """Create a database of our own and drop it afterwards; yields its SQLAlchemy URL."""
    name = f"vo_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = await asyncpg.connect(POSTGRES_ADMIN_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        raise RuntimeError(
            f"PostgreSQL is required for the tests and is not reachable at {POSTGRES_ADMIN_DSN}: {exc}"
        ) from exc
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield _asyncpg_dsn_for(name).replace("postgresql://", "postgresql+asyncpg://", 1)
    finally:
        admin = await asyncpg.connect(POSTGRES_ADMIN_DSN, timeout=5)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def require_redis() -> str:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except (OSError, redis.RedisError) as exc:
        raise RuntimeError(f"Redis is required for the tests and is not reachable at {REDIS_URL}: {exc}") from exc
    finally:
        await client.aclose()
    return REDIS_URL


@asynccontextmanager
async def backend(name: str, tmp_dir: Path) -> AsyncIterator[Backend]:
    if name == "sqlite":
        yield Backend(name, f"sqlite+aiosqlite:///{tmp_dir / 'test.db'}", None, tmp_dir)
        return
    redis_url = await require_redis()
    async with postgres_database() as url:
        yield Backend(name, url, redis_url, tmp_dir)
