"""What a video file is (duration, frame rate, size, audio) and whether the service can take it.

Every refusal is a domain error with a message for the person who sent the file: not a video
(text, a picture, audio only, unknown bytes), corrupt (a video container FFmpeg cannot read), or
longer than the service's limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import av.container

from domain.video.errors import CorruptVideoError, NotAVideoError, VideoTooLongError

__all__ = ["VideoProbe", "ffmpeg_reason", "looks_like_video_container", "probe_video", "stream_origin"]

DEFAULT_FPS = 25.0
DURATION_TOLERANCE = 0.5
"""Seconds a video may exceed the limit by (container durations are rounded, audio runs long)."""

_IMAGE_FORMATS = frozenset({"image2", "gif_pipe", "apng"})
_TEXT_ART = frozenset({"tty", "bin", "xbin", "adf", "idf", "ansi", "bintext"})
_STILL_CODECS = frozenset({"png", "mjpeg", "bmp", "webp", "tiff", "jpeg2000", "jpegls", "qoi", "ppm", "pgm"})


@dataclass(frozen=True, slots=True)
class VideoProbe:
    duration: float | None
    """Seconds, from the container (None when it does not say; the decoder measures it then)."""
    video_duration: float | None
    """Seconds of the video stream alone, when the container says."""
    fps: float
    width: int
    height: int
    has_audio: bool
    frame_count: int | None
    """From the container's index, or estimated from duration and frame rate."""
    codec: str


def probe_video(path: Path, *, max_duration: float | None = None) -> VideoProbe:
    """Read the container's header; raise ``NotAVideoError``, ``CorruptVideoError`` or ``VideoTooLongError``."""
    if path.stat().st_size == 0:
        raise NotAVideoError("the file is empty")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.FFmpegError as error:
        if looks_like_video_container(path):
            raise CorruptVideoError(
                f"the container cannot be read ({ffmpeg_reason(error)}); is the file complete?"
            ) from error
        raise NotAVideoError("no known video format") from error
    with container:
        probe = _describe(container)
    if max_duration is not None and probe.duration is not None and probe.duration > max_duration + DURATION_TOLERANCE:
        raise VideoTooLongError(probe.duration, max_duration)
    return probe


def _describe(container: av.container.InputContainer) -> VideoProbe:
    format_names = set(container.format.name.split(","))
    if format_names & _TEXT_ART:
        raise NotAVideoError("it is a text file")
    if not container.streams.video:
        raise NotAVideoError("it has audio but no picture" if container.streams.audio else "it has no video stream")
    stream = container.streams.video[0]
    codec = stream.codec_context.name
    if codec in _TEXT_ART:
        raise NotAVideoError("it is a text file")
    if format_names & _IMAGE_FORMATS or any(name.endswith("_pipe") for name in format_names):
        raise NotAVideoError("it is a still image")
    if codec in _STILL_CODECS and (stream.frames or 0) <= 1 and not container.duration:
        raise NotAVideoError("it is a still image")
    width, height = stream.codec_context.width, stream.codec_context.height
    if width <= 0 or height <= 0:
        raise CorruptVideoError("the video stream has no picture size")

    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate and 0 < float(rate) < 1000 else DEFAULT_FPS
    duration = container.duration / av.time_base if container.duration and container.duration > 0 else None
    video_duration = None
    if stream.duration and stream.time_base:
        video_duration = float(stream.duration * stream.time_base)
    if duration is None:
        duration = video_duration
    frame_count = stream.frames or None
    if frame_count is None and (video_duration or duration):
        frame_count = round((video_duration or duration or 0.0) * fps)
    return VideoProbe(
        duration=duration,
        video_duration=video_duration,
        fps=fps,
        width=width,
        height=height,
        has_audio=bool(container.streams.audio),
        frame_count=frame_count,
        codec=codec,
    )


def looks_like_video_container(path: Path) -> bool:
    """Whether the file starts like a video container (MP4/MOV, Matroska/WebM, AVI, MPEG-TS/PS, FLV, Ogg)."""
    with path.open("rb") as file:
        head = file.read(16)
    return (
        head[4:8] in {b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"}
        or head.startswith((b"\x1a\x45\xdf\xa3", b"FLV", b"OggS", b"\x00\x00\x01\xba"))
        or (head.startswith(b"RIFF") and head[8:12] == b"AVI ")
        or (len(head) > 0 and head[0] == 0x47 and path.stat().st_size % 188 == 0)
    )


def ffmpeg_reason(error: av.FFmpegError) -> str:
    """FFmpeg's words for an error, without the server's file path."""
    return (error.strerror or type(error).__name__).rstrip(".").lower()


def stream_origin(container: av.container.InputContainer) -> float:
    """Seconds of the container's first timestamp; the analysis counts time from there."""
    start = container.start_time
    if start is None or start <= 0:
        return 0.0
    return float(start) / av.time_base
