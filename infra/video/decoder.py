"""Streaming decode of a video into small analysis frames, sampled grey frames and audio levels.

One background thread demuxes and decodes (FFmpeg's own frame threads do the heavy lifting, the
GIL is released while they work) and hands batches to the event loop through a bounded hand-off,
so decoding overlaps with model inference and never more than a few batches sit in memory.

Per frame the Python work is one swscale call straight from the decoded picture to the tiny
analysis size (``rgb24``) and a copy into the batch; a few frames per second also get a larger
grey picture for motion and sharpness. Nothing holds the whole video.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import av
import av.container
import numpy as np
import numpy.typing as npt
from av.video.reformatter import Interpolation, VideoReformatter

from domain.video.errors import CorruptVideoError, VideoTooLongError, format_duration
from infra.models.builtin.scene_detector import ANALYSIS_SIZE
from infra.video.audio import LoudnessMeter
from infra.video.probe import DURATION_TOLERANCE, VideoProbe, ffmpeg_reason, stream_origin

__all__ = ["DecodeOptions", "FrameBatch", "FrameStream", "sample_size"]

_BAD_PACKETS_TOLERATED = 20


@dataclass(frozen=True, slots=True)
class DecodeOptions:
    analysis_size: tuple[int, int] = ANALYSIS_SIZE
    """Width and height of the frames every frame is scaled to (aspect ratio not kept)."""
    sample_fps: float = 4.0
    """Grey frames per second for motion and sharpness."""
    sample_box: int = 160
    """Sampled grey frames fit in a square of this side, aspect ratio kept."""
    batch_frames: int = 64
    queue_batches: int = 4
    """Batches decoded ahead of the consumer at most."""
    audio_window: float = 0.25
    max_duration: float | None = None
    decoder_threads: int = 0
    """FFmpeg decoder threads; 0 lets FFmpeg pick (one per core)."""


@dataclass(frozen=True, slots=True)
class FrameBatch:
    """Consecutive frames of the video and what was measured alongside them."""

    first_index: int
    frames: npt.NDArray[np.uint8]
    """``[n, height, width, 3]`` RGB at the analysis size."""
    times: npt.NDArray[np.float64]
    """Presentation time of each frame, seconds."""
    samples: npt.NDArray[np.uint8]
    """``[k, height, width]`` grey frames at the sample rate, larger than the analysis frames."""
    sample_times: npt.NDArray[np.float64]
    audio_db: npt.NDArray[np.float32]
    """RMS level (dBFS) of the audio windows completed since the previous batch."""


class _End:
    __slots__ = ("frames", "last_time")

    def __init__(self, frames: int, last_time: float) -> None:
        self.frames = frames
        self.last_time = last_time


def sample_size(width: int, height: int, box: int) -> tuple[int, int]:
    """The largest even size within ``box x box`` with the video's aspect ratio."""
    scale = box / max(width, height)
    return max(8, round(width * scale / 2) * 2), max(8, round(height * scale / 2) * 2)


class FrameStream:
    """``async with FrameStream(...) as stream: async for batch in stream: ...``.

    Leaving the block early (an error, a cancellation) stops the decoding thread and waits for it.
    After the last batch, ``frames`` and ``end_time`` tell how much was decoded.
    """

    def __init__(self, path: Path, probe: VideoProbe, options: DecodeOptions) -> None:
        self.path = path
        self.probe = probe
        self.options = options
        self.frames = 0
        self.end_time = 0.0
        self._queue: asyncio.Queue[FrameBatch | _End | BaseException] = asyncio.Queue()
        self._slots = threading.Semaphore(options.queue_batches)
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._finished = False

    async def __aenter__(self) -> FrameStream:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._produce, name=f"decode {self.path.name}", daemon=True)
        self._thread.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stop.set()
        self._slots.release()
        if self._thread is not None:
            await asyncio.shield(asyncio.to_thread(self._thread.join))

    def __aiter__(self) -> FrameStream:
        return self

    async def __anext__(self) -> FrameBatch:
        if self._finished:
            raise StopAsyncIteration
        item = await self._queue.get()
        if isinstance(item, FrameBatch):
            self._slots.release()
            return item
        self._finished = True
        if isinstance(item, _End):
            self.frames, self.end_time = item.frames, item.last_time
            raise StopAsyncIteration
        raise item

    # -- the decoding thread --------------------------------------------------------------------

    def _produce(self) -> None:
        try:
            with av.open(str(self.path), metadata_errors="ignore") as container:
                end = _Decoder(self, container).run()
            self._send(end)
        except av.FFmpegError as error:
            self._send(CorruptVideoError(f"decoding failed ({ffmpeg_reason(error)})"))
        except BaseException as error:  # handed to the consumer, which raises it
            self._send(error)

    def send_batch(self, batch: FrameBatch) -> bool:
        """Wait for room, then hand ``batch`` over; False when the consumer has gone."""
        while not self._slots.acquire(timeout=0.05):
            if self._stop.is_set():
                return False
        if self._stop.is_set():
            return False
        return self._send(batch)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def _send(self, item: FrameBatch | _End | BaseException) -> bool:
        if self._loop is None or self._stop.is_set():
            return False
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop is closed
            self._stop.set()
            return False
        return True


