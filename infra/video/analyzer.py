"""The video-analysis pipeline: decode, score with the models, find scenes, highlights and thumbnails.

``VideoAnalyzer.analyze`` streams the video once. Every frame, scaled to the tiny analysis size,
goes in batches to the ``scene-detector`` model; a few grey frames a second give motion and
sharpness; the audio gives loudness. Decoding runs in its own thread, inference in the model
runner's, and the small per-batch bookkeeping in a worker thread too, overlapped with the next
batch's inference, so the event loop only routes batches. At the end the timeline is turned into
cuts and fades, per-second features are scored by the ``highlight-scorer`` model, and the best
sharp frames become thumbnail candidates.

Models are reached through a :class:`ModelRunner`: the service's model pool in production, the
:class:`DirectRunner` here for tests, tools and the benchmark.
"""

from __future__ import annotations

import asyncio
import json
import math
import warnings
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import torch

from domain.video.schemas import VideoAnalysis
from infra.models.builtin import HIGHLIGHT_SCORER, REPOSITORY_PATH, SCENE_DETECTOR
from infra.models.builtin.highlight_scorer import CONTEXT_SECONDS
from infra.video.decoder import DecodeOptions, FrameBatch, FrameStream
from infra.video.highlights import (
    SecondSignals,
    context_windows,
    highlight_features,
    per_second_loudness,
    per_second_mean,
)
from infra.video.probe import VideoProbe, probe_video
from infra.video.samples import SampleMeasures
from infra.video.scenes import SceneRules, SceneTimeline, find_boundaries
from infra.video.thumbnails import Thumbnail, ThumbnailRules, pick_candidates, render_thumbnail

__all__ = [
    "AnalyzerOptions",
    "DirectRunner",
    "ModelRunner",
    "ProgressCallback",
    "VideoAnalyzer",
    "latest_model_path",
    "load_model",
    "read_model_config",
]

ProgressCallback = Callable[[float], Awaitable[None]]
DEFAULT_MAX_DURATION = 2 * 3600.0


class ModelRunner(Protocol):
    async def infer(self, model: str, batch: torch.Tensor) -> torch.Tensor:
        """Run ``model`` on ``batch``; dim 0 indexes independent items, in and out."""
        ...


# ----------------------------------------------------------------------------------------------
# the direct runner


def latest_model_path(repository: Path, name: str) -> Path:
    """``<repository>/<name>/<highest version>/model.pt``."""
    versions = [entry for entry in (repository / name).iterdir() if entry.is_dir() and entry.name.isdigit()]
    if not versions:
        raise FileNotFoundError(f"model {name!r} has no version in {repository}")
    return max(versions, key=lambda entry: int(entry.name)) / "model.pt"


def read_model_config(repository: Path, name: str) -> dict[str, Any]:
    config: dict[str, Any] = json.loads((repository / name / "config.json").read_text(encoding="utf-8"))
    return config


def load_model(repository: Path, name: str) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        # torch 2.13 marks TorchScript as deprecated; the model repository's format is TorchScript.
        warnings.filterwarnings("ignore", message=".*torch.jit.load.* is deprecated", category=DeprecationWarning)
        module: torch.jit.ScriptModule = torch.jit.load(  # type: ignore[no-untyped-call]
            str(latest_model_path(repository, name)), map_location="cpu"
        )
    module.eval()
    return module


class DirectRunner:
    """Runs the shipped TorchScript models one call at a time in a dedicated worker thread.

    ``threads`` sets torch's intra-op threads for the whole process when given (torch has one
    pool per process); leave it None inside a service that manages torch itself.
    """

    def __init__(
        self,
        repository: Path = REPOSITORY_PATH,
        *,
        models: Iterable[str] = (SCENE_DETECTOR, HIGHLIGHT_SCORER),
        threads: int | None = None,
    ) -> None:
        if threads is not None:
            torch.set_num_threads(threads)
        self._models = {name: load_model(repository, name) for name in models}
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="direct-runner")

    async def infer(self, model: str, batch: torch.Tensor) -> torch.Tensor:
        module = self._models.get(model)
        if module is None:
            raise LookupError(f"unknown model {model!r}")
        return await asyncio.get_running_loop().run_in_executor(self._executor, _run_module, module, batch)

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    def __enter__(self) -> DirectRunner:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


