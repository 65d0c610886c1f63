from __future__ import annotations

from advanced_alchemy.repository import SQLAlchemyAsyncRepository

from domain.video.models import VideoJob


class VideoJobRepository(SQLAlchemyAsyncRepository[VideoJob]):
    model_type = VideoJob
