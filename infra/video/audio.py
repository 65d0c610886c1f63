"""Loudness of an audio stream as RMS level (dBFS) per short window, measured while it streams by."""

from __future__ import annotations

import av
import numpy as np
import numpy.typing as npt

from infra.video.highlights import SILENCE_DB

__all__ = ["LoudnessMeter"]


class LoudnessMeter:
    """Feed decoded audio frames; take the levels of the windows completed so far.

    Audio is down-mixed to mono float at its own rate. Windows are aligned to the video's
    timeline: audio that starts late leaves silent windows before it. Gaps inside the stream are
    not filled (audio is taken as contiguous), which is what players do for a few dropped packets.
    """

    def __init__(self, window_seconds: float = 0.25, *, origin: float = 0.0) -> None:
        self.window_seconds = window_seconds
        self.origin = origin
        self._resampler = av.AudioResampler(format="flt", layout="mono")
        self._window = 0  # samples per window, once the rate is known
        self._pending: list[npt.NDArray[np.float32]] = []
        self._pending_samples = 0
        self._levels: list[npt.NDArray[np.float32]] = []
        self._started = False

    def add(self, frame: av.AudioFrame) -> None:
        for mono in self._resampler.resample(frame):
            self._push(mono)

    def finish(self) -> None:
        """Flush the resampler and close the last, partial window (when it holds a quarter window or more)."""
        for mono in self._resampler.resample(None):
            self._push(mono)
        self._measure(final=True)

    def take(self) -> npt.NDArray[np.float32]:
        """dBFS of each window completed since the last call."""
        if not self._levels:
            return np.zeros(0, dtype=np.float32)
        levels = np.concatenate(self._levels)
        self._levels.clear()
        return levels

    def _push(self, mono: av.AudioFrame) -> None:
        if not self._started:
            self._started = True
            self._window = max(1, round(mono.sample_rate * self.window_seconds))
            start = (mono.time or 0.0) - self.origin
            if start > 0:
                silent = int(start / self.window_seconds)
                self._levels.append(np.full(silent, SILENCE_DB, dtype=np.float32))
        samples = mono.to_ndarray().reshape(-1).astype(np.float32, copy=False)
        self._pending.append(samples)
        self._pending_samples += len(samples)
        if self._pending_samples >= 16 * self._window:
            self._measure(final=False)

    def _measure(self, *, final: bool) -> None:
        if not self._pending_samples:
            return
        samples = np.concatenate(self._pending)
        whole = len(samples) // self._window
        rest = samples[whole * self._window :]
        if whole:
            windows = samples[: whole * self._window].reshape(whole, self._window)
            self._levels.append(_db(np.sqrt(np.mean(np.square(windows), axis=1))))
        if final and len(rest) * 4 >= self._window:
            self._levels.append(_db(np.sqrt(np.mean(np.square(rest), keepdims=True))))
            rest = rest[:0]
        self._pending = [rest] if len(rest) else []
        self._pending_samples = len(rest)


def _db(rms: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
    levels: npt.NDArray[np.float32] = np.maximum(20.0 * np.log10(np.maximum(rms, 1e-9)), SILENCE_DB).astype(np.float32)
    return levels
