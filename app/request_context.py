"""Per-request context: the request id for logs and one access line.

- :class:`RequestContextMiddleware` puts the request id where every log line finds it.
- :func:`finish_response`, a ``before_send`` hook, puts ``X-Request-ID`` on every
  response and writes the access line. It runs for every response, also those that
  the exception handlers outside the middleware make (401, 404, 500).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from litestar.datastructures import MutableScopeHeaders
from litestar.middleware import ASGIMiddleware

from app.request_id import request_id
from infra.telemetry.logging import REQUEST_ID

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

access_logger = logging.getLogger("app.access")

QUIET_PATH_PREFIXES = ("/health", "/metrics")
"""Probes and scrapes: logged at DEBUG so that they do not drown the access log."""

UNMATCHED_ROUTE = "<unmatched>"
_STARTED_AT = "started_at"


class RequestContextMiddleware(ASGIMiddleware):
    scopes = ("http",)  # type: ignore[assignment]

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        scope.setdefault("state", {})[_STARTED_AT] = time.perf_counter()
        token = REQUEST_ID.set(request_id(scope))
        try:
            await next_app(scope, receive, send)
        finally:
            REQUEST_ID.reset(token)


async def finish_response(message: Message, scope: Scope) -> None:
    """``before_send``: the request id header on every response, and the access line."""
    if message["type"] != "http.response.start":
        return
    rid = request_id(scope)
    MutableScopeHeaders.from_message(message)["X-Request-ID"] = rid
    path = scope.get("path", "")
    level = logging.DEBUG if path.startswith(QUIET_PATH_PREFIXES) else logging.INFO
    if not access_logger.isEnabledFor(level):
        return
    method = scope.get("method", "")
    route = scope.get("path_template") or UNMATCHED_ROUTE
    status = message["status"]
    started = scope.get("state", {}).get(_STARTED_AT)
    extra: dict[str, object] = {"request_id": rid, "method": method, "route": route, "status": status}
    if started is not None:
        extra["duration_ms"] = round((time.perf_counter() - started) * 1000, 2)
    access_logger.log(level, "%s %s %s", method, route, status, extra=extra)
