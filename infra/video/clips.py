"""Cutting a clip out of a video with PyAV: re-encoded, so it starts and ends where the clip does.

A stream copy would be faster but can only start on a keyframe, which in real videos may
be seconds before the clip; re-encoding costs time proportional to the clip's length (it
runs once per clip, when the job ends) and gives exact bounds and a small, web-friendly
file: H.264 (yuv420p, at most 1080 lines) and AAC, ``moov`` atom first for streaming.
"""

from __future__ import annotations

import asyncio
import contextlib
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.audio
import av.video

from domain.video.errors import CorruptVideoError

MAX_HEIGHT = 1080
VIDEO_OPTIONS = {"crf": "22", "preset": "veryfast"}


class PyAvClipCutter:
    """Implements :class:`domain.video.ports.ClipCutter`; the work runs in a thread."""

    def __init__(self, max_height: int = MAX_HEIGHT) -> None:
        self.max_height = max_height

    async def cut(self, source: Path, start: float, end: float, destination: Path) -> None:
        await asyncio.to_thread(cut_clip, source, start, end, destination, max_height=self.max_height)


def _even(value: float) -> int:
    return max(2, int(value) // 2 * 2)


def cut_clip(source: Path, start: float, end: float, destination: Path, *, max_height: int = MAX_HEIGHT) -> None:
    """Write ``[start, end)`` of ``source`` (seconds) to ``destination`` as MP4; atomically (temp + rename)."""
    if end <= start:
        raise ValueError(f"a clip needs end > start, got {start}..{end}")
    partial = destination.with_suffix(".part")
    try:
        with av.open(str(source)) as container:
            _cut(container, start, end, partial, max_height)
        partial.replace(destination)
    except av.FFmpegError as exc:
        raise CorruptVideoError(f"cutting {start:.2f}-{end:.2f} s failed: {exc}") from exc
    finally:
        partial.unlink(missing_ok=True)


def _cut(container: Any, start: float, end: float, target: Path, max_height: int) -> None:
    video_in: av.video.stream.VideoStream = container.streams.video[0]
    audio_in: av.audio.stream.AudioStream | None = container.streams.audio[0] if container.streams.audio else None
    video_in.thread_type = "AUTO"

    height = min(max_height, video_in.codec_context.height)
    width = _even(video_in.codec_context.width * height / video_in.codec_context.height)
    height = _even(height)
    rate = video_in.average_rate or Fraction(25)

    with av.open(str(target), mode="w", format="mp4", options={"movflags": "+faststart"}) as output:
        video_out = output.add_stream("libx264", rate=rate, options=VIDEO_OPTIONS)
        video_out.width, video_out.height, video_out.pix_fmt = width, height, "yuv420p"
        video_out.time_base = Fraction(1, 90_000)
        audio_out = None
        resampler = None
        if audio_in is not None:
            audio_out = output.add_stream("aac", rate=audio_in.rate or 48_000)
            audio_out.layout = "stereo"
            resampler = av.AudioResampler(format="fltp", layout="stereo", rate=audio_out.rate, frame_size=1024)
        audio_samples = 0

        # the keyframe at or before the start: everything from it is decoded, frames before the clip dropped
        time_base = video_in.time_base or Fraction(1, 90_000)
        container.seek(int(start / time_base), stream=video_in, backward=True, any_frame=False)
        streams = [video_in] + ([audio_in] if audio_in is not None else [])
        video_done = False
        for frame in container.decode(*streams):
            if frame.time is None:
                continue
            if isinstance(frame, av.VideoFrame):
                if frame.time >= end:
                    video_done = True
                elif frame.time >= start:
                    picture = frame.reformat(width=width, height=height, format="yuv420p")
                    picture.pts = round((frame.time - start) / video_out.time_base)
                    picture.time_base = video_out.time_base
                    output.mux(video_out.encode(picture))
            elif audio_out is not None and resampler is not None and start <= frame.time < end:
                frame.pts = None
                for chunk in resampler.resample(frame):
                    chunk.pts = audio_samples
                    chunk.time_base = Fraction(1, audio_out.rate)
                    audio_samples += chunk.samples
                    output.mux(audio_out.encode(chunk))
            if video_done and (audio_in is None or frame.time >= end):
                break
        output.mux(video_out.encode(None))
        if audio_out is not None and resampler is not None:
            for chunk in resampler.resample(None):
                chunk.pts = audio_samples
                chunk.time_base = Fraction(1, audio_out.rate)
                audio_samples += chunk.samples
                output.mux(audio_out.encode(chunk))
            with contextlib.suppress(av.FFmpegError):
                output.mux(audio_out.encode(None))


__all__ = ["PyAvClipCutter", "cut_clip"]
