"""The database: advanced-alchemy's plugin for the engine, plus schema checks and the session key."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.datastructures import State
from litestar.plugins import InitPluginProtocol
from litestar.types import Scope
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.di import provide
from app.health import Group, HealthCheck, health_registry
from app.telemetry import TRACER_PROVIDER_STATE_KEY
from domain.errors import ServiceUnavailableError
from infra.db.config import configure_sqlite
from infra.db.schema import SchemaManager
from infra.telemetry.instrumentation import instrument_engine

logger = logging.getLogger("app.database")

SCHEMA_READY_STATE_KEY = "schema_ready"


class DatabasePlugin(InitPluginProtocol):
    """Runs after advanced-alchemy's ``SQLAlchemyInitPlugin`` (engine lifespan, ``litestar database``
    CLI), which must be registered as it is so that its CLI finds it, and adds:

    - a schema check at start-up: behind the migrations' head, the app refuses to
      serve (readiness false, 503 on every request that needs the database) unless
      ``auto_migrate`` is on, in which case it upgrades first;
    - the ``db_session`` provider, which refuses while the schema is behind.
    """

    def __init__(self, config: SQLAlchemyAsyncConfig, *, auto_migrate: bool) -> None:
        self.db_config = config
        self.auto_migrate = auto_migrate
        self.schema = SchemaManager(config)

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        registry = health_registry(app_config)
        registry.register(HealthCheck("database", Group.DATABASE, self._check_database))
        registry.register(HealthCheck("schema", Group.DATABASE, self._check_schema_current))
        registry.require_startup("migrations")
        app_config.lifespan.append(self._lifespan)
        app_config.dependencies["db_session"] = provide("db_session", self._provide_session)
        return app_config

    def engine(self, app: Litestar) -> AsyncEngine:
        engine: AsyncEngine = app.state[self.db_config.engine_app_state_key]
        return engine

    @asynccontextmanager
    async def _lifespan(self, app: Litestar) -> AsyncIterator[None]:
        engine = self.engine(app)
        configure_sqlite(engine)
        tracer_provider = app.state.get(TRACER_PROVIDER_STATE_KEY)
        if tracer_provider is not None:
            instrument_engine(engine, tracer_provider)
        app.state[SCHEMA_READY_STATE_KEY] = await self._check_schema(engine)
        health_registry(app).startup_done("migrations")
        logger.info("database pool opened (%s)", engine.dialect.name)
        try:
            yield
        finally:
            await engine.dispose()
            logger.info("database pool closed")

    async def _check_database(self, app: Litestar) -> str:
        async with self.engine(app).connect() as connection:
            await connection.execute(text("SELECT 1"))
        return self.engine(app).dialect.name

    async def _check_schema_current(self, app: Litestar) -> str:
        """Re-read the schema's version each run, so that a pod waiting for ``task migrate`` becomes
        ready once it has run, without a restart."""
        app.state[SCHEMA_READY_STATE_KEY] = ready = await self._check_schema(self.engine(app), quiet=True)
        if not ready:
            raise RuntimeError("the database schema is not at the migrations' head")
        return "at head"

    async def _check_schema(self, engine: AsyncEngine, *, quiet: bool = False) -> bool:
        """``quiet``: the health monitor's re-checks log nothing (it logs transitions itself)."""
        try:
            state = await self.schema.state(engine)
            if not state.is_current and self.auto_migrate:
                logger.info("%s; upgrading (auto-migrate is on)", state.describe())
                state = await self.schema.upgrade(engine)
        except Exception as exc:
            if not quiet:
                logger.error("database schema could not be checked: %s", exc)
            return False
        if not state.is_current:
            if not quiet:
                logger.error("%s; refusing to serve until `task migrate` has run", state.describe())
            return False
        return True

    def _provide_session(self, state: State, scope: Scope) -> AsyncSession:
        if not state.get(SCHEMA_READY_STATE_KEY, False):
            raise ServiceUnavailableError("the database schema is not at the expected version", retry_after=30)
        return self.db_config.provide_session(state, scope)
