"""What the video jobs need from the outside world; infra adapters implement these, ``app`` binds them.

A job's video comes from a URL the service fetches (:class:`VideoFetcher`, guarded by
:class:`UrlGuard` at submission) or a file the caller uploads (:class:`UploadReceiver`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Protocol
from uuid import UUID

from domain.video.schemas import FetchedVideo, ReceivedUpload, VideoAnalysis

ProgressCallback = Callable[[float], Awaitable[None]]
"""Called with 0..1 as the analysis advances; raising from it (a cancel) stops the analysis."""


class JobQueue(Protocol):
    """Hands a committed job row to a worker. Enqueueing a job twice runs it once."""

    async def enqueue(self, job_id: UUID) -> None: ...


class VideoAnalyzer(Protocol):
    async def analyze(self, path: Path, *, on_progress: ProgressCallback | None = None) -> VideoAnalysis:
        """Decode and score ``path``; raise ``domain.video.errors`` for a file that is not a usable video."""
        ...


class ThumbnailRenderer(Protocol):
    async def render(self, path: Path, time: float) -> bytes:
        """The frame at ``time`` as a JPEG."""
        ...


class ClipCutter(Protocol):
    async def cut(self, source: Path, start: float, end: float, destination: Path) -> None:
        """Write ``[start, end)`` of ``source`` to ``destination`` as a playable MP4."""
        ...


class MediaStore(Protocol):
    """Files of jobs: uploads waiting for a worker, each attempt's scratch space, and the outputs.

    On one machine it is a directory; on Kubernetes a volume the API and the workers share
    (or, behind the same port, an object store).
    """

    def incoming_dir(self) -> Path:
        """Where an upload streams to before its job row exists (same filesystem as ``upload_path``)."""
        ...

    def upload_path(self, job_id: UUID) -> Path:
        """Where an uploaded source waits for its worker (removed when the job ends)."""
        ...

    def adopt_upload(self, job_id: UUID, received: Path) -> None:
        """Move a received upload (under ``incoming_dir``) to the job's ``upload_path``."""
        ...

    def scratch_dir(self, job_id: UUID) -> Path:
        """A fresh, empty directory for one attempt's temporary files (downloads, ...)."""
        ...

    def thumbnail_path(self, job_id: UUID) -> Path: ...

    def clip_path(self, job_id: UUID, number: int) -> Path: ...

    def discard_scratch(self, job_id: UUID) -> None:
        """Remove the scratch space of the job's attempts."""
        ...

    def discard_sources(self, job_id: UUID) -> None:
        """Remove the upload and every scratch file of the job; keep the outputs."""
        ...

    def job_ids_on_disk(self) -> list[UUID]:
        """Every job that has files here."""
        ...

    def discard_incoming_older_than(self, age: timedelta) -> None:
        """Remove uploads that never became a job (the client went away mid-upload, say)."""
        ...

    def discard_all(self, job_id: UUID) -> None:
        """Remove everything of the job (it was deleted, or its owner was)."""
        ...


class UrlGuard(Protocol):
    async def check(self, url: str) -> None:
        """Refuse (``UnsafeUrlError``) a URL the fetcher would refuse, without connecting anywhere."""
        ...


class VideoFetcher(Protocol):
    async def fetch(self, url: str, destination: Path) -> FetchedVideo:
        """Download ``url`` into the file ``destination``, safely; raise the errors above."""
        ...


class UploadReceiver(Protocol):
    async def receive(self, body: AsyncIterator[bytes], content_type: str, directory: Path) -> ReceivedUpload:
        """Stream a ``multipart/form-data`` body, writing its ``file`` part under ``directory``."""
        ...
