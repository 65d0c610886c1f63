"""Shared fixtures: each behavioural test runs once on SQLite + memory and once on PostgreSQL + Redis."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from opentelemetry.trace import TracerProvider

from app import create_app
from app.cli import add_user
from app.health import health_registry
from app.plugins.video import VideoPlugin
from app.settings import Settings
from app.worker import run_worker
from domain.users.schemas import NewUser
from tests.backends import Backend, backend
from tests.factories import NewUserFactory

TEST_JWT_SECRET = "test-secret-that-is-long-enough-0123456789"
ALL_SCOPES = frozenset({"projects:read", "projects:write", "video:process"})


def make_settings(env: Backend, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": env.database_url,
        "redis_url": env.redis_url,
        "jwt_secret": TEST_JWT_SECRET,
        "db_auto_migrate": True,
        "password_hash_time_cost": 1,
        "password_hash_memory_kib": 8192,
        "cache_namespace": f"vo-test-{env.name}",
        "rate_limit_default": "100000/minute",  # the rate-limit tests set their own
        "media_dir": str(env.work_dir / "media"),
        "video_queue_name": env.queue_name,
        "fetch_allow_networks": "127.0.0.1/32",  # the tests' media server; nothing else private
        "video_job_heartbeat": 0.5,
        "video_sync_budget": 30.0,
        "clip_min_seconds": 2.0,
        "clip_max_seconds": 8.0,
        **overrides,
    }
    return Settings(**values)


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
async def backend_env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Backend]:
    async with backend(request.param, tmp_path_factory.mktemp(request.param)) as env:
        yield env


@dataclass
class Actor:
    id: str
    email: str
    password: str
    token: str
    scopes: frozenset[str]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Api:
    """The app under test, its client, and a way to make users with tokens."""

    app: Litestar
    client: httpx.AsyncClient
    backend: Backend
    _made: list[Actor] = field(default_factory=list)

    async def create_user(self, new_user: NewUser) -> str:
        return str((await add_user(self.app, new_user)).id)

    async def actor(self, scopes: Iterable[str] = ("projects:read", "projects:write")) -> Actor:
        new_user = NewUserFactory.build(scopes=frozenset(scopes))
        user_id = await self.create_user(new_user)
        response = await self.client.post(
            "/auth/token", data={"username": new_user.email, "password": new_user.password}
        )
        assert response.status_code == 200, response.text
        return Actor(user_id, new_user.email, new_user.password, response.json()["access_token"], new_user.scopes)


@asynccontextmanager
async def serve(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and talk to it in this event loop (asyncpg pools are bound to one loop).

    The lifespan runs in a task of its own, so that it is entered and exited in the same
    task even when a session fixture's setup and teardown run in different ones.
    """
    started, stop = asyncio.Event(), asyncio.Event()

    async def run_lifespan() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    lifespan = asyncio.create_task(run_lifespan())
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait({lifespan, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if lifespan.done():
        waiter.cancel()
        lifespan.result()  # start-up failed: raise its error here
    await _until_started(app)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
            yield client
    finally:
        stop.set()
        await lifespan


async def _until_started(app: Litestar, startup_limit_s: float = 60) -> None:
    """Wait as Kubernetes' startup and readiness probes would (models load in the background),
    polling the registry as the probes do."""
    registry = health_registry(app)
    async with asyncio.timeout(startup_limit_s):
        while not registry.started:  # noqa: ASYNC110 - a computed state, as a probe sees it
            await asyncio.sleep(0.02)
    with contextlib.suppress(TimeoutError):  # some tests build apps that are never ready on purpose
        async with asyncio.timeout(5):
            while not registry.ready:  # noqa: ASYNC110
                await asyncio.sleep(0.02)


@pytest.fixture(scope="session")
async def api(backend_env: Backend) -> AsyncIterator[Api]:
    """The app on one backend. On PostgreSQL + Redis, video jobs go to the SAQ queue, so a worker
    (the same code as ``litestar workers run``) drains it in this process."""
    app = create_app(make_settings(backend_env))
    async with serve(app) as client:
        if backend_env.redis_url is None:
            yield Api(app, client, backend_env)
            return
        stop = asyncio.Event()
        worker = asyncio.create_task(run_worker(app, app.plugins.get(VideoPlugin), stop))
        try:
            yield Api(app, client, backend_env)
        finally:
            stop.set()
            await asyncio.wait_for(worker, timeout=60)


@pytest.fixture
async def alice(api: Api) -> Actor:
    return await api.actor()


@pytest.fixture
async def bob(api: Api) -> Actor:
    return await api.actor()


@pytest.fixture
async def document(api: Api) -> dict[str, Any]:
    """The OpenAPI document the app serves."""
    response = await api.client.get("/schema/openapi.json")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


AppBuilder = Callable[..., Any]


@pytest.fixture
def build_app(backend_env: Backend) -> Callable[..., Litestar]:
    """A separate app on the same database, e.g. with ``overrides``."""

    def _build(
        overrides: dict[str, Any] | None = None, tracer_provider: TracerProvider | None = None, **settings: Any
    ) -> Litestar:
        return create_app(make_settings(backend_env, **settings), overrides=overrides, tracer_provider=tracer_provider)

    return _build


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "backend_env" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.backend)


__all__ = ["ALL_SCOPES", "Actor", "Api", "Path", "make_settings"]
