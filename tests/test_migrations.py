"""Migrations and models agree, on both databases, and the schema goes down and up again cleanly."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest.mock import patch
from uuid import UUID, uuid4

import pytest
from advanced_alchemy.base import metadata_registry
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Boolean, Connection, String, TableClause, column, delete, insert, inspect, select, table
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.types import TypeEngine

from app import create_app
from app.plugins.database import DatabasePlugin
from app.settings import Settings
from domain.tags.models import tag_key
from domain.users.models import email_key
from infra.db.config import configure_sqlite
from infra.db.schema import SchemaManager
from tests.backends import postgres_database
from tests.server import REPO_ROOT, inherited_environ

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


Migrate = Callable[[Connection, Callable[[Config, str], None], str], None]


@asynccontextmanager
async def migrating(database_url: str) -> AsyncIterator[tuple[AsyncEngine, Migrate, SchemaManager]]:
    """The app's engine on ``database_url`` (foreign keys on, as the app runs SQLite), a function
    that runs ``command.upgrade`` or ``command.downgrade`` to a revision on a connection, and the
    app's own schema manager (what start-up runs)."""
    app = create_app(Settings(database_url=database_url, jwt_secret="x" * 40, db_auto_migrate=False))
    database = app.plugins.get(DatabasePlugin)
    engine: AsyncEngine = database.db_config.get_engine()
    configure_sqlite(engine)
    config = database.schema._commands.config

    def migrate(connection: Connection, direction: Callable[[Config, str], None], revision: str) -> None:
        config.attributes["connection"] = connection
        try:
            direction(config, revision)
        finally:
            config.attributes.pop("connection", None)

    try:
        yield engine, migrate, database.schema
    finally:
        await engine.dispose()


async def test_the_migrations_build_exactly_the_models_schema(empty_database: str) -> None:
    async with migrating(empty_database) as (engine, migrate, schema):
        state = await schema.upgrade(engine)
        assert state.is_current
        async with engine.connect() as connection:
            assert await connection.run_sync(_differences) == []
        async with engine.begin() as connection:
            await connection.run_sync(migrate, command.downgrade, "base")
        assert not (await schema.state(engine)).current
        assert (await schema.upgrade(engine)).is_current


_POD = """
import asyncio, pathlib, sys, time
from app.asgi import app
from app.plugins.database import SCHEMA_READY_STATE_KEY

async def main() -> None:
    go = pathlib.Path(sys.argv[1])
    print("started", flush=True)
    while not go.exists():  # every process imported and waiting: they reach the database together
        time.sleep(0.005)
    async with app.lifespan():
        print("schema ready:", app.state[SCHEMA_READY_STATE_KEY], flush=True)

asyncio.run(main())
"""


async def test_pods_starting_together_on_an_empty_database_migrate_it_once_without_errors(tmp_path: Path) -> None:
    """Three API pods with auto-migrate on, on a new PostgreSQL database. Without the migrations' lock
    all of them created the same tables, and all but one failed on a duplicate type and logged that
    the schema could not be checked (a later health check found it at head)."""
    go = tmp_path / "go"
    async with postgres_database() as url:
        env = {
            **inherited_environ(),
            "DATABASE_URL": url,
            "DB_AUTO_MIGRATE": "true",
            "JWT_SECRET": "x" * 40,
            "DATA_DIR": str(tmp_path / "var"),
        }
        output = {"stdout": asyncio.subprocess.PIPE, "stderr": asyncio.subprocess.STDOUT}
        pods = [
            await asyncio.create_subprocess_exec(sys.executable, "-c", _POD, str(go), cwd=REPO_ROOT, env=env, **output)
            for _ in range(3)
        ]
        async with asyncio.timeout(90):
            for pod in pods:
                assert pod.stdout is not None
                while (line := await pod.stdout.readline()) != b"started\n":
                    assert line, "a pod exited before it started"
            go.touch()
            outputs = [(await pod.communicate())[0].decode() for pod in pods]
        assert [pod.returncode for pod in pods] == [0, 0, 0], outputs
        assert sum("upgrading (auto-migrate is on)" in out for out in outputs) >= 2, outputs  # they did race
        assert all("schema ready: True" in out for out in outputs), outputs
        assert not [out for out in outputs if "error" in out.lower()], outputs

        app = create_app(Settings(database_url=url, jwt_secret="x" * 40))
        database = app.plugins.get(DatabasePlugin)
        engine = database.db_config.get_engine()
        try:
            assert (await database.schema.state(engine)).is_current
        finally:
            await engine.dispose()


