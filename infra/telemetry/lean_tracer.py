"""A tracer provider for the serving path: the OpenTelemetry API, the SDK's samplers, resource and span
processors, and spans that cost a fraction of the SDK's.

Why: with every request sampled, opentelemetry-python's SDK span cost about 80 µs of the serving
thread per span inside this service (26 µs in a loop on its own, where this one costs 7 µs):
the sampler, attribute validation through ``BoundedAttributes`` (a lock and a recursive clean per
value), bounded event and link lists, and a ``ReadableSpan`` snapshot made on ``end()``. A
request makes six or seven spans, so tracing alone took a fifth of the throughput
(bench/README.md). :class:`LeanSpan` keeps what a span is, nothing more:

- the sampling decision is the configured SDK ``Sampler``'s, as in the SDK, except where the spec
  says what it is without the call: the children of a sampled span of this process under a sampler
  that samples them all (``always_on``, ``parentbased_*``), the children of an unsampled one under a
  sampler that drops them all (``always_off``, ``parentbased_*``), and root spans under a sampler whose root
  decision is a trace-id ratio (``traceidratio``, ``parentbased_traceidratio``; ``always_on`` and
  ``always_off`` as ratios 1 and 0): the trace id against the sampler's own bound. Those are most
  spans, and at 10 % sampling the root decision is most of what an unsampled request costs;
- attributes are a plain dict; a value that is not a string, bool, int, float or a sequence of
  them is converted when it is a subclass of one (an enum) and dropped otherwise, without a lock:
  a span is written by the task that made it;
- the span is its own read-only snapshot: it *is* a ``ReadableSpan``, handed to the SDK's span
  processors (the ``BatchSpanProcessor`` in production, ``SimpleSpanProcessor`` in tests) and
  exporters unchanged;
- no limits on attribute, event or link counts: the spans of this service are made by its own
  code and its instrumentations, a handful of attributes each.
"""

from __future__ import annotations

import random
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState
from opentelemetry.util.types import Attributes, AttributeValue

from infra.telemetry.current_span import current_span, enter_span, leave_span

__all__ = ["CurrentSpan", "LeanSpan", "LeanTracer", "LeanTracerProvider"]

_PRIMITIVES = (str, bool, int, float)
_EXACT_PRIMITIVES = frozenset(_PRIMITIVES)
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_SAMPLED_BIT = int(TraceFlags.SAMPLED)
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)
_UNSET = Status(StatusCode.UNSET)
_RECORD = Decision.RECORD_AND_SAMPLE
_TRACE_ID_LIMIT = TraceIdRatioBased.TRACE_ID_LIMIT


def _clean(value: Any) -> AttributeValue | None:
    """``value`` as an OpenTelemetry attribute value, or None when it cannot be one."""
    if type(value) in _EXACT_PRIMITIVES:
        return value  # type: ignore[no-any-return]
    for primitive in _PRIMITIVES:
        if isinstance(value, primitive):
            return primitive(value)
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        items = [_clean(item) for item in value]
        if all(item is not None and not isinstance(item, tuple) for item in items):
            return tuple(items)
    return None


def _cleaned(attributes: Attributes) -> dict[str, AttributeValue]:
    """A new dict of ``attributes`` made valid. Most values are strings, ints or bools: when all are,
    one check in C says so and the dict is copied as it is."""
    if not attributes:
        return {}
    cleaned = dict(attributes)
    if _EXACT_PRIMITIVES.issuperset(map(type, cleaned.values())):
        return cleaned
    for key, value in attributes.items():
        if type(value) not in _EXACT_PRIMITIVES:
            if (clean := _clean(value)) is None:
                del cleaned[key]
            else:
                cleaned[key] = clean
    return cleaned


def _delegate(sampler: Sampler, decision: str) -> Sampler | None:
    """The sampler that makes ``decision`` (``root``, ``local_parent_sampled``, ...) for ``sampler``: the
    one a ``ParentBased`` delegates it to, or ``sampler`` itself. A ``ParentBased`` keeps them in
    private attributes; where one is missing (another SDK release), None: the tracer then asks."""
    if isinstance(sampler, ParentBased):
        return getattr(sampler, f"_{decision}", None)
    return sampler


