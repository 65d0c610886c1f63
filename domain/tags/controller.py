"""``/tags``."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, Parameter

from domain.base import Page
from domain.guards import require_scope
from domain.openapi import ROUTE_ERRORS
from domain.pagination import Limit, Offset
from domain.tags.schemas import TagCreate, TagOut
from domain.tags.service import TagService
from domain.text import NUL_FREE


class TagController(Controller):
    path = "/tags"
    tags = ["tags"]

    @get("/", guards=[require_scope("projects:read")], summary="List the caller's tags")
    async def list_tags(
        self,
        tag_service: NamedDependency[TagService],
        limit: Limit = 50,
        offset: Offset = 0,
        q: Annotated[str | None, Parameter(max_length=64, pattern=NUL_FREE)] = None,
    ) -> Page[TagOut]:
        return await tag_service.list(limit=limit, offset=offset, q=q)

    @post(
        "/",
        guards=[require_scope("projects:write")],
        summary="Create a tag",
        opt={ROUTE_ERRORS: {409: "The caller has a tag of that name, in any case"}},
    )
    async def create_tag(self, data: JSONBody[TagCreate], tag_service: NamedDependency[TagService]) -> Response[TagOut]:
        tag = await tag_service.create(data)
        return Response(tag, status_code=201, headers={"Location": f"/tags/{tag.id}"})

    @delete("/{tag_id:uuid}", guards=[require_scope("projects:write")], summary="Delete a tag")
    async def delete_tag(self, tag_id: FromPath[UUID], tag_service: NamedDependency[TagService]) -> None:
        await tag_service.delete(tag_id)
