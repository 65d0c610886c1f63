"""The service's tracer provider (``infra.telemetry.lean_tracer``) against what the OpenTelemetry API
promises its callers: trace structure, sampling, attributes, errors, and export through the SDK's
processors and the OTLP encoder."""

from __future__ import annotations

import asyncio
import enum
import io
import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.propagate import extract
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import (
    INVALID_SPAN,
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
    get_current_span,
    set_span_in_context,
    use_span,
)
from opentelemetry.util.types import Attributes
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import create_async_engine

from infra.telemetry.export_process import decode_batch, encode_batch
from infra.telemetry.instrumentation import instrument_engine
from infra.telemetry.lean_tracer import LeanTracerProvider, _local_span_context
from tests.tracing import RecordedTraces


class Colour(enum.Enum):
    RED = "red"


class Size(enum.IntEnum):
    LARGE = 3


def test_children_of_the_current_span_share_its_trace_and_point_at_it() -> None:
    traces = RecordedTraces()
    tracer = traces.provider.get_tracer("test")
    with tracer.start_as_current_span("request", kind=SpanKind.SERVER) as request:
        first = tracer.start_span("di db_session")
        first.end()
        with tracer.start_as_current_span("di project_service"):
            tracer.start_span("SELECT").end()
    spans = {span.name: span for span in traces.spans()}
    assert set(spans) == {"request", "di db_session", "di project_service", "SELECT"}
    trace_id = request.get_span_context().trace_id
    assert {span.context.trace_id for span in spans.values() if span.context} == {trace_id}
    assert spans["request"].parent is None
    assert spans["request"].kind is SpanKind.SERVER
    assert spans["di db_session"].parent.span_id == request.get_span_context().span_id  # type: ignore[union-attr]
    assert spans["di project_service"].parent.span_id == request.get_span_context().span_id  # type: ignore[union-attr]
    assert spans["SELECT"].parent.span_id == spans["di project_service"].context.span_id  # type: ignore[union-attr]
    ids = {span.context.span_id for span in spans.values() if span.context}
    assert len(ids) == 4
    assert 0 not in ids
    for span in spans.values():
        assert span.start_time is not None
        assert span.end_time is not None
        assert span.end_time >= span.start_time


def test_an_unsampled_trace_records_nothing_and_still_carries_its_context() -> None:
    exporter = InMemorySpanExporter()
    provider = LeanTracerProvider(sampler=ParentBased(TraceIdRatioBased(0.0)))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    root = tracer.start_span("request")
    assert isinstance(root, NonRecordingSpan)
    assert not root.is_recording()
    assert root.get_span_context().is_valid
    assert not root.get_span_context().trace_flags.sampled
    with use_span(root, end_on_exit=True):
        child = tracer.start_span("di db_session")
        assert not child.is_recording()
        assert child.get_span_context().trace_id == root.get_span_context().trace_id
        child.end()
    assert exporter.get_finished_spans() == ()


def test_a_callers_sampling_decision_is_followed_and_its_span_is_the_remote_parent() -> None:
    traces = RecordedTraces()
    tracer = traces.provider.get_tracer("test")
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    sampled = extract({"traceparent": f"00-{trace_id}-{parent_id}-01"})
    tracer.start_span("sampled", context=sampled).end()
    unsampled = extract({"traceparent": f"00-{trace_id}-{parent_id}-00"})
    assert not tracer.start_span("unsampled", context=unsampled).is_recording()
    (span,) = traces.spans()
    assert span.name == "sampled"
    assert span.context is not None
    assert span.context.trace_id == int(trace_id, 16)
    assert span.parent is not None
    assert span.parent.span_id == int(parent_id, 16)
    assert span.parent.is_remote


