"""Loudness of an audio stream as RMS level (dBFS) per short window, measured while it streams by.

Decoded frames (about 20 ms each) are folded into windows by their time: each frame's mean
power goes to the window its middle falls in, so there is no resampling and no copying of
samples. Channels are averaged in power (a stereo pair out of phase still counts as loud).
"""

from __future__ import annotations

import av
import numpy as np
import numpy.typing as npt

from infra.video.highlights import SILENCE_DB

__all__ = ["LoudnessMeter"]

_FULL_SCALE = {"s16": 32768.0, "s16p": 32768.0, "s32": 2147483648.0, "s32p": 2147483648.0, "u8": 128.0, "u8p": 128.0}
_FLOAT_FORMATS = frozenset({"flt", "fltp", "dbl", "dblp"})


class LoudnessMeter:
    """Feed decoded audio frames; take the levels of the windows completed so far.

    Windows are aligned to the video's timeline (``origin`` is the container's start time):
    audio that starts late leaves silent windows before it, and so do gaps.
    """

    def __init__(self, window_seconds: float = 0.25, *, origin: float = 0.0) -> None:
        self.window_seconds = window_seconds
        self.origin = origin
        self._power: list[float] = []  # summed per-sample power, per window
        self._samples: list[int] = []
        self._emitted = 0
        self._finished = False
        self._clock = 0.0  # end of the last frame, for frames without a timestamp
        self._resampler: av.AudioResampler | None = None

    def add(self, frame: av.AudioFrame) -> None:
        if frame.samples == 0 or frame.sample_rate <= 0:
            return
        name = frame.format.name
        if name not in _FLOAT_FORMATS and name not in _FULL_SCALE:
            if self._resampler is None:
                self._resampler = av.AudioResampler(format="flt", layout="mono")
            for converted in self._resampler.resample(frame):
                self._fold(converted, "flt")
            return
        self._fold(frame, name)

    def _fold(self, frame: av.AudioFrame, name: str) -> None:
        data = frame.to_ndarray()
        if name in _FLOAT_FORMATS:
            flat = data.reshape(-1)
            power = float(np.dot(flat, flat))
        else:
            flat32 = data.reshape(-1).astype(np.float32)
            if name.startswith("u8"):
                flat32 -= 128.0
            power = float(np.dot(flat32, flat32)) / (_FULL_SCALE[name] ** 2)
        channels = max(1, frame.layout.nb_channels)
        duration = frame.samples / frame.sample_rate
        start = self._clock if frame.time is None else frame.time - self.origin
        self._clock = start + duration
        window = int(max(0.0, start + duration / 2) / self.window_seconds)
        while len(self._power) <= window:
            self._power.append(0.0)
            self._samples.append(0)
        self._power[window] += power / channels
        self._samples[window] += frame.samples

    def finish(self) -> None:
        """Flush a resampler, if one was needed; every window counts as complete from now on."""
        if self._resampler is not None:
            for converted in self._resampler.resample(None):
                self._fold(converted, "flt")
        self._finished = True

    def take(self) -> npt.NDArray[np.float32]:
        """dBFS of each window completed since the last call."""
        # The window being filled is complete only once a later one has started (or at the end).
        limit = len(self._power) if self._finished else max(0, len(self._power) - 1)
        if limit <= self._emitted:
            return np.zeros(0, dtype=np.float32)
        power = np.asarray(self._power[self._emitted : limit], dtype=np.float64)
        samples = np.asarray(self._samples[self._emitted : limit], dtype=np.float64)
        self._emitted = limit
        mean = np.divide(power, samples, out=np.zeros_like(power), where=samples > 0)
        levels: npt.NDArray[np.float32] = np.maximum(10.0 * np.log10(np.maximum(mean, 1e-18)), SILENCE_DB).astype(
            np.float32
        )
        return levels
