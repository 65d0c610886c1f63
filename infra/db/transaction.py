"""One session per request: commit on success, roll back otherwise, always close.

The session is opened lazily by the ``db_session`` dependency and kept in the ASGI
scope. This middleware finishes it:

- when the response starts with a 2xx status it commits *before* the status line
  goes out; if the commit fails, the client gets the error response for that failure
  (never a 2xx for a write that was lost) and the original response is dropped;
- any other status rolls back;
- ``finally`` closes the session, also when the handler raised past every exception
  handler or the client went away mid-request (closing rolls back).

This is the teardown of the ``db_session`` dependency, so it is traced as one:
``di db_session teardown`` with ``db.transaction.outcome`` = commit, rollback or close.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from advanced_alchemy.extensions.litestar._utils import delete_aa_scope_state, get_aa_scope_state
from litestar.middleware import ASGIMiddleware
from opentelemetry.trace import Span, Tracer

from infra.telemetry.tracing import child_span

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send
    from sqlalchemy.ext.asyncio import AsyncSession

logger = logging.getLogger(__name__)

ErrorResponder = Callable[["Scope", "Receive", "Send", Exception], Awaitable[None]]


def _take_session(scope: Scope, key: str) -> AsyncSession | None:
    session: AsyncSession | None = get_aa_scope_state(scope, key)
    if session is not None:
        delete_aa_scope_state(scope, key)
    return session


class TransactionMiddleware(ASGIMiddleware):
    scopes = ("http",)  # type: ignore[assignment]

    def __init__(
        self,
        session_scope_key: str,
        respond_with_error: ErrorResponder,
        tracer: Tracer | None = None,
        dependency_key: str = "db_session",
    ) -> None:
        """``session_scope_key``: where the session provider keeps the session (the config's, which
        advanced-alchemy makes unique per config instance)."""
        self._key = session_scope_key
        self._respond_with_error = respond_with_error
        self._tracer = tracer
        self._span_name = f"di {dependency_key} teardown"
        # made once, not per request: most requests are not traced and never read them
        self._attributes_of = {
            outcome: {"di.key": dependency_key, "di.scope": "request", "db.transaction.outcome": outcome}
            for outcome in ("commit", "rollback", "close")
        }

    def _teardown_span(self, outcome: str) -> AbstractContextManager[Span | None]:
        return child_span(self._tracer, self._span_name, self._attributes_of[outcome])

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        replaced = False

        async def send_finishing_transaction(message: Message) -> None:
            nonlocal replaced
            if replaced:
                return
            if message["type"] == "http.response.start" and (session := _take_session(scope, self._key)) is not None:
                outcome = "commit" if 200 <= message["status"] < 300 else "rollback"
                try:
                    with self._teardown_span(outcome):
                        try:
                            await (session.commit() if outcome == "commit" else session.rollback())
                        finally:
                            await session.close()
                except Exception as exc:
                    logger.warning("transaction could not be finished", exc_info=exc)
                    replaced = True
                    await self._respond_with_error(scope, receive, send, exc)
                    return
            await send(message)

        try:
            await next_app(scope, receive, send_finishing_transaction)
        finally:
            if (session := _take_session(scope, self._key)) is not None:
                with self._teardown_span("close"):
                    await session.close()
