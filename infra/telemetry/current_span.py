"""The current span, read in one step: the question the serving path asks most often.

Each dependency resolution, statement and log line asks whether the current span records (about
ten times a request), and in an unsampled request asking is most of what tracing costs.
OpenTelemetry's ``get_current_span()`` answers through four calls (``get_value``, ``get_current``,
the runtime context's ``get_current``, then a type check); here it is one read of the context
variable that the API's default runtime context keeps. Making the request's span current
(:func:`enter_span`, :func:`leave_span`: the API's ``attach(set_span_in_context(span))`` and
``detach``, eight calls) is one write of it.

That variable and the span's key are private to ``opentelemetry-api``: when they are not where this
module looks (another runtime context configured through ``OTEL_PYTHON_CONTEXT``, or a future
release), it falls back to the public API. ``tests/test_current_span.py`` checks that both agree.
"""

from __future__ import annotations

from contextvars import ContextVar, Token

from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.trace import INVALID_SPAN, Span, get_current_span, set_span_in_context

__all__ = ["current_span", "current_span_is_recording", "enter_span", "leave_span", "reads_context_directly"]


def _current_context_variable() -> tuple[ContextVar[Context], str] | None:
    """The runtime context's variable and the key under which it holds the current span, if found."""
    try:
        from opentelemetry.trace.propagation import _SPAN_KEY
    except ImportError:  # pragma: no cover - a release that moved it
        return None
    variable = getattr(getattr(otel_context, "_RUNTIME_CONTEXT", None), "_current_context", None)
    if not isinstance(variable, ContextVar) or not isinstance(_SPAN_KEY, str):
        return None
    return variable, _SPAN_KEY


_FOUND = _current_context_variable()
reads_context_directly = _FOUND is not None
"""Whether the fast path is in use (tests check it is, with the pinned ``opentelemetry-api``)."""

if _FOUND is None:  # pragma: no cover - the public API's answer, where the fast path is not available

    def current_span() -> Span:
        """The current span, or ``INVALID_SPAN`` when there is none."""
        return get_current_span()

    def current_span_is_recording() -> bool:
        """Whether the current span records (a sampled request's span, not yet ended)."""
        return get_current_span().is_recording()

    def enter_span(span: Span) -> Token[Context]:
        """Make ``span`` the current span; :func:`leave_span` with the token restores the one before."""
        return otel_context.attach(set_span_in_context(span))

    def leave_span(token: Token[Context]) -> None:
        """Restore the current span that was current before :func:`enter_span` gave ``token``."""
        otel_context.detach(token)

else:
    _variable, _SPAN = _FOUND
    _read_context = _variable.get

    def current_span() -> Span:
        """The current span, or ``INVALID_SPAN`` when there is none."""
        span = _read_context().get(_SPAN)
        return span if isinstance(span, Span) else INVALID_SPAN

    def current_span_is_recording() -> bool:
        """Whether the current span records (a sampled request's span, not yet ended)."""
        span = _read_context().get(_SPAN)
        return span is not None and span.is_recording()  # type: ignore[attr-defined]

    def enter_span(span: Span) -> Token[Context]:
        """Make ``span`` the current span; :func:`leave_span` with the token restores the one before."""
        return _variable.set(Context({**_read_context(), _SPAN: span}))

    def leave_span(token: Token[Context]) -> None:
        """Restore the current span that was current before :func:`enter_span` gave ``token``."""
        _variable.reset(token)
