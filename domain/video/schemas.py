"""Options and results of video jobs, and the analysis the infrastructure hands to the service.

Times are seconds. Result structs carry times rounded to the millisecond (:func:`round_ms`), so the
JSON a client reads is stable and short.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import msgspec

__all__ = [
    "Clip",
    "ClipLengths",
    "FetchedVideo",
    "HighlightsResult",
    "MaxLength",
    "ProcessingOptions",
    "ProcessingType",
    "ReceivedUpload",
    "Scene",
    "ScenesResult",
    "ThumbnailCandidate",
    "VideoAnalysis",
    "round_ms",
]


class ProcessingType(StrEnum):
    HIGHLIGHTS = "highlights"
    SCENES = "scenes"
    THUMBNAIL = "thumbnail"


MaxLength = Annotated[int, msgspec.Meta(ge=1, le=500, description="The most clips or scenes returned.")]


class ProcessingOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What a caller asks of a video job (the job's source, URL or upload, travels beside it)."""

    processing_type: ProcessingType
    max_length: MaxLength


class ClipLengths(msgspec.Struct, kw_only=True, frozen=True):
    """Bounds of a highlight clip's length, in seconds (a service setting, not a request field)."""

    min_seconds: Annotated[float, msgspec.Meta(gt=0)] = 5.0
    max_seconds: Annotated[float, msgspec.Meta(gt=0)] = 60.0

    def __post_init__(self) -> None:
        if self.min_seconds > self.max_seconds:
            raise ValueError("min_seconds must not exceed max_seconds")


def round_ms(seconds: float) -> float:
    return round(float(seconds), 3)


class Clip(msgspec.Struct, kw_only=True, frozen=True):
    start: float
    end: float
    score: float

    @property
    def length(self) -> float:
        return self.end - self.start


class Scene(msgspec.Struct, kw_only=True, frozen=True):
    start: float
    end: float


class HighlightsResult(msgspec.Struct, kw_only=True):
    """The result of a ``highlights`` job, as API.md spells it."""

    duration: float
    fps: float
    width: int
    height: int
    clips: list[Clip]
    scenes: list[Scene]


class ScenesResult(msgspec.Struct, kw_only=True):
    """The result of a ``scenes`` job: the highlights result without clips."""

    duration: float
    fps: float
    width: int
    height: int
    scenes: list[Scene]


class ThumbnailCandidate(msgspec.Struct, kw_only=True, frozen=True):
    """A frame fit to be the video's thumbnail: sharp, neither near-black nor washed out."""

    time: float
    score: float
    """Highlight score of its second, weighted by how sharp the frame is (0..1)."""
    sharpness: float
    """Variance of the Laplacian of the frame in grey at the sample size (pixel levels squared)."""
    brightness: float
    """Mean grey level, 0..1."""


class VideoAnalysis(msgspec.Struct, kw_only=True):
    """Everything the analysis of one video found; the service turns it into a job result.

    ``highlight_scores[i]`` scores the second ``[i, i + 1)`` in 0..1 (the last one may be partial).
    ``cuts`` are hard cuts (the time of the first frame of the new shot); ``fades`` are the middles
    of fades to black and back. ``thumbnail_candidates`` are best first.
    """

    duration: float
    fps: float
    width: int
    height: int
    has_audio: bool
    frame_count: int
    cuts: list[float]
    fades: list[float]
    highlight_scores: list[float]
    thumbnail_candidates: list[ThumbnailCandidate]

    @property
    def boundaries(self) -> list[float]:
        """Every scene boundary, hard cut or fade, in time order."""
        return sorted([*self.cuts, *self.fades])


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
