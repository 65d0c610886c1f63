"""Where a job's video comes from: a URL the service fetches, or a file the caller uploads.

The infrastructure implements these ports (``infra/video/fetch.py``, ``infra/video/upload.py``);
the errors below are what the service and the client see when a source is refused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Protocol

import msgspec

from domain.errors import DomainError, InvalidInputError

__all__ = [
    "FetchedVideo",
    "PayloadTooLargeError",
    "ReceivedUpload",
    "SourceUnavailableError",
    "UnsafeUrlError",
    "UnsupportedMediaTypeError",
    "UploadReceiver",
    "UrlGuard",
    "VideoFetcher",
]


class UnsafeUrlError(InvalidInputError):
    """The URL is not one the service fetches: not http(s), or its host resolves to a loopback,
    private, link-local, multicast or reserved address (and is not allow-listed)."""


class SourceUnavailableError(InvalidInputError):
    """The remote could not be reached, answered an error, timed out, or sent something that is not a video."""


class PayloadTooLargeError(DomainError):
    """The video (uploaded, or announced or sent by the remote) is larger than the service accepts."""

    status_code = 413


class UnsupportedMediaTypeError(DomainError):
    status_code = 415


class FetchedVideo(msgspec.Struct, frozen=True, kw_only=True):
    path: Path
    size: int
    content_type: str | None
    final_url: str
    """After redirects."""


class ReceivedUpload(msgspec.Struct, frozen=True, kw_only=True):
    fields: Mapping[str, str]
    """The form's other parts (``processing_type``, ``max_length``, ...), as text."""
    path: Path | None
    """The ``file`` part, on disk; None when the form had none."""
    filename: str | None
    size: int


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
