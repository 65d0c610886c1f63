"""The ADR's promises about the per-request session, checked on the real databases."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from litestar import Litestar
from litestar.di import NamedDependency
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.di.providers import provide_project_service
from app.plugins.database import DatabasePlugin
from domain.principal import Principal
from domain.projects.models import Project
from domain.projects.schemas import ProjectCreate, ProjectOut
from domain.projects.service import ProjectService
from tests.conftest import Actor, Api, serve


async def count_projects(app: Litestar, name: str) -> int:
    database = app.plugins.get(DatabasePlugin)
    async with database.db_config.get_session() as session:
        return int(await session.scalar(select(func.count()).where(Project.name == name)) or 0)


class FailingAfterWrite(ProjectService):
    """Writes the row, then fails: the request must leave nothing behind."""

    async def create(self, data: ProjectCreate) -> ProjectOut:
        await super().create(data)
        raise RuntimeError("boom after the insert")


def provide_failing_service(
    db_session: NamedDependency[AsyncSession], current_user: NamedDependency[Principal]
) -> ProjectService:
    return FailingAfterWrite(provide_project_service(db_session, current_user)._projects, current_user)


async def test_write_then_failure_leaves_no_row(build_app: Callable[..., Litestar], alice: Actor, api: Api) -> None:
    app = build_app(overrides={"project_service": provide_failing_service})
    async with serve(app) as client:
        response = await client.post("/projects", json={"name": "ghost"}, headers=alice.headers)
        assert response.status_code == 500
        assert response.json() == {"error": "internal server error", "request_id": response.headers["x-request-id"]}
        assert "boom" not in response.text
        assert "Traceback" not in response.text
        # the rest of the app is untouched by the override
        assert (await client.get("/auth/me", headers=alice.headers)).status_code == 200
    assert await count_projects(api.app, "ghost") == 0


async def test_successful_request_commits(api: Api, alice: Actor) -> None:
    response = await api.client.post("/projects", json={"name": "committed"}, headers=alice.headers)
    assert response.status_code == 201
    assert await count_projects(api.app, "committed") >= 1


async def test_non_2xx_response_rolls_back(api: Api, alice: Actor) -> None:
    """A 409 after a partial write (tags made on first use) must not keep the tags."""
    project = (await api.client.post("/projects", json={"name": "rollback"}, headers=alice.headers)).json()
    missing = "00000000-0000-0000-0000-000000000000"
    response = await api.client.patch(f"/tasks/{missing}", json={"tags": ["should-not-exist"]}, headers=alice.headers)
    assert response.status_code == 404
    tags = (await api.client.get("/tags?q=should-not-exist", headers=alice.headers)).json()
    assert tags["total"] == 0
    assert project["id"]


async def test_sessions_are_closed_no_pool_leak_after_500_requests(api: Api, alice: Actor, bob: Actor) -> None:
    project = (await api.client.post("/projects", json={"name": "leak check"}, headers=alice.headers)).json()
    pid = project["id"]

    async def one(i: int) -> int:
        kind = i % 5
        if kind == 0:
            r = await api.client.get(f"/projects/{pid}", headers=alice.headers)
        elif kind == 1:
            r = await api.client.get(f"/projects/{pid}", headers=bob.headers)  # 404
        elif kind == 2:
            r = await api.client.post("/projects", json={"name": "leak check"}, headers=alice.headers)  # 409
        elif kind == 3:
            r = await api.client.get("/projects?limit=5", headers=alice.headers)
        else:
            r = await api.client.post("/projects", json={"name": ""}, headers=alice.headers)  # 400
        return r.status_code

    statuses: list[int] = []
    for start in range(0, 500, 25):
        statuses += await asyncio.gather(*(one(i) for i in range(start, start + 25)))
    assert sorted(set(statuses)) == [200, 400, 404, 409]
    engine = api.app.plugins.get(DatabasePlugin).engine(api.app)
    # The app's own background work (health monitor, job reaper, worker) borrows connections for a
    # moment too; every one the requests took must be back within a short while.
    for _ in range(100):
        if engine.pool.checkedout() == 0:  # type: ignore[attr-defined]
            break
        await asyncio.sleep(0.02)
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_service_chain_is_built_per_request(build_app: Callable[..., Litestar], alice: Actor) -> None:
    # the objects themselves are kept (not their ids): a collected object's id is reused by the next one
    seen: list[tuple[AsyncSession, Any]] = []

    def recording(db_session: NamedDependency[AsyncSession], current_user: NamedDependency[Principal]) -> Any:
        service = provide_project_service(db_session, current_user)
        seen.append((db_session, service))
        return service

    async with serve(build_app(overrides={"project_service": recording})) as client:
        for _ in range(3):
            assert (await client.get("/projects", headers=alice.headers)).status_code == 200
    sessions = {id(s) for s, _ in seen}
    services = {id(s) for _, s in seen}
    assert len(seen) == 3
    assert len(sessions) == 3
    assert len(services) == 3


async def test_override_swaps_one_dependency_only(build_app: Callable[..., Litestar], alice: Actor) -> None:
    class FakeProjects(ProjectService):
        """Needs no database at all: answers every ``get`` from memory."""

        def __init__(self) -> None:
            pass

        async def get(self, project_id: UUID) -> ProjectOut:
            now = datetime.now(UTC)
            return ProjectOut(id=project_id, name="from the fake", description=None, created_at=now, updated_at=now)

    async with serve(build_app(overrides={"project_service": lambda: FakeProjects()})) as client:
        pid = "11111111-1111-1111-1111-111111111111"
        response = await client.get(f"/projects/{pid}", headers=alice.headers)
        assert response.status_code == 200
        assert response.json()["name"] == "from the fake"
        tags = await client.get("/tags", headers=alice.headers)  # a real service, untouched
        assert tags.status_code == 200
        assert "items" in tags.json()
