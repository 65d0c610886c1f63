"""The analysis pipeline on generated videos with a known ground truth (cuts, fade, flash, highlight)."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import itertools
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from domain.errors import InvalidInputError
from domain.video.errors import CorruptVideoError, NotAVideoError, VideoTooLongError
from domain.video.schemas import ClipLengths, VideoAnalysis
from domain.video.selection import highlights_result, select_clips
from infra.models.builtin.scene_detector import ANALYSIS_SIZE
from infra.video.analyzer import AnalyzerOptions, DirectRunner, VideoAnalyzer
from infra.video.decoder import DecodeOptions, FrameStream
from infra.video.probe import probe_video
from tests.videos import (
    VideoSpec,
    VideoTruth,
    f1_score,
    match_f1,
    render_video,
    write_audio_only,
    write_garbage,
    write_image,
    write_text_file,
    write_truncated,
)

SPECS = {
    "landscape": VideoSpec(width=320, height=180, fps=25, duration=30, cuts=6, seed=11),
    "many-cuts": VideoSpec(width=320, height=180, fps=30, duration=24, cuts=8, seed=12),
    "portrait-silent": VideoSpec(width=180, height=320, fps=25, duration=20, cuts=4, seed=13, audio=False),
    "same-colours": VideoSpec(width=256, height=144, fps=24, duration=24, cuts=6, seed=15, same_colours=True),
}
SHORT = VideoSpec(width=320, height=180, fps=25, duration=8, cuts=1, seed=14, fade=False, flash=False, highlight=False)
LENGTHS = ClipLengths(min_seconds=3.0, max_seconds=10.0)


@pytest.fixture(scope="session")
def video_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("videos")


@pytest.fixture(scope="session")
def videos(video_dir: Path) -> dict[str, VideoTruth]:
    return {name: render_video(video_dir / f"{name}.mp4", spec) for name, spec in SPECS.items()}


@pytest.fixture(scope="session")
def short_video(video_dir: Path) -> VideoTruth:
    return render_video(video_dir / "short-faststart.mp4", dataclasses.replace(SHORT, faststart=True))


@pytest.fixture(scope="session")
def runner() -> Iterator[DirectRunner]:
    with DirectRunner() as direct:
        yield direct


@pytest.fixture(scope="session")
def analyzer(runner: DirectRunner) -> VideoAnalyzer:
    return VideoAnalyzer(runner)


@pytest.fixture(scope="session")
async def analyses(analyzer: VideoAnalyzer, videos: dict[str, VideoTruth]) -> dict[str, VideoAnalysis]:
    return {name: await analyzer.analyze(truth.path) for name, truth in videos.items()}


# ----------------------------------------------------------------------------------------------
# scenes


async def test_hard_cuts_are_found_within_two_frames(
    videos: dict[str, VideoTruth], analyses: dict[str, VideoAnalysis]
) -> None:
    totals = [0, 0, 0]
    for name, truth in videos.items():
        counts = match_f1(analyses[name].cuts, truth.cut_times, tolerance=2 / truth.fps + 1e-3)
        assert f1_score(*counts) >= 0.8, (name, analyses[name].cuts, truth.cut_times)
        totals = [a + b for a, b in zip(totals, counts, strict=True)]
    assert f1_score(*totals) >= 0.9, totals


async def test_a_one_frame_flash_is_not_a_cut(
    videos: dict[str, VideoTruth], analyses: dict[str, VideoAnalysis]
) -> None:
    checked = 0
    for name, truth in videos.items():
        for flash in truth.flash_times:
            checked += 1
            near = [t for t in analyses[name].boundaries if abs(t - flash) <= 3 / truth.fps]
            assert not near, (name, flash, near)
    assert checked >= 2


async def test_a_fade_to_black_is_one_boundary_and_no_cut(
    videos: dict[str, VideoTruth], analyses: dict[str, VideoAnalysis]
) -> None:
    for name, truth in videos.items():
        analysis = analyses[name]
        for fade in truth.fade_times:
            assert len(analysis.fades) == 1, (name, analysis.fades)
            assert abs(analysis.fades[0] - fade) <= 0.25, (name, analysis.fades, fade)
            assert not [t for t in analysis.cuts if abs(t - fade) < 1.0], (name, analysis.cuts, fade)


async def test_the_analysis_describes_the_video(
    videos: dict[str, VideoTruth], analyses: dict[str, VideoAnalysis]
) -> None:
    for name, truth in videos.items():
        analysis = analyses[name]
        assert (analysis.width, analysis.height) == (truth.spec.width, truth.spec.height)
        assert analysis.fps == pytest.approx(truth.fps)
        assert analysis.duration == pytest.approx(truth.duration, abs=0.1)
        assert analysis.frame_count == truth.frame_count
        assert analysis.has_audio == truth.spec.audio
        assert len(analysis.highlight_scores) == int(np.ceil(analysis.duration - 1e-6))
        assert all(0.0 <= score <= 1.0 for score in analysis.highlight_scores)


# ----------------------------------------------------------------------------------------------
# highlights


@pytest.mark.parametrize("name", list(SPECS))
async def test_the_planted_highlight_is_the_top_clip(
    name: str, videos: dict[str, VideoTruth], analyses: dict[str, VideoAnalysis]
) -> None:
    truth, analysis = videos[name], analyses[name]
    assert truth.highlight is not None
    result = highlights_result(analysis, max_clips=3, lengths=LENGTHS)
    top = result.clips[0]
    start, end = truth.highlight
    overlap = min(top.end, end) - max(top.start, start)
    assert overlap >= 0.75 * (end - start), (top, truth.highlight)
    assert top.score == max(clip.score for clip in result.clips)
    # a calm second scores far below the highlight
    calm = analysis.highlight_scores[int(start) - 3] if start >= 3 else analysis.highlight_scores[int(end) + 3]
    assert calm < 0.5 * top.score


@pytest.mark.parametrize(
    ("max_clips", "lengths"), [(1, LENGTHS), (4, ClipLengths(min_seconds=2, max_seconds=5)), (50, LENGTHS)]
)
async def test_clips_respect_the_count_and_length_settings(
    analyses: dict[str, VideoAnalysis], max_clips: int, lengths: ClipLengths
) -> None:
    for analysis in analyses.values():
        clips = select_clips(
            analysis.highlight_scores,
            analysis.boundaries,
            max_clips=max_clips,
            lengths=lengths,
            duration=analysis.duration,
        )
        assert 1 <= len(clips) <= max_clips
        for clip in clips:
            assert lengths.min_seconds - 1e-3 <= clip.end - clip.start <= lengths.max_seconds + 1e-3
            assert 0 <= clip.start < clip.end <= analysis.duration + 1e-3
        spans = sorted((clip.start, clip.end) for clip in clips)
        assert all(a_end <= b_start + 1e-9 for (_, a_end), (b_start, _) in itertools.pairwise(spans))
        assert [clip.score for clip in clips] == sorted((clip.score for clip in clips), reverse=True)


async def test_a_video_without_audio_is_analysed(
    videos: dict[str, VideoTruth], analyses: dict[str, VideoAnalysis]
) -> None:
    silent = analyses["portrait-silent"]
    assert not videos["portrait-silent"].spec.audio
    assert not silent.has_audio
    assert silent.cuts
    assert silent.highlight_scores


# ----------------------------------------------------------------------------------------------
# thumbnails


async def test_the_thumbnail_is_a_sharp_bright_jpeg(
    analyzer: VideoAnalyzer, videos: dict[str, VideoTruth], analyses: dict[str, VideoAnalysis]
) -> None:
    truth, analysis = videos["landscape"], analyses["landscape"]
    thumbnail = await analyzer.thumbnail(truth.path, analysis)
    image = Image.open(io.BytesIO(thumbnail.jpeg))
    assert image.format == "JPEG"
    assert image.size == (truth.spec.width, truth.spec.height) == (thumbnail.width, thumbnail.height)
    grey = np.asarray(image.convert("L"), dtype=np.float32)
    assert 0.12 * 255 < grey.mean() < 0.9 * 255
    laplacian = grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4 * grey[1:-1, 1:-1]
    assert laplacian.var() > 50
    # not a transition frame: away from the flash, the fade and the cuts
    for moment in (*truth.flash_times, *truth.fade_times, *truth.cut_times):
        assert abs(thumbnail.time - moment) > 0.2
    assert analysis.thumbnail_candidates[0].score == max(c.score for c in analysis.thumbnail_candidates)


async def test_a_thumbnail_is_at_most_max_width_wide(analyzer: VideoAnalyzer, videos: dict[str, VideoTruth]) -> None:
    truth = videos["portrait-silent"]
    analysis = VideoAnalysis(
        duration=truth.duration, fps=25, width=180, height=320, has_audio=False, frame_count=0,
        cuts=[], fades=[], highlight_scores=[], thumbnail_candidates=[],
    )  # fmt: skip
    thumbnail = await analyzer.thumbnail(truth.path, analysis, max_width=90)
    assert (thumbnail.width, thumbnail.height) == (90, 160)
    assert thumbnail.time == pytest.approx(truth.duration / 2)


# ----------------------------------------------------------------------------------------------
# streaming, progress, cancellation


async def test_the_stream_gives_small_frames_samples_and_loudness(videos: dict[str, VideoTruth]) -> None:
    truth = videos["landscape"]
    probe = probe_video(truth.path)
    frames = samples = 0
    last = -1.0
    loudness = []
    async with FrameStream(truth.path, probe, DecodeOptions(batch_frames=50)) as stream:
        async for batch in stream:
            assert batch.frames.shape[1:] == (ANALYSIS_SIZE[1], ANALYSIS_SIZE[0], 3)
            assert batch.frames.dtype == np.uint8
            if len(batch.times):  # the last batch may bring only the end of the audio
                assert batch.times[0] > last
                last = float(batch.times[-1])
            frames += len(batch.frames)
            samples += len(batch.samples)
            loudness.append(batch.audio_db)
    assert frames == stream.frames == truth.frame_count
    assert abs(samples - 4 * truth.duration) <= 2
    levels = np.concatenate(loudness)
    assert abs(len(levels) - truth.duration / 0.25) <= 2
    assert truth.highlight is not None
    start, end = (int(t / 0.25) for t in truth.highlight)
    loud, calm = np.median(levels[start + 1 : end - 1]), np.median(levels[: start - 1])
    assert loud > calm + 20


async def test_progress_goes_from_zero_to_one(analyzer: VideoAnalyzer, short_video: VideoTruth) -> None:
    seen: list[float] = []

    async def record(fraction: float) -> None:
        seen.append(fraction)

    await analyzer.analyze(short_video.path, on_progress=record)
    assert len(seen) >= 3
    assert seen == sorted(seen)
    assert 0.0 <= seen[0] < 0.5
    assert seen[-1] == 1.0


async def test_raising_from_progress_cancels_and_stops_decoding(
    analyzer: VideoAnalyzer, videos: dict[str, VideoTruth]
) -> None:
    class CancelledByUserError(Exception):
        pass

    async def cancel_early(fraction: float) -> None:
        if fraction > 0.1:
            raise CancelledByUserError

    with pytest.raises(CancelledByUserError):
        await analyzer.analyze(videos["landscape"].path, on_progress=cancel_early)
    await asyncio.sleep(0)
    assert not [t for t in threading.enumerate() if t.name.startswith("decode ")]


async def test_two_videos_can_be_analysed_at_once(
    analyzer: VideoAnalyzer, videos: dict[str, VideoTruth], analyses: dict[str, VideoAnalysis]
) -> None:
    names = ["many-cuts", "portrait-silent"]
    results = await asyncio.gather(*(analyzer.analyze(videos[name].path) for name in names))
    for name, result in zip(names, results, strict=True):
        assert result.cuts == analyses[name].cuts
        assert result.highlight_scores == pytest.approx(analyses[name].highlight_scores, abs=1e-3)


# ----------------------------------------------------------------------------------------------
# refusals


@pytest.mark.parametrize(
    ("writer", "name", "reason"),
    [
        (write_text_file, "notes.txt", "it is a text file"),
        (write_text_file, "upload", "no known video format"),
        (write_garbage, "upload.mp4", "no known video format"),
        (write_audio_only, "song.wav", "it has audio but no picture"),
        (write_image, "picture.png", "it is a still image"),
    ],
)
async def test_a_file_that_is_not_a_video_is_refused(
    analyzer: VideoAnalyzer, tmp_path: Path, writer: Callable[[Path], Path], name: str, reason: str
) -> None:
    path = writer(tmp_path / name)
    with pytest.raises(NotAVideoError, match=reason) as caught:
        await analyzer.analyze(path)
    assert isinstance(caught.value, InvalidInputError)
    assert caught.value.status_code == 422
    assert str(caught.value).startswith("not a video file")
    assert str(tmp_path) not in str(caught.value)


async def test_an_empty_file_is_not_a_video(analyzer: VideoAnalyzer, tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(NotAVideoError, match="empty"):
        await analyzer.analyze(empty)


async def test_a_truncated_video_is_corrupt(
    analyzer: VideoAnalyzer, videos: dict[str, VideoTruth], short_video: VideoTruth, tmp_path: Path
) -> None:
    # index at the end (the usual MP4): the container itself cannot be read
    cut_index = write_truncated(videos["landscape"].path, tmp_path / "no-index.mp4", keep=0.5)
    with pytest.raises(CorruptVideoError, match="the video is corrupt: ") as caught:
        await analyzer.analyze(cut_index)
    assert caught.value.status_code == 422
    # index at the front: it opens, but the pictures stop half way
    cut_data = write_truncated(short_video.path, tmp_path / "no-data.mp4", keep=0.5)
    with pytest.raises(CorruptVideoError, match="the video is corrupt: "):
        await analyzer.analyze(cut_data)


async def test_a_video_over_the_limit_is_refused(runner: DirectRunner, videos: dict[str, VideoTruth]) -> None:
    strict = VideoAnalyzer(runner, AnalyzerOptions(max_duration=10))
    with pytest.raises(VideoTooLongError) as caught:
        await strict.analyze(videos["landscape"].path)
    assert str(caught.value) == "the video is 30s long; the limit is 10s"
    assert caught.value.status_code == 422


async def test_the_limit_holds_while_decoding_when_the_header_has_no_duration(videos: dict[str, VideoTruth]) -> None:
    truth = videos["many-cuts"]
    probe = dataclasses.replace(probe_video(truth.path), duration=None, video_duration=None)

    async def decode_all() -> None:
        async with FrameStream(truth.path, probe, DecodeOptions(max_duration=5)) as stream:
            async for _ in stream:
                pass

    with pytest.raises(VideoTooLongError, match="the limit is 5s"):
        await decode_all()
