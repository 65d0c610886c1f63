"""Bodies of the ``/video`` endpoints (API.md, "Video")."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar.datastructures import UploadFile

from domain.video.models import JobStatus, VideoJob
from domain.video.schemas import MaxLength, ProcessingType

HTTP_URL = r"^[Hh][Tt][Tt][Pp][Ss]?://[^\x00/?#][^\x00]*$"
"""An http or https URL (the scheme in any case) with a host, without NUL: the only URLs the service
fetches (whether the host resolves, and to an address it may reach, is the fetcher's to say: 422)."""

VideoUrl = Annotated[
    str, msgspec.Meta(min_length=1, max_length=2048, pattern=HTTP_URL, description="http(s) URL of the video")
]


class ProcessRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``POST /video/process`` as JSON; an upload sends the same fields (but ``video_url``) as form parts."""

    video_url: VideoUrl
    processing_type: ProcessingType
    max_length: MaxLength = 10
    project_id: UUID | None = None


class UploadForm(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The text parts of a ``multipart/form-data`` upload, beside its ``file`` part."""

    processing_type: ProcessingType
    max_length: MaxLength = 10
    project_id: UUID | None = None


UuidOrEmpty = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^$|^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$",
        description="the project's id, or empty for none",
    ),
]


class UploadParts(UploadForm, kw_only=True, forbid_unknown_fields=True):
    """A whole upload as the OpenAPI document describes it: the text parts and the ``file`` part.
    The service streams the file to disk and decodes only the text parts (:class:`UploadForm`), so
    nothing is decoded into this struct."""

    file: Annotated[UploadFile, msgspec.Meta(description="the video, in any container and codec FFmpeg reads")]
    # narrowed for the document only (this struct is never decoded): a form has no null; a project_id
    # left out or empty is none
    project_id: UuidOrEmpty | msgspec.UnsetType = msgspec.UNSET  # type: ignore[assignment]


class JobAccepted(msgspec.Struct, kw_only=True):
    job_id: UUID
    status_url: str


class JobCompleted(msgspec.Struct, kw_only=True):
    success: bool
    job_id: UUID
    result: dict[str, Any]


class JobSource(msgspec.Struct, kw_only=True, omit_defaults=True):
    url: str | None = None
    filename: str | None = None


class JobOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: UUID
    status: JobStatus
    progress: float
    processing_type: ProcessingType
    max_length: int
    created_at: datetime
    updated_at: datetime
    project_id: UUID | None = None
    source: JobSource = msgspec.field(default_factory=JobSource)
    attempts: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: dict[str, Any] | None = None
    error: str | None = None


def job_path(job_id: UUID) -> str:
    return f"/video/jobs/{job_id}"


def to_job_out(job: VideoJob) -> JobOut:
    return JobOut(
        id=job.id,
        status=job.status,
        progress=round(job.progress, 4),
        processing_type=job.processing_type,
        max_length=job.max_length,
        created_at=job.created_at,
        updated_at=job.updated_at,
        project_id=job.project_id,
        source=JobSource(url=job.source_url, filename=job.source_name),
        attempts=job.attempts,
        started_at=job.started_at,
        finished_at=job.finished_at,
        result=job.result,
        error=job.error,
    )
