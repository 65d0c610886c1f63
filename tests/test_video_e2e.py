"""End to end, as on Kubernetes: the API server process, worker processes on the Redis queue, PostgreSQL,
and a media server on loopback serving generated videos."""

from __future__ import annotations

import asyncio
import io
import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from PIL import Image

from tests.backends import REDIS_URL, postgres_database
from tests.media_server import MediaServer, media_server
from tests.server import REPO_ROOT, create_user, inherited_environ, running_server, token_for
from tests.videos import VideoSpec, VideoTruth, render_video

pytestmark = pytest.mark.timeout(300)  # several processes each; every wait inside is bounded on its own

JWT_SECRET = "e2e-test-secret-0123456789-0123456789-012345"
SCOPES = frozenset({"video:process", "projects:read", "projects:write"})


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, VideoTruth]:
    folder = tmp_path_factory.mktemp("e2e-videos")
    return {
        "short": render_video(folder / "short.mp4", VideoSpec(duration=16, cuts=3, seed=3)),
        # long enough (with a slow worker) that a test can act while it runs
        "long": render_video(folder / "long.mp4", VideoSpec(width=640, height=360, duration=60, cuts=8, seed=5)),
    }


@pytest.fixture(scope="module")
def served(videos: dict[str, VideoTruth]) -> Iterator[MediaServer]:
    with media_server(videos["short"].path.parent) as server:
        yield server


