"""Thumbnail choice (the best-scoring sharp frame) and rendering (seek, decode one frame, JPEG)."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import av
import av.container
import numpy as np
import numpy.typing as npt
from av.video.reformatter import Interpolation
from PIL import Image

from domain.video.errors import CorruptVideoError
from domain.video.schemas import ThumbnailCandidate
from infra.video.probe import ffmpeg_reason, stream_origin

__all__ = ["Thumbnail", "ThumbnailRules", "pick_candidates", "render_thumbnail"]

FloatArray = npt.NDArray[np.float32]
TimeArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ThumbnailRules:
    count: int = 5
    min_gap: float = 2.0
    """Seconds between candidates, so they show different moments."""
    min_brightness: float = 0.12
    max_brightness: float = 0.9
    min_contrast: float = 0.05
    sharp_fraction: float = 0.5
    """A frame is blurred when its sharpness is below this fraction of the video's median."""
    boundary_margin: float = 0.25
    """Seconds around a cut or fade whose frames may be mid-transition."""


@dataclass(frozen=True, slots=True)
class Thumbnail:
    jpeg: bytes
    time: float
    width: int
    height: int


def pick_candidates(
    times: TimeArray,
    sharpness: FloatArray,
    brightness: FloatArray,
    contrast: FloatArray,
    second_scores: FloatArray,
    boundaries: TimeArray,
    rules: ThumbnailRules = ThumbnailRules(),
) -> list[ThumbnailCandidate]:
    """The best thumbnail frames among the sampled ones, best first."""
    if len(times) == 0:
        return []
    exposed = (brightness >= rules.min_brightness) & (brightness <= rules.max_brightness)
    exposed &= contrast >= rules.min_contrast
    if len(boundaries):
        nearest = _distance_to_nearest(times, np.sort(boundaries))
        exposed &= nearest > rules.boundary_margin
    usable = exposed if exposed.any() else brightness > 0.03
    if not usable.any():
        usable = np.ones(len(times), dtype=bool)
    reference = float(np.median(sharpness[usable]))
    sharp = usable & (sharpness >= rules.sharp_fraction * reference)
    if sharp.any():
        usable = sharp
    crisp = np.minimum(1.0, sharpness / max(float(np.percentile(sharpness[usable], 75)), 1e-6))
    seconds = np.clip(times.astype(np.int64), 0, max(len(second_scores) - 1, 0))
    highlight = second_scores[seconds] if len(second_scores) else np.ones(len(times), dtype=np.float32)
    score = np.where(usable, highlight * (0.5 + 0.5 * crisp), -1.0)

    chosen: list[ThumbnailCandidate] = []
    for index in np.argsort(-score, kind="stable").tolist():
        if score[index] < 0 or len(chosen) == rules.count:
            break
        if all(abs(times[index] - other.time) >= rules.min_gap for other in chosen):
            chosen.append(
                ThumbnailCandidate(
                    time=round(float(times[index]), 3),
                    score=round(float(score[index]), 4),
                    sharpness=round(float(sharpness[index]), 2),
                    brightness=round(float(brightness[index]), 4),
                )
            )
    return chosen


def render_thumbnail(path: Path, time: float, *, max_width: int = 1280, quality: int = 88) -> Thumbnail:
    """Decode the frame shown at ``time`` seconds and encode it as JPEG, at most ``max_width`` wide.

    Blocking; run it in a worker thread.
    """
    try:
        chosen = _decode_frame_at(path, time, seek=True)
    except av.FFmpegError:
        try:  # some streams cannot seek (raw elementary streams): read from the start instead
            chosen = _decode_frame_at(path, time, seek=False)
        except av.FFmpegError as error:
            raise CorruptVideoError(f"the thumbnail frame cannot be decoded ({ffmpeg_reason(error)})") from error
    if chosen is None:
        raise CorruptVideoError("the thumbnail frame cannot be decoded")
    width = min(max_width, chosen.width)
    height = max(2, round(chosen.height * width / chosen.width / 2) * 2)
    rgb = chosen.reformat(width, height, "rgb24", interpolation=Interpolation.AREA)
    image = Image.fromarray(rgb.to_ndarray())
    if chosen.rotation:
        image = image.rotate(chosen.rotation, expand=True)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, optimize=True)
    return Thumbnail(jpeg=buffer.getvalue(), time=time, width=image.width, height=image.height)


def _decode_frame_at(path: Path, time: float, *, seek: bool) -> av.VideoFrame | None:
    """The first frame shown at or after ``time`` (the last one when the video ends before)."""
    with av.open(str(path), metadata_errors="ignore") as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        origin = stream_origin(container)
        target = origin + time
        if seek and stream.time_base is not None and time > 0:
            container.seek(math.floor(target / stream.time_base), stream=stream, backward=True)
        half_frame = 0.5 / float(stream.average_rate or 25)
        chosen: av.VideoFrame | None = None
        for index, frame in enumerate(container.decode(stream)):
            chosen = frame
            shown = frame.time if frame.time is not None else origin + index / float(stream.average_rate or 25)
            if shown >= target - half_frame:
                break
        return chosen


def _distance_to_nearest(times: TimeArray, sorted_points: TimeArray) -> TimeArray:
    index = np.clip(np.searchsorted(sorted_points, times), 1, len(sorted_points) - 1) if len(sorted_points) > 1 else 0
    if len(sorted_points) == 1:
        distance: TimeArray = np.abs(times - sorted_points[0])
        return distance
    left = sorted_points[np.asarray(index) - 1]
    right = sorted_points[index]
    nearest: TimeArray = np.minimum(np.abs(times - left), np.abs(times - right))
    return nearest
