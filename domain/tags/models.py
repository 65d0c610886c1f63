"""The ``tags`` table and the ``task_tags`` association."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import Column, ForeignKey, Index, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column

from domain.base import AuditBase
from domain.text import caseless

task_tags = Table(
    "task_tags",
    AuditBase.metadata,
    Column("task_id", ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True, index=True),
)


def tag_key(name: str) -> str:
    """What makes two tag names the same tag: their :func:`~domain.text.caseless` form (``Été`` and
    ``été``, ``Straße`` and ``STRASSE`` are one tag, whichever way an accent was typed)."""
    return caseless(name)


class Tag(AuditBase):
    __tablename__ = "tags"
    __table_args__ = (Index("uq_tags_owner_name_key", "owner_id", "name_key", unique=True),)

    owner_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    name_key: Mapped[str] = mapped_column(Text)
    """:func:`tag_key` of ``name``: unique per owner, and what ``?q=`` searches."""
