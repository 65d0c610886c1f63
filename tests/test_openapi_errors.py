"""The OpenAPI document at /schema describes the errors the service really answers.

Clients are generated from that document: an error it documents in Litestar's default shape
(``{status_code, detail}``), or not at all, is one such a client cannot read.
"""

from __future__ import annotations

import re
from typing import Any
from uuid import uuid4

import jsonschema

from app.auth import PUBLIC_PATHS
from tests.conftest import Actor, Api
from tests.openapi_document import operations, response_schema


async def test_every_operation_documents_the_errors_it_can_answer(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        documented = operation["responses"]
        bodies = {
            status: response["content"]["application/json"]["schema"]
            for status, response in documented.items()
            if int(status) >= 400
        }
        public = any(re.match(pattern, path) for pattern in PUBLIC_PATHS)
        # never Litestar's default error shape (a probe's 503 is its own report, as its 200 is)
        for status, schema in bodies.items():
            if public and status == "503":
                assert schema == documented["200"]["content"]["application/json"]["schema"], (method, path)
                continue
            body = "/BadRequestBody" if status == "400" else "/ErrorBody"
            assert schema.get("$ref", "").endswith(body), (method, path, status)
        if public:
            continue
        assert {"429", "500", "503"} <= documented.keys(), (method, path)
        if "{" in path:
            assert "404" in documented, (method, path)
            assert "400" in documented, (method, path)
        if path != "/auth/token":
            assert "401" in documented, (method, path)
    by_route = {(method, path): operation["responses"] for method, path, operation in operations(document)}
    assert "403" in by_route[("POST", "/projects")]
    assert "403" not in by_route[("GET", "/auth/me")]  # any valid token will do
    assert "409" in by_route[("POST", "/projects")]
    assert "409" not in by_route[("GET", "/projects")]
    assert {"413", "415", "422", "504"} <= by_route[("POST", "/video/process")].keys()


async def test_the_error_responses_match_their_documented_schemas(
    api: Api, alice: Actor, document: dict[str, Any]
) -> None:
    created = await api.client.post("/projects", json={"name": "documented"}, headers=alice.headers)
    assert created.status_code == 201
    reader = await api.actor(scopes=["projects:read"])
    cases: list[tuple[str, str, dict[str, Any], int]] = [
        ("GET", "/projects?limit=0", {"headers": alice.headers}, 400),
        ("POST", "/projects", {"headers": alice.headers, "content": b"{not json"}, 400),
        ("POST", "/auth/token", {"data": {"username": alice.email, "password": "wrong"}}, 400),
        ("POST", "/auth/token", {"data": {"username": alice.email}}, 400),  # invalid_request, with detail
        ("GET", "/projects", {}, 401),
        ("POST", "/projects", {"headers": reader.headers, "json": {"name": "x"}}, 403),
        ("GET", f"/projects/{uuid4()}", {"headers": alice.headers}, 404),
        ("POST", "/projects", {"headers": alice.headers, "json": {"name": "documented"}}, 409),
    ]
    for method, url, options, status in cases:
        response = await api.client.request(method, url, **options)
        assert response.status_code == status, (method, url, response.text)
        path = url.split("?")[0]
        template = "/projects/{project_id}" if path.startswith("/projects/") else path
        jsonschema.validate(response.json(), response_schema(document, method, template, status))
