"""Client spans for the database and Redis, on the app's own tracer provider.

Each client is instrumented where it is created (rather than by patching the
libraries process-wide), so two apps in one process (tests) trace independently.
"""

from __future__ import annotations

from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.instrumentation.sqlalchemy.version import __version__ as sqlalchemy_instrumentation_version
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.trace import TracerProvider
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine


def instrument_engine(engine: AsyncEngine, tracer_provider: TracerProvider) -> None:
    """A span per statement (``db.statement``, ``db.system``), nested under whatever span issued it."""
    tracer = tracer_provider.get_tracer("opentelemetry.instrumentation.sqlalchemy", sqlalchemy_instrumentation_version)
    connections_usage = (
        NoOpMeterProvider().get_meter("sqlalchemy").create_up_down_counter("db.client.connections.usage")
    )
    EngineTracer(tracer, engine.sync_engine, connections_usage)  # type: ignore[no-untyped-call]


def instrument_redis(client: Redis, tracer_provider: TracerProvider) -> None:
    """A span per Redis command."""
    RedisInstrumentor.instrument_client(client, tracer_provider=tracer_provider)
