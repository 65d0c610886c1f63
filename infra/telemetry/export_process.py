"""Span export in a child process: the serving process hands span batches over, the child encodes
them as OTLP and sends them.

Encoding a span as OTLP protobuf costs about 30 µs of Python in opentelemetry-python's
encoder, and the batch processor's thread that does it holds the GIL meanwhile: with every
request traced, that was the largest single cost of tracing (bench/README.md). Here the batch
processor's thread only flattens each span into a tuple of plain values and writes the batch as
MessagePack (msgspec) into the child's stdin (a few µs a span, the GIL released while the pipe
takes it); the child, which imports nothing but OpenTelemetry and msgspec, rebuilds the spans and
exports them with the stock exporter, on another core. MessagePack rather than pickle: pickle
memoises every string and dict of a batch (a sixth of the instructions a fully sampled request
added to the service, counted with callgrind), and msgspec encodes the same batch nearly three
times faster (0.23 µs a span against 0.63, bench/README.md).

If the child dies, batches are dropped (logged once) and the next batch starts a new child:
tracing must never take the service down.
"""

from __future__ import annotations

import dataclasses
import logging
import os
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
_LOW_64 = (1 << 64) - 1
FlatSpan = tuple[Any, ...]


_KIND_VALUES = {kind: kind.value for kind in SpanKind}
_STATUS_VALUES = {code: code.value for code in StatusCode}
_NO_CONTEXT = (0, 0, False, 1, None, False)


def flatten(span: ReadableSpan) -> FlatSpan:
    """``span`` as a tuple of plain values, for MessagePack (whose integers stop at 64 bits: a trace id
    travels as its high and low halves).

    It reads the fields behind ``ReadableSpan``'s properties (``_name`` for ``name``, ...) and the
    enums' values from a dict: each property or enum ``value`` is a Python call, about fifteen a span,
    made in the batch processor's thread while it holds the GIL the serving thread needs. A span of
    this service keeps its attributes in a plain dict, final once it has ended, which is encoded as
    it is; an SDK span's ``BoundedAttributes`` is copied into one.
    tests/test_lean_tracer.py checks that the fields are where ``ReadableSpan`` keeps them.
    """
    trace_id, span_id, _, flags, _, _ = span._context or _NO_CONTEXT
    parent = span._parent
    scope = span._instrumentation_scope
    status = span._status
    attributes = span._attributes
    return (
        span._name,
        trace_id >> 64,
        trace_id & _LOW_64,
        span_id,
        int(flags),
        (parent.span_id, parent.is_remote) if parent else None,
        _KIND_VALUES[span._kind],
        span._start_time,
        span._end_time,
        attributes if type(attributes) is dict else dict(attributes or {}),
        [(event.name, dict(event.attributes or {}), event.timestamp) for event in span._events] if span._events else (),
        [_flat_link(link) for link in span._links] if span._links else (),
        _STATUS_VALUES[status.status_code],
        status.description,
        (scope.name, scope.version) if scope else None,
    )


def _flat_link(link: Link) -> FlatSpan:
    trace_id = link.context.trace_id
    return (trace_id >> 64, trace_id & _LOW_64, link.context.span_id, dict(link.attributes or {}))


def _attribute_values(attributes: dict[str, Any]) -> dict[str, Any]:
    """Attributes as decoded: a sequence value comes back from MessagePack as a list; an attribute's
    is a tuple (``ReadableSpan`` gives its values as they were set)."""
    if not any(type(value) is list for value in attributes.values()):
        return attributes
    return {key: tuple(value) if type(value) is list else value for key, value in attributes.items()}


def rebuild(flat: Sequence[Any], resource: Resource) -> ReadableSpan:
    """The span :func:`flatten` flattened, after its trip through MessagePack."""
    (
        name,
        trace_high,
        trace_low,
        span_id,
        flags,
        parent,
        kind,
        start,
        end,
        attributes,
        events,
        links,
        code,
        description,
        scope,
    ) = flat
    trace_id = trace_high << 64 | trace_low
    return ReadableSpan(
        name=name,
        context=SpanContext(trace_id, span_id, is_remote=False, trace_flags=TraceFlags(flags)),
        parent=SpanContext(trace_id, parent[0], is_remote=parent[1], trace_flags=TraceFlags(flags)) if parent else None,
        resource=resource,
        attributes=_attribute_values(attributes),
        events=[
            Event(event_name, _attribute_values(event_attributes), timestamp)
            for event_name, event_attributes, timestamp in events
        ],
        links=[
            Link(SpanContext(link_high << 64 | link_low, link_span, is_remote=True), _attribute_values(link_attributes))
            for link_high, link_low, link_span, link_attributes in links
        ],
        kind=SpanKind(kind),
        status=Status(StatusCode(code), description),
        start_time=start,
        end_time=end,
        instrumentation_scope=InstrumentationScope(scope[0], scope[1]) if scope else None,
    )


_ENCODER = msgspec.msgpack.Encoder()


def encode_batch(spans: Sequence[ReadableSpan]) -> bytes:
    """What the child reads for a batch: its length, then the flattened spans as MessagePack.

    A span that cannot be encoded (an integer attribute beyond 64 bits, which OTLP cannot carry
    either) is left out with a warning; the rest of the batch goes."""
    flat = [flatten(span) for span in spans]
    try:
        payload = _ENCODER.encode(flat)
    except OverflowError:
        kept = [one for one in flat if _encodable(one)]
        logger.warning("%d span(s) left out of an export: an attribute beyond OTLP's integers", len(flat) - len(kept))
        payload = _ENCODER.encode(kept)
    return _LENGTH.pack(len(payload)) + payload


def _encodable(flat: FlatSpan) -> bool:
    try:
        _ENCODER.encode(flat)
    except OverflowError:
        return False
    return True


def decode_batch(payload: bytes, resource: Resource) -> list[ReadableSpan]:
    """The spans of one batch's payload (what follows its length), carrying ``resource``."""
    return [rebuild(flat, resource) for flat in msgspec.msgpack.decode(payload)]


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
        batch = encode_batch(spans)
        with self._lock:
            try:
                pipe = self._pipe()
                pipe.write(batch)
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
    """The child: read length-prefixed batches from stdin until it closes; export each."""
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
            exporter.export(decode_batch(stdin.read(length), resource))
    finally:
        exporter.shutdown()


if __name__ == "__main__":
    _serve(sys.argv[1])
