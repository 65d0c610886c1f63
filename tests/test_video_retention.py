"""Job files expire: outputs after MEDIA_RETENTION_DAYS, orphans at once, abandoned uploads after a day."""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

from app.plugins.database import DatabasePlugin
from domain.video.models import JobStatus, VideoJob
from domain.video.retention import expire_media
from domain.video.schemas import ProcessingType
from infra.video.media_store import LocalMediaStore
from tests.conftest import Actor, Api


async def test_outputs_expire_after_the_retention_and_orphans_go_at_once(
    api: Api, alice: Actor, tmp_path: Path
) -> None:
    database = api.app.plugins.get(DatabasePlugin)
    media = LocalMediaStore(tmp_path / "media")
    now = datetime.now(UTC)
    ids: dict[str, UUID] = {}
    async with database.db_config.get_session() as session:
        for name, finished in (
            ("old", now - timedelta(days=40)),
            ("recent", now - timedelta(days=2)),
            ("running", None),
        ):
            job = VideoJob(
                owner_id=UUID(alice.id),
                processing_type=ProcessingType.HIGHLIGHTS,
                max_length=3,
                status=JobStatus.SUCCEEDED if finished else JobStatus.RUNNING,
                finished_at=finished,
            )
            session.add(job)
            await session.flush()
            ids[name] = job.id
        await session.commit()
    ids["orphan"] = uuid.uuid4()
    for job_id in ids.values():
        media.thumbnail_path(job_id).parent.mkdir(parents=True, exist_ok=True)
        media.thumbnail_path(job_id).write_bytes(b"jpeg")
    stale_upload = media.incoming_dir() / "upload-stale"
    stale_upload.write_bytes(b"half a video")
    two_days_ago = time.time() - 2 * 86400
    os.utime(stale_upload, (two_days_ago, two_days_ago))
    fresh_upload = media.incoming_dir() / "upload-fresh"
    fresh_upload.write_bytes(b"arriving")

    expired = await expire_media(database.db_config.get_session, media, retention_days=30)

    assert set(expired) == {ids["old"], ids["orphan"]}
    assert not media.thumbnail_path(ids["old"]).exists()
    assert media.thumbnail_path(ids["recent"]).exists()
    assert media.thumbnail_path(ids["running"]).exists()
    assert not stale_upload.exists()
    assert fresh_upload.exists()
    assert await expire_media(database.db_config.get_session, media, retention_days=0) == []  # 0: keep for ever
