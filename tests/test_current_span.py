"""The one-step reads and writes of the current span (``infra.telemetry.current_span``) give what
OpenTelemetry's own API gives, so that instrumentation reading the context either way agrees."""

from __future__ import annotations

import asyncio

from opentelemetry import context as otel_context
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import INVALID_SPAN, NonRecordingSpan, get_current_span, set_span_in_context, use_span

from infra.telemetry import current_span as fast
from infra.telemetry.lean_tracer import LeanTracerProvider


def _agree() -> None:
    assert fast.current_span() is get_current_span()
    assert fast.current_span_is_recording() is get_current_span().is_recording()


def test_the_pinned_opentelemetry_api_keeps_the_context_where_the_fast_path_reads_it() -> None:
    assert fast.reads_context_directly


def test_reads_agree_with_the_api_with_no_span_an_unsampled_one_a_recording_one_and_an_ended_one() -> None:
    tracer = LeanTracerProvider(sampler=ALWAYS_ON).get_tracer("test")
    _agree()
    assert fast.current_span() is INVALID_SPAN
    unsampled = NonRecordingSpan(tracer.start_span("x").get_span_context())
    with use_span(unsampled):
        _agree()
        assert not fast.current_span_is_recording()
    recording = tracer.start_span("recording")
    token = otel_context.attach(set_span_in_context(recording))
    try:
        _agree()
        assert fast.current_span_is_recording()
        recording.end()
        _agree()
        assert not fast.current_span_is_recording()
    finally:
        otel_context.detach(token)
    _agree()


def test_a_span_entered_here_is_the_apis_current_span_until_left_and_other_context_values_stay() -> None:
    tracer = LeanTracerProvider(sampler=ALWAYS_ON).get_tracer("test")
    key = otel_context.create_key("tenant")
    outer_token = otel_context.attach(otel_context.set_value(key, "acme"))
    try:
        outer = tracer.start_span("outer")
        token = fast.enter_span(outer)
        with tracer.start_as_current_span("inner") as inner:
            assert inner.parent.span_id == outer.get_span_context().span_id  # type: ignore[attr-defined]
            _agree()
        assert get_current_span() is outer
        assert otel_context.get_value(key) == "acme"
        fast.leave_span(token)
        assert get_current_span() is INVALID_SPAN
        assert otel_context.get_value(key) == "acme"
    finally:
        otel_context.detach(outer_token)


async def test_concurrent_tasks_each_see_their_own_span() -> None:
    tracer = LeanTracerProvider(sampler=ALWAYS_ON).get_tracer("test")

    async def request(name: str) -> bool:
        span = tracer.start_span(name)
        token = fast.enter_span(span)
        try:
            await asyncio.sleep(0.01)
            return fast.current_span() is span and get_current_span() is span
        finally:
            fast.leave_span(token)

    assert await asyncio.gather(*(request(f"r{n}") for n in range(10))) == [True] * 10
    assert fast.current_span() is INVALID_SPAN
