"""The advanced-alchemy configuration for PostgreSQL (asyncpg) or the embedded SQLite (aiosqlite)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from advanced_alchemy.extensions.litestar import (
    AlembicAsyncConfig,
    AsyncSessionConfig,
    EngineConfig,
    SQLAlchemyAsyncConfig,
)
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version"
SESSION_SCOPE_KEY = "_db_session"


@dataclass(frozen=True, slots=True)
class PoolOptions:
    size: int = 10
    max_overflow: int = 10
    timeout: int = 30
    recycle: int = 1800
    pre_ping: bool = True


async def _noop_before_send(*_: Any) -> None:
    """Transactions are finished by :class:`infra.db.transaction.TransactionMiddleware`."""


def build_sqlalchemy_config(database_url: str, pool: PoolOptions, *, echo: bool = False) -> SQLAlchemyAsyncConfig:
    if database_url.startswith("sqlite"):
        _ensure_sqlite_directory(database_url)
        engine_config = EngineConfig(echo=echo, pool_pre_ping=pool.pre_ping)
    else:
        engine_config = EngineConfig(
            echo=echo,
            pool_size=pool.size,
            max_overflow=pool.max_overflow,
            pool_timeout=pool.timeout,
            pool_recycle=pool.recycle,
            pool_pre_ping=pool.pre_ping,
        )
    return SQLAlchemyAsyncConfig(
        connection_string=database_url,
        engine_config=engine_config,
        session_config=AsyncSessionConfig(expire_on_commit=False),
        session_dependency_key="db_session",
        engine_dependency_key="db_engine",
        session_scope_key=SESSION_SCOPE_KEY,
        before_send_handler=_noop_before_send,
        set_default_exception_handler=False,
        alembic_config=AlembicAsyncConfig(
            script_location=str(MIGRATIONS_DIR),
            version_table_name=VERSION_TABLE,
            render_as_batch=True,
        ),
    )


def _ensure_sqlite_directory(database_url: str) -> None:
    path = database_url.split(":///", 1)[-1].split("?", 1)[0]
    if path and path != ":memory:":
        Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)


def configure_sqlite(engine: AsyncEngine) -> None:
    """Foreign keys on (cascades), WAL for concurrent readers, and a busy timeout instead of 'database is locked'."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _: ConnectionPoolEntry) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()
