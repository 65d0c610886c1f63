"""The row is the lease: a worker that stalled past its lease, and whose job the reaper gave to
another worker meanwhile, stops at its next write and leaves the job to the attempt that holds it.
And no write of the row is cut off half-way, whatever stops an attempt: a transaction cancelled
between its UPDATE and its COMMIT could keep the row locked, and the job's next write would wait
for ever."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

import httpx
import pytest
from litestar import Litestar
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app import create_app
from app.plugins.video import MEDIA_STATE_KEY, VideoPlugin
from domain.video import runner as runner_module
from domain.video.models import JobStatus, VideoJob
from domain.video.runner import JobCancelledError, RunOutcome, VideoJobRunner, reap
from domain.video.schemas import ProcessingType
from domain.video.watch import SessionFactory
from tests.backends import backend
from tests.conftest import ALL_SCOPES, Actor, Api, make_settings, serve
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


def runner_on(app: Litestar, sessions: SessionFactory, **policy: Any) -> VideoJobRunner:
    """The app's runner, on ``sessions`` and with the given fields of its policy changed."""
    base = app.plugins.get(VideoPlugin).build_runner(app)
    return VideoJobRunner(
        sessions,
        fetcher=base.fetcher,
        analyzer=base.analyzer,
        thumbnails=base.thumbnails,
        clips=base.clips,
        media=base.media,
        policy=dataclasses.replace(base.policy, **policy),
    )


class HeldProgressWrites:
    """The work's progress writes, the first of them held at one point (``at``: before its UPDATE, or
    between its UPDATE and its COMMIT, holding the row's lock) until ``release`` is set; ``held`` says
    when it is there. ``log`` has "committed" for each progress write that ended and "cut off" for
    one cancelled while held; ``committed`` is set at the first commit. ``lease_saw_cancel`` is set
    when a renewal of the lease finds the job cancelled, just before the lease interrupts the work."""

    def __init__(self, at: Literal["update", "commit"]) -> None:
        self.at = at
        self.log: list[str] = []
        self.held = asyncio.Event()
        self.release = asyncio.Event()
        self.committed = asyncio.Event()
        self.lease_saw_cancel = asyncio.Event()
        self._progress_write: ContextVar[bool] = ContextVar("progress_write", default=False)

    def runner(self, app: Litestar, heartbeat_seconds: float) -> VideoJobRunner:
        """The app's runner on these writes, writing progress after every batch of frames."""
        sessions = self._sessions(app.plugins.get(VideoPlugin).sessions)
        runner = runner_on(app, sessions, heartbeat_seconds=heartbeat_seconds, progress_every_seconds=0.0)
        renew = runner.renew

        async def marked_renew(claim: Any, **values: Any) -> None:
            marked = self._progress_write.set(bool(values))  # the lease's renewals write no values
            try:
                await renew(claim, **values)
            except JobCancelledError:
                if not values:
                    self.lease_saw_cancel.set()
                raise
            finally:
                self._progress_write.reset(marked)

        runner.renew = marked_renew  # type: ignore[method-assign]
        return runner

    async def _hold(self, at: str) -> None:
        if at != self.at or self.held.is_set():
            return
        self.held.set()
        try:
            await asyncio.wait_for(self.release.wait(), 30)
        except asyncio.CancelledError:
            self.log.append("cut off")
            raise

    def _sessions(self, sessions: SessionFactory) -> SessionFactory:
        @contextlib.asynccontextmanager
        async def session() -> AsyncIterator[AsyncSession]:
            async with sessions() as opened:
                if self._progress_write.get():
                    execute, commit = opened.execute, opened.commit

                    async def held_execute(*args: Any, **kwargs: Any) -> Any:
                        await self._hold("update")
                        return await execute(*args, **kwargs)

                    async def held_commit() -> None:
                        await self._hold("commit")
                        await commit()
                        self.log.append("committed")
                        self.committed.set()

                    opened.execute = held_execute  # type: ignore[method-assign]
                    opened.commit = held_commit  # type: ignore[method-assign]
                yield opened

        return session


