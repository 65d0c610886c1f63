"""Test helpers for traces: an in-memory tracer provider and ways to read the spans it kept."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased

from infra.telemetry.lean_tracer import LeanTracerProvider


@dataclass
class RecordedTraces:
    """The production tracer provider, keeping every finished span in memory (sampling: parent-based, always on)."""

    exporter: InMemorySpanExporter = field(default_factory=InMemorySpanExporter)
    provider: LeanTracerProvider = field(init=False)

    def __post_init__(self) -> None:
        self.provider = LeanTracerProvider(sampler=ParentBased(ALWAYS_ON))
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def clear(self) -> None:
        self.exporter.clear()

    def named(self, name: str) -> ReadableSpan:
        matches = [span for span in self.spans() if span.name == name]
        assert len(matches) == 1, f"expected one span {name!r}, got {[s.name for s in self.spans()]}"
        return matches[0]

    def children_of(self, parent: ReadableSpan) -> list[ReadableSpan]:
        assert parent.context is not None
        return [s for s in self.spans() if s.parent is not None and s.parent.span_id == parent.context.span_id]


def names(spans: Iterable[ReadableSpan]) -> list[str]:
    return sorted(span.name for span in spans)
