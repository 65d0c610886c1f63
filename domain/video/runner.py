"""Running one attempt of a video job, on a worker: claim, fetch, analyse, write the outputs, finish.

The row is the lease. A worker claims a queued row (``queued -> running``, one more
attempt) in one conditional UPDATE, so two workers never run the same attempt; it
renews ``heartbeat_at`` while it works; and whatever happens, it leaves the row in a
final status or back in ``queued`` for a retry. Every write of the worker names its attempt:
one that stalled past its lease, and whose job was reaped and claimed again meanwhile, finds
its next write refused and stops, without touching the job. A worker that dies leaves a stale
heartbeat: :func:`reap` hands the job to another worker (bounded attempts), so no
job stays ``running`` for ever.

Progress goes 0..1: fetching up to 0.05, the analysis (every frame) up to 0.85, the
thumbnail 0.9, the clips up to 1. Each progress write also reads ``cancel_requested``,
so a cancel stops the job at its next batch of frames; the lease's renewals read it too, and
interrupt a long step (a download, a clip). Neither a cancel nor a worker's shutdown ever cuts a
write of the row off half-way (:func:`_whole`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

from sqlalchemy import ColumnElement, Executable, Result, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.errors import DomainError
from domain.video.job_schemas import job_path
from domain.video.models import JobStatus, VideoJob
from domain.video.ports import ClipCutter, MediaStore, ThumbnailRenderer, VideoAnalyzer, VideoFetcher
from domain.video.results import build_result, thumbnail_time
from domain.video.schemas import ClipLengths, ProcessingType
from domain.video.watch import SessionFactory

logger = logging.getLogger("domain.video.runner")

Heartbeat = Callable[[], Awaitable[None]]
T = TypeVar("T")


STOP_GRACE_SECONDS = 10.0
"""How long an attempt that stops (its work done, or cancelled) waits for a write of its row in flight,
a lease renewal or a progress write, before it goes on without it: the write itself is never cut off."""


@dataclass(frozen=True, slots=True)
class RunnerPolicy:
    max_attempts: int = 3
    heartbeat_seconds: float = 5.0
    """How often a running job renews its lease; a lease older than 3 beats is stale (see :func:`reap`)."""
    retry_delay_seconds: float = 5.0
    """Pause before the next attempt after a transient failure (doubling each attempt)."""
    clip_lengths: ClipLengths = field(default_factory=ClipLengths)
    progress_every_seconds: float = 0.5

    @property
    def stale_after(self) -> float:
        return self.heartbeat_seconds * 3


@dataclass(frozen=True, slots=True)
class RunOutcome:
    status: JobStatus | None
    """The status the attempt left: final, ``queued`` (retry), or None when there was nothing to run."""
    retry_in: float | None = None
    """Seconds after which the job should be enqueued again (a transient failure)."""


class JobCancelledError(Exception):
    """The job was cancelled (or its lease lost) while it ran."""


@dataclass(slots=True)
class _Claim:
    id: UUID
    processing_type: ProcessingType
    max_length: int
    source_url: str | None
    attempt: int


def _now() -> datetime:
    return datetime.now(UTC)


_UNAWAITED: set[asyncio.Future[Any]] = set()
"""Writes whose caller was cancelled, kept referenced until they end (the loop keeps tasks only weakly)."""


async def _whole(write: Awaitable[T], *, begun: asyncio.Event | None = None) -> T:
    """Await a write of the job's row to its end, even when the caller is cancelled meanwhile (a cancel
    request, a worker's shutdown): the cancellation is raised once the write has ended, or after
    ``STOP_GRACE_SECONDS`` if it has not (a database that stopped answering), the write going on alone.

    Why: a write cut off half-way is lost, and a transaction cut off between its UPDATE and its COMMIT
    can keep holding the row's lock when SQLAlchemy cannot give its connection back cleanly; every
    later write of the job, its final status included, would then wait on that lock for ever.

    ``begun``, when given, is set by the write once it holds its connection: a cancellation before
    that (while it waits for a pooled connection) stops the write too, since nothing is written yet."""
    task = asyncio.ensure_future(write)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        if begun is not None and not begun.is_set():
            # the write is suspended before its first statement: setting ``begun`` and issuing that
            # statement happen in one step of the task, so this cancellation lands before either
            task.cancel()
        _UNAWAITED.add(task)
        task.add_done_callback(_ended_unawaited)
        _, pending = await asyncio.wait([task], timeout=STOP_GRACE_SECONDS)
        if pending:
            logger.warning("a write of a stopping attempt is still waiting on the database; going on without it")
        raise


def _ended_unawaited(write: asyncio.Future[Any]) -> None:
    _UNAWAITED.discard(write)
    if not write.cancelled() and (error := write.exception()) is not None:
        logger.warning("a write of a stopping attempt failed", exc_info=error)


class VideoJobRunner:
    def __init__(
        self,
        sessions: SessionFactory,
        *,
        fetcher: VideoFetcher,
        analyzer: VideoAnalyzer,
        thumbnails: ThumbnailRenderer,
        clips: ClipCutter,
        media: MediaStore,
        policy: RunnerPolicy,
    ) -> None:
        self._sessions = sessions
        self.fetcher = fetcher
        self.analyzer = analyzer
        self.thumbnails = thumbnails
        self.clips = clips
        self.media = media
        self.policy = policy

    async def run(self, job_id: UUID, heartbeat: Heartbeat | None = None) -> RunOutcome:
        """One attempt of the job. Cancelled (a worker's shutdown), it leaves the job ``running`` for
        the reaper to retry; no write of the job's row is ever cut off half-way (see :func:`_whole`)."""
        connected = asyncio.Event()
        claim = await _whole(self._claim(job_id, connected), begun=connected)
        if claim is None:
            return RunOutcome(None)
        logger.info("job %s: attempt %d (%s)", job_id, claim.attempt, claim.processing_type.value)
        try:
            result = await _Attempt(self, claim, heartbeat).run_with_lease()
        except JobCancelledError:
            return RunOutcome(await self._finish(claim, JobStatus.CANCELLED, error="cancelled"))
        except DomainError as exc:
            if exc.status_code >= 500:  # a dependency was away (503/504): worth another attempt
                return await self._retry_or_fail(claim, exc)
            status = await self._finish(claim, JobStatus.FAILED, error=exc.message, error_status=exc.status_code)
            return RunOutcome(status)
        except Exception as exc:
            logger.exception("job %s: attempt %d failed", job_id, claim.attempt)
            return await self._retry_or_fail(claim, exc)
        return RunOutcome(await self._finish(claim, JobStatus.SUCCEEDED, result=result))

    # the row ------------------------------------------------------------------------------------

    async def _claim(self, job_id: UUID, connected: asyncio.Event) -> _Claim | None:
        """Claim the queued job (see :meth:`run`); ``connected`` is set once a pooled connection is held,
        before the first statement: a shutdown while the claim waits for one does not use up an attempt."""
        async with self._sessions() as session:
            await session.connection()
            connected.set()
            now = _now()
            row = (
                await session.execute(
                    update(VideoJob)
                    .where(
                        VideoJob.id == job_id,
                        VideoJob.status == JobStatus.QUEUED,
                        VideoJob.cancel_requested.is_(False),
                        VideoJob.attempts < self.policy.max_attempts,
                    )
                    .values(
                        status=JobStatus.RUNNING,
                        attempts=VideoJob.attempts + 1,
                        heartbeat_at=now,
                        started_at=now,
                        progress=0.0,
                        updated_at=now,
                    )
                    .returning(VideoJob.processing_type, VideoJob.max_length, VideoJob.source_url, VideoJob.attempts)
                )
            ).one_or_none()
            if row is None:
                await self._settle_unclaimable(session, job_id)
            await session.commit()
        if row is None:
            return None
        return _Claim(job_id, row.processing_type, row.max_length, row.source_url, row.attempts)

    async def _settle_unclaimable(self, session: AsyncSession, job_id: UUID) -> None:
        """A queued job that is cancelled, or out of attempts, ends here instead of waiting for ever."""
        job = (await session.execute(select(VideoJob).where(VideoJob.id == job_id))).scalar_one_or_none()
        if job is None or job.status is not JobStatus.QUEUED:
            return  # gone, final, or running on another worker
        job.status = JobStatus.CANCELLED if job.cancel_requested else JobStatus.FAILED
        job.error = "cancelled" if job.cancel_requested else f"gave up after {job.attempts} attempts"
        job.error_status = None if job.cancel_requested else 500
        job.finished_at = _now()
        self.media.discard_sources(job_id)

    @staticmethod
    def _holds_lease(claim: _Claim) -> ColumnElement[bool]:
        """The row is still this attempt's: running, and not taken over by a later attempt (a worker
        that stalled past its lease finds the job reaped and claimed again; it must not touch it)."""
        return (VideoJob.id == claim.id) & (VideoJob.status == JobStatus.RUNNING) & (VideoJob.attempts == claim.attempt)

    async def _write(self, statement: Executable) -> Result[Any]:
        """Run one statement on the job's row in a transaction of its own; its result is buffered, to
        be read after the commit."""
        async with self._sessions() as session:
            result = await session.execute(statement)
            await session.commit()
        return result

    async def renew(self, claim: _Claim, **values: Any) -> None:
        """Renew the lease of the running job, writing ``values`` too; raises when it was cancelled or
        is no longer ours (its lease was lost)."""
        written = await _whole(
            self._write(
                update(VideoJob)
                .where(self._holds_lease(claim))
                .values(heartbeat_at=_now(), updated_at=_now(), **values)
                .returning(VideoJob.cancel_requested)
            )
        )
        cancel = written.scalar_one_or_none()
        if cancel is None or cancel:
            raise JobCancelledError

    async def _finish(
        self,
        claim: _Claim,
        status: JobStatus,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
        error_status: int | None = None,
    ) -> JobStatus | None:
        """Leave the running job in ``status`` and tidy its files; None when it was no longer ours (its
        lease was lost and another worker may have it now: nothing of it must be touched). Whole
        (:func:`_whole`), the tidying included: a cancellation meanwhile is raised after both."""
        values: dict[str, Any] = {
            "status": status,
            "error": error,
            "error_status": error_status,
            "heartbeat_at": None,
            "updated_at": _now(),
            "finished_at": _now() if status.is_final else None,
        }
        if result is not None:
            values.update(result=result, progress=1.0)

        async def finish() -> JobStatus | None:
            done = await self._write(update(VideoJob).where(self._holds_lease(claim)).values(**values))
            if done.rowcount == 0:  # type: ignore[attr-defined]
                logger.warning("job %s: the lease was lost before it could be marked %s", claim.id, status.value)
                return None
            self.media.discard_scratch(claim.id)
            if status.is_final:
                self.media.discard_sources(claim.id)
            logger.info("job %s: %s%s", claim.id, status.value, f" ({error})" if error else "")
            return status

        return await _whole(finish())

    async def _retry_or_fail(self, claim: _Claim, exc: BaseException) -> RunOutcome:
        reason = exc.message if isinstance(exc, DomainError) else f"{type(exc).__name__}: {exc}"
        if claim.attempt >= self.policy.max_attempts:
            status = await self._finish(
                claim,
                JobStatus.FAILED,
                error=f"gave up after {claim.attempt} attempts; last error: {reason}"[:2000],
                error_status=exc.status_code if isinstance(exc, DomainError) else 500,
            )
            return RunOutcome(status)
        status = await self._finish(claim, JobStatus.QUEUED, error=f"attempt {claim.attempt} failed: {reason}"[:2000])
        if status is None:
            return RunOutcome(None)
        return RunOutcome(status, retry_in=self.policy.retry_delay_seconds * 2 ** (claim.attempt - 1))


class _Attempt:
    """One attempt's work, with its lease renewed in the background."""

    def __init__(self, runner: VideoJobRunner, claim: _Claim, heartbeat: Heartbeat | None) -> None:
        self.runner = runner
        self.claim = claim
        self.heartbeat = heartbeat
        self.progress = 0.0
        self.written_at = 0.0
        self.interrupted = False
        """Whether the lease cancelled the work: the job was cancelled, or its lease lost."""

    async def run_with_lease(self) -> dict[str, Any]:
        """The work, its lease renewed every ``heartbeat_seconds`` meanwhile.

        When a renewal finds the job cancelled (or the lease lost), it cancels the work, which may be
        in a long step (a download, a clip) or in a write of its own (that one ends whole). When the
        work ends, the renewing task is asked to stop rather than cancelled, for the same reason."""
        work = asyncio.current_task()
        assert work is not None
        done = asyncio.Event()

        async def keep_lease() -> None:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), self.runner.policy.heartbeat_seconds)
                    return
                try:
                    await self.runner.renew(self.claim)
                    if self.heartbeat is not None:
                        await self.heartbeat()
                except JobCancelledError:
                    if not done.is_set():  # once the work has ended, its result stands
                        self.interrupted = True
                        work.cancel()
                    return
                except Exception:  # a missed beat is not fatal; three in a row make the lease stale
                    logger.warning("job %s: could not renew its lease", self.claim.id, exc_info=True)

        lease = asyncio.create_task(keep_lease(), name=f"lease-{self.claim.id}")
        try:
            return await self._work()
        except asyncio.CancelledError:
            # the lease's own cancellation, and no other (a worker's shutdown): the job ends cancelled
            if self.interrupted and work.uncancel() == 0:
                raise JobCancelledError from None
            raise
        finally:
            done.set()
            # a renewal in flight ends in milliseconds (whole, see ``_whole``); a cancellation of the
            # attempt meanwhile goes on up, and the lease task then stops on its own
            _, pending = await asyncio.wait([lease], timeout=STOP_GRACE_SECONDS)
            for stuck in pending:
                stuck.cancel()

    async def report(self, fraction: float, *, force: bool = False) -> None:
        """Write progress at most every ``progress_every_seconds``; raises when the job was cancelled."""
        self.progress = max(self.progress, min(1.0, fraction))
        now = time.monotonic()
        if force or now - self.written_at >= self.runner.policy.progress_every_seconds:
            self.written_at = now
            await self.runner.renew(self.claim, progress=round(self.progress, 4))

    async def _work(self) -> dict[str, Any]:
        runner, claim = self.runner, self.claim
        media = runner.media
        source = await self._source()
        await self.report(0.05, force=True)
        analysis = await runner.analyzer.analyze(source, on_progress=lambda f: self.report(0.05 + 0.8 * f))
        result = build_result(analysis, claim.processing_type, claim.max_length, runner.policy.clip_lengths)
        await self.report(0.85, force=True)

        chosen = thumbnail_time(analysis)
        jpeg = await runner.thumbnails.render(source, chosen)
        thumbnail = media.thumbnail_path(claim.id)
        thumbnail.parent.mkdir(parents=True, exist_ok=True)
        thumbnail.write_bytes(jpeg)
        result["thumbnail"] = {"time": round(chosen, 3), "url": f"{job_path(claim.id)}/thumbnail.jpg"}
        await self.report(0.9, force=True)

        clips = result.get("clips", [])
        for number, clip in enumerate(clips, start=1):
            await runner.clips.cut(source, clip["start"], clip["end"], media.clip_path(claim.id, number))
            clip["url"] = f"{job_path(claim.id)}/clips/{number}.mp4"
            await self.report(0.9 + 0.1 * number / len(clips))
        return result

    async def _source(self) -> Path:
        runner, claim = self.runner, self.claim
        if claim.source_url is None:
            upload = runner.media.upload_path(claim.id)
            if not upload.is_file():
                raise _MissingUploadError
            return upload
        destination = runner.media.scratch_dir(claim.id) / "source"
        fetched = await runner.fetcher.fetch(claim.source_url, destination)
        return fetched.path


