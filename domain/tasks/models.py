"""The ``tasks`` table."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import TYPE_CHECKING
from uuid import UUID

from sqlalchemy import Date, Enum, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from domain.base import AuditBase
from domain.tags.models import task_tags

if TYPE_CHECKING:
    from domain.tags.models import Tag


class TaskStatus(StrEnum):
    TODO = "todo"
    IN_PROGRESS = "in_progress"
    DONE = "done"


class TaskPriority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"


class Task(AuditBase):
    __tablename__ = "tasks"

    project_id: Mapped[UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    owner_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    """The project's owner, kept on the task so ownership checks need no join."""
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text, default=None)
    status: Mapped[TaskStatus] = mapped_column(
        Enum(TaskStatus, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]),
        default=TaskStatus.TODO,
        index=True,
    )
    priority: Mapped[TaskPriority] = mapped_column(
        Enum(TaskPriority, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]),
        default=TaskPriority.NORMAL,
    )
    due_date: Mapped[date | None] = mapped_column(Date, default=None)
    tags: Mapped[list[Tag]] = relationship(secondary=task_tags, lazy="selectin", order_by="Tag.name")
