"""The rules of video jobs as clients meet them: submitting, reading, following, cancelling.

A job is a row first: the row is committed before any worker hears of it, so a job
survives a restart of the API, of the queue, or of the worker; running it is
:mod:`domain.video.runner`'s job.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar
from uuid import UUID

import msgspec
from advanced_alchemy.filters import LimitOffset, OrderBy
from sqlalchemy import ColumnElement, update

from domain.base import Page
from domain.errors import (
    ConflictError,
    DomainError,
    InvalidFieldsError,
    NotFoundError,
    PayloadTooLargeError,
    TooManyRequestsError,
    UnsupportedMediaTypeError,
)
from domain.principal import Principal
from domain.projects.service import ProjectService
from domain.validation import convert
from domain.video.job_schemas import (
    JobAccepted,
    JobCompleted,
    JobOut,
    ProcessRequest,
    UploadForm,
    job_path,
    to_job_out,
)
from domain.video.models import ACTIVE_STATUSES, JobStatus, VideoJob
from domain.video.ports import JobQueue, MediaStore, UploadReceiver, UrlGuard
from domain.video.repository import VideoJobRepository
from domain.video.watch import JobSnapshot, JobWatcher

JSON_BODY_LIMIT = 64 * 1024

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class JobPolicy:
    max_active_per_user: int = 3
    """Queued plus running jobs one user may have; the next submission gets 429."""
    sync_budget_seconds: float = 20.0
    """How long ``?wait=true`` waits for the result before answering 202."""


class JobFailedError(DomainError):
    """A job that was waited for ended in failure; the status is the failure's (422 for a bad video)."""

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code  # type: ignore[misc]  # per instance: the failure decides


