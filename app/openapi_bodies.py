"""Request bodies in the OpenAPI document for routes that read their body themselves.

Litestar documents a request body from a handler's ``data`` parameter, in one media type.
``POST /video/process`` takes JSON or a ``multipart/form-data`` upload and streams it (an upload
may be gigabytes), so it has no ``data`` parameter, and the document said nothing of its body: a
client generated from it could not call the service's main endpoint. A route declares its bodies
with ``opt={ROUTE_BODIES: {media type: Struct}}`` (domain/openapi.py); this plugin gives the route
handler an ``operation_class`` that documents them.

The bodies' schemas are written inline, not as ``#/components/schemas`` references: the operation
is built apart from the document's schema registry, so a component made here could not be
registered there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from litestar._openapi.schema_generation import SchemaCreator, openapi_schema_plugins
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.spec import OpenAPIMediaType, Operation, Reference, RequestBody, Schema
from litestar.plugins import ReceiveRoutePlugin
from litestar.routes import BaseRoute, HTTPRoute
from litestar.typing import FieldDefinition

from app.openapi_structs import StrictStructSchemaPlugin
from domain.openapi import ROUTE_BODIES


class RequestBodiesPlugin(ReceiveRoutePlugin):
    """Documents the bodies a route declares under ``opt[ROUTE_BODIES]``."""

    def receive_route(self, route: BaseRoute) -> None:
        if not isinstance(route, HTTPRoute):
            return
        for handler in route.route_handlers:
            bodies: Mapping[str, type] | None = handler.opt.get(ROUTE_BODIES)
            if bodies:
                handler.operation_class = _operation_with(bodies, handler)


def request_body(bodies: Mapping[str, type]) -> RequestBody:
    """A required request body with one entry per media type, each the schema of its struct.

    The schemas are made with the schema plugins the app uses (its strict struct plugin, then
    Litestar's own): a schema plugin added to the app later must be added here too."""
    creator = SchemaCreator(plugins=[StrictStructSchemaPlugin(), *openapi_schema_plugins])
    roots = {
        media_type: creator.for_field_definition(FieldDefinition.from_annotation(body))
        for media_type, body in bodies.items()
    }
    components = creator.schema_registry.generate_components_schemas()
    return RequestBody(
        content={media_type: OpenAPIMediaType(schema=_inline(root, components)) for media_type, root in roots.items()},
        required=True,
    )


def _inline(value: Any, components: Mapping[str, Schema]) -> Any:
    """``value`` with every reference to a component replaced by a copy of that component."""
    if isinstance(value, Reference):
        return _inline(components[value.ref.rsplit("/", 1)[-1]], components)
    if isinstance(value, Schema):
        changes = {field.name: _inline(getattr(value, field.name), components) for field in dataclasses.fields(value)}
        return dataclasses.replace(value, **changes)
    if isinstance(value, list | tuple):
        return type(value)(_inline(item, components) for item in value)
    if isinstance(value, dict):
        return {key: _inline(item, components) for key, item in value.items()}
    return value


def _operation_with(bodies: Mapping[str, type], handler: HTTPRouteHandler) -> type[Operation]:
    """The handler's operation class, made to document ``bodies``: their schemas are made when the
    document is (Litestar builds it on its first request), not at start-up."""
    base = handler.operation_class

    @dataclasses.dataclass
    class OperationWithBody(base):  # type: ignore[valid-type, misc]
        def __post_init__(self) -> None:
            if hasattr(super(), "__post_init__"):
                super().__post_init__()
            self.request_body = request_body(bodies)

    return OperationWithBody
