"""Per-second signals of a video and the feature windows the ``highlight-scorer`` model reads.

The signals are measured while the video streams by (``infra.video.analyzer``); here they become
one feature row per second, normalised within the video where that makes a video's own
highlights stand out (robust z-scores), and kept absolute where absolute levels matter (a silent
video has no loud moment). ``infra.models.builtin.export`` trains the model on timelines that go
through these very functions, so training and serving see the same features.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "FEATURE_NAMES",
    "SILENCE_DB",
    "SecondSignals",
    "context_windows",
    "highlight_features",
    "per_second_loudness",
    "per_second_mean",
]

FloatArray = npt.NDArray[np.float32]

FEATURE_NAMES = (
    "motion_z",
    "loudness_z",
    "cut_rate",
    "motion_level",
    "loudness_level",
    "loudness_peak_z",
    "has_audio",
)
SILENCE_DB = -90.0
_MOTION_FLOOR = 1e-3


@dataclass(frozen=True)
class SecondSignals:
    """Raw measurements, one value per second of video (all arrays have the same length)."""

    motion: FloatArray
    """Mean absolute grey-level change between sampled frames, 0..1."""
    loudness_db: FloatArray
    """RMS level of the second in dBFS (``SILENCE_DB`` when silent or without audio)."""
    peak_db: FloatArray
    """Loudest short window of the second in dBFS."""
    cuts: FloatArray
    """Hard cuts that fall in the second."""
    has_audio: bool

    def __len__(self) -> int:
        return len(self.motion)


def highlight_features(signals: SecondSignals) -> FloatArray:
    """``float32 [seconds, len(FEATURE_NAMES)]`` in the order of ``FEATURE_NAMES``."""
    seconds = len(signals)
    log_motion = np.log10(signals.motion.astype(np.float64) + _MOTION_FLOOR)
    features = np.zeros((seconds, len(FEATURE_NAMES)), dtype=np.float32)
    if seconds == 0:
        return features
    features[:, 0] = _robust_z(log_motion, floor=0.1)
    kernel = np.ones(5) / 2.0  # cuts within +-2 s, per 2 s
    features[:, 2] = np.clip(np.convolve(np.pad(signals.cuts, 2), kernel, mode="valid"), 0, 3)
    features[:, 3] = np.clip(log_motion + 3.0, 0, 3.5)
    if signals.has_audio:
        features[:, 1] = _robust_z(signals.loudness_db.astype(np.float64), floor=3.0)
        features[:, 4] = np.clip((signals.loudness_db + 60.0) / 40.0, 0, 1.5)
        features[:, 5] = _robust_z(signals.peak_db.astype(np.float64), floor=3.0)
        features[:, 6] = 1.0
    return features


def context_windows(features: FloatArray, context: int) -> FloatArray:
    """``[seconds, F] -> [seconds, 2 * context + 1, F]``: each second with its neighbours (edges repeat)."""
    seconds = features.shape[0]
    if seconds == 0:
        return np.zeros((0, 2 * context + 1, features.shape[1]), dtype=np.float32)
    offsets = np.arange(-context, context + 1)
    index = np.clip(np.arange(seconds)[:, np.newaxis] + offsets, 0, seconds - 1)
    return np.ascontiguousarray(features[index], dtype=np.float32)


def per_second_mean(times: npt.NDArray[np.float64], values: FloatArray, seconds: int) -> FloatArray:
    """Mean of ``values`` by the second their ``times`` fall in; empty seconds take the nearest value."""
    result = np.zeros(seconds, dtype=np.float32)
    if seconds == 0 or len(values) == 0:
        return result
    index = np.clip(times.astype(np.int64), 0, seconds - 1)
    sums = np.bincount(index, weights=values, minlength=seconds)
    counts = np.bincount(index, minlength=seconds)
    filled = counts > 0
    known = np.flatnonzero(filled)
    result[filled] = sums[filled] / counts[filled]
    if not filled.all():
        nearest = np.clip(np.searchsorted(known, np.arange(seconds)), 0, len(known) - 1)
        previous = np.clip(nearest - 1, 0, len(known) - 1)
        closer = np.abs(known[previous] - np.arange(seconds)) < np.abs(known[nearest] - np.arange(seconds))
        pick = np.where(closer, known[previous], known[nearest])
        result[~filled] = result[pick[~filled]]
    return result


def per_second_loudness(window_db: FloatArray, window_seconds: float, seconds: int) -> tuple[FloatArray, FloatArray]:
    """Mean-energy level and loudest window per second, in dBFS, from short-window RMS levels."""
    mean_db = np.full(seconds, SILENCE_DB, dtype=np.float32)
    peak_db = np.full(seconds, SILENCE_DB, dtype=np.float32)
    if seconds == 0 or len(window_db) == 0:
        return mean_db, peak_db
    starts = np.arange(len(window_db)) * window_seconds
    index = starts.astype(np.int64)
    keep = index < seconds
    index, levels = index[keep], window_db[keep].astype(np.float64)
    energy = np.bincount(index, weights=10.0 ** (levels / 10.0), minlength=seconds)
    counts = np.bincount(index, minlength=seconds)
    has = counts > 0
    mean_db[has] = np.maximum(10.0 * np.log10(energy[has] / counts[has] + 1e-12), SILENCE_DB)
    np.maximum.at(peak_db, index, levels.astype(np.float32))
    return mean_db, peak_db


def _robust_z(values: npt.NDArray[np.float64], floor: float) -> FloatArray:
    median = float(np.median(values))
    spread = max(1.4826 * float(np.median(np.abs(values - median))), floor)
    return np.clip((values - median) / spread, -4.0, 8.0).astype(np.float32)
