"""The row is the lease: a worker that stalled past its lease, and whose job the reaper gave to
another worker meanwhile, stops at its next write and leaves the job to the attempt that holds it."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app import create_app
from app.plugins.video import MEDIA_STATE_KEY, VideoPlugin
from domain.video.models import JobStatus, VideoJob
from domain.video.runner import reap
from domain.video.schemas import ProcessingType
from tests.backends import backend
from tests.conftest import Api, make_settings, serve
from tests.factories import NewUserFactory
from tests.media_server import media_server
from tests.videos import VideoSpec, VideoTruth, render_video


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> VideoTruth:
    return render_video(tmp_path_factory.mktemp("lease") / "clip.mp4", VideoSpec(duration=12, cuts=3, seed=11))


async def until_row(plugin: VideoPlugin, job_id: UUID, test: Callable[[VideoJob], bool]) -> None:
    async with asyncio.timeout(30):
        while True:
            async with plugin.sessions() as session:
                job = (await session.execute(select(VideoJob).where(VideoJob.id == job_id))).scalar_one()
                if test(job):
                    return
            await asyncio.sleep(0.05)


async def queued_job(session: AsyncSession, owner: str, source_url: str) -> UUID:
    """A scene-detection job of ``owner`` on ``source_url``, queued, committed."""
    job = VideoJob(owner_id=UUID(owner), processing_type=ProcessingType.SCENES, max_length=3, source_url=source_url)
    session.add(job)
    await session.flush()
    job_id = job.id
    await session.commit()
    return job_id


async def test_a_worker_whose_job_was_taken_over_stops_without_touching_it(
    tmp_path: Path, clip: VideoTruth, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="domain.video.runner")
    # PostgreSQL + Redis: the API process runs no job and no reaper of its own; this test is both workers
    async with backend("postgres", tmp_path) as env:
        app = create_app(make_settings(env))
        plugin = app.plugins.get(VideoPlugin)
        async with serve(app) as client, plugin.sessions() as session:
            owner = await Api(app, client, env).create_user(NewUserFactory.build())
            with media_server(clip.path.parent) as source:  # downloads stop half way until release()
                job_id = await queued_job(session, owner, source.url(f"/held/{clip.path.name}"))
                stalled = plugin.build_runner(app)
                stalled.policy = dataclasses.replace(stalled.policy, heartbeat_seconds=600)  # renews nothing here
                first = asyncio.create_task(stalled.run(job_id))
                await until_row(plugin, job_id, lambda row: row.status is JobStatus.RUNNING and row.attempts == 1)

                # its lease goes stale (as in a long stall), and the reaper puts the job back in the queue
                await session.execute(
                    update(VideoJob)
                    .where(VideoJob.id == job_id)
                    .values(heartbeat_at=datetime.now(UTC) - timedelta(hours=1))
                )
                await session.commit()
                media = app.state[MEDIA_STATE_KEY]
                assert await reap(plugin.sessions, media, plugin.policy, requeue_after=3600) == [job_id]
                successor = asyncio.create_task(plugin.build_runner(app).run(job_id))
                await until_row(plugin, job_id, lambda row: row.status is JobStatus.RUNNING and row.attempts == 2)

                source.release()  # both downloads finish; the stalled worker wakes up
                stalled_outcome, successor_outcome = await asyncio.wait_for(asyncio.gather(first, successor), 60)
            session.expire_all()
            row = (await session.execute(select(VideoJob).where(VideoJob.id == job_id))).scalar_one()
    assert stalled_outcome.status is None  # it knew that the job was no longer its own
    assert f"job {job_id}: the lease was lost before it could be marked cancelled" in caplog.text
    assert successor_outcome.status is JobStatus.SUCCEEDED
    assert (row.status, row.attempts, row.error, row.progress) == (JobStatus.SUCCEEDED, 2, None, 1.0)
    assert 1 <= len(row.result["scenes"]) <= 3


async def test_a_renewal_in_flight_when_the_work_ends_is_not_cut_off(tmp_path: Path, clip: VideoTruth) -> None:
    """A renewal cancelled between its UPDATE and its COMMIT could leave the job's row locked, and the
    final write would wait on it for ever: the renewing task is stopped, not cancelled."""
    async with backend("postgres", tmp_path) as env:
        app = create_app(make_settings(env))
        plugin = app.plugins.get(VideoPlugin)
        async with serve(app) as client, plugin.sessions() as session:
            owner = await Api(app, client, env).create_user(NewUserFactory.build())
            with media_server(clip.path.parent) as source:
                job_id = await queued_job(session, owner, source.url(f"/files/{clip.path.name}"))
                runner = plugin.build_runner(app)
                runner.policy = dataclasses.replace(runner.policy, heartbeat_seconds=0.02)
                real_renew = runner.renew
                renewals: list[str] = []

                async def slow_renewal(claim: object, **values: object) -> None:
                    if values:  # the work's own progress writes
                        await real_renew(claim, **values)  # type: ignore[arg-type]
                        return
                    try:
                        await asyncio.sleep(0.2)  # the lease's renewals: always one in flight
                        await real_renew(claim)  # type: ignore[arg-type]
                    except asyncio.CancelledError:
                        renewals.append("cut off")
                        raise
                    renewals.append("done")

                runner.renew = slow_renewal  # type: ignore[method-assign]
                outcome = await asyncio.wait_for(runner.run(job_id), 60)
            session.expire_all()
            row = (await session.execute(select(VideoJob).where(VideoJob.id == job_id))).scalar_one()
    assert outcome.status is JobStatus.SUCCEEDED
    assert row.status is JobStatus.SUCCEEDED
    assert "done" in renewals
    assert "cut off" not in renewals
