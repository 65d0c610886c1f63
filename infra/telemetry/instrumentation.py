"""Client spans for the database and Redis, on the app's own tracer provider.

Each client is instrumented where it is created (rather than by patching the
libraries process-wide), so two apps in one process (tests) trace independently.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.instrumentation.sqlalchemy.version import __version__ as sqlalchemy_instrumentation_version
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.trace import TracerProvider, get_current_span
from redis.asyncio import Redis
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine


def instrument_engine(engine: AsyncEngine, tracer_provider: TracerProvider) -> None:
    """A span per statement (``db.statement``, ``db.system``), nested under whatever span issued it.

    The library's ``EngineTracer`` makes the spans, but two of its habits cost every request,
    traced or not (bench/README.md): it listens to the pool's checkout, checkin, connect and close
    to count connections (a metric this service does not export), and it starts a span for every
    statement even when the request is not sampled. Those pool listeners are removed, and its
    statement listener runs only under a recording span; a statement outside any trace gets none.
    """
    tracer = tracer_provider.get_tracer("opentelemetry.instrumentation.sqlalchemy", sqlalchemy_instrumentation_version)
    connections_usage = (
        NoOpMeterProvider().get_meter("sqlalchemy").create_up_down_counter("db.client.connections.usage")
    )
    sync_engine = engine.sync_engine
    tracer_of_engine = EngineTracer(tracer, sync_engine, connections_usage)  # type: ignore[no-untyped-call]
    start_statement_span = tracer_of_engine._before_cur_exec
    for identifier, listener in (
        ("before_cursor_execute", start_statement_span),
        ("connect", tracer_of_engine._pool_connect),
        ("close", tracer_of_engine._pool_close),
        ("checkin", tracer_of_engine._pool_checkin),
        ("checkout", tracer_of_engine._pool_checkout),
    ):
        event.remove(sync_engine, identifier, listener)

    def start_span_when_traced(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> tuple[str, Any]:
        if not get_current_span().is_recording():
            return statement, parameters
        result: tuple[str, Any] = start_statement_span(  # type: ignore[no-untyped-call]
            conn, cursor, statement, parameters, context, executemany
        )
        return result

    event.listen(sync_engine, "before_cursor_execute", start_span_when_traced, retval=True)


def instrument_redis(client: Redis, tracer_provider: TracerProvider) -> None:
    """A span per Redis command."""
    RedisInstrumentor.instrument_client(client, tracer_provider=tracer_provider)