def test_attribute_values_are_kept_converted_or_dropped_as_the_spec_allows() -> None:
    traces = RecordedTraces()
    tracer = traces.provider.get_tracer("test")
    span = tracer.start_span("s", attributes={"colour": Colour.RED.value, "size": Size.LARGE, "none": None})
    span.set_attribute("tags", ["a", "b"])
    span.set_attribute("object", object())  # type: ignore[arg-type]
    span.set_attributes({"ratio": 0.5, "ok": True})
    span.update_name("renamed")
    span.end()
    span.set_attribute("after_end", 1)
    span.update_name("after end")
    (recorded,) = traces.spans()
    assert recorded.name == "renamed"
    assert dict(recorded.attributes or {}) == {
        "colour": "red",
        "size": 3,
        "tags": ("a", "b"),
        "ratio": 0.5,
        "ok": True,
    }
    assert type((recorded.attributes or {})["size"]) is int


def test_an_exception_in_a_current_span_is_recorded_and_marks_it_as_error() -> None:
    traces = RecordedTraces()
    tracer = traces.provider.get_tracer("test")
    with pytest.raises(ValueError, match="bad input"), tracer.start_as_current_span("failing"):
        raise ValueError("bad input")
    with pytest.raises(KeyError), tracer.start_span("as context manager"):
        raise KeyError("missing")
    for span in traces.spans():
        assert span.status.status_code is StatusCode.ERROR
        (event,) = span.events
        assert event.name == "exception"
        assert event.attributes is not None
        assert event.attributes["exception.type"] in {"ValueError", "KeyError"}
        assert "Traceback" in str(event.attributes["exception.stacktrace"])


def test_ok_is_a_final_status() -> None:
    traces = RecordedTraces()
    span = traces.provider.get_tracer("test").start_span("s")
    span.set_status(Status(StatusCode.OK))
    span.set_status(StatusCode.ERROR, "too late")
    span.end()
    assert traces.spans()[0].status.status_code is StatusCode.OK


def test_spans_export_through_the_batch_processor_and_the_otlp_encoder_and_flush_on_shutdown() -> None:
    exporter = InMemorySpanExporter()
    resource = Resource({"service.name": "video-opusclip-test"})
    provider = LeanTracerProvider(sampler=ALWAYS_ON, resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=60_000))
    tracer = provider.get_tracer("test", "1.0")
    with tracer.start_as_current_span("request", attributes={"http.route": "/projects/{project_id}"}) as request:
        request.add_event("di.retry", {"attempt": 1})
        tracer.start_span("child").end()
    assert exporter.get_finished_spans() == ()  # batched, not yet sent
    provider.shutdown()
    spans = exporter.get_finished_spans()
    assert [span.name for span in spans] == ["child", "request"]
    request_pb = encode_spans(spans).resource_spans[0].scope_spans[0].spans[1]
    assert request_pb.name == "request"
    assert request_pb.attributes[0].key == "http.route"
    assert request_pb.events[0].name == "di.retry"
    # what the export child receives and rebuilds is the same span
    (rebuilt,) = decode_batch(encode_batch(spans[1:])[4:], resource)
    assert (rebuilt.name, dict(rebuilt.attributes or {}), rebuilt.context) == (
        "request",
        {"http.route": "/projects/{project_id}"},
        spans[1].context,
    )
    assert rebuilt.instrumentation_scope is not None
    assert rebuilt.instrumentation_scope.version == "1.0"


def test_the_console_exporter_prints_each_span_as_json() -> None:
    out = io.StringIO()
    provider = LeanTracerProvider(sampler=ALWAYS_ON)
    provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=out)))
    provider.get_tracer("test").start_span("printed", attributes={"di.key": "db_session"}).end()
    printed = json.loads(out.getvalue())
    assert printed["name"] == "printed"
    assert printed["attributes"] == {"di.key": "db_session"}


async def test_statement_spans_only_under_a_recorded_span_and_failures_marked(tmp_path: Path) -> None:
    traces = RecordedTraces()
    tracer = traces.provider.get_tracer("test")
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    instrument_engine(engine, traces.provider)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))  # no trace: no span
            with tracer.start_as_current_span("handler"):
                await connection.execute(text("SELECT :x"), {"x": 2})
                with pytest.raises(OperationalError):
                    await connection.execute(text("SELECT * FROM no_such_table"))
    finally:
        await engine.dispose()
    handler = traces.named("handler")
    statements = traces.children_of(handler)
    assert [span.name for span in statements] == ["SELECT", "SELECT"]
    ok, failed = statements
    assert ok.kind is SpanKind.CLIENT
    assert dict(ok.attributes or {})["db.system"] == "sqlite"
    assert dict(ok.attributes or {})["db.statement"] == "SELECT ?"
    assert ok.status.status_code is StatusCode.UNSET
    assert failed.status.status_code is StatusCode.ERROR
    assert len(traces.spans()) == 3


