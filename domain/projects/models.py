"""The ``projects`` table."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, validates

from domain.base import AuditBase
from domain.text import search_key


class Project(AuditBase):
    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("owner_id", "name", name="uq_projects_owner_name"),)

    owner_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text, default=None)
    name_search: Mapped[str] = mapped_column(Text)
    """:func:`~domain.text.search_key` of ``name``: what ``?q=`` searches. Set whenever the name is."""

    @validates("name")
    def _keep_name_search(self, _: str, name: str) -> str:
        self.name_search = search_key(name)
        return name
