"""The OpenAPI document at /schema is valid OpenAPI 3.1: client generators validate it first, and
some refuse a document that is not."""

from __future__ import annotations

from typing import Any

import jsonschema
from schemathesis.specs.openapi.definitions import OPENAPI_31  # the specification's schema, as shipped

from domain.principal import SCOPES


async def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validator = jsonschema.Draft202012Validator(OPENAPI_31)
    errors = [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(document)
    ]
    assert errors == []


async def test_the_security_scheme_is_the_password_flow_with_every_scope(document: dict[str, Any]) -> None:
    [scheme] = document["components"]["securitySchemes"].values()
    assert scheme["type"] == "oauth2"
    password = scheme["flows"]["password"]
    assert password["tokenUrl"] == "/auth/token"
    assert set(password["scopes"]) == set(SCOPES)


async def test_every_answer_names_the_media_type_it_is_served_as(document: dict[str, Any]) -> None:
    """File and stream answers were documented with an empty media type (the thumbnail, the clips)
    or as JSON (the job's events): a client could not know what it receives."""
    served: dict[tuple[str, str], set[str]] = {}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                types = set(response.get("content") or {})
                assert "" not in types, (method, path, status)
                if status.startswith("2"):
                    served[(method.upper(), path)] = types
    assert served[("GET", "/video/jobs/{job_id}/thumbnail.jpg")] == {"image/jpeg"}
    assert served[("GET", "/video/jobs/{job_id}/clips/{name}")] == {"video/mp4"}
    assert served[("GET", "/video/jobs/{job_id}/events")] == {"text/event-stream"}
