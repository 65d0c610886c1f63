"""Task rules: a task lives in a project the actor can see, and names its tags."""

from __future__ import annotations

from uuid import UUID

import msgspec
from advanced_alchemy.filters import LimitOffset, OrderBy
from sqlalchemy import ColumnElement

from domain.base import Page
from domain.errors import NotFoundError
from domain.principal import Principal
from domain.projects.service import ProjectService
from domain.tags.models import Tag, tag_key
from domain.tags.service import TagService
from domain.tasks.models import Task, TaskStatus
from domain.tasks.repository import TaskRepository
from domain.tasks.schemas import TaskCreate, TaskOut, TaskUpdate


def to_task_out(task: Task) -> TaskOut:
    return TaskOut(
        id=task.id,
        project_id=task.project_id,
        title=task.title,
        description=task.description,
        status=task.status,
        priority=task.priority,
        due_date=task.due_date,
        tags=[tag.name for tag in task.tags],
        created_at=task.created_at,
        updated_at=task.updated_at,
    )


class TaskService:
    def __init__(
        self, repository: TaskRepository, projects: ProjectService, tags: TagService, actor: Principal
    ) -> None:
        self._tasks = repository
        self._projects = projects
        self._tags = tags
        self._actor = actor

    def _visible(self) -> list[ColumnElement[bool]]:
        return [] if self._actor.is_admin else [Task.owner_id == self._actor.id]

    async def _get_visible(self, task_id: UUID) -> Task:
        task = await self._tasks.get_one_or_none(Task.id == task_id, *self._visible())
        if task is None:
            raise NotFoundError(f"task {task_id} not found")
        return task

    async def create(self, project_id: UUID, data: TaskCreate) -> TaskOut:
        project = await self._projects.get_visible(project_id)
        task = Task(
            project_id=project.id,
            owner_id=project.owner_id,
            title=data.title.strip(),
            description=data.description,
            status=data.status,
            priority=data.priority,
            due_date=data.due_date,
            tags=await self._tags.ensure(project.owner_id, data.tags),
        )
        return to_task_out(await self._tasks.add(task))

    async def list(
        self,
        project_id: UUID,
        *,
        limit: int,
        offset: int,
        status: TaskStatus | None = None,
        tag: str | None = None,
    ) -> Page[TaskOut]:
        project = await self._projects.get_visible(project_id)
        conditions: list[ColumnElement[bool]] = [Task.project_id == project.id]
        if status is not None:
            conditions.append(Task.status == status)
        if tag:
            conditions.append(Task.tags.any(Tag.name_key == tag_key(tag.strip())))
        tasks, total = await self._tasks.get_many_and_count(
            LimitOffset(limit=limit, offset=offset), OrderBy("created_at", "desc"), *conditions
        )
        return Page(items=[to_task_out(t) for t in tasks], total=total, limit=limit, offset=offset)

    async def get(self, task_id: UUID) -> TaskOut:
        return to_task_out(await self._get_visible(task_id))

    async def update(self, task_id: UUID, data: TaskUpdate) -> TaskOut:
        task = await self._get_visible(task_id)
        changes = msgspec.structs.asdict(data)
        tags = changes.pop("tags")
        for field, value in changes.items():
            if value is not msgspec.UNSET:
                setattr(task, field, value.strip() if field == "title" else value)
        if tags is not msgspec.UNSET:
            task.tags = await self._tags.ensure(task.owner_id, tags)
        return to_task_out(await self._tasks.update(task))

    async def delete(self, task_id: UUID) -> None:
        task = await self._get_visible(task_id)
        await self._tasks.delete(task.id)
