"""Span export in a child process: the serving process hands span batches over, the child encodes
them as OTLP and sends them.

Encoding a span as OTLP protobuf costs about 30 µs of Python in opentelemetry-python's
encoder, and the batch processor's thread that does it holds the GIL meanwhile: with every
request traced, that was the largest single cost of tracing (bench/README.md). Here the batch
processor's thread only flattens each span into a tuple of plain values and pickles the batch
into the child's stdin (a few µs a span, the GIL released while the pipe takes it); the child,
which imports nothing but OpenTelemetry, rebuilds the spans and exports them with the stock
exporter, on another core.

If the child dies, batches are dropped (logged once) and the next batch starts a new child:
tracing must never take the service down.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pickle
import struct
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import IO, Any

import msgspec
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from infra.telemetry.tracing import TracingOptions, build_exporter

logger = logging.getLogger("infra.telemetry")

_LENGTH = struct.Struct("!I")
FlatSpan = tuple[Any, ...]


_KIND_VALUES = {kind: kind.value for kind in SpanKind}
_STATUS_VALUES = {code: code.value for code in StatusCode}
_NO_CONTEXT = (0, 0, False, 1, None, False)


def flatten(span: ReadableSpan) -> FlatSpan:
    """``span`` as a tuple of plain values, for pickling.

    It reads the fields behind ``ReadableSpan``'s properties (``_name`` for ``name``, ...) and the
    enums' values from a dict: each property or enum ``value`` is a Python call, about fifteen a span,
    made in the batch processor's thread while it holds the GIL the serving thread needs.
    tests/test_lean_tracer.py checks that the fields are where ``ReadableSpan`` keeps them.
    """
    trace_id, span_id, _, flags, _, _ = span._context or _NO_CONTEXT
    parent = span._parent
    scope = span._instrumentation_scope
    status = span._status
    return (
        span._name,
        trace_id,
        span_id,
        int(flags),
        (parent.span_id, parent.is_remote) if parent else None,
        _KIND_VALUES[span._kind],
        span._start_time,
        span._end_time,
        dict(span._attributes or {}),
        [(event.name, dict(event.attributes or {}), event.timestamp) for event in span._events],
        [(link.context.trace_id, link.context.span_id, dict(link.attributes or {})) for link in span._links],
        _STATUS_VALUES[status.status_code],
        status.description,
        (scope.name, scope.version) if scope else None,
    )


def rebuild(flat: FlatSpan, resource: Resource) -> ReadableSpan:
    (name, trace_id, span_id, flags, parent, kind, start, end, attributes, events, links, code, description, scope) = (
        flat
    )
    return ReadableSpan(
        name=name,
        context=SpanContext(trace_id, span_id, is_remote=False, trace_flags=TraceFlags(flags)),
        parent=SpanContext(trace_id, parent[0], is_remote=parent[1], trace_flags=TraceFlags(flags)) if parent else None,
        resource=resource,
        attributes=attributes,
        events=[Event(event_name, event_attributes, timestamp) for event_name, event_attributes, timestamp in events],
        links=[
            Link(SpanContext(link_trace, link_span, is_remote=True), link_attributes)
            for link_trace, link_span, link_attributes in links
        ],
        kind=SpanKind(kind),
        status=Status(StatusCode(code), description),
        start_time=start,
        end_time=end,
        instrumentation_scope=InstrumentationScope(scope[0], scope[1]) if scope else None,
    )


class ChildProcessSpanExporter(SpanExporter):
    """Implements ``SpanExporter`` by shipping batches to ``python -m infra.telemetry.export_process``."""

    def __init__(self, options: TracingOptions, resource: Resource) -> None:
        self._options = options
        self._resource = resource
        self._lock = threading.Lock()
        self._child: subprocess.Popen[bytes] | None = None
        self._warned = False

    def _pipe(self) -> IO[bytes]:
        if self._child is None or self._child.poll() is not None:
            config = msgspec.json.encode(
                {"options": dataclasses.asdict(self._options), "resource": dict(self._resource.attributes)}
            )
            self._child = subprocess.Popen(
                [sys.executable, "-m", "infra.telemetry.export_process", config.decode()],
                stdin=subprocess.PIPE,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        assert self._child.stdin is not None
        return self._child.stdin

    def start(self) -> None:
        """Start the child now rather than on the first batch: the service pays for the child's
        start-up (imports, a connection) while it starts, not amid its first traced requests. A
        child that cannot start is logged; the first batch tries again."""
        with self._lock:
            try:
                self._pipe()
            except OSError as exc:
                logger.warning("the span export process could not start (%s); the first batch tries again", exc)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        payload = pickle.dumps([flatten(span) for span in spans], protocol=pickle.HIGHEST_PROTOCOL)
        with self._lock:
            try:
                pipe = self._pipe()
                pipe.write(_LENGTH.pack(len(payload)) + payload)
                pipe.flush()
            except OSError as exc:
                if not self._warned:
                    self._warned = True
                    logger.warning("the span export process is gone (%s); spans are dropped until it restarts", exc)
                self._child = None
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Close the pipe: the child exports what it has, flushes and exits."""
        with self._lock:
            child, self._child = self._child, None
        if child is None:
            return
        try:
            if child.stdin is not None:
                child.stdin.close()
            child.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            child.kill()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _serve(config_json: str) -> None:
    """The child: read length-prefixed pickled batches from stdin until it closes; export each."""
    config = msgspec.json.decode(config_json)
    options = msgspec.convert(config["options"], TracingOptions)
    resource = Resource(config["resource"])
    exporter = build_exporter(options)
    if exporter is None:
        return
    stdin = sys.stdin.buffer
    try:
        while header := stdin.read(_LENGTH.size):
            (length,) = _LENGTH.unpack(header)
            batch = pickle.loads(stdin.read(length))
            exporter.export([rebuild(flat, resource) for flat in batch])
    finally:
        exporter.shutdown()


if __name__ == "__main__":
    _serve(sys.argv[1])
