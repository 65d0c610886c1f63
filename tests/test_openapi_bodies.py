"""The OpenAPI document describes the request bodies the service accepts, as strictly as it accepts
them: a body the document allows is not refused, and one the service refuses the document does not
allow. Clients are generated from the document; ``POST /video/process`` had no body in it at all."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from tests.conftest import Actor, Api
from tests.openapi_document import allows, body_schema, component, operations, response_schema


async def test_every_body_is_documented_and_refuses_unknown_fields(document: dict[str, Any]) -> None:
    with_bodies = {
        (method, path): operation["requestBody"]["content"]
        for method, path, operation in operations(document)
        if "requestBody" in operation
    }
    assert ("POST", "/video/process") in with_bodies
    assert set(with_bodies[("POST", "/video/process")]) == {"application/json", "multipart/form-data"}
    for (method, path), content in with_bodies.items():
        for media_type, entry in content.items():
            if media_type == "application/x-www-form-urlencoded":
                continue  # the OAuth2 token form, whose standard allows other fields
            schema = component(document, entry["schema"])
            assert schema.get("additionalProperties") is False, (method, path, media_type)
    upload = with_bodies[("POST", "/video/process")]["multipart/form-data"]["schema"]
    assert {"file", "processing_type"} <= set(upload["required"])
    assert upload["properties"]["file"]["format"] == "binary"


@pytest.mark.parametrize(
    ("method", "template", "body"),
    [
        ("POST", "/projects", {"name": "p", "colour": "red"}),
        ("PATCH", "/projects/{project_id}", {"colour": "red"}),
        ("POST", "/projects/{project_id}/tasks", {"title": "t", "tags": ["a,b"]}),
        ("POST", "/projects/{project_id}/tasks", {"title": "t", "tags": [""]}),
        ("POST", "/projects/{project_id}/tasks", {"title": "t", "tags": ["x" * 65]}),
        ("PATCH", "/tasks/{task_id}", {"tags": [" lead"]}),
        ("POST", "/tags", {"name": "x", "colour": "red"}),
        ("POST", "/video/process", {"video_url": "https://example.com/a.mp4", "processing_type": "scenes", "x": 1}),
    ],
)
async def test_a_body_the_service_refuses_is_one_the_document_does_not_allow(
    api: Api, alice: Actor, document: dict[str, Any], method: str, template: str, body: dict[str, Any]
) -> None:
    project = (await api.client.post("/projects", json={"name": "bodies"}, headers=alice.headers)).json()
    task = (
        await api.client.post(f"/projects/{project['id']}/tasks", json={"title": "t"}, headers=alice.headers)
    ).json()
    editor = await api.actor(scopes=["projects:read", "projects:write", "video:process"])
    headers = editor.headers if template == "/video/process" else alice.headers
    url = template.format(project_id=project["id"], task_id=task["id"])

    response = await api.client.request(method, url, json=body, headers=headers)

    assert response.status_code == 400, response.text
    assert not allows(body_schema(document, method, template, "application/json"), body)
    # and the same body, the offending field left out, is allowed by both
    valid = {key: value for key, value in body.items() if key not in {"colour", "x", "tags"}}
    assert allows(body_schema(document, method, template, "application/json"), valid)
    if template != "/video/process":  # which would fetch the URL
        accepted = await api.client.request(method, url, json=valid, headers=headers)
        assert accepted.status_code in {200, 201, 409}, accepted.text


async def test_tag_names_the_document_allows_are_accepted(api: Api, alice: Actor, document: dict[str, Any]) -> None:
    project = (await api.client.post("/projects", json={"name": "tag names"}, headers=alice.headers)).json()
    body = {"title": "t", "tags": ["a b", "x" * 64, "Été"]}
    assert allows(body_schema(document, "POST", "/projects/{project_id}/tasks", "application/json"), body)
    created = await api.client.post(f"/projects/{project['id']}/tasks", json=body, headers=alice.headers)
    assert created.status_code == 201, created.text


async def test_an_upload_gets_the_documented_answers(api: Api, document: dict[str, Any]) -> None:
    editor = await api.actor(scopes=["video:process"])
    schema = body_schema(document, "POST", "/video/process", "multipart/form-data")
    assert not allows(schema, {"processing_type": "thumbnail", "max_length": 1})  # no file part
    assert allows(schema, {"processing_type": "thumbnail", "max_length": 1, "file": "AAAA"})
    assert not allows(schema, {"processing_type": "thumbnail", "file": "AAAA", "project_id": None})
    assert allows(schema, {"processing_type": "thumbnail", "file": "AAAA", "project_id": ""})
    fields = {"processing_type": "thumbnail", "max_length": "1"}
    text_parts_only = {name: (None, value) for name, value in fields.items()}  # multipart, without a file
    missing_file = await api.client.post("/video/process?wait=false", files=text_parts_only, headers=editor.headers)
    assert missing_file.status_code == 400, missing_file.text
    empty_length = await api.client.post(
        "/video/process?wait=false",
        files={"file": ("clip.mp4", b"not really a video", "video/mp4")},
        data={**fields, "max_length": ""},  # only an empty project_id means none
        headers=editor.headers,
    )
    assert empty_length.status_code == 400, empty_length.text

    accepted = await api.client.post(
        "/video/process?wait=false",
        files={"file": ("clip.mp4", b"not really a video", "video/mp4")},
        data={**fields, "project_id": ""},  # an input left empty: no project
        headers=editor.headers,
    )
    assert accepted.status_code == 202, accepted.text
    jsonschema.validate(accepted.json(), response_schema(document, "POST", "/video/process", 202))
    assert accepted.headers["location"] == accepted.json()["status_url"]
    job = (await api.client.get(accepted.json()["status_url"], headers=editor.headers)).json()
    assert "project_id" not in job
