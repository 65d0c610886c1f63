"""The clip-selection rule, the scene list, the result schemas and the video errors (pure domain)."""

from __future__ import annotations

import itertools
import random

import msgspec
import pytest

from domain.errors import InvalidInputError
from domain.video.errors import CorruptVideoError, NotAVideoError, VideoTooLongError, format_duration
from domain.video.schemas import (
    Clip,
    ClipLengths,
    ProcessingOptions,
    ProcessingType,
    ThumbnailCandidate,
    VideoAnalysis,
)
from domain.video.selection import highlights_result, scenes_from_cuts, scenes_result, select_clips

LENGTHS = ClipLengths(min_seconds=3, max_seconds=8)


def flat(seconds: int, value: float = 0.1) -> list[float]:
    return [value] * seconds


def assert_valid(clips: list[Clip], lengths: ClipLengths, duration: float, max_clips: int) -> None:
    assert len(clips) <= max_clips
    for clip in clips:
        assert lengths.min_seconds - 1e-9 <= clip.end - clip.start <= lengths.max_seconds + 1e-9
        assert 0 <= clip.start < clip.end <= duration
    spans = sorted((clip.start, clip.end) for clip in clips)
    assert all(first[1] <= second[0] for first, second in itertools.pairwise(spans))
    assert [clip.score for clip in clips] == sorted((clip.score for clip in clips), reverse=True)


def test_the_best_stretch_becomes_the_first_clip() -> None:
    scores = flat(60)
    scores[30:35] = [0.8, 0.9, 1.0, 0.9, 0.8]
    scores[10:13] = [0.5, 0.6, 0.5]
    clips = select_clips(scores, [], max_clips=2, lengths=LENGTHS)
    assert [(c.start, c.end) for c in clips] == [(30.0, 35.0), (10.0, 13.0)]
    assert clips[0].score == pytest.approx(0.88)


def test_clip_edges_snap_to_a_nearby_scene_boundary() -> None:
    scores = flat(60)
    scores[30:35] = [0.9] * 5
    clips = select_clips(scores, [29.2, 35.6, 50.0], max_clips=1, lengths=LENGTHS)
    assert (clips[0].start, clips[0].end) == (29.2, 35.6)


def test_snapping_never_breaks_the_length_bounds() -> None:
    scores = flat(60)
    scores[30:38] = [0.9] * 8  # grows to the 8 s maximum
    clips = select_clips(scores, [29.0, 38.9], max_clips=1, lengths=LENGTHS)
    assert clips[0].end - clips[0].start <= 8.0
    scores = flat(60)
    scores[30:33] = [0.9] * 3  # the 3 s minimum
    clips = select_clips(scores, [31.5], max_clips=1, lengths=LENGTHS)
    assert clips[0].end - clips[0].start >= 3.0


def test_boundaries_far_away_do_not_move_a_clip() -> None:
    scores = flat(60)
    scores[30:35] = [0.9] * 5
    clips = select_clips(scores, [20.0, 45.0], max_clips=1, lengths=LENGTHS, snap_within=1.5)
    assert (clips[0].start, clips[0].end) == (30.0, 35.0)


def test_short_peaks_grow_to_the_minimum_length() -> None:
    scores = flat(40)
    scores[20] = 1.0
    clip = select_clips(scores, [], max_clips=1, lengths=LENGTHS)[0]
    assert clip.end - clip.start == 3.0
    assert clip.start <= 20 < clip.end


@pytest.mark.parametrize("seed", range(25))
def test_random_timelines_give_valid_clips(seed: int) -> None:
    rng = random.Random(seed)
    seconds = rng.randint(1, 300)
    duration = seconds - rng.random() * 0.9
    scores = [rng.random() for _ in range(seconds)]
    boundaries = sorted(rng.uniform(0, duration) for _ in range(rng.randint(0, 40)))
    lengths = ClipLengths(min_seconds=rng.choice([1, 2.5, 5]), max_seconds=rng.choice([5, 10, 30]))
    max_clips = rng.randint(1, 20)
    clips = select_clips(scores, boundaries, max_clips=max_clips, lengths=lengths, duration=duration)
    if duration < lengths.min_seconds:
        assert [(c.start, c.end) for c in clips] == [(0.0, round(duration, 3))]
    else:
        assert clips
        assert_valid(clips, lengths, round(duration, 3), max_clips)


def test_a_video_shorter_than_the_minimum_is_one_clip() -> None:
    assert select_clips([0.2, 0.4, 0.6], [], max_clips=5, lengths=LENGTHS, duration=2.5) == [
        Clip(start=0.0, end=2.5, score=0.36)
    ]


def test_no_scores_no_clips_and_max_clips_must_be_positive() -> None:
    assert select_clips([], [], max_clips=3) == []
    with pytest.raises(ValueError, match="max_clips"):
        select_clips([0.5], [], max_clips=0)


