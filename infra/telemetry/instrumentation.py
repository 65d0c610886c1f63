"""Client spans for the database and Redis, on the app's own tracer provider.

Each client is instrumented where it is created (rather than by patching the
libraries process-wide), so two apps in one process (tests) trace independently.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.trace import SpanKind, Status, StatusCode, TracerProvider
from redis.asyncio import Redis
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.telemetry.current_span import current_span_is_recording

_DB_SYSTEMS = {"postgresql": "postgresql", "sqlite": "sqlite"}


def instrument_engine(engine: AsyncEngine, tracer_provider: TracerProvider) -> None:
    """A ``CLIENT`` span per statement, nested under whatever span issued it, with the attributes of
    ``opentelemetry-instrumentation-sqlalchemy`` (``db.system``, ``db.name``, ``db.statement``,
    ``net.peer.name``, ``net.peer.port``; named ``SELECT <db>``).

    Why not that library: it listens to the engine's cursor and pool events, and any engine-level
    listener moves every statement, ``BEGIN`` and ``COMMIT`` of every request onto SQLAlchemy's event
    path, traced or not; with the connection attributes it re-derives from the URL per statement
    that was about 3 % of the throughput of an unsampled request (bench/README.md). Here the span is
    made in the dialect's ``do_execute`` hooks, which SQLAlchemy consults only at the cursor call:
    an unsampled statement costs one context look-up and runs as if nothing listened.
    """
    sync_engine = engine.sync_engine
    dialect = sync_engine.dialect
    tracer = tracer_provider.get_tracer("video-opusclip.db")
    url = sync_engine.url
    database = url.database or ""
    connection_attributes: dict[str, str | int] = {"db.system": _DB_SYSTEMS.get(dialect.name, dialect.name)}
    if database:
        connection_attributes["db.name"] = database
    if url.host:
        connection_attributes["net.peer.name"] = url.host
    if url.port:
        connection_attributes["net.peer.port"] = url.port
    suffix = f" {database}" if database and url.host else ""  # a SQLite file path says nothing in a span name

    def traced(run: Callable[..., None]) -> Callable[..., bool]:
        def handler(cursor: Any, statement: str, *args: Any) -> bool:
            if not current_span_is_recording():
                return False  # SQLAlchemy runs the statement itself
            words = statement.split(None, 1)
            span = tracer.start_span(
                f"{words[0] if words else dialect.name}{suffix}",
                kind=SpanKind.CLIENT,
                attributes={**connection_attributes, "db.statement": statement},
            )
            try:
                run(cursor, statement, *args)
            except BaseException as exc:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                raise
            finally:
                span.end()
            return True

        return handler

    event.listen(sync_engine, "do_execute", traced(dialect.do_execute))
    event.listen(sync_engine, "do_executemany", traced(dialect.do_executemany))
    event.listen(sync_engine, "do_execute_no_params", traced(dialect.do_execute_no_params))


def instrument_redis(client: Redis, tracer_provider: TracerProvider) -> None:
    """A span per Redis command."""
    RedisInstrumentor.instrument_client(client, tracer_provider=tracer_provider)
