"""Every listing takes any offset its database can: past that, a 400 in the error shape, not a 500."""

from __future__ import annotations

from tests.conftest import ALL_SCOPES, Actor, Api
from tests.test_projects import create_project

LARGEST = 2**63 - 1  # PostgreSQL's bigint, SQLite's integer


async def listings(api: Api, actor: Actor) -> list[str]:
    project = await create_project(api, actor)
    return ["/projects", f"/projects/{project['id']}/tasks", "/tags", "/video/jobs"]


async def test_an_offset_beyond_the_databases_integers_is_400_on_every_listing(api: Api) -> None:
    actor = await api.actor(scopes=ALL_SCOPES)
    for path in await listings(api, actor):
        for offset in (LARGEST + 1, 10**40):
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
