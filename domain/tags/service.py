"""Tag rules: unique per owner regardless of case; tasks create the tags they name."""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from uuid import UUID

import msgspec
from advanced_alchemy.filters import LimitOffset, OrderBy
from sqlalchemy import ColumnElement
from sqlalchemy.dialects import postgresql, sqlite

from domain.base import Page
from domain.errors import ConflictError, NotFoundError
from domain.principal import Principal
from domain.search import contains
from domain.tags.models import Tag, tag_key
from domain.tags.repository import TagRepository
from domain.tags.schemas import TagCreate, TagOut
from domain.text import search_key


def to_tag_out(tag: Tag) -> TagOut:
    return msgspec.convert(tag, TagOut, from_attributes=True)


class TagService:
    def __init__(self, repository: TagRepository, actor: Principal) -> None:
        self._tags = repository
        self._actor = actor

    def _visible(self) -> list[ColumnElement[bool]]:
        return [] if self._actor.is_admin else [Tag.owner_id == self._actor.id]

    async def list(self, *, limit: int, offset: int, q: str | None = None) -> Page[TagOut]:
        conditions = self._visible()
        if q:
            conditions.append(contains(Tag.name_search, q))
        tags, total = await self._tags.get_many_and_count(
            LimitOffset(limit=limit, offset=offset), OrderBy("name", "asc"), *conditions
        )
        return Page(items=[to_tag_out(t) for t in tags], total=total, limit=limit, offset=offset)

    async def create(self, data: TagCreate) -> TagOut:
        name = data.name.strip()
        key = tag_key(name)
        clash = await self._tags.get_one_or_none(Tag.owner_id == self._actor.id, Tag.name_key == key)
        if clash is not None:
            raise ConflictError(f"a tag named {clash.name!r} already exists")
        return to_tag_out(await self._tags.add(Tag(owner_id=self._actor.id, name=name)))

    async def delete(self, tag_id: UUID) -> None:
        tag = await self._tags.get_one_or_none(Tag.id == tag_id, *self._visible())
        if tag is None:
            raise NotFoundError(f"tag {tag_id} not found")
        await self._tags.delete(tag.id)

    async def ensure(self, owner_id: UUID, names: Iterable[str]) -> builtins.list[Tag]:
        """The owner's tags with these names, creating the missing ones.

        Safe under concurrency: two requests naming the same new tag both end up with
        the one row (``INSERT ... ON CONFLICT DO NOTHING`` on the unique index of :func:`tag_key`).
        """
        wanted: dict[str, str] = {}
        for raw in names:
            name = raw.strip()
            wanted.setdefault(tag_key(name), name)
        if not wanted:
            return []
        found = await self._find(owner_id, wanted)
        missing = [(key, name) for key, name in wanted.items() if key not in found]
        if missing:
            session = self._tags.session
            dialect = session.get_bind().dialect.name
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            # a Core insert: the model's validator does not run, so the keys are set here
            rows = [
                {"owner_id": owner_id, "name": name, "name_key": key, "name_search": search_key(name)}
                for key, name in missing
            ]
            await session.execute(insert(Tag).values(rows).on_conflict_do_nothing())
            found = await self._find(owner_id, wanted)
        return [found[key] for key in wanted]

    async def _find(self, owner_id: UUID, wanted: dict[str, str]) -> dict[str, Tag]:
        tags = await self._tags.get_many(Tag.owner_id == owner_id, Tag.name_key.in_(builtins.list(wanted)))
        return {tag.name_key: tag for tag in tags}
