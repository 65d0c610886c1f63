"""The ``tags`` table and the ``task_tags`` association."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import Column, ForeignKey, Index, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, validates

from domain.base import AuditBase
from domain.text import caseless, search_key

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
    """:func:`tag_key` of ``name``: unique per owner."""
    name_search: Mapped[str] = mapped_column(Text)
    """:func:`~domain.text.search_key` of ``name``: what ``?q=`` searches."""

    @validates("name")
    def _keep_name_keys(self, _: str, name: str) -> str:
        self.name_key = tag_key(name)
        self.name_search = search_key(name)
        return name
