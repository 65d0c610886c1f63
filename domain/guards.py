"""Route guards: ``require_scope("projects:write")`` as the seed has it."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard

from domain.principal import Principal


def require_scope(scope: str) -> Guard:
    """A guard that lets the request through when the caller's token carries ``scope`` (or ``admin``)."""

    # async on purpose: Litestar runs a sync guard in a worker thread, a thread hop per request
    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        principal = connection.scope.get("user")
        if not isinstance(principal, Principal):
            raise NotAuthorizedException("authentication required")
        if not principal.has_scope(scope):
            raise PermissionDeniedException(f"this needs the {scope!r} scope")

    guard.__name__ = f"require_scope({scope})"
    guard.required_scope = scope  # type: ignore[attr-defined]
    return guard
