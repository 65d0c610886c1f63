"""Migrations and models agree, on both databases, and the schema goes down and up again cleanly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from advanced_alchemy.base import metadata_registry
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from app import create_app
from app.plugins.database import DatabasePlugin
from app.settings import Settings
from tests.backends import postgres_database

pytestmark = pytest.mark.filterwarnings(
    "ignore:Skipped unsupported reflection of expression-based index",  # SQLite cannot reflect lower(name)
    "ignore:autogenerate skipping metadata-specified expression-based index",
)


@pytest.fixture(params=["sqlite", "postgres"])
async def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}"
        return
    async with postgres_database() as url:
        yield url


def _differences(connection: Connection) -> list[object]:
    # SQLite reflects GUID columns as NUMERIC(16): types are compared on PostgreSQL only
    compare_types = connection.dialect.name == "postgresql"
    context = MigrationContext.configure(connection, opts={"compare_type": compare_types})
    return list(compare_metadata(context, metadata_registry.get(None)))


async def test_the_migrations_build_exactly_the_models_schema(empty_database: str) -> None:
    app = create_app(Settings(database_url=empty_database, jwt_secret="x" * 40, db_auto_migrate=False))
    database = app.plugins.get(DatabasePlugin)
    engine: AsyncEngine = database.db_config.get_engine()
    try:
        state = await database.schema.upgrade(engine)
        assert state.is_current
        async with engine.connect() as connection:
            assert await connection.run_sync(_differences) == []

        def downgrade_to_base(connection: Connection) -> None:
            config = database.schema._commands.config
            config.attributes["connection"] = connection
            try:
                command.downgrade(config, "base")
            finally:
                config.attributes.pop("connection", None)

        async with engine.begin() as connection:
            await connection.run_sync(downgrade_to_base)
        assert not (await database.schema.state(engine)).current
        assert (await database.schema.upgrade(engine)).is_current
    finally:
        await engine.dispose()
