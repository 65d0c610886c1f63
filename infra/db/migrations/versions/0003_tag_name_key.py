"""tags: unique per owner by a case-folded key computed in Python

SQL's ``lower()`` lowers ASCII letters only on SQLite, so ``lower(name)`` neither matched what the
service compared (Python's Unicode lowering: a task naming the tag ``Été`` answered 500) nor made
``Été`` and ``été`` one tag. The key is now a column the service fills.

Tags of one owner whose names fold to the same key (``Straße`` and ``STRASSE`` on either
database, ``Été`` and ``été`` on SQLite) are merged into the oldest: their tasks keep the tag,
nothing is lost.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 23:20:00
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_tags = sa.table(
    "tags",
    sa.column("id", GUID(length=16)),
    sa.column("owner_id", GUID(length=16)),
    sa.column("name", sa.String(64)),
    sa.column("name_key", sa.Text()),
    sa.column("created_at", DateTimeUTC(timezone=True)),
)
_task_tags = sa.table("task_tags", sa.column("task_id", GUID(length=16)), sa.column("tag_id", GUID(length=16)))


def _key(name: str) -> str:
    """domain.tags.models.tag_key as of this revision (a migration keeps its own copy)."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


def _merge(connection: sa.Connection, kept: Any, duplicate: Any) -> None:
    """Move ``duplicate``'s tasks to ``kept`` (a task that has both keeps one), then drop it."""
    has_kept = sa.select(_task_tags.c.task_id).where(_task_tags.c.tag_id == kept)
    connection.execute(
        sa.delete(_task_tags).where(_task_tags.c.tag_id == duplicate, _task_tags.c.task_id.in_(has_kept))
    )
    connection.execute(sa.update(_task_tags).where(_task_tags.c.tag_id == duplicate).values(tag_id=kept))
    connection.execute(sa.delete(_tags).where(_tags.c.id == duplicate))


def _merge_look_alikes(connection: sa.Connection, key: sa.ColumnElement[str] | None) -> dict[Any, str]:
    """Merge each owner's tags that share a key into the oldest; the kept tags' keys by id. The key
    is :func:`_key` of the name when ``key`` is None, else that SQL expression of the row."""
    columns = [_tags.c.id, _tags.c.owner_id, _tags.c.name if key is None else key]
    rows = connection.execute(sa.select(*columns).order_by(_tags.c.created_at, _tags.c.id)).all()
    groups: dict[tuple[Any, str], list[Any]] = defaultdict(list)
    for tag_id, owner_id, value in rows:
        groups[(owner_id, _key(value) if key is None else value)].append(tag_id)
    kept_keys: dict[Any, str] = {}
    for (_, group_key), ids in groups.items():
        kept, *duplicates = ids
        for duplicate in duplicates:
            _merge(connection, kept, duplicate)
        kept_keys[kept] = group_key
    return kept_keys


# The table is altered in place, never copied: SQLite's "batch" mode copies a table, drops the
# original and renames the copy, and with the app's ``PRAGMA foreign_keys=ON`` dropping ``tags``
# cascades to every row of ``task_tags``.


def upgrade() -> None:
    # NOT NULL needs a default on SQLite's ADD COLUMN; every row gets its key right below
    op.add_column("tags", sa.Column("name_key", sa.Text(), nullable=False, server_default=""))
    connection = op.get_bind()
    kept_keys = _merge_look_alikes(connection, None)
    if kept_keys:  # one statement for all tags: the table is locked meanwhile on PostgreSQL
        connection.execute(
            sa.update(_tags).where(_tags.c.id == sa.bindparam("tag_id")).values(name_key=sa.bindparam("key")),
            [{"tag_id": tag_id, "key": key} for tag_id, key in kept_keys.items()],
        )
    if connection.dialect.name != "sqlite":  # SQLite cannot drop a default in place; the service sets the key
        op.alter_column("tags", "name_key", server_default=None)
    op.drop_index("uq_tags_owner_name_lower", table_name="tags")
    op.create_index("uq_tags_owner_name_key", "tags", ["owner_id", "name_key"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_tags_owner_name_key", table_name="tags")
    connection = op.get_bind()
    # the old index's own rule (SQL's lower(), which differs by database) may join tags this
    # revision kept apart (İstanbul and istanbul on PostgreSQL): merge them first
    _merge_look_alikes(connection, sa.func.lower(_tags.c.name))
    if connection.dialect.name == "sqlite":
        op.execute("ALTER TABLE tags DROP COLUMN name_key")  # SQLite 3.35+; in place (see above)
    else:
        op.drop_column("tags", "name_key")
    op.create_index("uq_tags_owner_name_lower", "tags", ["owner_id", sa.text("lower(name)")], unique=True)
