"""The thumbnail port on top of :func:`infra.video.thumbnails.render_thumbnail` (off the event loop)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from infra.video.thumbnails import render_thumbnail


class JpegThumbnailRenderer:
    """Implements :class:`domain.video.ports.ThumbnailRenderer`."""

    def __init__(self, max_width: int = 1280) -> None:
        self.max_width = max_width

    async def render(self, path: Path, time: float) -> bytes:
        thumbnail = await asyncio.to_thread(render_thumbnail, path, time, max_width=self.max_width)
        return thumbnail.jpeg