@dataclasses.dataclass
class HeldAttempt:
    """An attempt of a job, on :class:`HeldProgressWrites`, with its first progress write held."""

    app: Litestar
    client: httpx.AsyncClient
    session: AsyncSession
    owner: Actor
    job_id: UUID
    writes: HeldProgressWrites
    task: asyncio.Task[RunOutcome]

    async def row(self) -> VideoJob:
        self.session.expire_all()
        return (await self.session.execute(select(VideoJob).where(VideoJob.id == self.job_id))).scalar_one()


@contextlib.asynccontextmanager
async def held_attempt(
    tmp_path: Path, clip: VideoTruth, *, at: Literal["update", "commit"], heartbeat_seconds: float
) -> AsyncIterator[HeldAttempt]:
    """A job on ``clip`` (PostgreSQL), its attempt started, once its first progress write is held."""
    async with backend("postgres", tmp_path) as env:
        app = create_app(make_settings(env))
        plugin = app.plugins.get(VideoPlugin)
        async with serve(app) as client, plugin.sessions() as session:
            owner = await Api(app, client, env).actor(scopes=ALL_SCOPES)
            with media_server(clip.path.parent) as source:
                job_id = await queued_job(session, owner.id, source.url(f"/files/{clip.path.name}"))
                writes = HeldProgressWrites(at)
                task = asyncio.create_task(writes.runner(app, heartbeat_seconds).run(job_id))
                try:
                    await asyncio.wait_for(writes.held.wait(), 30)
                    yield HeldAttempt(app, client, session, owner, job_id, writes, task)
                finally:  # a failed test leaves no attempt running into the teardown
                    writes.release.set()
                    task.cancel()
                    with contextlib.suppress(BaseException):
                        await task


async def test_a_cancel_request_stops_the_job_without_cutting_off_a_write(tmp_path: Path, clip: VideoTruth) -> None:
    """A cancel request, found by the lease's renewal while the work is in the middle of a progress
    write: the work is interrupted, its write first ends whole, and the job ends cancelled."""
    async with held_attempt(tmp_path, clip, at="update", heartbeat_seconds=0.05) as attempt:
        cancelled = await attempt.client.delete(f"/video/jobs/{attempt.job_id}", headers=attempt.owner.headers)
        await asyncio.wait_for(attempt.writes.lease_saw_cancel.wait(), 30)
        attempt.writes.release.set()  # after the lease has interrupted the work (no await between the two)
        outcome = await asyncio.wait_for(attempt.task, 60)
        row = await attempt.row()
    assert cancelled.status_code == 204
    assert outcome.status is JobStatus.CANCELLED
    assert (row.status, row.error) == (JobStatus.CANCELLED, "cancelled")
    assert attempt.writes.log == ["committed"]  # the write in flight, and no other: the job stopped there


async def test_a_shutdown_leaves_the_job_to_the_reaper_without_cutting_off_a_write(
    tmp_path: Path, clip: VideoTruth
) -> None:
    """A worker's shutdown cancels its attempts: an attempt cancelled between the UPDATE and the
    COMMIT of a progress write first commits it; the cancellation then goes on up, and the job's row
    is left running and unlocked, for the reaper."""
    async with held_attempt(tmp_path, clip, at="commit", heartbeat_seconds=600) as attempt:  # the row is locked
        attempt.task.cancel()
        await asyncio.sleep(0)  # the cancellation is delivered
        attempt.writes.release.set()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(attempt.task, 30)
        session = attempt.session
        await session.execute(text("SET LOCAL lock_timeout = '2s'"))  # a lock still held fails here
        await session.execute(update(VideoJob).where(VideoJob.id == attempt.job_id).values(error="checked"))
        await session.commit()
        row = await attempt.row()
    assert attempt.writes.log == ["committed"]
    assert (row.status, row.attempts, row.progress, row.error) == (JobStatus.RUNNING, 1, 0.05, "checked")


