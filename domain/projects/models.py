"""The ``projects`` table."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from domain.base import AuditBase
from domain.text import caseless


class Project(AuditBase):
    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("owner_id", "name", name="uq_projects_owner_name"),)

    owner_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text, default=None)
    name_key: Mapped[str] = mapped_column(Text)
    """:func:`~domain.text.caseless` of ``name``: what ``?q=`` searches. Set with the name, by :meth:`rename`."""

    def rename(self, name: str) -> None:
        """Set the name and its search key together."""
        self.name = name
        self.name_key = caseless(name)
