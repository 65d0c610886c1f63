"""Every error leaves in the contract's shape: ``{"error", "request_id", "detail"?}``.

A 500 never carries a stack trace or SQL; a dependency that is down gives 503 with
``Retry-After``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from advanced_alchemy import exceptions as aa
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, ValidationException
from litestar.types import Receive, Scope, Send
from sqlalchemy import exc as sa_exc

from app.request_id import request_id
from domain.errors import DomainError, InvalidFieldsError, OAuthError

logger = logging.getLogger("app.errors")

RETRY_AFTER_SECONDS = 5

_UNAVAILABLE = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    sa_exc.DisconnectionError,
    ConnectionError,
    TimeoutError,
    OSError,
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _is_unavailable(exc: BaseException) -> bool:
    for link in _chain(exc):
        if isinstance(link, _UNAVAILABLE):
            return True
        if isinstance(link, sa_exc.DBAPIError) and link.connection_invalidated:
            return True
        if type(link).__module__.startswith(("asyncpg", "redis")) and "Connection" in type(link).__name__:
            return True
    return False


def _is_integrity_violation(exc: BaseException) -> bool:
    return any(isinstance(link, sa_exc.IntegrityError) for link in _chain(exc))


_UNSTORABLE_VALUE_STATES = frozenset({"22001", "22003", "22021", "22P05"})
"""PostgreSQL's refusals of a value as given: too long for its column, a number out of its type's
range, a character the encoding cannot hold (NUL), one it cannot translate."""


def _is_unstorable_value(exc: BaseException) -> bool:
    """A value of the request that PostgreSQL refused: the schemas refuse such input first, so this is
    the backstop that keeps a missed case from a 500. Only the states above: another data exception
    (a division by zero in a query) is the service's fault and stays a 500. SQLAlchemy's asyncpg
    adapter raises these as its generic ``Error``, with the SQLSTATE on it."""
    return any(getattr(link, "sqlstate", None) in _UNSTORABLE_VALUE_STATES for link in _chain(exc))


def _body(scope: Scope, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": message, "request_id": request_id(scope), **extra}


def _validation_detail(exc: ValidationException) -> list[dict[str, Any]]:
    extra = exc.extra if isinstance(exc.extra, list) else []
    detail = []
    for item in extra:
        if isinstance(item, dict):
            detail.append({"field": item.get("key"), "message": item.get("message"), "source": item.get("source")})
    return detail


def error_response(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """The one exception handler of the app (registered for ``Exception``)."""
    scope = request.scope
    headers: dict[str, str] = {}
    if isinstance(exc, OAuthError):
        status, body = exc.status_code, _body(scope, exc.code, error_description=exc.message)
        if exc.detail is not None:
            body["detail"] = exc.detail
    elif isinstance(exc, InvalidFieldsError):
        status, body = exc.status_code, _body(scope, exc.message, detail=exc.detail)
    elif isinstance(exc, DomainError):
        status, body = exc.status_code, _body(scope, exc.message)
        retry_after = getattr(exc, "retry_after", None)  # 503 and 429 tell the client when to come back
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
    elif isinstance(exc, ValidationException):
        status, body = 400, _body(scope, "invalid request", detail=_validation_detail(exc))
    elif isinstance(exc, NotAuthorizedException):
        status, body = 401, _body(scope, exc.detail or "authentication required")
        has_token = request.headers.get("authorization", "").lower().startswith("bearer ")
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"' if has_token else "Bearer"
    elif isinstance(exc, HTTPException) and exc.status_code < 500:
        status, body = exc.status_code, _body(scope, exc.detail)
        headers.update(exc.headers or {})
    elif isinstance(exc, aa.NotFoundError):
        status, body = 404, _body(scope, "not found")
    elif _is_unavailable(exc):
        # before the conflict check: advanced-alchemy wraps *every* statement error, a dropped
        # connection included, in its IntegrityError
        logger.warning("dependency unavailable: %s", type(exc).__name__, exc_info=exc)
        status, body = 503, _body(scope, "a dependency is unavailable, retry shortly")
        headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    elif _is_unstorable_value(exc):
        logger.warning("the database refused a value of the request", exc_info=exc)  # a schema to tighten
        status, body = 400, _body(scope, "a value of the request cannot be stored")
    elif isinstance(exc, aa.DuplicateKeyError) or _is_integrity_violation(exc):
        status, body = 409, _body(scope, "conflicts with an existing resource")
    else:
        logger.error("unhandled error", exc_info=exc)
        status, body = 500, _body(scope, "internal server error")
    return Response(body, status_code=status, headers=headers)


async def send_error_response(scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
    """Answer with the error response for ``exc`` from outside a route handler (a middleware)."""
    request: Request[Any, Any, Any] = Request(scope, receive)
    response = error_response(request, exc)
    await response.to_asgi_response(app=None, request=request)(scope, receive, send)
