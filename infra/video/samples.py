"""Measures of the grey frames sampled a few times a second: motion, sharpness, brightness.

The samples are small (the decoder scales them with area averaging, 160 pixels on the long side
by default), so sensor noise and compression grain mostly cancel: motion, the mean absolute change
between consecutive samples, is then things (or the camera) moving. Sharpness is the variance of
the Laplacian, the usual focus measure; at this size it tells a crisp frame from a blurred,
smeared or mid-dissolve one, which is what choosing a thumbnail needs.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["SampleMeasures"]

FloatArray = npt.NDArray[np.float32]
TimeArray = npt.NDArray[np.float64]


class SampleMeasures:
    """Accumulates one row of measures per sampled frame."""

    def __init__(self) -> None:
        self._previous: FloatArray | None = None
        self._previous_time = 0.0
        self._times: list[TimeArray] = []
        self._motion_from: list[TimeArray] = []
        self._motion_to: list[TimeArray] = []
        self._motion: list[FloatArray] = []
        self._sharpness: list[FloatArray] = []
        self._brightness: list[FloatArray] = []
        self._contrast: list[FloatArray] = []

    def add(self, greys: npt.NDArray[np.uint8], times: TimeArray) -> None:
        if len(greys) == 0:
            return
        pixels = greys.astype(np.float32)
        mean, spread = _mean_and_spread(pixels.reshape(len(pixels), -1))
        self._times.append(times)
        self._brightness.append(mean / 255.0)
        self._contrast.append(spread / 255.0)
        self._sharpness.append(_laplacian_variance(pixels))

        if self._previous is None:
            before, after, starts = pixels[:-1], pixels[1:], times[:-1]
        else:
            before = np.concatenate([self._previous, pixels[:-1]])
            after = pixels
            starts = np.concatenate([[self._previous_time], times[:-1]])
        self._motion.append((np.abs(after - before).mean(axis=(1, 2)) / 255.0).astype(np.float32))
        self._motion_from.append(starts)
        self._motion_to.append(times[len(times) - len(after) :])
        self._previous = pixels[-1:]
        self._previous_time = float(times[-1])

    def times(self) -> TimeArray:
        return _join_times(self._times)

    def sharpness(self) -> FloatArray:
        return _join(self._sharpness)

    def brightness(self) -> FloatArray:
        return _join(self._brightness)

    def contrast(self) -> FloatArray:
        return _join(self._contrast)

    def motion(self) -> tuple[TimeArray, TimeArray, FloatArray]:
        """``(from, to, motion)`` of each pair of consecutive samples."""
        return _join_times(self._motion_from), _join_times(self._motion_to), _join(self._motion)


def _mean_and_spread(rows: FloatArray) -> tuple[FloatArray, FloatArray]:
    count = rows.shape[1]
    mean = rows.sum(1) / count
    variance = np.einsum("ij,ij->i", rows, rows) / count - mean * mean
    return mean.astype(np.float32), np.sqrt(np.maximum(variance, 0)).astype(np.float32)


def _laplacian_variance(pixels: FloatArray) -> FloatArray:
    laplacian = pixels[:, 1:-1, 1:-1] * -4.0
    laplacian += pixels[:, :-2, 1:-1]
    laplacian += pixels[:, 2:, 1:-1]
    laplacian += pixels[:, 1:-1, :-2]
    laplacian += pixels[:, 1:-1, 2:]
    _, spread = _mean_and_spread(laplacian.reshape(len(pixels), -1))
    variance: FloatArray = spread * spread
    return variance


def _join(parts: list[FloatArray]) -> FloatArray:
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def _join_times(parts: list[TimeArray]) -> TimeArray:
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float64)