def _run_module(module: torch.jit.ScriptModule, batch: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        output: torch.Tensor = module(batch)
    return output


# ----------------------------------------------------------------------------------------------
# the analyzer


@dataclass(frozen=True, slots=True)
class AnalyzerOptions:
    max_duration: float | None = DEFAULT_MAX_DURATION
    """Longer videos are refused (``VideoTooLongError``); None for no limit."""
    sample_fps: float = 4.0
    batch_frames: int = 64
    decoder_threads: int = 0
    highlight_batch: int = 512
    scene_rules: SceneRules = field(default_factory=SceneRules)
    thumbnail_rules: ThumbnailRules = field(default_factory=ThumbnailRules)

    def decode_options(self) -> DecodeOptions:
        return DecodeOptions(
            sample_fps=self.sample_fps,
            batch_frames=self.batch_frames,
            max_duration=self.max_duration,
            decoder_threads=self.decoder_threads,
        )


class VideoAnalyzer:
    def __init__(self, runner: ModelRunner, options: AnalyzerOptions | None = None) -> None:
        self.runner = runner
        self.options = options or AnalyzerOptions()

    async def probe(self, path: Path) -> VideoProbe:
        """Check the file and read its header (raises the domain's video errors)."""
        return await asyncio.to_thread(probe_video, path, max_duration=self.options.max_duration)

    async def analyze(self, path: Path, *, on_progress: ProgressCallback | None = None) -> VideoAnalysis:
        """Analyse the video at ``path``; ``on_progress`` gets 0..1 and may cancel by raising."""
        probe = await self.probe(path)
        decode_options = self.options.decode_options()
        state = _Accumulator(decode_options.audio_window)
        pending: asyncio.Future[None] | None = None
        try:
            async with FrameStream(path, probe, decode_options) as stream:
                async for batch in stream:
                    frames = torch.from_numpy(batch.frames)
                    signatures = await self.runner.infer(SCENE_DETECTOR, frames) if len(frames) else frames
                    if pending is not None:
                        await pending
                    pending = asyncio.ensure_future(asyncio.to_thread(state.absorb, batch, signatures))
                    if on_progress is not None:
                        await on_progress(_fraction(batch, probe))
                if pending is not None:
                    await pending
                    pending = None
        finally:
            if pending is not None and not pending.done():
                await asyncio.wait([pending])
        analysis = await self._conclude(probe, stream, state)
        if on_progress is not None:
            await on_progress(1.0)
        return analysis

    async def thumbnail(self, path: Path, analysis: VideoAnalysis, *, max_width: int = 1280) -> Thumbnail:
        """JPEG of the best thumbnail candidate (the middle of the video when there is none)."""
        candidates = analysis.thumbnail_candidates
        time = candidates[0].time if candidates else analysis.duration / 2
        return await asyncio.to_thread(render_thumbnail, path, time, max_width=max_width)

    async def _conclude(self, probe: VideoProbe, stream: FrameStream, state: _Accumulator) -> VideoAnalysis:
        track, times = state.timeline.arrays()
        fps = probe.fps
        # The header's duration when it has one, unless the pictures run longer (a wrong header).
        duration = max(probe.duration or 0.0, stream.end_time + 1.0 / fps)
        bounds = await asyncio.to_thread(find_boundaries, track, fps, self.options.scene_rules)
        cut_times = times[bounds.cut_frames]
        fade_times = times[bounds.fade_frames]
        boundary_times = np.sort(np.concatenate([cut_times, fade_times]))

        seconds = max(1, math.ceil(duration - 1e-6))
        signals = _second_signals(state, seconds, cut_times, boundary_times, probe.has_audio)
        windows = context_windows(highlight_features(signals), CONTEXT_SECONDS)
        scores = await self._score(windows)

        samples = state.samples
        candidates = pick_candidates(
            samples.times(),
            samples.sharpness(),
            samples.brightness(),
            samples.contrast(),
            scores,
            boundary_times,
            self.options.thumbnail_rules,
        )
        return VideoAnalysis(
            duration=round(duration, 3),
            fps=round(fps, 3),
            width=probe.width,
            height=probe.height,
            has_audio=probe.has_audio,
            frame_count=stream.frames,
            cuts=[round(float(t), 3) for t in cut_times],
            fades=[round(float(t), 3) for t in fade_times],
            highlight_scores=[round(float(s), 4) for s in scores],
            thumbnail_candidates=candidates,
        )

    async def _score(self, windows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        parts: list[npt.NDArray[np.float32]] = []
        for start in range(0, len(windows), self.options.highlight_batch):
            chunk = torch.from_numpy(windows[start : start + self.options.highlight_batch])
            parts.append((await self.runner.infer(HIGHLIGHT_SCORER, chunk)).reshape(-1).cpu().numpy())
        return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, dtype=np.float32)


class _Accumulator:
    """What the analysis keeps of each batch; fed in order from a worker thread."""

    def __init__(self, audio_window: float) -> None:
        self.timeline = SceneTimeline()
        self.samples = SampleMeasures()
        self.audio: list[npt.NDArray[np.float32]] = []
        self.audio_window = audio_window

    def absorb(self, batch: FrameBatch, signatures: torch.Tensor) -> None:
        self.timeline.add(signatures.cpu().numpy(), batch.times)
        self.samples.add(batch.samples, batch.sample_times)
        if len(batch.audio_db):
            self.audio.append(batch.audio_db)

    def audio_levels(self) -> npt.NDArray[np.float32]:
        return np.concatenate(self.audio) if self.audio else np.zeros(0, dtype=np.float32)


def _second_signals(
    state: _Accumulator,
    seconds: int,
    cut_times: npt.NDArray[np.float64],
    boundary_times: npt.NDArray[np.float64],
    has_audio: bool,
) -> SecondSignals:
    starts, ends, motion = state.samples.motion()
    # A pair of samples across a cut or a fade measures the change of shot, not motion.
    across = np.searchsorted(boundary_times, starts, side="right") != np.searchsorted(
        boundary_times, ends, side="right"
    )
    keep = ~across if (~across).any() else np.ones(len(motion), dtype=bool)
    loudness, peak = per_second_loudness(state.audio_levels(), state.audio_window, seconds)
    cuts = np.bincount(np.clip(cut_times.astype(np.int64), 0, seconds - 1), minlength=seconds).astype(np.float32)
    return SecondSignals(
        motion=per_second_mean(ends[keep], motion[keep], seconds),
        loudness_db=loudness,
        peak_db=peak,
        cuts=cuts[:seconds],
        has_audio=has_audio and len(state.audio) > 0,
    )


def _fraction(batch: FrameBatch, probe: VideoProbe) -> float:
    if len(batch.times) == 0:
        return 0.0
    if probe.duration:
        return min(0.99, float(batch.times[-1]) / probe.duration)
    if probe.frame_count:
        return min(0.99, (batch.first_index + len(batch.times)) / probe.frame_count)
    return 0.0
