"""The service's business rule for turning an analysis into clips and scenes (standard library only).

Clips
    :func:`select_clips` picks the best non-overlapping clips greedily: it takes the highest-scoring
    second not yet in a clip, grows a clip around it towards the better-scoring neighbour while the
    scores stay above half-way between the video's median and that peak (and always up to the
    minimum length, never past the maximum), then snaps the clip's start and end to a scene
    boundary when one lies within ``snap_within`` seconds and snapping keeps the length within
    bounds and the clip clear of the others. Clips come back **best first** (by score, ties by
    start): a client that wants them in time order sorts by ``start``. A video shorter than the
    minimum length yields a single clip of the whole video.

Scenes
    :func:`scenes_from_cuts` turns boundary times into scenes that cover the video end to end.
    When there are more scenes than asked for, the shortest scene is merged into its shorter
    neighbour until the count fits, so the long, meaningful scenes survive.
"""

from __future__ import annotations

import bisect
import heapq
import math
import statistics
from collections.abc import Sequence

from domain.video.schemas import (
    Clip,
    ClipLengths,
    HighlightsResult,
    Scene,
    ScenesResult,
    VideoAnalysis,
    round_ms,
)

__all__ = ["MAX_SCENES_IN_HIGHLIGHTS", "highlights_result", "scenes_from_cuts", "scenes_result", "select_clips"]

MAX_SCENES_IN_HIGHLIGHTS = 500
"""A highlights result lists at most this many scenes (the API's largest ``max_length``)."""

_DEFAULT_LENGTHS = ClipLengths()


def select_clips(
    scores: Sequence[float],
    boundaries: Sequence[float],
    *,
    max_clips: int,
    lengths: ClipLengths = _DEFAULT_LENGTHS,
    duration: float | None = None,
    snap_within: float = 1.5,
) -> list[Clip]:
    """Pick up to ``max_clips`` non-overlapping clips, best first.

    ``scores[i]`` scores the second ``[i, i + 1)``; ``duration`` (default ``len(scores)``) ends
    the last, possibly partial, second. ``boundaries`` are scene boundaries in seconds.
    """
    if max_clips < 1:
        raise ValueError("max_clips must be at least 1")
    total = float(len(scores)) if duration is None else min(duration, float(len(scores)))
    if not scores or total <= 0:
        return []
    if total < lengths.min_seconds:
        return [Clip(start=0.0, end=round_ms(total), score=round_ms(_mean_score(scores, 0.0, total)))]

    cuts = sorted(b for b in boundaries if 0 < b < total)
    median = statistics.median(scores)
    peaks = sorted(range(len(scores)), key=lambda second: (-scores[second], second))
    taken: list[tuple[float, float]] = []  # sorted, non-overlapping
    clips: list[Clip] = []
    for peak in peaks:
        if len(clips) == max_clips:
            break
        if peak >= total:
            continue
        gap = _free_gap(taken, float(peak), min(peak + 1.0, total), total)
        if gap is None or gap[1] - gap[0] < lengths.min_seconds:
            continue
        start, end = _grow(scores, peak, gap, lengths, median)
        start, end = _snap(start, end, cuts, gap, lengths, snap_within)
        bisect.insort(taken, (start, end))
        clips.append(Clip(start=round_ms(start), end=round_ms(end), score=round_ms(_mean_score(scores, start, end))))
    return sorted(clips, key=lambda clip: (-clip.score, clip.start))


def scenes_from_cuts(boundaries: Sequence[float], duration: float, *, max_scenes: int | None = None) -> list[Scene]:
    """Scenes ``[{start, end}]`` that cover ``[0, duration]``, split at ``boundaries``."""
    if duration <= 0:
        return []
    cuts = sorted({round_ms(b) for b in boundaries if 0.001 < b < duration - 0.001})
    starts = [0.0, *cuts]
    ends = [*cuts, duration]
    if max_scenes is not None and len(starts) > max_scenes:
        starts, ends = _merge_shortest(starts, ends, max(1, max_scenes))
    return [Scene(start=round_ms(s), end=round_ms(e)) for s, e in zip(starts, ends, strict=True)]


def highlights_result(
    analysis: VideoAnalysis, *, max_clips: int, lengths: ClipLengths = _DEFAULT_LENGTHS
) -> HighlightsResult:
    boundaries = analysis.boundaries
    return HighlightsResult(
        duration=round_ms(analysis.duration),
        fps=round_ms(analysis.fps),
        width=analysis.width,
        height=analysis.height,
        clips=select_clips(
            analysis.highlight_scores, boundaries, max_clips=max_clips, lengths=lengths, duration=analysis.duration
        ),
        scenes=scenes_from_cuts(boundaries, analysis.duration, max_scenes=MAX_SCENES_IN_HIGHLIGHTS),
    )


