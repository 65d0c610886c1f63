from __future__ import annotations

from advanced_alchemy.repository import SQLAlchemyAsyncRepository

from domain.projects.models import Project


class ProjectRepository(SQLAlchemyAsyncRepository[Project]):
    model_type = Project
