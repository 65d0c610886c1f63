"""The JSON result of a job (API.md), from an analysis and what the job asked for."""

from __future__ import annotations

from typing import Any

import msgspec

from domain.video.schemas import ClipLengths, ProcessingType, VideoAnalysis
from domain.video.selection import highlights_result, scenes_result


def build_result(
    analysis: VideoAnalysis, processing_type: ProcessingType, max_length: int, clip_lengths: ClipLengths
) -> dict[str, Any]:
    """``highlights``: clips and scenes; ``scenes``: scenes; ``thumbnail``: the video's dimensions (the
    caller adds the thumbnail itself, which needs the file)."""
    built: Any
    if processing_type is ProcessingType.HIGHLIGHTS:
        built = highlights_result(analysis, max_clips=max_length, lengths=clip_lengths)
    elif processing_type is ProcessingType.SCENES:
        built = scenes_result(analysis, max_scenes=max_length)
    else:
        built = {"duration": analysis.duration, "fps": analysis.fps, "width": analysis.width, "height": analysis.height}
    result: dict[str, Any] = msgspec.to_builtins(built)
    return result


def thumbnail_time(analysis: VideoAnalysis) -> float:
    """The best candidate's time, or the middle of the video when no frame qualified (all dark, say)."""
    candidates = analysis.thumbnail_candidates
    return candidates[0].time if candidates else analysis.duration / 2
