"""Rate limits: per user (per IP when anonymous), atomic under concurrency, shared through Redis."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

import httpx
from litestar import Litestar, get, post

from app.rate_limit import RateLimitPlugin
from tests.backends import Backend
from tests.conftest import Actor, Api, serve


async def test_200_concurrent_requests_against_50_let_exactly_50_through(
    build_app: Callable[..., Litestar], alice: Actor, backend_env: Backend
) -> None:
    app = build_app(rate_limit_default="50/minute", cache_namespace=f"rl-{alice.id}")
    async with serve(app) as client:
        responses = await asyncio.gather(*(client.get("/auth/me", headers=alice.headers) for _ in range(200)))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 50, 429: 150}
    limited = next(r for r in responses if r.status_code == 429)
    assert limited.json() == {
        "error": limited.json()["error"],
        "request_id": limited.headers["x-request-id"],
    }
    assert limited.json()["error"].startswith("rate limit exceeded: 50 per 60 s")
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert limited.headers["ratelimit-remaining"] == "0"
    allowed = next(r for r in responses if r.status_code == 200)
    assert allowed.headers["ratelimit-limit"] == "50"
    assert allowed.headers["ratelimit-policy"] == "50;w=60"
    assert 0 <= int(allowed.headers["ratelimit-remaining"]) < 50


async def test_each_user_has_a_budget_and_anonymous_callers_share_their_ip(
    build_app: Callable[..., Litestar], alice: Actor, bob: Actor
) -> None:
    app = build_app(rate_limit_default="3/minute", cache_namespace=f"rl-users-{alice.id}")
    async with serve(app) as client:
        alice_statuses = [(await client.get("/auth/me", headers=alice.headers)).status_code for _ in range(4)]
        bob_statuses = [(await client.get("/auth/me", headers=bob.headers)).status_code for _ in range(3)]
        anonymous = [
            (await client.post("/auth/token", data={"username": "x@example.com", "password": "nope"})).status_code
            for _ in range(4)
        ]
    assert alice_statuses == [200, 200, 200, 429]
    assert bob_statuses == [200, 200, 200]
    assert anonymous == [400, 400, 400, 429]


async def test_probes_and_metrics_are_never_limited(build_app: Callable[..., Litestar]) -> None:
    async with serve(build_app(rate_limit_default="2/minute")) as client:
        statuses = {(await client.get(path)).status_code for path in ("/health/ready", "/metrics") * 5}
    assert statuses == {200}


async def test_two_pods_share_their_counters_through_redis(
    build_app: Callable[..., Litestar], alice: Actor, backend_env: Backend
) -> None:
    if backend_env.redis_url is None:
        return  # the embedded default has one process and counts in its memory
    settings = {"rate_limit_default": "10/minute", "cache_namespace": f"rl-pods-{alice.id}"}
    async with serve(build_app(**settings)) as pod_a, serve(build_app(**settings)) as pod_b:
        first = [(await pod_a.get("/auth/me", headers=alice.headers)).status_code for _ in range(6)]
        second = [(await pod_b.get("/auth/me", headers=alice.headers)).status_code for _ in range(6)]
    assert first == [200] * 6
    assert second == [200] * 4 + [429] * 2


async def test_a_route_can_have_a_stricter_limit() -> None:
    @get("/cheap", sync_to_thread=False)
    def cheap() -> str:
        return "ok"

    @post("/costly", sync_to_thread=False)
    def costly() -> str:
        return "ok"

    app = Litestar(
        [cheap, costly],
        plugins=[RateLimitPlugin(default="5/minute", routes={("POST", "/costly"): "2/minute"}, namespace="t")],
    )
    async with app.lifespan():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            costly_statuses = [(await client.post("/costly")).status_code for _ in range(3)]
            cheap_statuses = [(await client.get("/cheap")).status_code for _ in range(5)]
    assert costly_statuses == [201, 201, 429]
    assert cheap_statuses == [200] * 5


async def test_video_processing_has_its_stricter_limit(
    build_app: Callable[..., Litestar], backend_env: Backend
) -> None:
    app = build_app(rate_limit_video_process="2/minute", cache_namespace=f"rl-video-{backend_env.queue_name}")
    async with serve(app) as client:
        editor = await Api(app, client, backend_env).actor(scopes=["video:process"])
        body = {"video_url": "http://10.0.0.1/refused-before-any-work.mp4", "processing_type": "scenes"}
        statuses = [
            (await client.post("/video/process", json=body, headers=editor.headers)).status_code for _ in range(3)
        ]
        listing = await client.get("/video/jobs", headers=editor.headers)
    assert statuses == [422, 422, 429]  # counted even when refused: the limit guards the work of checking too
    assert listing.status_code == 200  # other routes keep the default limit
    assert listing.headers["ratelimit-limit"] == "100000"
