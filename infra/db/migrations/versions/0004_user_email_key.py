"""users: unique by an email key computed in Python

SQL's ``lower()`` lowers ASCII letters only on SQLite, so a user whose address had a non-ASCII
capital (``Émile@...``) could not log in there: the service compared Python's lowering with
SQLite's. The key is now a column the service fills (domain.users.models.email_key).

Two users whose addresses have the same key (possible on SQLite before: ``Émile@x`` and
``émile@x``) cannot be merged as tags are: the upgrade stops and names them, for an operator to
resolve. The table is altered in place, never copied (see 0003: a copied-and-dropped table
cascades through the foreign keys the app turns on). On SQLite the column keeps a ``''`` default
(SQLite cannot drop one in place): an insert that leaves the key out gets a user who cannot log in,
and every insert of the service sets it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 00:00:00
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from advanced_alchemy.types import GUID
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_users = sa.table(
    "users", sa.column("id", GUID(length=16)), sa.column("email", sa.String()), sa.column("email_key", sa.Text())
)


def _key(email: str) -> str:
    """domain.users.models.email_key as of this revision (a migration keeps its own copy)."""
    return email.strip().lower()


def upgrade() -> None:
    connection = op.get_bind()
    # the clash check comes before any change: on SQLite, Alembic does not run DDL in a transaction
    by_key: dict[str, list[tuple[Any, str]]] = defaultdict(list)
    for user_id, email in connection.execute(sa.select(_users.c.id, _users.c.email)).all():
        by_key[_key(email)].append((user_id, email))
    clashes = sorted(", ".join(sorted(email for _, email in users)) for users in by_key.values() if len(users) > 1)
    if clashes:
        raise RuntimeError(
            "these users' addresses differ only in case, and one address must belong to one user: "
            + "; ".join(clashes)
            + ". Change or remove all but one of each, then migrate again."
        )
    op.add_column("users", sa.Column("email_key", sa.Text(), nullable=False, server_default=""))
    if by_key:  # one statement for all users: the table is locked meanwhile on PostgreSQL
        connection.execute(
            sa.update(_users).where(_users.c.id == sa.bindparam("user_id")).values(email_key=sa.bindparam("key")),
            [{"user_id": user_id, "key": key} for key, [(user_id, _)] in by_key.items()],
        )
    if connection.dialect.name != "sqlite":  # SQLite cannot drop a default in place; the service sets the key
        op.alter_column("users", "email_key", server_default=None)
    op.drop_index("uq_users_email_lower", table_name="users")
    op.create_index("uq_users_email_key", "users", ["email_key"], unique=True)


def downgrade() -> None:
    connection = op.get_bind()
    # the old index's own rule (SQL's lower(), which differs by database) may join users this
    # revision keeps apart (İstanbul@ and istanbul@ on PostgreSQL): users cannot be merged, so stop
    lowered = sa.func.lower(_users.c.email)
    joined = connection.execute(sa.select(lowered, sa.func.count()).group_by(lowered).having(sa.func.count() > 1)).all()
    if joined:
        raise RuntimeError(
            "the old index would make one address of several users' ("
            + ", ".join(sorted(address for address, _ in joined))
            + "): change or remove all but one of each, then downgrade again."
        )
    op.drop_index("uq_users_email_key", table_name="users")
    if connection.dialect.name == "sqlite":
        op.execute("ALTER TABLE users DROP COLUMN email_key")  # SQLite 3.35+; in place
    else:
        op.drop_column("users", "email_key")
    op.create_index("uq_users_email_lower", "users", [sa.text("lower(email)")], unique=True)