def _rows(table_name: str, /, **columns: TypeEngine[Any]) -> TableClause:
    """A table of the schema as of an older revision, with the columns a test writes or reads."""
    return table(table_name, *(column(key, type_) for key, type_ in columns.items()))


_GUID, _WHEN = GUID(length=16), DateTimeUTC(timezone=True)
_START = datetime(2026, 1, 1, tzinfo=UTC)
_AT = {"created_at": _START, "updated_at": _START}
_USER_FIELDS = {"password_hash": "x", "scopes": "", "is_active": True, **_AT}
_STAMPS = {"created_at": _WHEN, "updated_at": _WHEN}
_USER_COLUMNS = {
    "id": _GUID,
    "email": String(),
    "password_hash": String(),
    "scopes": String(),
    "is_active": Boolean(),
    **_STAMPS,
}
_USERS = _rows("users", **_USER_COLUMNS)
_KEYED_USERS = _rows("users", id=_GUID, email_key=String())
_KEYED_USERS_ALL = _rows("users", **_USER_COLUMNS, email_key=String())
_PROJECTS = _rows("projects", id=_GUID, owner_id=_GUID, name=String(), **_STAMPS)
_TASKS = _rows(
    "tasks",
    id=_GUID,
    project_id=_GUID,
    owner_id=_GUID,
    title=String(),
    status=String(),
    priority=String(),
    **_STAMPS,
)
_TAG_COLUMNS = {"id": _GUID, "owner_id": _GUID, "name": String(), **_STAMPS}
_TAGS = _rows("tags", **_TAG_COLUMNS)
_KEYED_TAGS = _rows("tags", **_TAG_COLUMNS, name_key=String())
_TASK_TAGS = _rows("task_tags", task_id=_GUID, tag_id=_GUID)


async def _seed_owner_and_tasks(connection: AsyncConnection, owner: UUID, project: UUID, tasks: list[UUID]) -> None:
    await connection.execute(insert(_USERS).values(id=owner, email="o@example.com", **_USER_FIELDS))
    await connection.execute(insert(_PROJECTS).values(id=project, owner_id=owner, name="p", **_AT))
    for task in tasks:
        await connection.execute(
            insert(_TASKS).values(
                id=task, project_id=project, owner_id=owner, title="t", status="todo", priority="normal", **_AT
            )
        )


async def test_tags_that_differ_only_in_unicode_case_are_merged_keeping_their_tasks(empty_database: str) -> None:
    """Before 0003 the unique index was SQL's ``lower(name)``, which does not fold ``ß`` (and lowers
    ASCII only on SQLite): one owner could hold both ``Straße`` and ``STRASSE``. The upgrade
    merges each such group into its oldest tag, every task keeps it, and no other link is lost
    (SQLite runs with foreign keys on, as the app runs it: a copied-and-dropped ``tags`` table
    would cascade to every link)."""
    owner, project, first_task, second_task = uuid4(), uuid4(), uuid4(), uuid4()
    oldest, newer, other = uuid4(), uuid4(), uuid4()
    async with migrating(empty_database) as (engine, migrate, _), engine.begin() as connection:
        await connection.run_sync(migrate, command.upgrade, "0002")
        await _seed_owner_and_tasks(connection, owner, project, [first_task, second_task])
        for minutes, (tag, name) in enumerate([(oldest, "Straße"), (newer, "STRASSE"), (other, "Film")]):
            when = _START + timedelta(minutes=minutes)
            await connection.execute(
                insert(_TAGS).values(id=tag, owner_id=owner, name=name, created_at=when, updated_at=when)
            )
        links = [(first_task, oldest), (first_task, newer), (second_task, newer), (second_task, other)]
        await connection.execute(insert(_TASK_TAGS), [{"task_id": t, "tag_id": g} for t, g in links])

        await connection.run_sync(migrate, command.upgrade, "0003")

        tags = (
            await connection.execute(select(_KEYED_TAGS.c.id, _KEYED_TAGS.c.name_key).order_by(_KEYED_TAGS.c.name))
        ).all()
        assert [(tag_id, key) for tag_id, key in tags] == [(other, "film"), (oldest, "strasse")]
        kept = set((await connection.execute(select(_TASK_TAGS.c.task_id, _TASK_TAGS.c.tag_id))).all())
        assert kept == {(first_task, oldest), (second_task, oldest), (second_task, other)}