def test_scenes_cover_the_video() -> None:
    scenes = scenes_from_cuts([12.0, 3.0, 3.0, 0.0, 7.5, 20.0], 20.0)
    assert [(s.start, s.end) for s in scenes] == [(0.0, 3.0), (3.0, 7.5), (7.5, 12.0), (12.0, 20.0)]
    assert scenes_from_cuts([], 9.87654) == [scenes_from_cuts([], 9.87654)[0]]
    assert scenes_from_cuts([], 9.87654)[0].end == 9.877
    assert scenes_from_cuts([1.0], 0) == []


def test_too_many_scenes_merge_the_shortest_first() -> None:
    scenes = scenes_from_cuts([10.0, 10.5, 20.0, 21.0, 30.0], 40.0, max_scenes=4)
    assert [(s.start, s.end) for s in scenes] == [(0.0, 10.0), (10.0, 20.0), (20.0, 30.0), (30.0, 40.0)]
    many = scenes_from_cuts([i * 0.7 for i in range(1, 5000)], 3500.0, max_scenes=500)
    assert len(many) == 500
    assert many[0].start == 0.0
    assert many[-1].end == 3500.0
    assert all(a.end == b.start for a, b in itertools.pairwise(many))
    assert len(scenes_from_cuts([5.0, 6.0], 10.0, max_scenes=1)) == 1


def analysis() -> VideoAnalysis:
    scores = [0.05] * 30
    scores[12:16] = [0.9, 0.95, 0.9, 0.8]
    return VideoAnalysis(
        duration=29.9876,
        fps=29.97003,
        width=1280,
        height=720,
        has_audio=True,
        frame_count=899,
        cuts=[5.0, 11.7, 16.2],
        fades=[22.4],
        highlight_scores=scores,
        thumbnail_candidates=[ThumbnailCandidate(time=13.5, score=0.9, sharpness=120.0, brightness=0.4)],
    )


def test_the_highlights_result_has_the_api_shape() -> None:
    result = highlights_result(analysis(), max_clips=2, lengths=LENGTHS)
    document = msgspec.json.decode(msgspec.json.encode(result))
    assert set(document) == {"duration", "fps", "width", "height", "clips", "scenes"}
    assert document["duration"] == 29.988
    assert document["fps"] == 29.97
    assert document["clips"][0] == {"start": 11.7, "end": 16.2, "score": 0.794}
    assert len(document["clips"]) == 2
    assert [set(scene) for scene in document["scenes"]] == [{"start", "end"}] * 5
    assert document["scenes"][-1] == {"start": 22.4, "end": 29.988}


def test_the_scenes_result_lists_at_most_max_length_scenes() -> None:
    result = scenes_result(analysis(), max_scenes=3)
    assert len(result.scenes) == 3
    assert result.scenes[0].start == 0.0
    assert result.scenes[-1].end == 29.988


@pytest.mark.parametrize(
    ("body", "ok"),
    [
        ({"processing_type": "highlights", "max_length": 10}, True),
        ({"processing_type": "scenes", "max_length": 1}, True),
        ({"processing_type": "thumbnail", "max_length": 500}, True),
        ({"processing_type": "highlights", "max_length": 0}, False),
        ({"processing_type": "highlights", "max_length": 501}, False),
        ({"processing_type": "cartoon", "max_length": 5}, False),
        ({"processing_type": "highlights"}, False),
    ],
)
def test_processing_options_are_validated(body: dict[str, object], ok: bool) -> None:
    encoded = msgspec.json.encode(body)
    if ok:
        options = msgspec.json.decode(encoded, type=ProcessingOptions)
        assert options.processing_type in set(ProcessingType)
    else:
        with pytest.raises(msgspec.ValidationError):
            msgspec.json.decode(encoded, type=ProcessingOptions)


def test_clip_lengths_must_be_ordered() -> None:
    with pytest.raises(ValueError, match="min_seconds"):
        ClipLengths(min_seconds=10, max_seconds=5)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(11520, "3h12m"), (7200, "2h"), (95, "1m35s"), (12.5, "12.5s"), (20, "20s"), (3600, "1h"), (60, "1m")],
)
def test_durations_read_like_people_write_them(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_video_errors_are_422_with_clear_messages() -> None:
    too_long = VideoTooLongError(11520, 7200)
    assert str(too_long) == "the video is 3h12m long; the limit is 2h"
    assert str(VideoTooLongError(7210, 7200)) == "the video is 2h0m10s long; the limit is 2h"
    assert str(NotAVideoError()) == "not a video file"
    assert str(CorruptVideoError("truncated")) == "the video is corrupt: truncated"
    for error in (too_long, NotAVideoError("x"), CorruptVideoError("y")):
        assert isinstance(error, InvalidInputError)
        assert error.status_code == 422
        assert error.message == str(error)
