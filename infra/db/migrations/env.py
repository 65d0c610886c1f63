"""Alembic environment: runs on a connection it is handed (start-up auto-migrate) or opens its own (CLI)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, cast

from advanced_alchemy.base import metadata_registry
from alembic import context
from sqlalchemy import pool, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_engine_from_config

if TYPE_CHECKING:
    from advanced_alchemy.alembic.commands import AlembicCommandConfig
    from sqlalchemy.engine import Connection

config: AlembicCommandConfig = context.config  # type: ignore[assignment]

MIGRATION_LOCK_ID = 0x766F_6D69_6772_6174
"""The PostgreSQL advisory lock that migrations hold (any bigint that no other lock uses; "vomigrat")."""


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=metadata_registry.get(config.bind_key),
        compare_type=config.compare_type,
        version_table=config.version_table_name,
        version_table_schema=config.version_table_schema,
        render_as_batch=config.render_as_batch,
        user_module_prefix=config.user_module_prefix,
        **kwargs,
    )


def run_offline() -> None:
    _configure(url=config.db_url, literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_on(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Pods that start together with auto-migrate on (and a `task migrate` beside them) would all
        # find the schema behind and create the same tables; the losers failed on a duplicate type.
        # One at a time, each reads the version only once it holds the lock, so the rest find the
        # schema at head and do nothing. The lock ends with the transaction the migrations run in.
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
    elif connection.dialect.name == "sqlite" and not getattr(
        connection.connection.driver_connection, "in_transaction", True
    ):
        # Python's sqlite3 opens a transaction before a write, never before DDL, so each ALTER of a
        # migration was committed on its own: one that failed half-way left a column that the retry
        # then failed on, for good. SQLite rolls DDL back like anything else inside a transaction;
        # IMMEDIATE also keeps other writers out until the migration commits.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_online() -> None:
    configuration = config.get_section(config.config_ini_section) or {}
    configuration["sqlalchemy.url"] = config.db_url
    engine = cast(
        "AsyncEngine",
        config.engine or async_engine_from_config(configuration, prefix="sqlalchemy.", poolclass=pool.NullPool),
    )
    async with engine.connect() as connection:
        await connection.run_sync(run_on)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    run_offline()
elif (given := config.attributes.get("connection")) is not None:
    run_on(given)
else:
    asyncio.run(run_online())
