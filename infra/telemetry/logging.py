"""Structured logs: JSON lines in production, readable lines in development.

Every line carries the request id and the trace and span ids of the code that
logged it. Those are read when the record is made (in the logging thread), then
the line is written by a queue listener thread, so a slow stderr never blocks the
event loop. Libraries' stdlib loggers (uvicorn, SQLAlchemy, ...) go the same way.
"""

from __future__ import annotations

import atexit
import logging
import queue
import sys
from contextvars import ContextVar
from logging.handlers import QueueHandler, QueueListener
from typing import TextIO

import msgspec
import structlog

from infra.telemetry.current_span import current_span

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
"""The id of the request being served; set by the request-context middleware."""

_installed: tuple[QueueHandler, QueueListener] | None = None
_direct: logging.Handler | None = None
"""The synchronous handler :func:`flush_logging` leaves behind."""


class ContextFilter(logging.Filter):
    """Stamps ``request_id``, ``trace_id`` and ``span_id`` on each record, in the thread that logs it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = REQUEST_ID.get()
        context = current_span().get_span_context()
        if context.is_valid:
            record.trace_id = format(context.trace_id, "032x")
            record.span_id = format(context.span_id, "016x")
        return True


_ENCODER = msgspec.json.Encoder(enc_hook=repr)  # an extra of an odd type is logged as its repr


def _json_dumps(event: object, **_: object) -> str:
    """msgspec rather than the json module: a third of the formatting time, on every access line."""
    return _ENCODER.encode(event).decode()


def _formatter(json_lines: bool) -> logging.Formatter:
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(serializer=_json_dumps)
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ExtraAdder(),
            _drop_noise,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if json_lines else _passthrough,
            renderer,
        ],
    )


def _drop_noise(_: object, __: str, event: structlog.typing.EventDict) -> structlog.typing.EventDict:
    """Drop empty context (no request id outside a request) and uvicorn's coloured copy of each message."""
    event.pop("color_message", None)
    event.pop("message", None)  # another handler (pytest's, say) formatted the record first
    for key in ("request_id", "trace_id", "span_id"):
        if event.get(key) is None:
            event.pop(key, None)
    return event


def _passthrough(_: object, __: str, event: structlog.typing.EventDict) -> structlog.typing.EventDict:
    return event


def configure_logging(level: str, *, json_lines: bool, stream: TextIO | None = None) -> None:
    """Route the root logger through one queue to ``stream`` (stderr). Idempotent: a second call
    replaces the first."""
    global _installed, _direct
    root = logging.getLogger()
    if _direct is not None:
        root.removeHandler(_direct)
        _direct = None
    if _installed is not None:
        old_handler, old_listener = _installed
        root.removeHandler(old_handler)
        old_listener.stop()
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    handler = QueueHandler(records)
    handler.addFilter(ContextFilter())
    handler.setFormatter(_formatter(json_lines))
    writer = logging.StreamHandler(sys.stderr if stream is None else stream)
    writer.setFormatter(logging.Formatter("%(message)s"))
    listener = QueueListener(records, writer)
    listener.start()
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # the app writes its own access line (with the route template, the request id and the trace id)
    logging.getLogger("uvicorn.access").handlers.clear()
    logging.getLogger("uvicorn.access").propagate = False
    _installed = (handler, listener)


def flush_logging() -> None:
    """Write every queued line now, and from here on synchronously: for the end of the process,
    which may come by a signal that skips ``atexit`` (uvicorn re-raises SIGTERM once it is done)."""
    global _installed, _direct
    if _installed is None:
        return
    handler, listener = _installed
    listener.stop()  # drains the queue
    (writer,) = listener.handlers
    direct = logging.StreamHandler(writer.stream if isinstance(writer, logging.StreamHandler) else sys.stderr)
    direct.setFormatter(handler.formatter)
    direct.filters = list(handler.filters)
    root = logging.getLogger()
    root.removeHandler(handler)
    root.addHandler(direct)
    _installed, _direct = None, direct


atexit.register(flush_logging)