async def test_the_downgrade_merges_tags_the_old_index_would_join(empty_database: str) -> None:
    """At 0003 ``İstanbul`` and ``istanbul`` are two tags (Unicode folds ``İ`` to ``i̇``); PostgreSQL's
    ``lower()`` makes them one, so the downgrade merges them before it builds its index. SQLite's
    ``lower()`` leaves ``İ`` alone: there they stay two. Either way every task keeps its tag."""
    owner, project, first_task, second_task = uuid4(), uuid4(), uuid4(), uuid4()
    oldest, newer = uuid4(), uuid4()
    async with migrating(empty_database) as (engine, migrate, _), engine.begin() as connection:
        await connection.run_sync(migrate, command.upgrade, "0003")
        await _seed_owner_and_tasks(connection, owner, project, [first_task, second_task])
        for minutes, (tag, name) in enumerate([(oldest, "İstanbul"), (newer, "istanbul")]):
            when = _START + timedelta(minutes=minutes)
            await connection.execute(
                insert(_KEYED_TAGS).values(
                    id=tag, owner_id=owner, name=name, name_key=tag_key(name), created_at=when, updated_at=when
                )
            )
        links = [(first_task, oldest), (second_task, newer)]
        await connection.execute(insert(_TASK_TAGS), [{"task_id": t, "tag_id": g} for t, g in links])

        await connection.run_sync(migrate, command.downgrade, "0002")

        tags = [row[0] for row in (await connection.execute(select(_TAGS.c.id).order_by(_TAGS.c.created_at))).all()]
        kept = set((await connection.execute(select(_TASK_TAGS.c.task_id, _TASK_TAGS.c.tag_id))).all())
        if connection.dialect.name == "postgresql":
            assert tags == [oldest]
            assert kept == {(first_task, oldest), (second_task, oldest)}
        else:
            assert tags == [oldest, newer]
            assert kept == set(links)


def _columns(connection: Connection, table_name: str) -> list[str]:
    return [column["name"] for column in inspect(connection).get_columns(table_name)]


def _revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def test_users_get_their_email_keys_and_clashing_addresses_stop_the_upgrade(tmp_path: Path) -> None:
    """0004 fills each user's key, and their projects stay. Two users whose addresses differ only
    in a non-ASCII capital (possible on SQLite before: its ``lower()`` knows ASCII only) cannot be
    merged: the upgrade stops, names both, and changes nothing. An upgrade that fails half-way
    leaves nothing behind either (SQLite commits each ALTER on its own outside a transaction), so
    the next one succeeds."""
    ada, emile, emile_again = uuid4(), uuid4(), uuid4()
    async with migrating(f"sqlite+aiosqlite:///{tmp_path / 'users.db'}") as (engine, migrate, _):
        async with engine.begin() as connection:
            await connection.run_sync(migrate, command.upgrade, "0003")
            for user, email in [(ada, "Ada@Example.COM"), (emile, "Émile@x.fr"), (emile_again, "émile@x.fr")]:
                await connection.execute(insert(_USERS).values(id=user, email=email, **_USER_FIELDS))
                await connection.execute(insert(_PROJECTS).values(id=uuid4(), owner_id=user, name="p", **_AT))
        # as at start-up: the error leaves the transaction, which rolls back
        with pytest.raises(RuntimeError, match=r"Émile@x\.fr, émile@x\.fr"):
            async with engine.begin() as connection:
                await connection.run_sync(migrate, command.upgrade, "head")
        async with engine.begin() as connection:
            assert await connection.run_sync(_revision) == "0003"
            assert "email_key" not in await connection.run_sync(_columns, "users")
            await connection.execute(delete(_USERS).where(_USERS.c.id == emile_again))

        def fails_after_the_new_column(*_: object, **__: object) -> None:
            raise RuntimeError("the disk is full")

        with patch.object(Operations, "create_index", fails_after_the_new_column), pytest.raises(RuntimeError):
            async with engine.begin() as connection:
                await connection.run_sync(migrate, command.upgrade, "head")
        async with engine.begin() as connection:
            assert "email_key" not in await connection.run_sync(_columns, "users")
        async with engine.begin() as connection:
            await connection.run_sync(migrate, command.upgrade, "head")
        async with engine.begin() as connection:
            keys = dict((await connection.execute(select(_KEYED_USERS.c.id, _KEYED_USERS.c.email_key))).all())
            assert keys == {ada: "ada@example.com", emile: "émile@x.fr"}
            owners = (await connection.execute(select(_PROJECTS.c.owner_id))).scalars().all()
            assert sorted(map(str, owners)) == sorted(map(str, [ada, emile]))


