"""OpenTelemetry tracing from the standard ``OTEL_*`` settings: exporter, sampler, resource, batch processor."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Literal

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import Span, Tracer
from opentelemetry.util.types import AttributeValue

from infra.telemetry.current_span import current_span_is_recording
from infra.telemetry.lean_tracer import LeanTracerProvider

ExporterName = Literal["otlp", "console", "none"]
OtlpProtocol = Literal["http/protobuf", "grpc"]
SamplerName = Literal[
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
]

DEFAULT_OTLP_ENDPOINTS: dict[OtlpProtocol, str] = {
    "http/protobuf": "http://localhost:4318",
    "grpc": "http://localhost:4317",
}


@dataclass(frozen=True, slots=True)
class TracingOptions:
    service_name: str
    service_version: str
    environment: str
    exporter: ExporterName = "none"
    protocol: OtlpProtocol = "http/protobuf"
    endpoint: str | None = None
    sampler: SamplerName = "parentbased_always_on"
    sampler_arg: float = 1.0


def build_sampler(name: SamplerName, ratio: float) -> Sampler:
    """The sampler the OpenTelemetry spec names ``name`` (``OTEL_TRACES_SAMPLER``), with ``ratio`` as its arg."""
    samplers: dict[SamplerName, Sampler] = {
        "always_on": ALWAYS_ON,
        "always_off": ALWAYS_OFF,
        "traceidratio": TraceIdRatioBased(ratio),
        "parentbased_always_on": ParentBased(ALWAYS_ON),
        "parentbased_always_off": ParentBased(ALWAYS_OFF),
        "parentbased_traceidratio": ParentBased(TraceIdRatioBased(ratio)),
    }
    return samplers[name]


def build_exporter(options: TracingOptions) -> SpanExporter | None:
    if options.exporter == "none":
        return None
    if options.exporter == "console":
        return ConsoleSpanExporter(service_name=options.service_name)
    endpoint = (options.endpoint or DEFAULT_OTLP_ENDPOINTS[options.protocol]).rstrip("/")
    if options.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter(endpoint=endpoint, insecure=endpoint.startswith("http://"))
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    return HttpExporter(endpoint=f"{endpoint}/v1/traces")


def build_resource(options: TracingOptions) -> Resource:
    return Resource.create(
        {
            "service.name": options.service_name,
            "service.version": options.service_version,
            "deployment.environment.name": options.environment,
        }
    )


def build_span_exporter(options: TracingOptions, resource: Resource) -> SpanExporter:
    """The exporter the options name (``otlp`` or ``console``; ``none`` names none). OTLP goes through a
    child process, since encoding OTLP is the costliest part of tracing (see export_process);
    ``resource`` goes with it."""
    if options.exporter == "otlp":
        from infra.telemetry.export_process import ChildProcessSpanExporter

        return ChildProcessSpanExporter(options, resource)
    exporter = build_exporter(options)
    if exporter is None:
        raise ValueError("OTEL_TRACES_EXPORTER=none names no exporter: tracing is off")
    return exporter


def build_tracer_provider(options: TracingOptions, exporter: SpanExporter, resource: Resource) -> LeanTracerProvider:
    """A provider exporting through a batch processor to ``exporter``, its spans carrying ``resource``."""
    provider = LeanTracerProvider(resource=resource, sampler=build_sampler(options.sampler, options.sampler_arg))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def child_span(
    tracer: Tracer | None, name: str, attributes: Mapping[str, AttributeValue]
) -> AbstractContextManager[Span | None]:
    """A current child span of the current span when that one is recorded; else no span object at
    all (tracing off, or an unsampled request)."""
    if tracer is None or not current_span_is_recording():
        return nullcontext()
    return tracer.start_as_current_span(name, attributes=attributes)
