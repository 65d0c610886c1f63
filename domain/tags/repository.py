from __future__ import annotations

from advanced_alchemy.repository import SQLAlchemyAsyncRepository

from domain.tags.models import Tag


class TagRepository(SQLAlchemyAsyncRepository[Tag]):
    model_type = Tag