async def test_the_users_downgrade_stops_where_the_old_index_would_join_two_users(empty_database: str) -> None:
    """At 0004 ``İstanbul@x.tr`` and ``istanbul@x.tr`` are two users; PostgreSQL's ``lower()`` makes
    them one address, and users cannot be merged: the downgrade stops and changes nothing. SQLite's
    ``lower()`` leaves ``İ`` alone, so there it goes through and both users stay."""
    first, second = uuid4(), uuid4()
    async with migrating(empty_database) as (engine, migrate, _):
        async with engine.begin() as connection:
            await connection.run_sync(migrate, command.upgrade, "0004")
            for user, email in [(first, "İstanbul@x.tr"), (second, "istanbul@x.tr")]:
                keyed = {**_USER_FIELDS, "email_key": email_key(email)}
                await connection.execute(insert(_KEYED_USERS_ALL).values(id=user, email=email, **keyed))
        if engine.dialect.name == "postgresql":
            with pytest.raises(RuntimeError, match=r"istanbul@x\.tr"):
                async with engine.begin() as connection:
                    await connection.run_sync(migrate, command.downgrade, "0003")
        else:
            async with engine.begin() as connection:
                await connection.run_sync(migrate, command.downgrade, "0003")
        async with engine.begin() as connection:
            expected = "0004" if connection.dialect.name == "postgresql" else "0003"
            assert await connection.run_sync(_revision) == expected
            users = (await connection.execute(select(_USERS.c.id))).scalars().all()
            assert sorted(map(str, users)) == sorted(map(str, [first, second]))


async def test_projects_and_tags_get_search_keys_and_lose_nothing_down_and_up(empty_database: str) -> None:
    """0005 gives each existing project and tag the search key of its name (so ``?q=`` finds what was
    made before it); its downgrade drops the columns and nothing else, and the upgrade runs again.
    Tasks and their tags survive throughout (SQLite runs with foreign keys on, as the app runs it: a
    copied-and-dropped table would cascade to them)."""
    owner, ete, strasse, task, tag = uuid4(), uuid4(), uuid4(), uuid4(), uuid4()
    searched_projects = _rows("projects", id=_GUID, name_search=String())
    searched_tags = _rows("tags", id=_GUID, name_search=String())
    async with migrating(empty_database) as (engine, migrate, _), engine.begin() as connection:
        await connection.run_sync(migrate, command.upgrade, "0004")
        user = {**_USER_FIELDS, "email_key": "o@example.com"}
        await connection.execute(insert(_KEYED_USERS_ALL).values(id=owner, email="o@example.com", **user))
        for project, name in [(ete, "Été 2026"), (strasse, "STRAßE")]:
            await connection.execute(insert(_PROJECTS).values(id=project, owner_id=owner, name=name, **_AT))
        await connection.execute(
            insert(_TASKS).values(
                id=task, project_id=ete, owner_id=owner, title="t", status="todo", priority="normal", **_AT
            )
        )
        await connection.execute(
            insert(_KEYED_TAGS).values(id=tag, owner_id=owner, name="İstanbul", name_key=tag_key("İstanbul"), **_AT)
        )
        await connection.execute(insert(_TASK_TAGS).values(task_id=task, tag_id=tag))

        await connection.run_sync(migrate, command.upgrade, "0005")
        projects = dict(
            (await connection.execute(select(searched_projects.c.id, searched_projects.c.name_search))).all()
        )
        assert projects == {ete: "ete 2026", strasse: "strasse"}
        tags = dict((await connection.execute(select(searched_tags.c.id, searched_tags.c.name_search))).all())
        assert tags == {tag: "istanbul"}

        await connection.run_sync(migrate, command.downgrade, "0004")
        assert "name_search" not in await connection.run_sync(_columns, "projects")
        assert "name_search" not in await connection.run_sync(_columns, "tags")
        await connection.run_sync(migrate, command.upgrade, "head")
        names = dict((await connection.execute(select(_PROJECTS.c.id, _PROJECTS.c.name))).all())
        assert names == {ete: "Été 2026", strasse: "STRAßE"}
        links = (await connection.execute(select(_TASK_TAGS.c.task_id, _TASK_TAGS.c.tag_id))).all()
        assert [tuple(link) for link in links] == [(task, tag)]
