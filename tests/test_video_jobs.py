"""``/video``: submitting by URL and by upload, waiting or not, following, reading outputs, limits, errors.

Runs on both backends: the embedded default runs jobs in process; PostgreSQL + Redis sends them
through SAQ to a worker (conftest's ``api`` runs one).
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import pytest
from litestar import Litestar
from PIL import Image

from tests.backends import Backend
from tests.conftest import Actor, Api, serve
from tests.media_server import MediaServer, media_server, trap
from tests.videos import VideoSpec, VideoTruth, render_video, write_garbage

VIDEO_SCOPES = ("video:process", "projects:read", "projects:write")


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory) -> VideoTruth:
    """16 s, 320x180, with cuts, a fade and a planted highlight."""
    return render_video(tmp_path_factory.mktemp("videos") / "sample.mp4", VideoSpec(duration=16, cuts=3, seed=7))


@pytest.fixture(scope="session")
def served(sample: VideoTruth) -> Iterator[MediaServer]:
    corrupt = sample.path.parent / "corrupt.mp4"
    write_garbage(corrupt)
    with media_server(sample.path.parent) as server:
        yield server


@pytest.fixture
async def editor(api: Api) -> Actor:
    return await api.actor(scopes=VIDEO_SCOPES)


def upload(sample: VideoTruth, **fields: str) -> dict[str, object]:
    return {
        "files": {"file": (sample.path.name, sample.path.read_bytes(), "video/mp4")},
        "data": {"processing_type": "highlights", "max_length": "3", **fields},
    }


async def test_upload_and_wait_gives_the_result_thumbnail_and_clips(
    api: Api, editor: Actor, sample: VideoTruth
) -> None:
    response = await api.client.post("/video/process", headers=editor.headers, **upload(sample))  # type: ignore[arg-type]
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    result = body["result"]
    assert (result["width"], result["height"]) == (320, 180)
    assert result["duration"] == pytest.approx(16, abs=0.1)
    clips = result["clips"]
    assert 1 <= len(clips) <= 3
    assert all(2.0 - 1e-6 <= c["end"] - c["start"] <= 8.0 + 1e-6 for c in clips)
    spans = sorted((c["start"], c["end"]) for c in clips)
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))  # no overlap
    assert result["scenes"][0]["start"] == 0.0
    assert result["scenes"][-1]["end"] == pytest.approx(result["duration"], abs=0.05)

    thumbnail = await api.client.get(result["thumbnail"]["url"], headers=editor.headers)
    assert thumbnail.status_code == 200
    assert thumbnail.headers["content-type"] == "image/jpeg"
    image = Image.open(io.BytesIO(thumbnail.content))
    assert image.format == "JPEG"
    assert image.size == (320, 180)

    clip = clips[0]
    mp4 = await api.client.get(clip["url"], headers=editor.headers)
    assert mp4.status_code == 200
    assert mp4.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(mp4.content)) as container:
        frames = sum(1 for _ in container.decode(video=0))
        duration = container.duration / 1_000_000 if container.duration else 0
    assert duration == pytest.approx(clip["end"] - clip["start"], abs=0.15)
    assert frames == pytest.approx((clip["end"] - clip["start"]) * 25, abs=3)


async def test_url_without_waiting_is_202_then_events_follow_it_to_the_end(
    api: Api, editor: Actor, served: MediaServer
) -> None:
    response = await api.client.post(
        "/video/process?wait=false",
        json={"video_url": served.url("/files/sample.mp4"), "processing_type": "scenes", "max_length": 4},
        headers=editor.headers,
    )
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert response.headers["location"] == accepted["status_url"] == f"/video/jobs/{accepted['job_id']}"

    events: list[tuple[str, dict[str, object]]] = []
    async with api.client.stream("GET", f"{accepted['status_url']}/events", headers=editor.headers) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        kind = None
        async for line in stream.aiter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: ") and kind is not None:
                events.append((kind, json.loads(line.removeprefix("data: "))))
    assert events[-1][0] == "done"
    assert events[-1][1]["status"] == "succeeded"
    progress = [float(str(data["progress"])) for _, data in events]
    assert progress == sorted(progress)
    assert progress[-1] == 1.0

    job = (await api.client.get(accepted["status_url"], headers=editor.headers)).json()
    assert job["status"] == "succeeded"
    assert job["source"] == {"url": served.url("/files/sample.mp4")}
    assert 1 <= len(job["result"]["scenes"]) <= 4
    assert "clips" not in job["result"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"video_url": "http://x.example/v.mp4", "processing_type": "karaoke", "max_length": 3}, "processing_type"),
        ({"video_url": "http://x.example/v.mp4", "processing_type": "scenes", "max_length": 0}, "max_length"),
        ({"video_url": "http://x.example/v.mp4", "processing_type": "scenes", "max_length": 501}, "max_length"),
        ({"processing_type": "scenes", "max_length": 3}, "video_url"),
        ({"video_url": "http://x.example/v.mp4", "processing_type": "scenes", "colour": "red"}, "colour"),
    ],
)
async def test_bad_fields_are_400_with_one_entry_per_field(
    api: Api, editor: Actor, body: dict[str, object], field: str
) -> None:
    response = await api.client.post("/video/process", json=body, headers=editor.headers)
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["request_id"] == response.headers["x-request-id"]
    assert [entry["field"] for entry in error["detail"]] == [field]


async def test_bodies_that_are_not_a_job_get_clear_errors(api: Api, editor: Actor, sample: VideoTruth) -> None:
    not_json = await api.client.post(
        "/video/process", content=b"{not json", headers={**editor.headers, "Content-Type": "application/json"}
    )
    assert not_json.status_code == 400
    assert not_json.json()["error"] == "the body is not valid JSON"
    wrong_type = await api.client.post(
        "/video/process", content=b"x", headers={**editor.headers, "Content-Type": "text/plain"}
    )
    assert wrong_type.status_code == 415
    text_parts_only = {"processing_type": (None, "highlights"), "max_length": (None, "3")}
    no_file = await api.client.post("/video/process", files=text_parts_only, headers=editor.headers)
    assert no_file.status_code == 400
    assert no_file.json()["detail"][0]["field"] == "file"


async def test_unsafe_urls_are_refused_at_once_without_a_connection(api: Api, editor: Actor) -> None:
    with trap("127.0.0.2") as listener:
        for url in (
            listener.url("/v.mp4"),
            "http://10.0.0.1/v.mp4",
            "http://169.254.169.254/latest/meta-data/",
        ):
            response = await api.client.post(
                "/video/process",
                json={"video_url": url, "processing_type": "scenes", "max_length": 3},
                headers=editor.headers,
            )
            assert response.status_code == 422, (url, response.text)
            assert response.json()["error"]
        for url in ("file:///etc/passwd", "ftp://example.com/v.mp4", "example.com/v.mp4", "HTTP://", "https:///v.mp4"):
            response = await api.client.post(
                "/video/process",
                json={"video_url": url, "processing_type": "scenes", "max_length": 3},
                headers=editor.headers,
            )
            assert response.status_code == 400, (url, response.text)  # not an http(s) URL: the field is wrong
            assert [entry["field"] for entry in response.json()["detail"]] == ["video_url"]
        assert listener.settled_connections() == 0
    jobs = (await api.client.get("/video/jobs", headers=editor.headers)).json()
    assert jobs["total"] == 0  # nothing was queued


async def test_a_corrupt_video_fails_with_a_clear_422(api: Api, editor: Actor, served: MediaServer) -> None:
    response = await api.client.post(
        "/video/process",
        json={"video_url": served.url("/files/corrupt.mp4"), "processing_type": "highlights", "max_length": 3},
        headers=editor.headers,
    )
    assert response.status_code == 422, response.text
    assert "not a video" in response.json()["error"] or "corrupt" in response.json()["error"]
    jobs = (await api.client.get("/video/jobs?status=failed", headers=editor.headers)).json()
    assert jobs["total"] == 1
    assert jobs["items"][0]["error"] == response.json()["error"].split(": ", 1)[1]


async def test_jobs_are_private_to_their_owner(api: Api, editor: Actor, sample: VideoTruth) -> None:
    done = (await api.client.post("/video/process", headers=editor.headers, **upload(sample))).json()  # type: ignore[arg-type]
    stranger = await api.actor(scopes=VIDEO_SCOPES)
    job_url = f"/video/jobs/{done['job_id']}"
    for path in (job_url, f"{job_url}/thumbnail.jpg", f"{job_url}/clips/1.mp4", f"{job_url}/events"):
        assert (await api.client.get(path, headers=stranger.headers)).status_code == 404, path
    assert (await api.client.delete(job_url, headers=stranger.headers)).status_code == 404
    assert (await api.client.get("/video/jobs", headers=stranger.headers)).json()["total"] == 0
    admin = await api.actor(scopes=["admin"])
    assert (await api.client.get(job_url, headers=admin.headers)).status_code == 200


async def test_a_project_of_another_user_is_404(api: Api, editor: Actor, served: MediaServer) -> None:
    stranger = await api.actor(scopes=VIDEO_SCOPES)
    project = (await api.client.post("/projects", json={"name": "theirs"}, headers=stranger.headers)).json()
    response = await api.client.post(
        "/video/process",
        json={
            "video_url": served.url("/files/sample.mp4"),
            "processing_type": "scenes",
            "max_length": 3,
            "project_id": project["id"],
        },
        headers=editor.headers,
    )
    assert response.status_code == 404


async def test_cancel_a_queued_job_and_finished_jobs_cannot_be_cancelled(
    build_app: Callable[..., Litestar], editor: Actor, sample: VideoTruth
) -> None:
    # an app whose queue has no worker: the job waits, queued
    app = build_app(video_queue_name="nobody-listens", video_worker_concurrency=1, redis_url=None)
    async with serve(app) as client:
        queue = app.state["video_job_queue"]
        await queue.stop(grace=0)  # the in-process worker of this app takes nothing
        accepted = (
            await client.post("/video/process?wait=false", headers=editor.headers, **upload(sample))  # type: ignore[arg-type]
        ).json()
        job_url = f"/video/jobs/{accepted['job_id']}"
        assert (await client.get(job_url, headers=editor.headers)).json()["status"] == "queued"
        assert (await client.delete(job_url, headers=editor.headers)).status_code == 204
        job = (await client.get(job_url, headers=editor.headers)).json()
        assert job["status"] == "cancelled"
        again = await client.delete(job_url, headers=editor.headers)
        assert again.status_code == 409
        assert "already cancelled" in again.json()["error"]


async def test_at_most_n_active_jobs_per_user(
    build_app: Callable[..., Litestar], editor: Actor, sample: VideoTruth
) -> None:
    app = build_app(video_max_active_jobs=2, redis_url=None)
    async with serve(app) as client:
        await app.state["video_job_queue"].stop(grace=0)  # jobs stay queued: they stay active
        statuses = [
            (await client.post("/video/process?wait=false", headers=editor.headers, **upload(sample))).status_code  # type: ignore[arg-type]
            for _ in range(3)
        ]
        assert statuses == [202, 202, 429]
        refused = await client.post("/video/process?wait=false", headers=editor.headers, **upload(sample))  # type: ignore[arg-type]
        assert refused.headers["retry-after"] == "30"
        assert "limit is 2" in refused.json()["error"]


async def test_an_upload_over_the_size_limit_is_413_and_leaves_no_file(
    build_app: Callable[..., Litestar], editor: Actor, sample: VideoTruth, tmp_path: Path
) -> None:
    media = tmp_path / "media"
    app = build_app(video_max_bytes=100_000, media_dir=str(media))
    async with serve(app) as client:
        response = await client.post("/video/process", headers=editor.headers, **upload(sample))  # type: ignore[arg-type]
    assert response.status_code == 413, response.text
    assert [p for p in media.rglob("*") if p.is_file()] == []


async def test_cancel_stops_a_running_job_and_removes_its_files(
    api: Api, editor: Actor, served: MediaServer, backend_env: Backend
) -> None:
    # a download that trickles for ~20 s: the job is running (fetching) when the cancel comes
    slow = served.url("/slow?size=2000&interval=0.01")
    accepted = (
        await api.client.post(
            "/video/process?wait=false",
            json={"video_url": slow, "processing_type": "scenes", "max_length": 3},
            headers=editor.headers,
        )
    ).json()
    job_url = f"/video/jobs/{accepted['job_id']}"
    for _ in range(200):
        if (await api.client.get(job_url, headers=editor.headers)).json()["status"] == "running":
            break
        await asyncio.sleep(0.05)
    assert (await api.client.delete(job_url, headers=editor.headers)).status_code == 204
    for _ in range(100):
        job = (await api.client.get(job_url, headers=editor.headers)).json()
        if job["status"] == "cancelled":
            break
        await asyncio.sleep(0.05)
    assert job["status"] == "cancelled", job
    assert job["progress"] < 1
    job_dir = backend_env.work_dir / "media" / "jobs" / accepted["job_id"]
    assert not (job_dir / "scratch").exists()  # the partial download is gone


async def test_a_failed_upload_job_keeps_no_source(
    api: Api, editor: Actor, sample: VideoTruth, backend_env: Backend, tmp_path: Path
) -> None:
    garbage = write_garbage(tmp_path / "garbage.mp4")
    response = await api.client.post(
        "/video/process",
        files={"file": ("garbage.mp4", garbage.read_bytes(), "video/mp4")},
        data={"processing_type": "thumbnail", "max_length": "1"},
        headers=editor.headers,
    )
    assert response.status_code == 422
    job_id = response.json()["error"].split("job ", 1)[1].split(" ", 1)[0]
    assert not (backend_env.work_dir / "media" / "jobs" / job_id / "upload").exists()
