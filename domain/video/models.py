"""The ``video_jobs`` table: one row per processing request, the source of truth for its state."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import JSON, Boolean, Enum, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from domain.base import AuditBase
from domain.video.schemas import ProcessingType


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}


ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)


def _enum(kind: type[StrEnum]) -> Enum:
    return Enum(kind, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e])


class VideoJob(AuditBase):
    __tablename__ = "video_jobs"
    __table_args__ = (Index("ix_video_jobs_owner_status", "owner_id", "status"),)

    owner_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    project_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("projects.id", ondelete="SET NULL"), default=None, index=True
    )
    status: Mapped[JobStatus] = mapped_column(_enum(JobStatus), default=JobStatus.QUEUED, index=True)
    processing_type: Mapped[ProcessingType] = mapped_column(_enum(ProcessingType))
    max_length: Mapped[int] = mapped_column(Integer)
    source_url: Mapped[str | None] = mapped_column(Text, default=None)
    """The URL the worker fetches; None for an upload."""
    source_name: Mapped[str | None] = mapped_column(String(255), default=None)
    """The uploaded file's name as the client gave it (metadata only, never a path)."""
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON().with_variant(JSONB(), "postgresql"), default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    error_status: Mapped[int | None] = mapped_column(Integer, default=None)
    """The HTTP status the failure maps to: 4xx when the input was at fault (not a video, refused URL)."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    """Renewed by the worker running the job; a stale one means the worker is gone."""
    started_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    finished_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
