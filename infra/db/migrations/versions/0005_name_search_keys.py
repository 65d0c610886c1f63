"""projects and tags: a search key of the name, computed in Python

``?q=`` compared SQL's ``lower()`` of the name, which lowers ASCII letters only on SQLite: ``q=été``
did not find ``Été`` there, while PostgreSQL found it. Each table gets a ``name_search`` column
that the service fills (domain.text.search_key: case and accents ignored), searched the same way on
both databases. The tables are altered in place, never copied (see 0003); on SQLite the columns
keep a ``''`` default, which SQLite cannot drop in place, and the models set them with the name.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 00:50:00
"""

from __future__ import annotations

import re
import unicodedata

import sqlalchemy as sa
from advanced_alchemy.types import GUID
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TABLES = ("projects", "tags")


_DIACRITICS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
_UNDECOMPOSED = str.maketrans({"ł": "l", "ø": "o", "đ": "d", "ð": "d", "ħ": "h", "\u0131": "i", "ŧ": "t", "æ": "ae", "œ": "oe"})


def _key(name: str) -> str:
    """domain.text.search_key as of this revision (a migration keeps its own copy)."""
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", name.casefold()).casefold())
    bare = _DIACRITICS.sub("", folded)
    return unicodedata.normalize("NFC", bare).translate(_UNDECOMPOSED)


def upgrade() -> None:
    connection = op.get_bind()
    for name in _TABLES:
        op.add_column(name, sa.Column("name_search", sa.Text(), nullable=False, server_default=""))
        rows = sa.table(name, sa.column("id", GUID(length=16)), sa.column("name", sa.Text()), sa.column("name_search"))
        keys = [{"row_id": row_id, "key": _key(text)} for row_id, text in connection.execute(sa.select(rows.c.id, rows.c.name))]
        if keys:  # one statement a table: the table is locked meanwhile on PostgreSQL
            connection.execute(
                sa.update(rows).where(rows.c.id == sa.bindparam("row_id")).values(name_search=sa.bindparam("key")), keys
            )
        if connection.dialect.name != "sqlite":  # SQLite cannot drop a default in place; the models set the key
            op.alter_column(name, "name_search", server_default=None)


def downgrade() -> None:
    for name in _TABLES:
        if op.get_bind().dialect.name == "sqlite":
            op.execute(f"ALTER TABLE {name} DROP COLUMN name_search")  # SQLite 3.35+; in place (see 0003)
        else:
            op.drop_column(name, "name_search")
