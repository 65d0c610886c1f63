"""Reading the OpenAPI document the app serves (the ``document`` fixture, tests/conftest.py)."""

from __future__ import annotations

from typing import Any

import jsonschema

METHODS = ("get", "post", "put", "patch", "delete")


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Every operation of the document: method, path template, operation."""
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def response_schema(document: dict[str, Any], method: str, path: str, status: int) -> dict[str, Any]:
    """The documented schema of ``status`` for the operation, with the document's components."""
    response = document["paths"][path][method.lower()]["responses"].get(str(status))
    assert response is not None, f"{method} {path} does not document {status}"
    schema = response["content"]["application/json"]["schema"]
    return {**schema, "components": document["components"]}


def body_schema(document: dict[str, Any], method: str, path: str, media_type: str) -> dict[str, Any]:
    """The documented schema of the operation's request body in ``media_type``, with the components."""
    content = document["paths"][path][method.lower()]["requestBody"]["content"]
    return {**content[media_type]["schema"], "components": document["components"]}


def component(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """``schema``, or the component it refers to."""
    ref = schema.get("$ref")
    return document["components"]["schemas"][ref.rsplit("/", 1)[-1]] if ref else schema  # type: ignore[no-any-return]


def allows(schema: dict[str, Any], value: object) -> bool:
    """Whether ``value`` is valid against ``schema``, formats (uuid, date) included."""
    try:
        jsonschema.validate(value, schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    except jsonschema.ValidationError:
        return False
    return True
