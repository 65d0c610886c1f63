"""``/projects/{id}/tasks`` and ``/tasks/{id}``."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, Parameter

from domain.base import Page
from domain.guards import require_scope
from domain.pagination import Limit, Offset
from domain.tasks.models import TaskStatus
from domain.tasks.schemas import TaskCreate, TaskOut, TaskUpdate
from domain.tasks.service import TaskService
from domain.text import NUL_FREE


class TaskController(Controller):
    tags = ["tasks"]

    @post("/projects/{project_id:uuid}/tasks", guards=[require_scope("projects:write")], summary="Create a task")
    async def create_task(
        self, project_id: FromPath[UUID], data: JSONBody[TaskCreate], task_service: NamedDependency[TaskService]
    ) -> Response[TaskOut]:
        task = await task_service.create(project_id, data)
        return Response(task, status_code=201, headers={"Location": f"/tasks/{task.id}"})

    @get(
        "/projects/{project_id:uuid}/tasks",
        guards=[require_scope("projects:read")],
        summary="List a project's tasks",
    )
    async def list_tasks(
        self,
        project_id: FromPath[UUID],
        task_service: NamedDependency[TaskService],
        limit: Limit = 20,
        offset: Offset = 0,
        status: FromQuery[TaskStatus | None] = None,
        tag: Annotated[str | None, Parameter(max_length=64, pattern=NUL_FREE, description="tag name, any case")] = None,
    ) -> Page[TaskOut]:
        return await task_service.list(project_id, limit=limit, offset=offset, status=status, tag=tag)

    @get("/tasks/{task_id:uuid}", guards=[require_scope("projects:read")], summary="Get a task")
    async def get_task(self, task_id: FromPath[UUID], task_service: NamedDependency[TaskService]) -> TaskOut:
        return await task_service.get(task_id)

    @patch("/tasks/{task_id:uuid}", guards=[require_scope("projects:write")], summary="Update a task")
    async def update_task(
        self, task_id: FromPath[UUID], data: JSONBody[TaskUpdate], task_service: NamedDependency[TaskService]
    ) -> TaskOut:
        return await task_service.update(task_id, data)

    @delete("/tasks/{task_id:uuid}", guards=[require_scope("projects:write")], summary="Delete a task")
    async def delete_task(self, task_id: FromPath[UUID], task_service: NamedDependency[TaskService]) -> None:
        await task_service.delete(task_id)