class VideoJobService:
    """Acts for one principal: a caller sees and cancels only its own jobs (``admin``: all)."""

    def __init__(
        self,
        jobs: VideoJobRepository,
        projects: ProjectService,
        actor: Principal,
        *,
        queue: JobQueue,
        media: MediaStore,
        uploads: UploadReceiver,
        url_guard: UrlGuard,
        watcher: JobWatcher,
        policy: JobPolicy,
    ) -> None:
        self._jobs = jobs
        self._projects = projects
        self._actor = actor
        self._queue = queue
        self._media = media
        self._uploads = uploads
        self._url_guard = url_guard
        self._watcher = watcher
        self._policy = policy

    # submitting ---------------------------------------------------------------------------------

    async def process(
        self, content_type: str | None, body: AsyncIterator[bytes], *, wait: bool
    ) -> JobCompleted | JobAccepted:
        """Submit the job the body describes (JSON with ``video_url``, or a multipart upload).

        With ``wait``, answer with the result if the job ends within the synchronous budget.
        """
        job = await self.submit(content_type, body)
        if wait:
            final = await self._watcher.wait_final(job.id, self._policy.sync_budget_seconds)
            if final is not None:
                return self._completed(final)
        return JobAccepted(job_id=job.id, status_url=job_path(job.id))

    async def submit(self, content_type: str | None, body: AsyncIterator[bytes]) -> VideoJob:
        media_type = (content_type or "").split(";", 1)[0].strip().lower()
        if media_type == "application/json":
            request = await _read_json(body, ProcessRequest)
            await self._url_guard.check(request.video_url)
            await self._check_room()
            await self._check_project(request.project_id)
            return await self._create(
                VideoJob(
                    owner_id=self._actor.id,
                    project_id=request.project_id,
                    processing_type=request.processing_type,
                    max_length=request.max_length,
                    source_url=request.video_url,
                )
            )
        if media_type == "multipart/form-data":
            await self._check_room()  # before receiving what may be gigabytes
            upload = await self._uploads.receive(body, content_type or "", self._media.incoming_dir())
            try:
                # an empty project_id is none, as a browser sends an input left empty (a form has no
                # null); any other empty part is refused as the document says
                fields = {name: value for name, value in upload.fields.items() if value or name != "project_id"}
                form = convert(fields, UploadForm)
                if upload.path is None:
                    raise InvalidFieldsError(
                        "the form has no file part", [{"field": "file", "message": "a video file is required"}]
                    )
                await self._check_project(form.project_id)
                job = VideoJob(
                    owner_id=self._actor.id,
                    project_id=form.project_id,
                    processing_type=form.processing_type,
                    max_length=form.max_length,
                    source_name=(upload.filename or "upload")[:255],
                )
                return await self._create(job, upload=upload.path)
            finally:
                if upload.path is not None:
                    upload.path.unlink(missing_ok=True)  # moved into place when the job was created
        raise UnsupportedMediaTypeError(
            f"send application/json with a video_url, or multipart/form-data with a file; not {media_type or 'nothing'}"
        )

    async def _create(self, job: VideoJob, upload: Path | None = None) -> VideoJob:
        # committed before the queue hears of it: a worker must find the row
        job = await self._jobs.add(job, auto_commit=True)
        if upload is not None:
            self._media.adopt_upload(job.id, upload)
        # A failed enqueue loses nothing: the row stays queued and the workers' reaper enqueues it again.
        with contextlib.suppress(Exception):
            await self._queue.enqueue(job.id)
        return job

    async def _check_room(self) -> None:
        active = await self._jobs.count(VideoJob.owner_id == self._actor.id, VideoJob.status.in_(ACTIVE_STATUSES))
        limit = self._policy.max_active_per_user
        if active >= limit:
            raise TooManyRequestsError(
                f"you have {active} jobs queued or running; the limit is {limit}. "
                "Wait for one to finish or cancel one.",
                retry_after=30,
            )

    async def _check_project(self, project_id: UUID | None) -> None:
        if project_id is not None:
            await self._projects.get_visible(project_id)  # 404 for another user's project

    @staticmethod
    def _completed(final: JobSnapshot) -> JobCompleted:
        if final.status is JobStatus.SUCCEEDED:
            return JobCompleted(success=True, job_id=final.id, result=final.result or {})
        if final.status is JobStatus.CANCELLED:
            raise ConflictError(f"job {final.id} was cancelled")
        raise JobFailedError(f"job {final.id} failed: {final.error}", final.error_status or 500)

    # reading ------------------------------------------------------------------------------------

    def _visible(self) -> list[ColumnElement[bool]]:
        return [] if self._actor.is_admin else [VideoJob.owner_id == self._actor.id]

    async def _get_visible(self, job_id: UUID) -> VideoJob:
        job = await self._jobs.get_one_or_none(VideoJob.id == job_id, *self._visible())
        if job is None:
            raise NotFoundError(f"job {job_id} not found")
        return job

    async def get(self, job_id: UUID) -> JobOut:
        return to_job_out(await self._get_visible(job_id))

    async def list(
        self, *, limit: int, offset: int, status: JobStatus | None = None, project_id: UUID | None = None
    ) -> Page[JobOut]:
        conditions = self._visible()
        if status is not None:
            conditions.append(VideoJob.status == status)
        if project_id is not None:
            conditions.append(VideoJob.project_id == project_id)
        jobs, total = await self._jobs.get_many_and_count(
            LimitOffset(limit=limit, offset=offset), OrderBy("created_at", "desc"), *conditions
        )
        return Page(items=[to_job_out(job) for job in jobs], total=total, limit=limit, offset=offset)

    async def cancel(self, job_id: UUID) -> None:
        """A queued job is cancelled at once; a running one stops at its next batch."""
        job = await self._get_visible(job_id)
        if job.status.is_final:
            raise ConflictError(f"job {job_id} is already {job.status.value}")
        # Conditional updates, not a write of the row as read: a worker may claim the job between
        # the read and the write, and a blind write would turn its running job into a cancelled one
        # under its feet.
        now = datetime.now(UTC)
        session = self._jobs.session
        cancelled = await session.scalar(
            update(VideoJob)
            .where(VideoJob.id == job_id, VideoJob.status == JobStatus.QUEUED)
            .values(status=JobStatus.CANCELLED, cancel_requested=True, finished_at=now, updated_at=now)
            .returning(VideoJob.id)
        )
        if cancelled is not None:
            self._media.discard_sources(job_id)
            return
        flagged = await session.scalar(
            update(VideoJob)
            .where(VideoJob.id == job_id, VideoJob.status == JobStatus.RUNNING)
            .values(cancel_requested=True, updated_at=now)
            .returning(VideoJob.id)
        )
        if flagged is None:
            raise ConflictError(f"job {job_id} ended before it could be cancelled")

    async def events(self, job_id: UUID) -> AsyncIterator[JobSnapshot]:
        await self._get_visible(job_id)  # 404 before the stream starts
        return self._watcher.changes(job_id)

    async def thumbnail(self, job_id: UUID) -> Path:
        job = await self._get_visible(job_id)
        path = self._media.thumbnail_path(job.id)
        if job.status is not JobStatus.SUCCEEDED or not path.is_file():
            raise NotFoundError(f"job {job_id} has no thumbnail ({job.status.value})")
        return path

    async def clip(self, job_id: UUID, number: int) -> Path:
        job = await self._get_visible(job_id)
        clips = (job.result or {}).get("clips", [])
        if job.status is not JobStatus.SUCCEEDED or not 1 <= number <= len(clips):
            raise NotFoundError(f"job {job_id} has no clip {number}")
        path = self._media.clip_path(job.id, number)
        if not path.is_file():
            raise NotFoundError(f"clip {number} of job {job_id} is gone")
        return path


async def _read_json(body: AsyncIterator[bytes], kind: type[T]) -> T:
    chunks: list[bytes] = []
    size = 0
    async for chunk in body:
        size += len(chunk)
        if size > JSON_BODY_LIMIT:
            raise PayloadTooLargeError(f"a JSON body may have at most {JSON_BODY_LIMIT} bytes")
        chunks.append(chunk)
    try:
        raw = msgspec.json.decode(b"".join(chunks))
    except msgspec.DecodeError as exc:
        raise InvalidFieldsError("the body is not valid JSON", [{"field": None, "message": str(exc)}]) from None
    return convert(raw, kind)


__all__ = ["JobFailedError", "JobPolicy", "VideoJobService"]