def _samples_children_of_sampled_local_parents(sampler: Sampler) -> bool:
    """Whether ``sampler`` records every child of a recorded span of this process, as the spec's
    ``always_on`` and ``parentbased_*`` samplers do: those children then skip the sampler call."""
    return _delegate(sampler, "local_parent_sampled") is ALWAYS_ON


def _drops_children_of_unsampled_local_parents(sampler: Sampler) -> bool:
    """Whether ``sampler`` drops every child of an unsampled span of this process, as the spec's
    ``parentbased_*`` samplers and ``always_off`` do: those children then skip the sampler call."""
    return _delegate(sampler, "local_parent_not_sampled") is ALWAYS_OFF


def _root_ratio_bound(sampler: Sampler) -> int | None:
    """The bound a root span's trace id (its low 64 bits) must stay under to be sampled, when that is
    the whole of ``sampler``'s root decision (the spec's ratio samplers, ``always_on``, ``always_off``);
    None for any other sampler, which is then asked."""
    root = _delegate(sampler, "root")
    if type(root) is TraceIdRatioBased:
        return root.bound
    if root is ALWAYS_ON:
        return _TRACE_ID_LIMIT + 1
    if root is ALWAYS_OFF:
        return 0
    return None


_random_bits = random.getrandbits
_new_tuple = tuple.__new__


def _new_id(bits: int) -> int:
    """A random id of ``bits`` bits that is not zero (the invalid id). Callers try
    ``_random_bits(bits) or _new_id(bits)``: one call instead of two, since a draw of 64 or 128 bits
    is zero once in 2**64 draws at most."""
    while True:
        value = _random_bits(bits)
        if value:
            return value


def _local_span_context(trace_id: int, span_id: int, trace_flags: TraceFlags, trace_state: TraceState) -> SpanContext:
    """The ``SpanContext`` of a span of this process, from ids known to be valid (made here, or a valid
    parent's trace id). ``SpanContext`` is a tuple whose ``__new__`` checks the ids' ranges to set its
    last field, ``is_valid``; here that is known, and the tuple is made directly: a span is made for
    every request, sampled or not. tests/test_lean_tracer.py checks it equals ``SpanContext(...)``."""
    return _new_tuple(SpanContext, (trace_id, span_id, False, trace_flags, trace_state, True))


class LeanTracerProvider(trace_api.TracerProvider):
    """Makes :class:`LeanTracer` s; ends each recorded span into its span processors.

    Processors get ``on_end`` only: ``on_start`` takes the SDK's own ``Span`` type, and the
    processors used here (batch, simple) do nothing on start.
    """

    def __init__(self, *, sampler: Sampler, resource: Resource | None = None) -> None:
        self.sampler = sampler
        self.resource = resource or Resource.create({})
        self.follows_sampled_local_parents = _samples_children_of_sampled_local_parents(sampler)
        self.drops_unsampled_local_parents = _drops_children_of_unsampled_local_parents(sampler)
        self.root_ratio_bound = _root_ratio_bound(sampler)
        self._processors: tuple[SpanProcessor, ...] = ()
        self._on_end: tuple[Callable[[ReadableSpan], None], ...] = ()

    def add_span_processor(self, processor: SpanProcessor) -> None:
        self._processors = (*self._processors, processor)
        self._on_end = tuple(processor.on_end for processor in self._processors)

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes | None = None,
    ) -> LeanTracer:
        scope = InstrumentationScope(instrumenting_module_name, instrumenting_library_version, schema_url, attributes)
        return LeanTracer(self, scope)

    def _ended(self, span: LeanSpan) -> None:
        for on_end in self._on_end:
            on_end(span)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return all(processor.force_flush(timeout_millis) for processor in self._processors)

    def shutdown(self) -> None:
        for processor in self._processors:
            processor.shutdown()


