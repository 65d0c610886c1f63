"""A NUL character in any text a client sends is bad input (400, the field named), on both databases.

PostgreSQL's text cannot hold one: before, each of these answered 500.
"""

from __future__ import annotations

import re
from typing import Any

import jsonschema_rs
import msgspec
from litestar import Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.errors import error_response
from domain.tags.schemas import TagName
from domain.text import NOT_BLANK
from tests.backends import postgres_database
from tests.conftest import ALL_SCOPES, Api

NUL = "\x00"


async def test_a_nul_in_any_text_field_or_query_is_400_and_nothing_is_stored(api: Api) -> None:
    actor = await api.actor(scopes=ALL_SCOPES)
    project = await api.client.post("/projects", json={"name": "with tasks"}, headers=actor.headers)
    assert project.status_code == 201
    tasks = f"/projects/{project.json()['id']}/tasks"
    cases: list[tuple[str, str, dict[str, Any], str]] = [
        ("POST", "/projects", {"json": {"name": f"a{NUL}b"}}, "name"),
        ("POST", "/projects", {"json": {"name": "fine", "description": f"x{NUL}"}}, "description"),
        ("PATCH", f"/projects/{project.json()['id']}", {"json": {"name": NUL}}, "name"),
        ("POST", "/tags", {"json": {"name": f"t{NUL}"}}, "name"),
        ("POST", tasks, {"json": {"title": f"t{NUL}"}}, "title"),
        ("POST", tasks, {"json": {"title": "fine", "tags": [f"x{NUL}y"]}}, "tags[0]"),
        ("GET", "/projects", {"params": {"q": f"a{NUL}"}}, "q"),
        ("GET", "/tags", {"params": {"q": NUL}}, "q"),
        ("GET", tasks, {"params": {"tag": f"x{NUL}"}}, "tag"),
        (
            "POST",
            "/video/process",
            {"json": {"video_url": f"http://example.com/{NUL}", "processing_type": "scenes"}},
            "video_url",
        ),
    ]
    for method, url, options, field in cases:
        response = await api.client.request(method, url, headers=actor.headers, **options)
        assert response.status_code == 400, (method, url, response.text)
        assert [entry["field"] for entry in response.json()["detail"]] == [field], (method, url, response.text)
    token = await api.client.post("/auth/token", data={"username": f"{actor.email}{NUL}", "password": actor.password})
    assert token.status_code == 400, token.text
    assert [entry["field"] for entry in token.json()["detail"]] == ["username"], token.text

    listing = await api.client.get("/projects?limit=100", headers=actor.headers)
    assert [p["name"] for p in listing.json()["items"]] == ["with tasks"]
    assert (await api.client.get("/tags", headers=actor.headers)).json()["total"] == 0
    assert (await api.client.get(tasks, headers=actor.headers)).json()["total"] == 0


async def test_a_value_the_database_refuses_is_400_not_500() -> None:
    """The backstop for input a schema misses: PostgreSQL's own refusal (SQLSTATE class 22), as the
    driver raises it, answers 400 in the error shape."""
    async with postgres_database() as url:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                try:
                    await connection.execute(text("SELECT CAST(:value AS text)"), {"value": f"a{NUL}b"})
                except Exception as exc:
                    refused = exc
                else:
                    raise AssertionError("PostgreSQL stored a NUL")
        finally:
            await engine.dispose()
    request: Request[Any, Any, Any] = Request({"type": "http", "method": "POST", "path": "/", "headers": []})
    response = error_response(request, refused)
    assert response.status_code == 400
    body = msgspec.to_builtins(response.content)
    assert body["error"] == "a value of the request cannot be stored"
    assert body["request_id"]


async def test_the_text_patterns_mean_the_same_to_clients_as_to_the_service(api: Api) -> None:
    """The service checks patterns with Python's ``re``, clients with JSON Schema's ECMA-262 regular
    expressions (here a Rust engine, as schemathesis uses): where they differed (``\\s`` does not
    mean the same set), a name the document allowed was refused. Every whitespace character either
    knows, alone and leading a name, gets the same answer from both, and from the service."""
    spaces = "\t\n\v\f\r \x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
    samples = [*spaces, *(f"{space}x" for space in spaces), "x", "x y", "Été", f"x{NUL}"]
    patterns = {"name": NOT_BLANK, "tag": msgspec.inspect.type_info(TagName).pattern}  # type: ignore[attr-defined]
    for what, pattern in patterns.items():
        client_side = jsonschema_rs.validator_for({"type": "string", "pattern": pattern})
        for sample in samples:
            assert client_side.is_valid(sample) == (re.search(pattern, sample) is not None), (what, hex(ord(sample[0])))
    actor = await api.actor(scopes=ALL_SCOPES)
    for space in spaces:
        project = await api.client.post("/projects", json={"name": space}, headers=actor.headers)
        assert project.status_code == 400, (hex(ord(space)), project.text)
        tag = await api.client.post("/tags", json={"name": f"{space}x"}, headers=actor.headers)
        assert tag.status_code == 400, (hex(ord(space)), tag.text)
