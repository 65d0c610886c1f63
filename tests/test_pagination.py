"""Every listing takes any offset up to the documented bound: past that, a 400 in the error shape,
not a 500 from the driver."""

from __future__ import annotations

from typing import Any

from domain.pagination import MAX_OFFSET
from tests.conftest import ALL_SCOPES, Actor, Api
from tests.openapi_document import operations
from tests.test_projects import create_project

LARGEST = MAX_OFFSET


async def listings(api: Api, actor: Actor) -> list[str]:
    project = await create_project(api, actor)
    return ["/projects", f"/projects/{project['id']}/tasks", "/tags", "/video/jobs"]


async def test_an_offset_beyond_the_bound_is_400_on_every_listing(api: Api) -> None:
    actor = await api.actor(scopes=ALL_SCOPES)
    for path in await listings(api, actor):
        for offset in (LARGEST + 1, 2**63, 10**40):  # 2^63: past the databases' integers too
            response = await api.client.get(f"{path}?offset={offset}", headers=actor.headers)
            assert response.status_code == 400, (path, offset, response.text)
            body = response.json()
            assert body["detail"], (path, body)
            assert body["request_id"], (path, body)


async def test_the_largest_offset_gives_an_empty_page(api: Api) -> None:
    actor = await api.actor(scopes=ALL_SCOPES)
    for path in await listings(api, actor):
        response = await api.client.get(f"{path}?offset={LARGEST}", headers=actor.headers)
        assert response.status_code == 200, (path, response.text)
        assert response.json()["items"] == [], path
        assert response.json()["offset"] == LARGEST, path


async def test_the_document_states_the_bound_exactly(document: dict[str, Any]) -> None:
    """A JSON number is a double to most clients: the bound must be one exactly, or the document
    allows offsets the service refuses."""
    bounds = {
        (method, path): parameter["schema"]["maximum"]
        for method, path, operation in operations(document)
        for parameter in operation.get("parameters", ())
        if parameter["name"] == "offset"
    }
    assert len(bounds) == 4, bounds
    assert all(maximum == MAX_OFFSET and float(maximum) == MAX_OFFSET for maximum in bounds.values()), bounds