def scenes_result(analysis: VideoAnalysis, *, max_scenes: int) -> ScenesResult:
    return ScenesResult(
        duration=round_ms(analysis.duration),
        fps=round_ms(analysis.fps),
        width=analysis.width,
        height=analysis.height,
        scenes=scenes_from_cuts(analysis.boundaries, analysis.duration, max_scenes=max_scenes),
    )


# ----------------------------------------------------------------------------------------------


def _free_gap(taken: list[tuple[float, float]], start: float, end: float, total: float) -> tuple[float, float] | None:
    """The stretch between taken clips that holds ``[start, end)``, or None when a clip covers part of it."""
    index = bisect.bisect_right(taken, (start, math.inf))
    low = taken[index - 1][1] if index > 0 else 0.0
    high = taken[index][0] if index < len(taken) else total
    if low > start or high < end:
        return None
    return low, high


def _grow(
    scores: Sequence[float], peak: int, gap: tuple[float, float], lengths: ClipLengths, median: float
) -> tuple[float, float]:
    low, high = gap
    start, end = float(peak), min(peak + 1.0, high)
    keep_above = median + 0.5 * (scores[peak] - median)
    while end - start < lengths.max_seconds:
        room = lengths.max_seconds - (end - start)
        left = scores[math.ceil(start) - 1] if start > low else -math.inf
        right = scores[math.floor(end)] if end < high and math.floor(end) < len(scores) else -math.inf
        if left == right == -math.inf:
            break
        grow_left = left > right
        best = max(left, right)
        if end - start >= lengths.min_seconds and best < keep_above:
            break
        if grow_left:
            start = max(low, start - min(1.0, room), math.ceil(start) - 1.0)
        else:
            end = min(high, end + min(1.0, room), math.floor(end) + 1.0)
    return start, end


def _snap(
    start: float,
    end: float,
    cuts: list[float],
    gap: tuple[float, float],
    lengths: ClipLengths,
    within: float,
) -> tuple[float, float]:
    low, high = gap

    def fits(s: float, e: float) -> bool:
        return low <= s < e <= high and lengths.min_seconds - 1e-9 <= e - s <= lengths.max_seconds + 1e-9

    near_start = [c for c in _near(cuts, start, within) if fits(c, end)]
    if near_start:
        start = min(near_start, key=lambda c: abs(c - start))
    near_end = [c for c in _near(cuts, end, within) if fits(start, c)]
    if near_end:
        end = min(near_end, key=lambda c: abs(c - end))
    return start, end


def _near(cuts: list[float], time: float, within: float) -> list[float]:
    return cuts[bisect.bisect_left(cuts, time - within) : bisect.bisect_right(cuts, time + within)]


def _mean_score(scores: Sequence[float], start: float, end: float) -> float:
    """Mean of the per-second scores over ``[start, end)``, each second weighted by its overlap."""
    total = weight = 0.0
    for second in range(math.floor(start), min(math.ceil(end), len(scores))):
        overlap = min(end, second + 1.0) - max(start, float(second))
        if overlap > 0:
            total += scores[second] * overlap
            weight += overlap
    return total / weight if weight else 0.0


def _merge_shortest(starts: list[float], ends: list[float], keep: int) -> tuple[list[float], list[float]]:
    """Merge the shortest scene into its shorter neighbour until ``keep`` scenes remain."""
    count = len(starts)
    before = [i - 1 for i in range(count)]
    after = [i + 1 if i + 1 < count else -1 for i in range(count)]
    alive = [True] * count
    version = [0] * count
    heap = [(ends[i] - starts[i], i, 0) for i in range(count)]
    heapq.heapify(heap)
    while count > keep and heap:
        _, i, seen = heapq.heappop(heap)
        if not alive[i] or seen != version[i]:
            continue
        left, right = before[i], after[i]
        if left < 0 and right < 0:
            break
        into_left = right < 0 or (left >= 0 and ends[left] - starts[left] <= ends[right] - starts[right])
        if into_left:
            ends[left] = ends[i]
            after[left] = right
            if right >= 0:
                before[right] = left
            survivor = left
        else:
            starts[right] = starts[i]
            before[right] = left
            if left >= 0:
                after[left] = right
            survivor = right
        alive[i] = False
        version[survivor] += 1
        heapq.heappush(heap, (ends[survivor] - starts[survivor], survivor, version[survivor]))
        count -= 1
    kept = [i for i in range(len(starts)) if alive[i]]
    return [starts[i] for i in kept], [ends[i] for i in kept]
