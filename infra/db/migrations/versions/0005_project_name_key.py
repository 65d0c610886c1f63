"""projects: a case-folded search key of the name, computed in Python

``GET /projects?q=`` compared SQL's ``lower()`` of the name, which lowers ASCII letters only on
SQLite: ``q=été`` did not find ``Été`` there, while PostgreSQL found it. The key is now a column the
service fills (domain.text.caseless), searched the same way on both databases. The table is altered
in place, never copied (see 0003); on SQLite the column keeps a ``''`` default, which SQLite cannot
drop in place, and every insert of the service sets the key.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 00:50:00
"""

from __future__ import annotations

import unicodedata

import sqlalchemy as sa
from advanced_alchemy.types import GUID
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_projects = sa.table(
    "projects", sa.column("id", GUID(length=16)), sa.column("name", sa.String(200)), sa.column("name_key", sa.Text())
)


def _key(name: str) -> str:
    """domain.text.caseless as of this revision (a migration keeps its own copy)."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


def upgrade() -> None:
    op.add_column("projects", sa.Column("name_key", sa.Text(), nullable=False, server_default=""))
    connection = op.get_bind()
    keys = [
        {"project_id": project_id, "key": _key(name)}
        for project_id, name in connection.execute(sa.select(_projects.c.id, _projects.c.name))
    ]
    if keys:  # one statement for all projects: the table is locked meanwhile on PostgreSQL
        connection.execute(
            sa.update(_projects)
            .where(_projects.c.id == sa.bindparam("project_id"))
            .values(name_key=sa.bindparam("key")),
            keys,
        )
    if connection.dialect.name != "sqlite":  # SQLite cannot drop a default in place; the service sets the key
        op.alter_column("projects", "name_key", server_default=None)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE projects DROP COLUMN name_key")  # SQLite 3.35+; in place (see 0003)
    else:
        op.drop_column("projects", "name_key")
