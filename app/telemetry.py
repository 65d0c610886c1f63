"""Telemetry wiring: logs, the request span (OpenTelemetry), Prometheus at ``/metrics``, flush on shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cached_property

from litestar import Litestar, Response, get
from litestar.config.app import AppConfig
from litestar.middleware.base import DefineMiddleware
from litestar.plugins import InitPluginProtocol
from litestar.plugins.opentelemetry import OpenTelemetryConfig
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.trace import Tracer, TracerProvider
from prometheus_client import CONTENT_TYPE_LATEST

from app.request_context import RequestContextMiddleware
from app.server_span import server_span_middleware
from app.settings import Settings
from infra.telemetry.export_process import ChildProcessSpanExporter
from infra.telemetry.lean_tracer import LeanTracerProvider
from infra.telemetry.tracing import TracingOptions, build_resource, build_span_exporter, build_tracer_provider

TRACER_PROVIDER_STATE_KEY = "tracer_provider"

UNTRACED_PATHS = ["^/health", "^/metrics$", "^/schema", "^/swagger"]
"""Probes, scrapes and docs: frequent, uninteresting, and they would drown the traces."""


class MetricsController(PrometheusController):
    """Litestar's Prometheus endpoint, documented as what it answers: the text exposition format
    (Litestar's own handler is documented as a JSON object)."""

    @get(
        media_type=CONTENT_TYPE_LATEST,
        summary="Prometheus metrics, in the text exposition format",
    )
    async def get(self) -> Response[bytes]:  # the same handler, typed for the document
        response: Response[bytes] = await PrometheusController.get.fn(self)
        return response


class TelemetryPlugin(InitPluginProtocol):
    """Owns the tracer provider (built from the ``OTEL_*`` settings unless one is given)."""

    def __init__(self, settings: Settings, version: str, tracer_provider: TracerProvider | None = None) -> None:
        self.settings = settings
        options = TracingOptions(
            service_name=settings.otel_service_name,
            service_version=version,
            environment=settings.app_env,
            exporter=settings.otel_traces_exporter,
            protocol=settings.otel_exporter_otlp_protocol,
            endpoint=settings.otel_exporter_otlp_endpoint,
            sampler=settings.otel_traces_sampler,
            sampler_arg=settings.otel_traces_sampler_arg,
        )
        self.exporter: SpanExporter | None = None
        self.owned_provider: LeanTracerProvider | None = None
        if tracer_provider is None and options.exporter != "none":
            resource = build_resource(options)  # once: the export child and the provider share it
            self.exporter = build_span_exporter(options, resource)
            self.owned_provider = build_tracer_provider(options, self.exporter, resource)
        self.tracer_provider: TracerProvider | None = tracer_provider or self.owned_provider

    @cached_property
    def tracer(self) -> Tracer | None:
        """The tracer of the dependency spans (resolutions and the session's teardown), made once."""
        return None if self.tracer_provider is None else self.tracer_provider.get_tracer("video-opusclip.di")

    def request_span_middleware(self) -> DefineMiddleware | None:
        """The request span's middleware, on our provider; None when tracing is off."""
        if self.tracer_provider is None:
            return None
        return server_span_middleware(OpenTelemetryConfig(tracer_provider=self.tracer_provider, exclude=UNTRACED_PATHS))

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.state[TRACER_PROVIDER_STATE_KEY] = self.tracer_provider
        prometheus = PrometheusConfig(
            app_name="video_opusclip",
            prefix="http",
            group_path=True,
            exclude_unhandled_paths=True,
            exclude=["^/metrics$"],
        )
        app_config.middleware[:0] = [RequestContextMiddleware(), prometheus.middleware]
        app_config.route_handlers.append(MetricsController)
        app_config.lifespan.insert(0, self._lifespan)
        return app_config

    @asynccontextmanager
    async def _lifespan(self, _: Litestar) -> AsyncIterator[None]:
        if isinstance(self.exporter, ChildProcessSpanExporter):
            self.exporter.start()
        try:
            yield
        finally:
            if self.owned_provider is not None:
                self.owned_provider.shutdown()  # flushes the batch processor
