"""Project rules: names unique per owner, nobody but the owner (or an admin) sees a project."""

from __future__ import annotations

from uuid import UUID

import msgspec
from advanced_alchemy.filters import LimitOffset, OrderBy
from sqlalchemy import ColumnElement

from domain.base import Page
from domain.errors import ConflictError, NotFoundError
from domain.principal import Principal
from domain.projects.models import Project
from domain.projects.repository import ProjectRepository
from domain.projects.schemas import ProjectCreate, ProjectOut, ProjectUpdate
from domain.search import contains


def to_project_out(project: Project) -> ProjectOut:
    return msgspec.convert(project, ProjectOut, from_attributes=True)


class ProjectService:
    """Acts for one principal: every query is scoped to what that principal owns."""

    def __init__(self, repository: ProjectRepository, actor: Principal) -> None:
        self._projects = repository
        self._actor = actor

    def _visible(self) -> list[ColumnElement[bool]]:
        return [] if self._actor.is_admin else [Project.owner_id == self._actor.id]

    async def get_visible(self, project_id: UUID) -> Project:
        """The project, if the actor may see it; otherwise 404 (never reveal that it exists)."""
        project = await self._projects.get_one_or_none(Project.id == project_id, *self._visible())
        if project is None:
            raise NotFoundError(f"project {project_id} not found")
        return project

    async def _ensure_name_free(self, owner_id: UUID, name: str, except_id: UUID | None = None) -> None:
        clash = await self._projects.get_one_or_none(Project.owner_id == owner_id, Project.name == name)
        if clash is not None and clash.id != except_id:
            raise ConflictError(f"a project named {name!r} already exists")

    async def create(self, data: ProjectCreate) -> ProjectOut:
        name = data.name.strip()
        await self._ensure_name_free(self._actor.id, name)
        project = await self._projects.add(Project(owner_id=self._actor.id, name=name, description=data.description))
        return to_project_out(project)

    async def get(self, project_id: UUID) -> ProjectOut:
        return to_project_out(await self.get_visible(project_id))

    async def list(self, *, limit: int, offset: int, q: str | None = None) -> Page[ProjectOut]:
        conditions = self._visible()
        if q:
            conditions.append(contains(Project.name_search, q))
        projects, total = await self._projects.get_many_and_count(
            LimitOffset(limit=limit, offset=offset), OrderBy("created_at", "desc"), *conditions
        )
        return Page(items=[to_project_out(p) for p in projects], total=total, limit=limit, offset=offset)

    async def update(self, project_id: UUID, data: ProjectUpdate) -> ProjectOut:
        project = await self.get_visible(project_id)
        if data.name is not msgspec.UNSET:
            name = data.name.strip()
            await self._ensure_name_free(project.owner_id, name, except_id=project.id)
            project.name = name
        if data.description is not msgspec.UNSET:
            project.description = data.description
        return to_project_out(await self._projects.update(project))

    async def delete(self, project_id: UUID) -> None:
        project = await self.get_visible(project_id)
        await self._projects.delete(project.id)