class DropNoisy(Sampler):
    """Samples every span but those named ``noisy``, whatever their parent."""

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        return SamplingResult(Decision.DROP if name == "noisy" else Decision.RECORD_AND_SAMPLE, attributes)

    def get_description(self) -> str:
        return "DropNoisy"


def test_a_sampler_that_may_drop_children_is_asked_for_each_span() -> None:
    exporter = InMemorySpanExporter()
    provider = LeanTracerProvider(sampler=DropNoisy())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("request"):
        assert not tracer.start_span("noisy").is_recording()
        tracer.start_span("quiet").end()
    assert sorted(span.name for span in exporter.get_finished_spans()) == ["quiet", "request"]


@pytest.mark.parametrize(
    "sampler",
    [ParentBased(TraceIdRatioBased(0.25)), TraceIdRatioBased(0.25)],
    ids=["parentbased_traceidratio", "traceidratio"],
)
def test_a_root_span_under_a_ratio_is_sampled_exactly_when_the_sdk_sampler_would_sample_its_trace(
    sampler: Sampler,
) -> None:
    """Root spans skip the sampler's call; the decision must stay the SDK sampler's, trace id by trace id."""
    exporter = InMemorySpanExporter()
    provider = LeanTracerProvider(sampler=sampler)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    reference = TraceIdRatioBased(0.25)
    sampled = 0
    for _ in range(2000):
        span = tracer.start_span("request", kind=SpanKind.SERVER, attributes={"url.path": "/projects"})
        context = span.get_span_context()
        expected = reference.should_sample(None, context.trace_id, "request").decision is Decision.RECORD_AND_SAMPLE
        assert context.is_valid
        assert context.trace_flags.sampled is expected
        assert span.is_recording() is expected
        sampled += expected
        span.end()
    assert 400 < sampled < 600  # a quarter of 2000, give or take five standard deviations
    assert len(exporter.get_finished_spans()) == sampled
    assert all(dict(span.attributes or {}) == {"url.path": "/projects"} for span in exporter.get_finished_spans())


class CountingParentBased(ParentBased):
    """The spec's parent-based sampler, counting the calls it answers."""

    calls = 0

    def should_sample(self, *args: object, **kwargs: object) -> SamplingResult:
        self.calls += 1
        return super().should_sample(*args, **kwargs)  # type: ignore[arg-type]


