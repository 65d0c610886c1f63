"""``/projects``: thin handlers, one service call each."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, Parameter

from domain.base import Page
from domain.guards import require_scope
from domain.openapi import ROUTE_ERRORS
from domain.pagination import Limit, Offset
from domain.projects.schemas import ProjectCreate, ProjectOut, ProjectUpdate
from domain.projects.service import ProjectService
from domain.text import NUL_FREE


class ProjectController(Controller):
    path = "/projects"
    tags = ["projects"]

    @post(
        "/",
        guards=[require_scope("projects:write")],
        summary="Create a project",
        opt={ROUTE_ERRORS: {409: "The caller has a project of that name"}},
    )
    async def create_project(
        self, data: JSONBody[ProjectCreate], project_service: NamedDependency[ProjectService]
    ) -> Response[ProjectOut]:
        project = await project_service.create(data)
        return Response(project, status_code=201, headers={"Location": f"/projects/{project.id}"})

    @get("/", guards=[require_scope("projects:read")], summary="List the caller's projects")
    async def list_projects(
        self,
        project_service: NamedDependency[ProjectService],
        limit: Limit = 20,
        offset: Offset = 0,
        q: Annotated[
            str | None, Parameter(max_length=200, pattern=NUL_FREE, description="substring of the name")
        ] = None,
    ) -> Page[ProjectOut]:
        return await project_service.list(limit=limit, offset=offset, q=q)

    @get("/{project_id:uuid}", guards=[require_scope("projects:read")], summary="Get a project")
    async def get_project(
        self, project_id: FromPath[UUID], project_service: NamedDependency[ProjectService]
    ) -> ProjectOut:
        return await project_service.get(project_id)

    @patch(
        "/{project_id:uuid}",
        guards=[require_scope("projects:write")],
        summary="Update a project",
        opt={ROUTE_ERRORS: {409: "The caller has another project of that name"}},
    )
    async def update_project(
        self,
        project_id: FromPath[UUID],
        data: JSONBody[ProjectUpdate],
        project_service: NamedDependency[ProjectService],
    ) -> ProjectOut:
        return await project_service.update(project_id, data)

    @delete(
        "/{project_id:uuid}",
        guards=[require_scope("projects:write")],
        summary="Delete a project and its tasks",
    )
    async def delete_project(
        self, project_id: FromPath[UUID], project_service: NamedDependency[ProjectService]
    ) -> None:
        await project_service.delete(project_id)