@asynccontextmanager
async def deployment(tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    """The environment every process of one deployment shares: database, Redis queue, media volume."""
    async with postgres_database() as database_url:
        yield {
            "APP_ENV": "production",
            "JWT_SECRET": JWT_SECRET,
            "DATABASE_URL": database_url,
            "DB_AUTO_MIGRATE": "true",
            "REDIS_URL": REDIS_URL,
            "CACHE_NAMESPACE": f"e2e-{uuid.uuid4().hex[:8]}",
            "VIDEO_QUEUE_NAME": f"e2e-{uuid.uuid4().hex[:8]}",
            "MEDIA_DIR": str(tmp_path / "media"),
            "FETCH_ALLOW_NETWORKS": "127.0.0.1/32",
            "VIDEO_JOB_HEARTBEAT": "0.5",
            "CLIP_MIN_SECONDS": "2",
            "CLIP_MAX_SECONDS": "8",
            "RATE_LIMIT_DEFAULT": "10000/minute",
            "RATE_LIMIT_VIDEO_PROCESS": "1000/minute",
            "MODEL_THREADS": "1",
            "LOG_LEVEL": "INFO",
        }


@contextmanager
def worker_process(
    env: dict[str, str], log: Path, extra: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    full = {**inherited_environ(), **env, "LITESTAR_APP": "app.asgi:app", "PYTHONUNBUFFERED": "1", **(extra or {})}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "litestar", "workers", "run"], cwd=REPO_ROOT, env=full, stdout=out, stderr=out
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


async def job_state(client: httpx.AsyncClient, job_url: str, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.get(job_url, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def until(
    client: httpx.AsyncClient, job_url: str, headers: dict[str, str], test: Any, within: float
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        state = await job_state(client, job_url, headers)
        if test(state):
            return state
        await asyncio.sleep(0.1)
    raise AssertionError(f"{job_url} did not get there within {within} s; last: {state}")


def sources_left(media: Path) -> list[str]:
    """Uploads and downloads still on disk (none once their jobs ended)."""
    return [str(p) for p in media.rglob("*") if p.name in {"upload", "source"}]


async def follow_events(
    client: httpx.AsyncClient, job_url: str, headers: dict[str, str], within: float = 60
) -> list[dict[str, Any]]:
    """The job's server-sent events until the stream ends; fails (with what came) after ``within``
    seconds, since keep-alives would hold a stream of a stuck job open for ever."""
    events: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(within):
            async with client.stream("GET", f"{job_url}/events", headers=headers, timeout=within) as stream:
                async for line in stream.aiter_lines():
                    if line.startswith("data: "):
                        events.append(json.loads(line.removeprefix("data: ")))
    except TimeoutError:
        raise AssertionError(f"{job_url}/events did not end within {within} s; events: {events}") from None
    return events


@pytest.fixture(autouse=True)
def process_logs(tmp_path: Path) -> Iterator[None]:
    """Print the end of every process log of the test after it: pytest shows it when the test failed."""
    yield
    for log in sorted(tmp_path.rglob("*.log")):
        lines = log.read_text(errors="replace").splitlines()
        kept = [line for line in lines if "alembic" not in line][-40:]
        print(f"----- {log.relative_to(tmp_path)} (last {len(kept)} of {len(lines)} lines) -----", *kept, sep="\n")


async def test_by_url_and_by_upload_through_the_queue_and_a_worker(
    tmp_path: Path, videos: dict[str, VideoTruth], served: MediaServer
) -> None:
    async with deployment(tmp_path) as env:
        with running_server(env, tmp_path) as api, worker_process(env, tmp_path / "worker.log"):
            await create_user(env["DATABASE_URL"], "e2e@example.com", "long-enough-password", SCOPES)
            headers = {"Authorization": f"Bearer {token_for(api.url, 'e2e@example.com', 'long-enough-password')}"}
            async with httpx.AsyncClient(base_url=api.url, timeout=60) as client:
                by_url = await client.post(
                    "/video/process?wait=false",
                    json={
                        "video_url": served.url("/files/short.mp4"),
                        "processing_type": "highlights",
                        "max_length": 2,
                    },
                    headers=headers,
                )
                by_upload = await client.post(
                    "/video/process?wait=false",
                    files={"file": ("short.mp4", videos["short"].path.read_bytes(), "video/mp4")},
                    data={"processing_type": "highlights", "max_length": "2"},
                    headers=headers,
                )
                assert (by_url.status_code, by_upload.status_code) == (202, 202), (by_url.text, by_upload.text)
                for accepted in (by_url.json(), by_upload.json()):
                    job_url = accepted["status_url"]
                    events = await follow_events(client, job_url, headers)
                    assert events[-1]["status"] == "succeeded", events[-1]
                    assert [e["progress"] for e in events] == sorted(e["progress"] for e in events)
                    job = await job_state(client, job_url, headers)
                    result = job["result"]
                    assert job["attempts"] == 1
                    thumbnail = await client.get(result["thumbnail"]["url"], headers=headers)
                    assert Image.open(io.BytesIO(thumbnail.content)).size == (320, 180)
                    clip = result["clips"][0]
                    mp4 = await client.get(clip["url"], headers=headers)
                    with av.open(io.BytesIO(mp4.content)) as container:
                        assert sum(1 for _ in container.decode(video=0)) > 0
                        assert container.duration is not None
                        assert container.duration / 1e6 == pytest.approx(clip["end"] - clip["start"], abs=0.15)
            # temporary files are gone once the jobs ended: no upload, no download left
        assert sources_left(Path(env["MEDIA_DIR"])) == []


async def test_a_killed_worker_leaves_the_job_to_another(tmp_path: Path, videos: dict[str, VideoTruth]) -> None:
    async with deployment(tmp_path) as env:
        with running_server(env, tmp_path) as api:
            await create_user(env["DATABASE_URL"], "kill@example.com", "long-enough-password", SCOPES)
            headers = {"Authorization": f"Bearer {token_for(api.url, 'kill@example.com', 'long-enough-password')}"}
            async with httpx.AsyncClient(base_url=api.url, timeout=60) as client:
                accepted = (
                    await client.post(
                        "/video/process?wait=false",
                        files={"file": ("long.mp4", videos["long"].path.read_bytes(), "video/mp4")},
                        data={"processing_type": "highlights", "max_length": "3"},
                        headers=headers,
                    )
                ).json()
                job_url = accepted["status_url"]
                with worker_process(env, tmp_path / "doomed.log") as doomed:
                    await until(client, job_url, headers, lambda s: s["progress"] > 0.1, within=90)
                    doomed.kill()  # SIGKILL: no goodbye, the lease just stops being renewed
                    doomed.wait(10)
                with worker_process(env, tmp_path / "rescuer.log"):
                    done = await until(
                        client,
                        job_url,
                        headers,
                        lambda s: s["status"] != "running" and s["status"] != "queued",
                        within=120,
                    )
    assert done["status"] == "succeeded", done
    assert done["attempts"] == 2
    assert len(done["result"]["clips"]) >= 1


async def test_the_api_restarts_mid_job_and_the_job_finishes(tmp_path: Path, videos: dict[str, VideoTruth]) -> None:
    """The job's download stops half way until the first API process is gone and a second one
    serves, so the job runs across the restart (on the worker), and the new process follows it."""
    with media_server(videos["long"].path.parent) as source:
        async with deployment(tmp_path) as env:
            env["FETCH_READ_TIMEOUT"] = "120"  # the held download is silent while the API restarts
            with worker_process(env, tmp_path / "worker.log"):
                with running_server(env, tmp_path) as first_api:
                    await create_user(env["DATABASE_URL"], "restart@example.com", "long-enough-password", SCOPES)
                    headers = {
                        "Authorization": (
                            f"Bearer {token_for(first_api.url, 'restart@example.com', 'long-enough-password')}"
                        )
                    }
                    async with httpx.AsyncClient(base_url=first_api.url, timeout=60) as client:
                        accepted = (
                            await client.post(
                                "/video/process?wait=false",
                                json={
                                    "video_url": source.url("/held/long.mp4"),
                                    "processing_type": "scenes",
                                    "max_length": 5,
                                },
                                headers=headers,
                            )
                        ).json()
                        await until(client, accepted["status_url"], headers, lambda s: s["status"] == "running", 60)
                # the first API is gone (SIGTERM); a new one comes up while the job waits for its download
                with running_server(env, tmp_path / "second") as second_api:
                    async with httpx.AsyncClient(base_url=second_api.url, timeout=60) as client:
                        assert (await job_state(client, accepted["status_url"], headers))["status"] == "running"
                        source.release()
                        events = await follow_events(client, accepted["status_url"], headers)
                        job = await job_state(client, accepted["status_url"], headers)
    assert events[0]["status"] == "running"
    assert events[-1]["status"] == "succeeded"
    assert job["status"] == "succeeded"
    assert job["attempts"] == 1
    assert 1 <= len(job["result"]["scenes"]) <= 5
