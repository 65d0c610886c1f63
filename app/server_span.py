"""The request (server) span, as Litestar's OpenTelemetry plugin places it, made lean.

Litestar's plugin runs ``opentelemetry-instrumentation-asgi`` outermost, before routing. That
middleware costs about 0.35 ms of CPU per sampled request here (bench/README.md): it decodes
every header several times for propagation, collects a dozen attributes, wraps ``send`` and
``receive``, and records metrics we already have from Prometheus. This subclass keeps the
plugin's placement (outermost, so it sees the final status, also of error responses) and does
only what a trace needs:

- the W3C trace context of the caller (``traceparent``/``tracestate``), so a caller's trace continues;
- one ``SERVER`` span, named by the route template once routing has found it
  (``GET /projects/{project_id}``, per the HTTP semantic conventions; the method alone for a
  path that matched no route), with the stable HTTP attributes: method, route, path, scheme,
  status code, client address, user agent;
- error status for 5xx responses and for exceptions that escape.

An unsampled request gets a non-recording span, made current for the trace context of its children
and log lines, and nothing else: its ``send`` is not wrapped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar.enums import ScopeType
from litestar.middleware.base import AbstractMiddleware, DefineMiddleware
from litestar.plugins.opentelemetry import OpenTelemetryConfig
from litestar.plugins.opentelemetry.middleware import OpenTelemetryInstrumentationMiddleware
from opentelemetry.propagate import extract
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider, get_tracer

from infra.telemetry.current_span import enter_span, leave_span

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

_PROPAGATION_HEADERS = (b"traceparent", b"tracestate", b"baggage")


def server_span_middleware(config: OpenTelemetryConfig) -> DefineMiddleware:
    """Declared in the app's middleware, Litestar hoists it into its OpenTelemetry plugin (outermost);
    the plugin itself would build the stock ASGI instrumentation instead."""
    return DefineMiddleware(ServerSpanMiddleware, config=config)


class ServerSpanMiddleware(OpenTelemetryInstrumentationMiddleware):
    def __init__(self, app: ASGIApp, config: OpenTelemetryConfig) -> None:
        # not OpenTelemetryInstrumentationMiddleware.__init__: that builds the ASGI instrumentation
        # this class replaces; its base sets the scopes and the excluded paths
        AbstractMiddleware.__init__(
            self, app=app, scopes=config.scopes, exclude=config.exclude, exclude_opt_key=config.exclude_opt_key
        )
        provider: TracerProvider | None = config.tracer_provider
        self.tracer = config.tracer or get_tracer("video-opusclip.http", tracer_provider=provider)

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The middleware (its ``__call__``, see below): the scope type and the excluded paths first."""
        untraced = self.exclude_pattern
        if scope["type"] != ScopeType.HTTP or (untraced is not None and untraced.search(scope["path"])):
            await self.app(scope, receive, send)
            return
        method = str(scope.get("method", "HTTP"))
        carrier: dict[str, str] = {}
        for name, value in scope.get("headers", ()):
            if name in _PROPAGATION_HEADERS:
                carrier[name.decode("latin-1")] = value.decode("latin-1")
        # no attributes at the start: the samplers here (OTEL_TRACES_SAMPLER) decide on the trace id
        # and the parent alone, and an unsampled request (most, at a low ratio) need not collect them
        span = self.tracer.start_span(method, context=extract(carrier) if carrier else None, kind=SpanKind.SERVER)
        # rather than ``use_span``, a generator context manager: several µs a request
        token = enter_span(span)
        try:
            if not span.is_recording():
                # unsampled: the span only carries the trace context (for children and log lines)
                await self.app(scope, receive, send)
                return
            span.set_attributes(_request_attributes(scope, method))
            await self._traced(scope, receive, send, span, method)
        finally:
            leave_span(token)

    async def _traced(self, scope: Scope, receive: Receive, send: Send, span: Span, method: str) -> None:
        status = 0

        async def send_recording_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_recording_status)
        except BaseException as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        finally:
            route = scope.get("path_template")
            if route:
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
            if status:
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
            span.end()


# Litestar's AbstractMiddleware replaces the __call__ of each subclass by a wrapper that checks the
# scope type and the excluded paths, then awaits the original: one more coroutine frame, which
# every suspension of every request passes through, and a regular-expression ``findall``. Measured,
# that was a sixth of what tracing costs an unsampled request (bench/README.md). ``serve`` makes the
# same checks itself (a route's ``opt`` cannot exclude it: it runs before routing), so it is the
# ``__call__``. tests/test_tracing.py checks that probes and scrapes stay untraced.
ServerSpanMiddleware.__call__ = ServerSpanMiddleware.serve  # type: ignore[method-assign, assignment]


def _request_attributes(scope: Scope, method: str) -> dict[str, str]:
    """The request's attributes, per the stable HTTP semantic conventions."""
    attributes = {
        "http.request.method": method,
        "url.path": scope.get("path", ""),
        "url.scheme": scope.get("scheme", "http"),
    }
    client = scope.get("client")
    if client:
        attributes["client.address"] = client[0]
    for name, value in scope.get("headers", ()):
        if name == b"user-agent":
            attributes["user_agent.original"] = value.decode("latin-1")
            break
    return attributes
