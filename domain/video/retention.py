"""How long job files stay: outputs for ``MEDIA_RETENTION_DAYS`` after the job ended, abandoned
uploads for a day, and nothing of a job whose row is gone (its owner was deleted, say)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import select

from domain.video.models import VideoJob
from domain.video.ports import MediaStore
from domain.video.watch import SessionFactory

logger = logging.getLogger("domain.video.retention")

ABANDONED_UPLOAD_AFTER = timedelta(days=1)


async def expire_media(sessions: SessionFactory, media: MediaStore, *, retention_days: int) -> list[UUID]:
    """Remove what has outlived its purpose; returns the jobs whose files went."""
    media.discard_incoming_older_than(ABANDONED_UPLOAD_AFTER)
    on_disk = media.job_ids_on_disk()
    if not on_disk:
        return []
    cutoff = datetime.now(UTC) - timedelta(days=retention_days) if retention_days > 0 else None
    async with sessions() as session:
        rows = (await session.execute(select(VideoJob.id, VideoJob.finished_at).where(VideoJob.id.in_(on_disk)))).all()
    finished = {row.id: row.finished_at for row in rows}
    expired = [
        job_id
        for job_id in on_disk
        if job_id not in finished  # the row is gone
        or (cutoff is not None and finished[job_id] is not None and finished[job_id] < cutoff)
    ]
    for job_id in expired:
        media.discard_all(job_id)
    if expired:
        logger.info("removed the files of %d jobs (ended over %d days ago, or deleted)", len(expired), retention_days)
    return expired
