"""The ``tags`` table and the ``task_tags`` association."""

from __future__ import annotations

import unicodedata
from uuid import UUID

from sqlalchemy import Column, ForeignKey, Index, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column

from domain.base import AuditBase

task_tags = Table(
    "task_tags",
    AuditBase.metadata,
    Column("task_id", ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True, index=True),
)


def tag_key(name: str) -> str:
    """What makes two tag names the same tag: equal after Unicode case folding (``Été``, ``été``;
    ``Straße``, ``STRASSE``), whichever way an accent was typed (composed or not).

    Computed here rather than with SQL's ``lower()``, which SQLite applies to ASCII letters only:
    the database compares and indexes the key it is given, the same on SQLite and PostgreSQL."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


class Tag(AuditBase):
    __tablename__ = "tags"
    __table_args__ = (Index("uq_tags_owner_name_key", "owner_id", "name_key", unique=True),)

    owner_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    name_key: Mapped[str] = mapped_column(Text)
    """:func:`tag_key` of ``name``: unique per owner."""
