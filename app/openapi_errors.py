"""The error responses of the OpenAPI document at ``/schema``, in the shape the service answers.

Litestar documents the errors of a route in its own default shape (``{status_code, detail,
extra}``), and only the 400 of validation. This service answers every error as ``{"error",
"request_id"}``, with ``detail`` (one entry per field) on a 400 (app/errors.py), and a route can
also answer 401, 403, 404, 409, 429, 500 or 503. A client generated from the document parsed
none of them. Litestar 2 has no setting for the error schema (litestar#4523), so each route
handler is given, as it is registered, the ``responses`` it can answer, from what the handler
says of itself: its path parameters, its query and body parameters, its scope guards. A route adds
the errors only it answers (409 for a duplicate name, 413 for a video too large) with
``opt={ROUTE_ERRORS: {409: "why"}}``, in the domain, which knows nothing of this module; its entries
win over the ones made here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import msgspec
from litestar.constants import RESERVED_KWARGS
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import ResponseSpec
from litestar.plugins import ReceiveRoutePlugin
from litestar.routes import BaseRoute, HTTPRoute

from domain.openapi import ROUTE_BODIES, ROUTE_ERRORS


class ErrorBody(msgspec.Struct):
    """Every error response but a 400."""

    error: str
    request_id: str


class FieldError(msgspec.Struct):
    field: str | None
    message: str | None
    source: str | None = msgspec.field(default=None)


class BadRequestBody(msgspec.Struct):
    """A 400: ``detail`` has one entry per invalid field (none for a body that is not JSON at all);
    an OAuth2 error of ``POST /auth/token`` has its code in ``error`` and ``error_description``."""

    error: str
    request_id: str
    detail: list[FieldError] = msgspec.field(default_factory=list)
    error_description: str | None = None


def _error(status: int, description: str) -> ResponseSpec:
    body = BadRequestBody if status == 400 else ErrorBody
    return ResponseSpec(data_container=body, description=description, generate_examples=False)


_INVALID = _error(400, "Bad input: one entry in detail per invalid field")
_GENERIC = {
    500: _error(500, "Internal error; the body never carries a stack trace or SQL"),
    503: _error(503, "A dependency is unavailable; retry after Retry-After seconds"),
}


class ErrorResponsesPlugin(ReceiveRoutePlugin):
    """Gives each route handler the error responses it can answer.

    ``public_paths`` (regular expressions: the probes, the scrape, the docs) answer with documents
    of their own (health answers 503 with its report): only their 400 is documented here.
    ``rate_limited``: whether the API's routes are (a 429)."""

    def __init__(self, public_paths: Iterable[str], *, rate_limited: bool) -> None:
        patterns = list(public_paths)
        self.public = re.compile("|".join(patterns)) if patterns else None
        self.rate_limited = rate_limited

    def receive_route(self, route: BaseRoute) -> None:
        if not isinstance(route, HTTPRoute):
            return
        public = self.public is not None and self.public.search(route.path) is not None
        for handler in route.route_handlers:
            handler.responses = {**self._responses(route, handler, public), **(handler.responses or {})}

    def _responses(self, route: HTTPRoute, handler: HTTPRouteHandler, public: bool) -> dict[int, ResponseSpec]:
        responses: dict[int, ResponseSpec] = {}
        if route.path_parameters or _takes_input(handler):
            responses[400] = _INVALID
        if public:
            return responses
        responses.update(_GENERIC)
        if not handler.opt.get("exclude_from_auth"):
            responses[401] = _error(401, "No token, or an invalid or expired one (see WWW-Authenticate)")
        if any(getattr(guard, "required_scope", None) for guard in handler.resolve_guards()):
            responses[403] = _error(403, "The token lacks the scope this route needs")
        if route.path_parameters:
            responses[404] = _error(404, "No such resource, or not the caller's")
        if self.rate_limited:
            responses[429] = _error(429, "Rate limited; retry after Retry-After seconds")
        own: Mapping[int, str] = handler.opt.get(ROUTE_ERRORS, {})
        responses.update({status: _error(status, description) for status, description in own.items()})
        return responses


def _takes_input(handler: HTTPRouteHandler) -> bool:
    """Whether the handler reads query, header or body parameters (which can fail validation): the
    parameters of its function that are neither dependencies nor Litestar's own (request, state),
    or a body it decodes itself (``ROUTE_BODIES``)."""
    if handler.opt.get(ROUTE_BODIES):
        return True
    dependencies = handler.resolve_dependencies()
    parameters = handler.parsed_fn_signature.parameters
    return any(name == "data" or (name not in RESERVED_KWARGS and name not in dependencies) for name in parameters)
