"""The OpenAPI schema of a msgspec ``Struct`` body, as strict as msgspec is when it decodes one.

Litestar's own schema of a ``Struct`` leaves out two rules that msgspec enforces, so a client
written against the document had requests refused that the document allowed (schemathesis
reports them as "schema-compliant request rejected"):

- a struct declared ``forbid_unknown_fields`` refuses a body with any other field (400): its
  schema now says ``additionalProperties: false``;
- the constraints of a list's items (``tags: list[TagName]``: each name 1-64 characters, no
  comma) were dropped, only the list's own length kept: the items' schema now carries them.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import msgspec
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.openapi.spec import OpenAPIType, Schema

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.typing import FieldDefinition


class StrictStructSchemaPlugin(StructSchemaPlugin):
    """Litestar's schema of a ``Struct``, with the rules above added. Registered among the app's
    plugins, it comes before Litestar's built-in one, which then sees no ``Struct``."""

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        info = msgspec.inspect.type_info(field_definition.type_)
        if not isinstance(info, msgspec.inspect.StructType):  # pragma: no cover - the plugin is asked for structs only
            return schema
        if info.forbid_unknown_fields:
            schema.additional_properties = False
        for field in info.fields:
            items = _string_items(field.type)
            prop = (schema.properties or {}).get(field.encode_name)
            if items is not None and isinstance(prop, Schema):
                _constrain_items(prop, items)
        return schema


def _string_items(field_type: msgspec.inspect.Type) -> msgspec.inspect.StrType | None:
    """The constrained string type of a list field's items (the list may be optional), if any."""
    candidates = field_type.types if isinstance(field_type, msgspec.inspect.UnionType) else (field_type,)
    for candidate in candidates:
        if isinstance(candidate, msgspec.inspect.ListType) and isinstance(candidate.item_type, msgspec.inspect.StrType):
            item = candidate.item_type
            if item.min_length is not None or item.max_length is not None or item.pattern is not None:
                return item
    return None


def _constrain_items(prop: Schema, item: msgspec.inspect.StrType) -> None:
    """Put ``item``'s constraints on the array schema's items: the array is ``prop`` itself or one of
    its ``oneOf`` (an optional list). The items' schema is replaced, not changed: Litestar may share it."""
    arrays = [prop, *(s for s in prop.one_of or () if isinstance(s, Schema))]
    for array in arrays:
        if array.type == OpenAPIType.ARRAY and isinstance(array.items, Schema):
            array.items = dataclasses.replace(
                array.items, min_length=item.min_length, max_length=item.max_length, pattern=item.pattern
            )
