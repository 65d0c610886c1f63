"""Projects per API.md: CRUD, Location, 409 on duplicates, pagination, search, ownership."""

from __future__ import annotations

import msgspec

from tests.conftest import Actor, Api
from tests.factories import ProjectCreateFactory, TaskCreateFactory


def body(struct: msgspec.Struct) -> dict[str, object]:
    return msgspec.to_builtins(struct)  # type: ignore[no-any-return]


async def create_project(api: Api, actor: Actor, **fields: object) -> dict[str, object]:
    response = await api.client.post(
        "/projects", json={**body(ProjectCreateFactory.build()), **fields}, headers=actor.headers
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_create_get_update_delete(api: Api, alice: Actor) -> None:
    response = await api.client.post("/projects", json={"name": "Launch video"}, headers=alice.headers)
    assert response.status_code == 201
    project = response.json()
    assert response.headers["location"] == f"/projects/{project['id']}"
    assert project["name"] == "Launch video"
    assert project["description"] is None
    assert {"id", "created_at", "updated_at"} <= project.keys()

    got = await api.client.get(f"/projects/{project['id']}", headers=alice.headers)
    assert got.status_code == 200
    assert got.json() == project

    patched = await api.client.patch(f"/projects/{project['id']}", json={"description": "Q3"}, headers=alice.headers)
    assert patched.status_code == 200
    assert patched.json()["name"] == "Launch video"
    assert patched.json()["description"] == "Q3"

    deleted = await api.client.delete(f"/projects/{project['id']}", headers=alice.headers)
    assert deleted.status_code == 204
    assert (await api.client.get(f"/projects/{project['id']}", headers=alice.headers)).status_code == 404


async def test_duplicate_name_is_409_for_same_owner_only(api: Api, alice: Actor, bob: Actor) -> None:
    await create_project(api, alice, name="Shared name")
    again = await api.client.post("/projects", json={"name": "Shared name"}, headers=alice.headers)
    assert again.status_code == 409
    assert "already exists" in again.json()["error"]
    other_owner = await api.client.post("/projects", json={"name": "Shared name"}, headers=bob.headers)
    assert other_owner.status_code == 201


async def test_rename_onto_existing_name_is_409(api: Api, alice: Actor) -> None:
    await create_project(api, alice, name="First")
    second = await create_project(api, alice, name="Second")
    response = await api.client.patch(f"/projects/{second['id']}", json={"name": "First"}, headers=alice.headers)
    assert response.status_code == 409
    assert (await api.client.get(f"/projects/{second['id']}", headers=alice.headers)).json()["name"] == "Second"


async def test_list_paginates_and_searches(api: Api, alice: Actor) -> None:
    for i in range(5):
        await create_project(api, alice, name=f"Clip batch {i}")
    await create_project(api, alice, name="Other 100%_stuff")

    first = (await api.client.get("/projects?limit=2&offset=0", headers=alice.headers)).json()
    second = (await api.client.get("/projects?limit=2&offset=2", headers=alice.headers)).json()
    assert first["total"] == 6
    assert (first["limit"], first["offset"]) == (2, 0)
    assert len(first["items"]) == 2
    assert not {p["id"] for p in first["items"]} & {p["id"] for p in second["items"]}

    found = (await api.client.get("/projects?q=CLIP BATCH", headers=alice.headers)).json()
    assert found["total"] == 5
    literal = (await api.client.get("/projects?q=100%_", headers=alice.headers)).json()
    assert [p["name"] for p in literal["items"]] == ["Other 100%_stuff"]


async def test_search_ignores_case_and_accents_beyond_ascii(api: Api, alice: Actor) -> None:
    """``?q=`` ignores case and accents as Unicode defines them, the same on SQLite (whose SQL
    ``lower()`` knows ASCII only: ``q=été`` found nothing there) and PostgreSQL, and a renamed
    project is found by its new name only."""
    ete = await create_project(api, alice, name="Été 2026")
    for name in ("Straßenfest", "İstanbul trip", "Cafe\u0301 bar", "Winter", "Łódź", "한국", "バス"):
        await create_project(api, alice, name=name)

    async def names(q: str) -> list[str]:
        response = await api.client.get("/projects", params={"q": q}, headers=alice.headers)
        assert response.status_code == 200, response.text
        return sorted(p["name"] for p in response.json()["items"])

    assert await names("été") == ["Été 2026"]
    assert await names("ETE") == ["Été 2026"]
    assert await names("E\u0301TE\u0301") == ["Été 2026"]  # the accent typed as a combining mark
    assert await names("STRASSE") == ["Straßenfest"]
    assert await names("istanbul") == ["İstanbul trip"]
    assert await names("café") == ["Cafe\u0301 bar"]
    assert await names("LODZ") == ["Łódź"]  # a stroke is not a decomposable accent, and is ignored too
    # other scripts' marks make other letters: no match across them
    assert await names("하") == []  # a part of the Hangul syllable 한
    assert await names("ハ") == []  # バ is another kana, not ハ with an accent
    assert await names("\u0301") == []  # only an accent: nothing, not everything
    renamed = await api.client.patch(f"/projects/{ete['id']}", json={"name": "Automne"}, headers=alice.headers)
    assert renamed.status_code == 200, renamed.text
    assert await names("été") == []
    assert await names("AUTOMNE") == ["Automne"]


async def test_limit_out_of_range_is_400(api: Api, alice: Actor) -> None:
    for query in ("limit=0", "limit=101", "offset=-1", "limit=abc"):
        response = await api.client.get(f"/projects?{query}", headers=alice.headers)
        assert response.status_code == 400, query
        assert response.json()["detail"], query


async def test_nobody_sees_or_touches_another_users_project(api: Api, alice: Actor, bob: Actor) -> None:
    project = await create_project(api, alice)
    pid = project["id"]
    assert (await api.client.get(f"/projects/{pid}", headers=bob.headers)).status_code == 404
    assert (await api.client.patch(f"/projects/{pid}", json={"name": "x"}, headers=bob.headers)).status_code == 404
    assert (await api.client.delete(f"/projects/{pid}", headers=bob.headers)).status_code == 404
    tasks = await api.client.post(f"/projects/{pid}/tasks", json={"title": "sneaky"}, headers=bob.headers)
    assert tasks.status_code == 404
    assert (await api.client.get(f"/projects/{pid}/tasks", headers=bob.headers)).status_code == 404
    listing = (await api.client.get("/projects?limit=100", headers=bob.headers)).json()
    assert pid not in {p["id"] for p in listing["items"]}
    # and alice's project is untouched
    assert (await api.client.get(f"/projects/{pid}", headers=alice.headers)).json() == project


async def test_admin_sees_every_project(api: Api, alice: Actor) -> None:
    admin = await api.actor(scopes=["admin"])
    project = await create_project(api, alice)
    assert (await api.client.get(f"/projects/{project['id']}", headers=admin.headers)).status_code == 200


async def test_delete_project_deletes_its_tasks(api: Api, alice: Actor) -> None:
    project = await create_project(api, alice)
    task = await api.client.post(
        f"/projects/{project['id']}/tasks", json=body(TaskCreateFactory.build()), headers=alice.headers
    )
    assert task.status_code == 201
    assert (await api.client.delete(f"/projects/{project['id']}", headers=alice.headers)).status_code == 204
    assert (await api.client.get(f"/tasks/{task.json()['id']}", headers=alice.headers)).status_code == 404


async def test_invalid_bodies_are_400_with_detail(api: Api, alice: Actor) -> None:
    cases = [{}, {"name": ""}, {"name": "   "}, {"name": "x" * 201}, {"name": "ok", "unknown": 1}, {"name": 5}]
    for payload in cases:
        response = await api.client.post("/projects", json=payload, headers=alice.headers)
        assert response.status_code == 400, payload
        error = response.json()
        assert error["error"]
        assert error["request_id"] == response.headers["x-request-id"]
        assert isinstance(error["detail"], list)
        assert error["detail"], payload
    not_json = await api.client.post(
        "/projects", content=b"{not json", headers={**alice.headers, "content-type": "application/json"}
    )
    assert not_json.status_code == 400