class _MissingUploadError(DomainError):
    status_code = 410

    def __init__(self) -> None:
        super().__init__("the uploaded video is no longer on the server; upload it again")


async def reap(
    sessions: SessionFactory, media: MediaStore, policy: RunnerPolicy, *, requeue_after: float
) -> list[UUID]:
    """Find jobs that need a worker: running ones whose worker stopped (stale lease), and queued ones
    no worker took for ``requeue_after`` seconds (an enqueue that was lost). Returns their ids, to be
    enqueued (idempotently); jobs out of attempts are failed instead."""
    now = _now()
    stale = now - timedelta(seconds=policy.stale_after)
    async with sessions() as session:
        revived = (
            (
                await session.execute(
                    update(VideoJob)
                    .where(
                        VideoJob.status == JobStatus.RUNNING,
                        VideoJob.heartbeat_at < stale,
                        VideoJob.attempts < policy.max_attempts,
                    )
                    .values(status=JobStatus.QUEUED, error="the worker running it stopped; retrying", updated_at=now)
                    .returning(VideoJob.id)
                )
            )
            .scalars()
            .all()
        )
        abandoned = (
            (
                await session.execute(
                    update(VideoJob)
                    .where(VideoJob.status == JobStatus.RUNNING, VideoJob.heartbeat_at < stale)
                    .values(
                        status=JobStatus.FAILED,
                        error=f"gave up after {policy.max_attempts} attempts: the worker running it stopped",
                        error_status=500,
                        heartbeat_at=None,
                        finished_at=now,
                        updated_at=now,
                    )
                    .returning(VideoJob.id)
                )
            )
            .scalars()
            .all()
        )
        forgotten = (
            (
                await session.execute(
                    select(VideoJob.id).where(
                        VideoJob.status == JobStatus.QUEUED,
                        VideoJob.updated_at < now - timedelta(seconds=requeue_after),
                    )
                )
            )
            .scalars()
            .all()
        )
        await session.commit()
    for job_id in abandoned:
        media.discard_sources(job_id)
    if revived or abandoned:
        logger.warning(
            "reaper: %d jobs back in the queue, %d given up (their workers stopped)", len(revived), len(abandoned)
        )
    return [*revived, *forgotten]
