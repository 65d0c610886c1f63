"""Tasks and tags per API.md: create-on-first-use, case-insensitive uniqueness, filters, replacement."""

from __future__ import annotations

from tests.conftest import Actor, Api


async def new_project(api: Api, actor: Actor) -> str:
    response = await api.client.post("/projects", json={"name": f"p-{actor.id}-tasks"}, headers=actor.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_task_crud_with_tags_created_on_first_use(api: Api, alice: Actor) -> None:
    pid = await new_project(api, alice)
    response = await api.client.post(
        f"/projects/{pid}/tasks",
        json={
            "title": "Cut the trailer",
            "priority": "high",
            "due_date": "2026-12-01",
            "tags": ["Edit", "urgent", "EDIT"],
        },
        headers=alice.headers,
    )
    assert response.status_code == 201, response.text
    task = response.json()
    assert response.headers["location"] == f"/tasks/{task['id']}"
    assert task["status"] == "todo"
    assert task["priority"] == "high"
    assert task["due_date"] == "2026-12-01"
    assert task["project_id"] == pid
    assert sorted(task["tags"]) == ["Edit", "urgent"]

    tags = (await api.client.get("/tags", headers=alice.headers)).json()
    assert sorted(t["name"] for t in tags["items"]) == ["Edit", "urgent"]

    # the same names in another case reuse the tags instead of creating new ones
    second = await api.client.post(
        f"/projects/{pid}/tasks", json={"title": "Color grade", "tags": ["edit"]}, headers=alice.headers
    )
    assert second.json()["tags"] == ["Edit"]
    assert (await api.client.get("/tags", headers=alice.headers)).json()["total"] == 2

    patched = await api.client.patch(
        f"/tasks/{task['id']}", json={"status": "done", "tags": ["final"]}, headers=alice.headers
    )
    assert patched.status_code == 200
    assert patched.json()["status"] == "done"
    assert patched.json()["tags"] == ["final"]
    assert patched.json()["title"] == "Cut the trailer"

    assert (await api.client.delete(f"/tasks/{task['id']}", headers=alice.headers)).status_code == 204
    assert (await api.client.get(f"/tasks/{task['id']}", headers=alice.headers)).status_code == 404


async def test_task_filters_by_status_and_tag(api: Api, alice: Actor) -> None:
    pid = await new_project(api, alice)
    payloads = [
        {"title": "a", "status": "todo", "tags": ["audio"]},
        {"title": "b", "status": "done", "tags": ["audio", "video"]},
        {"title": "c", "status": "in_progress", "tags": ["video"]},
    ]
    for payload in payloads:
        assert (await api.client.post(f"/projects/{pid}/tasks", json=payload, headers=alice.headers)).status_code == 201

    async def titles(query: str) -> list[str]:
        page = (await api.client.get(f"/projects/{pid}/tasks?{query}", headers=alice.headers)).json()
        return sorted(t["title"] for t in page["items"])

    assert await titles("") == ["a", "b", "c"]
    assert await titles("status=done") == ["b"]
    assert await titles("tag=AUDIO") == ["a", "b"]
    assert await titles("tag=video&status=in_progress") == ["c"]
    bad = await api.client.get(f"/projects/{pid}/tasks?status=later", headers=alice.headers)
    assert bad.status_code == 400


async def test_tag_names_are_unique_per_owner_ignoring_case(api: Api, alice: Actor, bob: Actor) -> None:
    created = await api.client.post("/tags", json={"name": "Highlights"}, headers=alice.headers)
    assert created.status_code == 201
    assert created.headers["location"] == f"/tags/{created.json()['id']}"
    clash = await api.client.post("/tags", json={"name": "highlights"}, headers=alice.headers)
    assert clash.status_code == 409
    assert (await api.client.post("/tags", json={"name": "HIGHLIGHTS"}, headers=bob.headers)).status_code == 201


async def test_tag_names_match_ignoring_case_beyond_ascii(api: Api, alice: Actor) -> None:
    """Case folding is Unicode's, the same on SQLite (whose SQL ``lower()`` knows ASCII only: a task
    naming ``Été`` answered 500 there) and PostgreSQL."""
    pid = await new_project(api, alice)
    first = await api.client.post(
        f"/projects/{pid}/tasks", json={"title": "a", "tags": ["Été", "Straße"]}, headers=alice.headers
    )
    assert first.status_code == 201, first.text
    assert sorted(first.json()["tags"]) == ["Straße", "Été"]
    # the same tags in other cases, an accent typed as a combining mark, and ß as ss
    second = await api.client.post(
        f"/projects/{pid}/tasks", json={"title": "b", "tags": ["e\u0301TE\u0301", "STRASSE"]}, headers=alice.headers
    )
    assert second.status_code == 201, second.text
    assert sorted(second.json()["tags"]) == ["Straße", "Été"]
    assert (await api.client.get("/tags", headers=alice.headers)).json()["total"] == 2
    assert (await api.client.post("/tags", json={"name": "éTÉ"}, headers=alice.headers)).status_code == 409
    filtered = (await api.client.get(f"/projects/{pid}/tasks?tag=%C3%89T%C3%89", headers=alice.headers)).json()
    assert sorted(t["title"] for t in filtered["items"]) == ["a", "b"]
    for q, found in [("été", ["Été"]), ("ETE", ["Été"]), ("STRASS", ["Straße"]), ("ss", ["Straße"]), ("x", [])]:
        searched = await api.client.get("/tags", params={"q": q}, headers=alice.headers)
        assert [t["name"] for t in searched.json()["items"]] == found, q


async def test_deleting_a_tag_removes_it_from_tasks(api: Api, alice: Actor) -> None:
    pid = await new_project(api, alice)
    task = (
        await api.client.post(f"/projects/{pid}/tasks", json={"title": "t", "tags": ["a", "b"]}, headers=alice.headers)
    ).json()
    tags = (await api.client.get("/tags?q=a", headers=alice.headers)).json()["items"]
    tag_a = next(t for t in tags if t["name"] == "a")
    assert (await api.client.delete(f"/tags/{tag_a['id']}", headers=alice.headers)).status_code == 204
    assert (await api.client.get(f"/tasks/{task['id']}", headers=alice.headers)).json()["tags"] == ["b"]


async def test_tasks_and_tags_are_private(api: Api, alice: Actor, bob: Actor) -> None:
    pid = await new_project(api, alice)
    task = (await api.client.post(f"/projects/{pid}/tasks", json={"title": "mine"}, headers=alice.headers)).json()
    tag = (await api.client.post("/tags", json={"name": "secret"}, headers=alice.headers)).json()
    assert (await api.client.get(f"/tasks/{task['id']}", headers=bob.headers)).status_code == 404
    assert (await api.client.patch(f"/tasks/{task['id']}", json={"title": "x"}, headers=bob.headers)).status_code == 404
    assert (await api.client.delete(f"/tasks/{task['id']}", headers=bob.headers)).status_code == 404
    assert (await api.client.delete(f"/tags/{tag['id']}", headers=bob.headers)).status_code == 404
    bob_tags = (await api.client.get("/tags", headers=bob.headers)).json()
    assert "secret" not in {t["name"] for t in bob_tags["items"]}
    assert (await api.client.get(f"/tasks/{task['id']}", headers=alice.headers)).json()["title"] == "mine"


async def test_invalid_task_bodies(api: Api, alice: Actor) -> None:
    pid = await new_project(api, alice)
    for payload in (
        {"title": ""},
        {"title": "x", "status": "someday"},
        {"title": "x", "priority": "urgent"},
        {"title": "x", "due_date": "tomorrow"},
        {"title": "x", "tags": [""]},
        {"title": "x", "tags": ["a,b"]},
    ):
        response = await api.client.post(f"/projects/{pid}/tasks", json=payload, headers=alice.headers)
        assert response.status_code == 400, payload
        assert response.json()["detail"], payload
    assert (await api.client.get(f"/projects/{pid}/tasks", headers=alice.headers)).json()["total"] == 0