async def test_a_shutdown_during_a_cancel_request_goes_on_up_and_the_job_still_ends_cancelled(
    tmp_path: Path, clip: VideoTruth
) -> None:
    """The lease interrupts the work for a cancel request, and the worker shuts down in the same
    moment: the attempt stops as a shutdown (the worker must not take another job), with its write
    whole; the job, left to the reaper, is settled cancelled by the next worker."""
    async with held_attempt(tmp_path, clip, at="update", heartbeat_seconds=0.05) as attempt:
        cancelled = await attempt.client.delete(f"/video/jobs/{attempt.job_id}", headers=attempt.owner.headers)
        await asyncio.wait_for(attempt.writes.lease_saw_cancel.wait(), 30)
        attempt.task.cancel()  # the shutdown
        attempt.writes.release.set()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(attempt.task, 30)
        left = await attempt.row()
        left_as = (left.status, left.cancel_requested)
        left.heartbeat_at = datetime.now(UTC) - timedelta(hours=1)  # its lease goes stale
        await attempt.session.commit()
        plugin = attempt.app.plugins.get(VideoPlugin)
        media = attempt.app.state[MEDIA_STATE_KEY]
        assert await reap(plugin.sessions, media, plugin.policy, requeue_after=3600) == [attempt.job_id]
        next_worker = await asyncio.wait_for(plugin.build_runner(attempt.app).run(attempt.job_id), 30)
        row = await attempt.row()
    assert cancelled.status_code == 204
    assert attempt.writes.log == ["committed"]
    assert left_as == (JobStatus.RUNNING, True)
    assert next_worker.status is None  # nothing to run: the job was settled instead
    assert (row.status, row.error, row.attempts) == (JobStatus.CANCELLED, "cancelled", 1)


async def test_a_stopping_attempt_waits_for_a_stuck_write_only_so_long(
    tmp_path: Path, clip: VideoTruth, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that the database does not answer holds a worker's shutdown up for the grace period
    and no longer; it is not cut off either: it ends on its own when the database answers."""
    monkeypatch.setattr(runner_module, "STOP_GRACE_SECONDS", 0.5)
    async with held_attempt(tmp_path, clip, at="commit", heartbeat_seconds=600) as attempt:
        started = time.monotonic()
        attempt.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(attempt.task, 10)
        stopped_after = time.monotonic() - started
        stopped_with = list(attempt.writes.log)
        attempt.writes.release.set()  # the database answers
        await asyncio.wait_for(attempt.writes.committed.wait(), 10)
        row = await attempt.row()
    assert 0.5 <= stopped_after < 5
    assert stopped_with == []  # neither cut off nor waited for to its end
    assert attempt.writes.log == ["committed"]
    assert row.progress == 0.05


async def test_a_shutdown_while_the_claim_waits_for_a_connection_leaves_the_job_queued(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker told to stop while its claim still waits for a pooled connection has written nothing:
    the job stays queued, its attempts untouched, for the next worker; it is not claimed behind the
    stopped worker's back, to wait running for the reaper with one attempt used up."""
    monkeypatch.setattr(runner_module, "STOP_GRACE_SECONDS", 2.0)  # how long the old way held the stop up
    async with backend("postgres", tmp_path) as env:
        app = create_app(make_settings(env, db_pool_size=1, db_max_overflow=0))
        plugin = app.plugins.get(VideoPlugin)
        async with serve(app) as client, plugin.sessions() as session:
            owner = await Api(app, client, env).create_user(NewUserFactory.build())
            job_id = await queued_job(session, owner, "http://127.0.0.1:9/never-fetched.mp4")
            await session.connection()  # the pool's one connection, held
            claiming = asyncio.Event()

            def sessions() -> contextlib.AbstractAsyncContextManager[AsyncSession]:
                claiming.set()
                return plugin.sessions()

            attempt = asyncio.create_task(runner_on(app, sessions).run(job_id))
            await asyncio.wait_for(claiming.wait(), 10)  # the claim waits for the held connection
            attempt.cancel()  # the shutdown
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(attempt, 10)
            await session.rollback()  # the connection goes back to the pool
            # whatever the stopped attempt left running gets the connection now, and ends
            await asyncio.wait_for(asyncio.gather(*runner_module._UNAWAITED, return_exceptions=True), 10)
            async with asyncio.timeout(5):  # the cancelled wait did not lose the pool's connection
                row = (await session.execute(select(VideoJob).where(VideoJob.id == job_id))).scalar_one()
    assert (row.status, row.attempts, row.started_at) == (JobStatus.QUEUED, 0, None)