def test_a_child_of_an_unsampled_span_of_this_process_is_dropped_as_the_sampler_would_without_asking_it() -> None:
    """A Redis command or an outgoing call of an unsampled request: its span is the parent-based sampler's
    answer (dropped, in the parent's trace, with a span id of its own and the parent's trace state),
    made without the sampler's call; a remote parent's decision is still the sampler's to make."""
    sampler = CountingParentBased(TraceIdRatioBased(0.0))
    exporter = InMemorySpanExporter()
    provider = LeanTracerProvider(sampler=sampler)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    caller = extract(
        {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", "tracestate": "vendor=opaque"}
    )
    request = tracer.start_span("request", context=caller, kind=SpanKind.SERVER)
    assert sampler.calls == 1  # the caller's decision, asked of the sampler
    with use_span(request, end_on_exit=True):
        children = [tracer.start_span("redis GET", kind=SpanKind.CLIENT) for _ in range(3)]
    assert sampler.calls == 1
    parent = request.get_span_context()
    for child in children:
        expected = sampler.should_sample(set_span_in_context(request), parent.trace_id, "redis GET")
        context = child.get_span_context()
        assert isinstance(child, NonRecordingSpan)
        assert expected.decision is Decision.DROP
        assert context.is_valid
        assert not context.is_remote
        assert not context.trace_flags.sampled
        assert context.trace_id == parent.trace_id
        assert context.trace_state == parent.trace_state == TraceState([("vendor", "opaque")])
        assert context.span_id not in (0, parent.span_id)
    assert len({child.get_span_context().span_id for child in children}) == 3
    assert exporter.get_finished_spans() == ()


def test_a_zero_ratio_samples_no_root_and_a_callers_sampled_trace_still_continues_under_parentbased() -> None:
    exporter = InMemorySpanExporter()
    provider = LeanTracerProvider(sampler=ParentBased(TraceIdRatioBased(0.0)))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    assert not any(tracer.start_span("root").is_recording() for _ in range(200))
    caller = extract({"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
    span = tracer.start_span("continued", context=caller)
    assert span.is_recording()
    span.end()
    assert [s.name for s in exporter.get_finished_spans()] == ["continued"]


def test_a_current_span_is_current_only_inside_its_block_and_a_cancellation_is_not_an_error() -> None:
    traces = RecordedTraces()
    tracer = traces.provider.get_tracer("test")
    seen = []

    def cancelled_inside() -> None:
        with tracer.start_as_current_span("cancelled") as cancelled:
            seen.append(get_current_span() is cancelled)
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        cancelled_inside()
    assert seen == [True]
    assert get_current_span() is INVALID_SPAN
    with tracer.start_as_current_span("kept open", end_on_exit=False) as open_span:
        pass
    assert open_span.is_recording()
    open_span.end()
    spans = {span.name: span for span in traces.spans()}
    assert spans["cancelled"].status.status_code is StatusCode.UNSET
    assert spans["cancelled"].events == ()
    assert spans["kept open"].end_time is not None


def test_a_span_keeps_every_field_of_a_readable_span_so_processors_and_exporters_read_it_as_one() -> None:
    # LeanSpan sets ReadableSpan's fields itself, and the export child's flatten() reads them directly:
    # a field that a new opentelemetry-sdk adds or renames must fail here, not in production
    traces = RecordedTraces()
    tracer = traces.provider.get_tracer("test", "2.0")
    with tracer.start_as_current_span("parent") as parent:
        span = tracer.start_span("child", kind=SpanKind.CLIENT, attributes={"db.system": "postgresql"})
        span.set_status(StatusCode.ERROR, "boom")
        span.end()
    readable = ReadableSpan("any")
    assert set(vars(readable)) <= set(vars(span))
    recorded = traces.spans()[0]
    assert recorded is span
    assert (recorded.name, recorded.kind, dict(recorded.attributes or {})) == (
        "child",
        SpanKind.CLIENT,
        {"db.system": "postgresql"},
    )
    assert recorded.parent == parent.get_span_context()
    assert recorded.status.status_code is StatusCode.ERROR
    assert recorded.resource is traces.provider.resource
    assert recorded.instrumentation_scope is not None
    assert recorded.instrumentation_scope.version == "2.0"
    assert recorded.start_time is not None
    assert recorded.end_time is not None
    assert recorded.end_time >= recorded.start_time
    assert (recorded.events, recorded.links, recorded.dropped_attributes) == ((), (), 0)
    assert json.loads(recorded.to_json())["name"] == "child"


@pytest.mark.parametrize("sampled", [True, False])
def test_a_span_context_made_directly_equals_the_one_the_api_makes(sampled: bool) -> None:
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    state = TraceState([("vendor", "value")])
    made = _local_span_context(0xABC, 0xDEF, flags, state)
    expected = SpanContext(0xABC, 0xDEF, is_remote=False, trace_flags=flags, trace_state=state)
    assert made == expected
    assert type(made) is SpanContext
    assert (made.trace_id, made.span_id, made.is_remote, made.trace_flags, made.trace_state, made.is_valid) == (
        0xABC,
        0xDEF,
        False,
        flags,
        state,
        True,
    )
    assert made.trace_flags.sampled is sampled
