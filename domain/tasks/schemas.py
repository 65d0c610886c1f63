"""Bodies of the task endpoints."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated
from uuid import UUID

import msgspec

from domain.tags.schemas import TagName
from domain.tasks.models import TaskPriority, TaskStatus
from domain.text import NOT_BLANK, Description

Title = Annotated[str, msgspec.Meta(min_length=1, max_length=300, pattern=NOT_BLANK)]
TagNames = Annotated[list[TagName], msgspec.Meta(max_length=50)]


class TaskCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    title: Title
    description: Description | None = None
    status: TaskStatus = TaskStatus.TODO
    priority: TaskPriority = TaskPriority.NORMAL
    due_date: date | None = None
    tags: TagNames = msgspec.field(default_factory=list)


class TaskUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Partial update; ``tags``, when present, replaces the task's tags."""

    title: Title | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType | None = msgspec.UNSET
    status: TaskStatus | msgspec.UnsetType = msgspec.UNSET
    priority: TaskPriority | msgspec.UnsetType = msgspec.UNSET
    due_date: date | msgspec.UnsetType | None = msgspec.UNSET
    tags: TagNames | msgspec.UnsetType = msgspec.UNSET


class TaskOut(msgspec.Struct, kw_only=True):
    id: UUID
    project_id: UUID
    title: str
    description: str | None
    status: TaskStatus
    priority: TaskPriority
    due_date: date | None
    tags: list[str]
    created_at: datetime
    updated_at: datetime
