"""Shot boundaries from the ``scene-detector`` signatures: hard cuts and fades to black.

While the video streams by, :class:`SceneTimeline` keeps only a few numbers per frame: the
content distance of each frame to the 1st, 2nd and 3rd frame before it, and its mean and spread
of luma. :func:`find_boundaries` then works on the whole timeline:

Hard cuts
    In the spirit of PySceneDetect's AdaptiveDetector, a frame is a cut when its distance to the
    previous frame is at least ``min_distance`` and ``ratio`` times the median distance of its
    neighbours (``window`` frames each side), or, for a subtler change (two shots of the same
    colours), at least ``weak_distance`` and ``weak_ratio`` times that median; and it is the
    largest change within two frames. So steady motion, whose distances are all high, does not
    cut, while a cut in a calm scene does.

Flashes
    A change that comes back within two frames (a photographer's flash, one white frame) is no
    cut: a candidate is dropped when the frame before it is close to a frame one or two after
    it, or the other way round.

Fades
    A run of black frames (dark and flat) between pictures is a boundary at its middle; cut
    candidates at its edges are part of it. A lone black frame with no fade into it is a glitch.

The distance of two signatures adds the earth mover's distance of their luma histograms and of
their Cb and Cr histograms (each a fraction of the full range, so a fade's gradual dimming moves
it little per frame) and the mean change of the 4x4 grid of colours (layout).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from infra.models.builtin.scene_detector import LAYOUT, SignatureLayout

__all__ = ["Boundaries", "SceneRules", "SceneTimeline", "find_boundaries", "signature_distance"]

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class SceneRules:
    min_distance: float = 0.12
    ratio: float = 3.0
    weak_distance: float = 0.04
    """A smaller change is a cut too when it stands out even more (``weak_ratio``) from a calm scene."""
    weak_ratio: float = 6.0
    window: int = 4
    flash_return: float = 0.35
    """A change is a flash when the picture comes back to within this fraction of it."""
    min_scene_seconds: float = 0.4
    black_luma: float = 0.06
    black_spread: float = 0.03


@dataclass(frozen=True, slots=True)
class Boundaries:
    cut_frames: npt.NDArray[np.int64]
    """Index of the first frame after each hard cut."""
    fade_frames: npt.NDArray[np.int64]
    """Index of the middle black frame of each fade to black."""


def signature_distance(a: FloatArray, b: FloatArray, layout: SignatureLayout = LAYOUT) -> FloatArray:
    """Content distance of signature rows ``a[i]`` and ``b[i]`` (roughly 0..1; a cut is 0.2 and more)."""
    bins = layout.chroma_bins
    chroma_a = a[:, layout.chroma].reshape(-1, bins, bins)
    chroma_b = b[:, layout.chroma].reshape(-1, bins, bins)
    distance: FloatArray = (
        _emd(a[:, layout.luma], b[:, layout.luma])
        + _emd(chroma_a.sum(2), chroma_b.sum(2))
        + _emd(chroma_a.sum(1), chroma_b.sum(1))
        + np.abs(a[:, layout.cells] - b[:, layout.cells]).mean(1)
    ).astype(np.float32)
    return distance


def _emd(a: FloatArray, b: FloatArray) -> FloatArray:
    difference: FloatArray = (np.abs(np.cumsum(a, 1) - np.cumsum(b, 1)).sum(1) / a.shape[1]).astype(np.float32)
    return difference


class SceneTimeline:
    """Accumulates per-frame distances and luma while signatures arrive batch by batch."""

    LOOKBACK = 3

    def __init__(self, layout: SignatureLayout = LAYOUT) -> None:
        self.layout = layout
        self._tail = np.zeros((0, layout.size), dtype=np.float32)
        self._parts: list[FloatArray] = []  # rows: d1, d2, d3, mean luma, luma spread
        self._times: list[npt.NDArray[np.float64]] = []

    def add(self, signatures: FloatArray, times: npt.NDArray[np.float64]) -> None:
        count = len(signatures)
        if count == 0:
            return
        rows = np.concatenate([self._tail, signatures])
        start = len(self._tail)
        part = np.zeros((5, count), dtype=np.float32)
        for lag in (1, 2, 3):
            first = max(start, lag)  # frames with a frame ``lag`` before them
            if first < len(rows):
                part[lag - 1, first - start :] = signature_distance(rows[first - lag : len(rows) - lag], rows[first:])
        part[3] = signatures[:, self.layout.mean_luma]
        part[4] = signatures[:, self.layout.luma_std]
        self._parts.append(part)
        self._times.append(times.astype(np.float64))
        self._tail = rows[-self.LOOKBACK :].copy()

    @property
    def frames(self) -> int:
        return sum(part.shape[1] for part in self._parts)

    def arrays(self) -> tuple[FloatArray, npt.NDArray[np.float64]]:
        """``[5, frames]`` (d1, d2, d3, mean luma, luma spread) and the frame times."""
        if not self._parts:
            return np.zeros((5, 0), dtype=np.float32), np.zeros(0, dtype=np.float64)
        return np.concatenate(self._parts, 1), np.concatenate(self._times)


def find_boundaries(timeline: FloatArray, fps: float, rules: SceneRules = SceneRules()) -> Boundaries:
    d1, d2, d3, luma, spread = timeline
    count = len(d1)
    empty = np.zeros(0, dtype=np.int64)
    if count < 3:
        return Boundaries(empty, empty)

    black_runs = _black_runs(luma, spread, rules)
    fades = _fade_middles(black_runs, luma, count)

    baseline = _neighbour_median(d1, rules.window)
    ratio = d1 / np.maximum(baseline, 1e-3)
    candidate = ((d1 >= rules.min_distance) & (ratio >= rules.ratio)) | (
        (d1 >= rules.weak_distance) & (ratio >= rules.weak_ratio)
    )
    candidate[0] = False
    candidate &= d1 >= _sliding_max(d1, 2)

    # Flashes: the frame before the change is close to one shortly after it, or vice versa.
    next2 = np.append(d2[1:], np.inf)  # distance(i - 1, i + 1)
    next3 = np.append(d3[2:], [np.inf, np.inf])  # distance(i - 1, i + 2)
    back = np.minimum(np.where(np.arange(count) >= 2, d2, np.inf), np.where(np.arange(count) >= 3, d3, np.inf))
    returns = np.minimum(np.minimum(next2, next3), back)
    candidate &= returns >= rules.flash_return * d1

    for start, end in black_runs:  # edges of black runs belong to the fade
        candidate[max(0, start - 2) : end + 3] = False

    cuts = _keep_apart(np.flatnonzero(candidate), d1, max(1, round(rules.min_scene_seconds * fps)))
    return Boundaries(cut_frames=cuts, fade_frames=fades)


def _neighbour_median(values: FloatArray, window: int) -> FloatArray:
    padded = np.pad(values, window, mode="edge")
    neighbours = np.lib.stride_tricks.sliding_window_view(padded, 2 * window + 1)
    without_centre = np.delete(neighbours, window, axis=1)
    median: FloatArray = np.median(without_centre, axis=1).astype(np.float32)
    return median


def _sliding_max(values: FloatArray, reach: int) -> FloatArray:
    padded = np.pad(values, reach, mode="constant", constant_values=-np.inf)
    largest: FloatArray = np.lib.stride_tricks.sliding_window_view(padded, 2 * reach + 1).max(axis=1)
    return largest


def _black_runs(luma: FloatArray, spread: FloatArray, rules: SceneRules) -> list[tuple[int, int]]:
    """Inclusive ``(first, last)`` frame of each run of black frames."""
    black = (luma < rules.black_luma) & (spread < rules.black_spread)
    edges = np.diff(np.concatenate([[0], black.astype(np.int8), [0]]))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1) - 1
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def _fade_middles(runs: list[tuple[int, int]], luma: FloatArray, count: int) -> npt.NDArray[np.int64]:
    middles: list[int] = []
    for start, end in runs:
        if start == 0 or end == count - 1:
            continue  # fading in at the start or out at the end separates nothing
        dimmed_into = start >= 3 and luma[start - 3] > luma[start - 1] + 0.02
        brightened_out = end + 3 < count and luma[end + 3] > luma[end + 1] + 0.02
        if end > start or dimmed_into or brightened_out:
            middles.append((start + end) // 2)
    return np.asarray(middles, dtype=np.int64)


def _keep_apart(frames: npt.NDArray[np.int64], strength: FloatArray, gap: int) -> npt.NDArray[np.int64]:
    """Of cuts closer than ``gap`` frames, keep the stronger."""
    kept: list[int] = []  # sorted
    for frame in sorted(frames.tolist(), key=lambda f: -float(strength[f])):
        at = bisect.bisect_left(kept, frame)
        if (at == 0 or frame - kept[at - 1] >= gap) and (at == len(kept) or kept[at] - frame >= gap):
            kept.insert(at, frame)
    return np.asarray(kept, dtype=np.int64)
