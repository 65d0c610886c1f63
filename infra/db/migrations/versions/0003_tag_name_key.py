"""tags: unique per owner by a case-folded key computed in Python

SQL's ``lower()`` lowers ASCII letters only on SQLite, so ``lower(name)`` neither matched what the
service compared (Python's Unicode lowering: a task naming the tag ``Été`` answered 500) nor kept
``Été`` and ``été`` apart as one tag. The key is now a column the service fills.

Tags of one owner whose names fold to the same key (possible on SQLite before) are merged into
the oldest: their tasks keep the tag, nothing is lost.

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


def upgrade() -> None:
    with op.batch_alter_table("tags", schema=None) as batch_op:
        batch_op.add_column(sa.Column("name_key", sa.Text(), nullable=True))

    connection = op.get_bind()
    rows = connection.execute(
        sa.select(_tags.c.id, _tags.c.owner_id, _tags.c.name).order_by(_tags.c.created_at, _tags.c.id)
    ).all()
    groups: dict[tuple[Any, str], list[Any]] = defaultdict(list)
    for tag_id, owner_id, name in rows:
        groups[(owner_id, _key(name))].append(tag_id)
    for (_, key), ids in groups.items():
        kept, *duplicates = ids
        for duplicate in duplicates:
            _merge(connection, kept, duplicate)
        connection.execute(sa.update(_tags).where(_tags.c.id == kept).values(name_key=key))

    op.drop_index("uq_tags_owner_name_lower", table_name="tags")
    with op.batch_alter_table("tags", schema=None) as batch_op:
        batch_op.alter_column("name_key", existing_type=sa.Text(), nullable=False)
    op.create_index("uq_tags_owner_name_key", "tags", ["owner_id", "name_key"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_tags_owner_name_key", table_name="tags")
    with op.batch_alter_table("tags", schema=None) as batch_op:
        batch_op.drop_column("name_key")
    op.create_index("uq_tags_owner_name_lower", "tags", ["owner_id", sa.text("lower(name)")], unique=True)
