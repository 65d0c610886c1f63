"""Is the database schema at the migrations' head? Upgrade it in place when asked to."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from advanced_alchemy.alembic.commands import AlembicCommands
from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from alembic import command
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine


@dataclass(frozen=True, slots=True)
class SchemaState:
    current: frozenset[str]
    expected: frozenset[str]

    @property
    def is_current(self) -> bool:
        return self.current == self.expected

    def describe(self) -> str:
        current = ", ".join(sorted(self.current)) or "empty"
        return f"database schema is at {current}, the code expects {', '.join(sorted(self.expected))}"


class SchemaManager:
    def __init__(self, config: SQLAlchemyAsyncConfig) -> None:
        self._config = config
        self._commands = AlembicCommands(sqlalchemy_config=config)

    @cached_property
    def _expected(self) -> frozenset[str]:
        """The heads of the code's migrations, read once: the health monitor asks on every run, and
        reading the scripts (a few ms) happens on the event loop's thread."""
        return frozenset(ScriptDirectory.from_config(self._commands.config).get_heads())

    def _read(self, connection: Connection) -> SchemaState:
        context = MigrationContext.configure(
            connection, opts={"version_table": self._config.alembic_config.version_table_name}
        )
        return SchemaState(current=frozenset(context.get_current_heads()), expected=self._expected)

    async def state(self, engine: AsyncEngine) -> SchemaState:
        async with engine.connect() as connection:
            return await connection.run_sync(self._read)

    async def upgrade(self, engine: AsyncEngine) -> SchemaState:
        """Upgrade to head on a connection of the running engine (no second event loop)."""

        def _upgrade(connection: Connection) -> None:
            self._commands.config.attributes["connection"] = connection
            try:
                command.upgrade(self._commands.config, "head")
            finally:
                self._commands.config.attributes.pop("connection", None)

        async with engine.begin() as connection:
            await connection.run_sync(_upgrade)
        return await self.state(engine)
