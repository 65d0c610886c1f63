"""The ``tags`` table and the ``task_tags`` association."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import Column, ForeignKey, Index, String, Table, text
from sqlalchemy.orm import Mapped, mapped_column

from domain.base import AuditBase

task_tags = Table(
    "task_tags",
    AuditBase.metadata,
    Column("task_id", ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Tag(AuditBase):
    __tablename__ = "tags"
    __table_args__ = (Index("uq_tags_owner_name_lower", "owner_id", text("lower(name)"), unique=True),)

    owner_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