class _Decoder:
    """The per-video state of the decoding thread."""

    def __init__(self, stream: FrameStream, container: av.container.InputContainer) -> None:
        self.stream = stream
        self.container = container
        options = stream.options
        probe = stream.probe
        self.width, self.height = options.analysis_size
        self.sample_width, self.sample_height = sample_size(probe.width, probe.height, options.sample_box)
        self.sample_step = 1.0 / options.sample_fps
        self.next_sample = -1.0
        self.max_duration = options.max_duration
        self.small = VideoReformatter()
        self.grey = VideoReformatter()
        self.origin = stream_origin(container)
        self.meter = LoudnessMeter(options.audio_window, origin=self.origin) if probe.has_audio else None
        self.index = 0
        self.last_time = 0.0
        self._new_batch()

    def _new_batch(self) -> None:
        size = self.stream.options.batch_frames
        self.first = self.index
        self.fill = 0
        self.frames = np.empty((size, self.height, self.width, 3), dtype=np.uint8)
        self.times = np.empty(size, dtype=np.float64)
        self.samples: list[npt.NDArray[np.uint8]] = []
        self.sample_times: list[float] = []

    def run(self) -> _End:
        video = self.container.streams.video[0]
        video.thread_type = "AUTO"
        if self.stream.options.decoder_threads:
            video.thread_count = self.stream.options.decoder_threads
        audio = self.container.streams.audio[0] if self.meter is not None and self.container.streams.audio else None
        bad_packets = 0
        streams = (video, audio) if audio is not None else (video,)
        for packet in self.container.demux(streams):
            if self.stream.stopped:
                return _End(self.index, self.last_time)
            if packet.stream_index == video.index:
                try:
                    decoded = packet.decode()
                except av.InvalidDataError:
                    bad_packets += 1
                    if bad_packets > _BAD_PACKETS_TOLERATED:
                        raise
                    continue
                for frame in decoded:
                    self._add_frame(frame)  # type: ignore[arg-type]
            elif self.meter is not None:
                self._add_audio(packet, self.meter)
        if self.meter is not None:
            self.meter.finish()
        self._flush()
        self._check_complete()
        return _End(self.index, self.last_time)

    def _add_frame(self, frame: av.VideoFrame) -> None:
        time = self.index / self.stream.probe.fps if frame.time is None else frame.time - self.origin
        if self.max_duration is not None and time > self.max_duration + DURATION_TOLERANCE:
            raise VideoTooLongError(self.stream.probe.duration or time, self.max_duration)
        small = self.small.reformat(
            frame, self.width, self.height, "rgb24", interpolation=Interpolation.FAST_BILINEAR, threads=1
        )
        self.frames[self.fill] = small.to_ndarray()
        self.times[self.fill] = time
        if time >= self.next_sample:
            grey = self.grey.reformat(
                frame, self.sample_width, self.sample_height, "gray", interpolation=Interpolation.AREA, threads=1
            )
            self.samples.append(grey.to_ndarray())  # type: ignore[arg-type]
            self.sample_times.append(time)
            self.next_sample = max(self.next_sample + self.sample_step, time + 0.5 * self.sample_step)
        self.fill += 1
        self.index += 1
        self.last_time = time
        if self.fill == len(self.times):
            self._flush()

    def _add_audio(self, packet: av.Packet[Any], meter: LoudnessMeter) -> None:
        try:
            for frame in packet.decode():
                meter.add(frame)  # type: ignore[arg-type]
        except av.FFmpegError:
            # A damaged audio packet costs a few milliseconds of loudness, not the analysis.
            return

    def _flush(self) -> None:
        if self.fill == 0 and self.meter is None:
            return
        if self.samples:
            samples = np.stack(self.samples)
        else:
            samples = np.zeros((0, self.sample_height, self.sample_width), dtype=np.uint8)
        batch = FrameBatch(
            first_index=self.first,
            frames=self.frames[: self.fill],
            times=self.times[: self.fill],
            samples=samples,
            sample_times=np.asarray(self.sample_times, dtype=np.float64),
            audio_db=self.meter.take() if self.meter is not None else np.zeros(0, dtype=np.float32),
        )
        self.stream.send_batch(batch)
        self._new_batch()

    def _check_complete(self) -> None:
        if self.index == 0:
            raise CorruptVideoError("no picture could be decoded")
        expected = self.stream.probe.video_duration
        decoded = self.last_time + 1.0 / self.stream.probe.fps
        if expected is not None and decoded < 0.9 * expected - 1.0:
            raise CorruptVideoError(
                f"its pictures end at {format_duration(decoded)} of {format_duration(expected)}; is the file complete?"
            )
