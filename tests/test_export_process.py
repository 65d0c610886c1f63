"""Span export through the child process: spans survive the trip intact, and a dead child is replaced."""

from __future__ import annotations

import os
import struct
import sys
import threading
from collections.abc import Sequence
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode, TracerProvider

from app import create_app
from app.settings import Settings
from infra.telemetry.export_process import ChildProcessSpanExporter, decode_batch, encode_batch
from infra.telemetry.tracing import TracingOptions
from tests.otlp_receiver import otlp_receiver
from tests.tracing import RecordedTraces


def make_spans() -> RecordedTraces:
    traces = RecordedTraces()
    record_spans(traces.provider)
    return traces


def record_spans(provider: TracerProvider) -> None:
    tracer = provider.get_tracer("test", "1.2")
    with tracer.start_as_current_span("parent", kind=SpanKind.SERVER, attributes={"http.route": "/x"}) as parent:
        assert parent.get_span_context() is not None
        with tracer.start_as_current_span(
            "child", links=[Link(parent.get_span_context(), {"why": "batch"})], attributes={"n": 3, "ok": True}
        ) as child:
            child.add_event("retry", {"attempt": 1, "backoff_ms": (10, 20)})
            child.set_attribute("video.tags", ("sports", "goal"))
            child.set_status(Status(StatusCode.ERROR, "boom"))


def sdk_spans() -> Sequence[ReadableSpan]:
    exporter = InMemorySpanExporter()
    provider = SdkTracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    record_spans(provider)
    return exporter.get_finished_spans()


@pytest.mark.parametrize("made_by", ["service", "sdk"])
def test_a_span_survives_the_trip_to_the_export_process(made_by: str) -> None:
    # flatten() reads ReadableSpan's fields: the SDK's own spans (any exporter's input) flatten too
    resource = Resource({"service.name": "svc"})
    originals = make_spans().spans() if made_by == "service" else sdk_spans()
    assert len(originals) == 2
    batch = encode_batch(originals)
    (length,) = struct.unpack("!I", batch[:4])
    assert length == len(batch) - 4
    copies = decode_batch(batch[4:], resource)
    assert len(copies) == 2
    for original, copy in zip(originals, copies, strict=True):
        assert original.context is not None
        assert original.context.trace_id >= 2**64  # wider than MessagePack's integers (all but one id in 2**64)
        assert copy.name == original.name
        assert copy.context == original.context
        assert copy.parent == original.parent
        assert copy.kind == original.kind
        assert (copy.start_time, copy.end_time) == (original.start_time, original.end_time)
        assert dict(copy.attributes or {}) == dict(original.attributes or {})  # a tuple value stays a tuple
        assert [(e.name, dict(e.attributes or {})) for e in copy.events] == [
            (e.name, dict(e.attributes or {})) for e in original.events
        ]
        assert [link.context.span_id for link in copy.links] == [link.context.span_id for link in original.links]
        assert copy.status.status_code == original.status.status_code
        assert copy.status.description == original.status.description
        assert copy.instrumentation_scope == original.instrumentation_scope
        assert copy.resource.attributes["service.name"] == "svc"


def test_a_span_the_wire_cannot_carry_is_left_out_and_the_rest_of_its_batch_goes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    traces = RecordedTraces()
    tracer = traces.provider.get_tracer("test")
    tracer.start_span("before").end()
    tracer.start_span("oversized", attributes={"video.checksum": 2**100}).end()
    tracer.start_span("after").end()
    copies = decode_batch(encode_batch(traces.spans())[4:], Resource({}))
    assert [span.name for span in copies] == ["before", "after"]
    assert "1 span(s) left out of an export" in caplog.text


def test_spans_reach_the_receiver_and_a_dead_child_is_replaced() -> None:
    spans = make_spans().spans()
    with otlp_receiver() as receiver:
        options = TracingOptions("svc", "1", "test", exporter="otlp", endpoint=receiver.endpoint)
        exporter = ChildProcessSpanExporter(options, Resource({"service.name": "svc"}))
        try:
            assert exporter.export(spans).name == "SUCCESS"
            receiver.wait_for(lambda got: len(got) >= 2)
            assert exporter._child is not None
            exporter._child.kill()
            exporter._child.wait(10)
            exporter.export(spans)  # may fail once: the pipe is broken
            assert exporter.export(spans).name == "SUCCESS"  # a new child took over
            received = receiver.wait_for(lambda got: len(got) >= 4)
        finally:
            exporter.shutdown()
    assert {span.name for span in received} == {"parent", "child"}
    assert all(span.service_name == "svc" for span in received)


def test_spans_reach_an_otlp_grpc_receiver() -> None:
    received: list[str] = []
    arrived = threading.Event()

    class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request: Any, context: Any) -> Any:  # noqa: N802 - the gRPC method's name
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    received.extend(span.name for span in scope_spans.spans)
            arrived.set()
            return trace_service_pb2.ExportTraceServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Receiver(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    options = TracingOptions("svc", "1", "test", exporter="otlp", protocol="grpc", endpoint=f"http://127.0.0.1:{port}")
    exporter = ChildProcessSpanExporter(options, Resource({"service.name": "svc"}))
    try:
        assert exporter.export(make_spans().spans()).name == "SUCCESS"
        assert arrived.wait(20), "no export arrived over gRPC"
    finally:
        exporter.shutdown()
        server.stop(grace=None)
    assert sorted(received) == ["child", "parent"]


def export_children() -> list[int]:
    """Processes this one started that run the span export child."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if parent == os.getpid() and b"infra.telemetry.export_process" in command:
            found.append(int(entry.name))
    return found


async def test_the_export_process_starts_with_the_service_and_ends_with_it() -> None:
    """It is not left to the first batch: its start-up (imports, a connection) would fall amid the
    service's first traced requests."""
    with otlp_receiver() as receiver:
        settings = Settings(
            jwt_secret="x" * 40, otel_traces_exporter="otlp", otel_exporter_otlp_endpoint=receiver.endpoint
        )
        app = create_app(settings)
        assert export_children() == []  # building the app (as the CLI does) starts nothing
        async with app.lifespan():
            assert len(export_children()) == 1  # before any request, any span
        assert export_children() == []


def test_an_export_process_that_cannot_start_does_not_stop_the_service(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    options = TracingOptions("svc", "1", "test", exporter="otlp", endpoint="http://127.0.0.1:9")
    exporter = ChildProcessSpanExporter(options, Resource({"service.name": "svc"}))
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    exporter.start()  # logs, does not raise
    assert "could not start" in caplog.text
    assert exporter.export(make_spans().spans()).name == "FAILURE"  # the batch is dropped, the caller goes on