class LeanTracer(trace_api.Tracer):
    def __init__(self, provider: LeanTracerProvider, scope: InstrumentationScope) -> None:
        self._provider = provider
        self._scope = scope

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace_api.Span:
        parent = (current_span() if context is None else trace_api.get_current_span(context)).get_span_context()
        # a SpanContext is a tuple: one unpacking reads what its properties give in one call each
        parent_trace_id, _, parent_is_remote, parent_flags, parent_trace_state, parent_is_valid = parent
        provider = self._provider
        if not parent_is_valid and (bound := provider.root_ratio_bound) is not None:
            # a root span under a ratio (every request's span): the sampler's own test, without its call
            trace_id = _random_bits(128) or _new_id(128)
            span_id = _random_bits(64) or _new_id(64)
            if trace_id & _TRACE_ID_LIMIT >= bound:
                return trace_api.NonRecordingSpan(
                    _local_span_context(trace_id, span_id, _NOT_SAMPLED, parent_trace_state)
                )
            span_context = _local_span_context(trace_id, span_id, _SAMPLED, parent_trace_state)
            span_attributes: Attributes = attributes
        elif provider.follows_sampled_local_parents and parent_flags & _SAMPLED_BIT and not parent_is_remote:
            # what the sampler would answer, without asking it (most spans of a sampled request)
            span_context = _local_span_context(
                parent_trace_id, _random_bits(64) or _new_id(64), _SAMPLED, parent_trace_state
            )
            span_attributes = attributes
        elif (
            parent_is_valid
            and provider.drops_unsampled_local_parents
            and not parent_flags & _SAMPLED_BIT
            and not parent_is_remote
        ):
            # a child of an unsampled span of this process (a Redis command of an unsampled request):
            # the sampler's answer, without asking it (3.5 µs a span to 1.1)
            return trace_api.NonRecordingSpan(
                _local_span_context(parent_trace_id, _random_bits(64) or _new_id(64), _NOT_SAMPLED, parent_trace_state)
            )
        else:
            trace_id = parent_trace_id if parent_is_valid else _new_id(128)
            result = provider.sampler.should_sample(context, trace_id, name, kind, attributes, links)
            span_context = _local_span_context(
                trace_id,
                _new_id(64),
                _SAMPLED if result.decision is _RECORD else _NOT_SAMPLED,
                result.trace_state if result.trace_state is not None else parent_trace_state,
            )
            if result.decision is Decision.DROP:
                return trace_api.NonRecordingSpan(span_context)
            span_attributes = result.attributes
        return LeanSpan(
            name,
            span_context,
            parent if parent_is_valid else None,
            kind,
            _cleaned(span_attributes),
            tuple(links) if links else (),
            start_time or time.time_ns(),
            self._scope,
            provider,
            record_exception,
            set_status_on_exception,
        )

    def start_as_current_span(  # type: ignore[override]  # the API's decorator is private; `with` is what is used
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> AbstractContextManager[trace_api.Span]:
        span = self.start_span(
            name, context, kind, attributes, links, start_time, record_exception, set_status_on_exception
        )
        return CurrentSpan(span, end_on_exit, record_exception, set_status_on_exception)


class CurrentSpan(AbstractContextManager[trace_api.Span]):
    """What the API's ``use_span`` does, as a class: ``span`` is the current span inside the block; an
    ``Exception`` leaving it is recorded on the span and marks it as error (as the API says); the span
    ends at the end of the block when ``end_on_exit``. A generator-based context manager, as
    ``use_span`` is, costs about twice as much to enter and leave, on each span of a sampled request."""

    __slots__ = ("_end_on_exit", "_record_exception", "_set_status_on_exception", "_span", "_token")

    def __init__(
        self,
        span: trace_api.Span,
        end_on_exit: bool = True,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> None:
        self._span = span
        self._end_on_exit = end_on_exit
        self._record_exception = record_exception
        self._set_status_on_exception = set_status_on_exception

    def __enter__(self) -> trace_api.Span:
        self._token = enter_span(self._span)
        return self._span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        leave_span(self._token)
        span = self._span
        try:
            # not BaseException: a cancelled task or a closed generator is not an error (the API's rule)
            if isinstance(exc_val, Exception) and span.is_recording():
                if self._record_exception:
                    span.record_exception(exc_val)
                if self._set_status_on_exception:
                    span.set_status(Status(StatusCode.ERROR, f"{type(exc_val).__name__}: {exc_val}"))
        finally:
            if self._end_on_exit:
                span.end()


class LeanSpan(trace_api.Span, ReadableSpan):
    """A recording span that is also its own ``ReadableSpan``: its fields are final once it has ended."""

    def __init__(
        self,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: dict[str, AttributeValue],
        links: tuple[Link, ...],
        start_time: int,
        scope: InstrumentationScope,
        provider: LeanTracerProvider,
        record_exception: bool,
        set_status_on_exception: bool,
    ) -> None:
        # the fields ``ReadableSpan.__init__`` sets, set here without its thirteen keyword arguments (a
        # span is made for each dependency and statement of a sampled request); tests/test_lean_tracer.py
        # checks that no field of ``ReadableSpan`` is missing
        self._name = name
        self._context = context
        self._kind = kind
        self._instrumentation_info = None
        self._instrumentation_scope = scope
        self._parent = parent
        self._start_time = start_time
        self._end_time: int | None = None
        self._attributes = attributes
        self._events: list[Event] = []
        self._links = links
        self._resource = provider.resource
        self._status = _UNSET
        self._provider = provider
        self._record_exception = record_exception
        self._set_status_on_exception = set_status_on_exception

    # the API: what instrumentations call -------------------------------------------------------

    def get_span_context(self) -> SpanContext:
        return self._context  # type: ignore[return-value]

    def is_recording(self) -> bool:
        return self._end_time is None

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        if self._end_time is None and (clean := _clean(value)) is not None:
            self._attributes[key] = clean  # type: ignore[index]

    def set_attributes(self, attributes: Mapping[str, AttributeValue]) -> None:
        if self._end_time is None:
            self._attributes.update(_cleaned(attributes))  # type: ignore[union-attr]

    def add_event(self, name: str, attributes: Attributes = None, timestamp: int | None = None) -> None:
        if self._end_time is None:
            self._events.append(Event(name, _cleaned(attributes), timestamp or time.time_ns()))

    def add_link(self, context: SpanContext, attributes: Attributes = None) -> None:
        if self._end_time is None and context.is_valid:
            self._links = (*self._links, Link(context, _cleaned(attributes)))

    def update_name(self, name: str) -> None:
        if self._end_time is None:
            self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if self._end_time is not None or self._status.status_code is StatusCode.OK:
            return  # the spec: OK is final
        if isinstance(status, Status):
            if status.status_code is not StatusCode.UNSET:
                self._status = status
        elif status is not StatusCode.UNSET:
            self._status = Status(status, description)

    def record_exception(
        self,
        exception: BaseException,
        attributes: Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        stacktrace = "".join(traceback.format_exception(type(exception), exception, exception.__traceback__))
        event_attributes: dict[str, AttributeValue] = {
            "exception.type": type(exception).__name__,
            "exception.message": str(exception),
            "exception.stacktrace": stacktrace,
            "exception.escaped": str(escaped),
        }
        event_attributes.update(_cleaned(attributes))
        self.add_event("exception", event_attributes, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self._end_time is not None:
            return
        self._end_time = end_time or time.time_ns()
        self._provider._ended(self)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        if exc_val is not None and self._end_time is None:
            if self._record_exception:
                self.record_exception(exc_val, escaped=True)
            if self._set_status_on_exception:
                self.set_status(Status(StatusCode.ERROR, f"{type(exc_val).__name__}: {exc_val}"))
        self.end()
