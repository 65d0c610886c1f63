"""Synthetic test videos with a known ground truth (hard cuts, a fade, a flash, a planted highlight).

Nothing is downloaded: every video is rendered here with numpy and encoded with PyAV (libx264,
yuv420p, AAC). Each shot is a textured, coloured picture that pans slowly and carries a little
sensor-like noise, so the videos look like footage rather than flat colour cards. The planted
highlight is a shot of a fast-moving high-contrast pattern with heavy noise and a loud noise
burst on the audio track, between calm shots with quiet audio.

The renderer is deterministic for a given :class:`VideoSpec` (seeded numpy generator).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

AUDIO_RATE = 44_100
CALM_AUDIO_AMPLITUDE = 0.01  # about -43 dBFS RMS with the tone and the hiss together
LOUD_AUDIO_AMPLITUDE = 0.35  # about -9 dBFS RMS


@dataclass(frozen=True)
class VideoSpec:
    """What to render. Sizes are in pixels, times in seconds."""

    width: int = 320
    height: int = 180
    fps: int = 25
    duration: float = 30.0
    cuts: int = 6
    """Hard cuts, including the two that bound the highlight shot."""
    seed: int = 0
    fade: bool = True
    """One fade to black and back between two shots (not counted in ``cuts``)."""
    flash: bool = True
    """One frame of white inside a calm shot: not a cut."""
    highlight: bool = True
    highlight_seconds: float = 4.0
    audio: bool = True
    same_colours: bool = False
    """Every calm shot in one colour family: cuts show only in texture and layout (harder)."""
    preset: str = "veryfast"
    crf: int = 23
    faststart: bool = False
    """Write the MP4 index (moov) at the front, as streaming services do."""


@dataclass(frozen=True)
class VideoTruth:
    """The ground truth of a rendered video."""

    path: Path
    spec: VideoSpec
    frame_count: int
    cut_frames: tuple[int, ...]
    """Index of the first frame of each new shot after a hard cut."""
    fade_frames: tuple[int, ...]
    """Index of the middle black frame of each fade to black and back."""
    flash_frames: tuple[int, ...]
    highlight: tuple[float, float] | None
    """Start and end (seconds) of the planted highlight."""

    @property
    def fps(self) -> int:
        return self.spec.fps

    @property
    def duration(self) -> float:
        return self.frame_count / self.spec.fps

    @property
    def cut_times(self) -> tuple[float, ...]:
        return tuple(frame / self.spec.fps for frame in self.cut_frames)

    @property
    def fade_times(self) -> tuple[float, ...]:
        return tuple(frame / self.spec.fps for frame in self.fade_frames)

    @property
    def flash_times(self) -> tuple[float, ...]:
        return tuple(frame / self.spec.fps for frame in self.flash_frames)


@dataclass
class _Shot:
    start: int
    frames: int
    kind: str  # "calm" | "highlight"
    texture: np.ndarray = field(repr=False)  # float32 (H + 2 pad, W + 2 pad, 3)
    pad: int
    period: float
    phase: float
    noise: float
    palette: tuple[np.ndarray, np.ndarray] = field(repr=False)


def render_video(path: Path, spec: VideoSpec = VideoSpec()) -> VideoTruth:
    """Render ``spec`` to ``path`` (MP4, H.264 + AAC) and return its ground truth."""
    rng = np.random.default_rng(spec.seed)
    plan = _plan(spec, rng)
    shots = [
        _make_shot(spec, rng, start, frames, kind, index) for index, (start, frames, kind) in enumerate(plan.shots)
    ]
    noise_bank = rng.integers(-128, 128, size=(spec.height + 64, spec.width + 64, 1), dtype=np.int16)
    audio_levels = _audio_levels(spec, plan, shots)

    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"movflags": "faststart"} if spec.faststart else {}
    with av.open(str(path), "w", format="mp4", options=options) as container:
        video = container.add_stream("libx264", rate=spec.fps)
        video.width = spec.width
        video.height = spec.height
        video.pix_fmt = "yuv420p"
        video.options = {"preset": spec.preset, "crf": str(spec.crf)}
        audio = container.add_stream("aac", rate=AUDIO_RATE) if spec.audio else None
        if audio is not None:
            audio.layout = "mono"
        audio_samples = _audio_track(spec, audio_levels, rng) if audio is not None else None
        audio_written = 0
        frame_size = 1024
        for index, pixels in enumerate(_frames(spec, plan, shots, noise_bank, rng)):
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = index
            frame.time_base = Fraction(1, spec.fps)
            container.mux(video.encode(frame))
            if audio is not None and audio_samples is not None:
                until = min(len(audio_samples), round((index + 1) * AUDIO_RATE / spec.fps))
                while audio_written + frame_size <= until or (
                    index == plan.frame_count - 1 and audio_written < len(audio_samples)
                ):
                    chunk = audio_samples[audio_written : audio_written + frame_size]
                    audio_frame = av.AudioFrame.from_ndarray(chunk[np.newaxis, :], format="fltp", layout="mono")
                    audio_frame.sample_rate = AUDIO_RATE
                    audio_frame.pts = audio_written
                    audio_frame.time_base = Fraction(1, AUDIO_RATE)
                    container.mux(audio.encode(audio_frame))
                    audio_written += len(chunk)
        container.mux(video.encode(None))
        if audio is not None:
            container.mux(audio.encode(None))

    highlight = None
    for shot in shots:
        if shot.kind == "highlight":
            highlight = (shot.start / spec.fps, (shot.start + shot.frames) / spec.fps)
    return VideoTruth(
        path=path,
        spec=spec,
        frame_count=plan.frame_count,
        cut_frames=tuple(plan.cut_frames),
        fade_frames=tuple(plan.fade_frames),
        flash_frames=tuple(plan.flash_frames),
        highlight=highlight,
    )


def match_f1(found: Sequence[float], truth: Sequence[float], tolerance: float) -> tuple[int, int, int]:
    """``(true positives, false positives, false negatives)``: each truth matches one detection within tolerance."""
    unused = sorted(found)
    hits = 0
    for target in sorted(truth):
        close = [t for t in unused if abs(t - target) <= tolerance]
        if close:
            unused.remove(min(close, key=lambda t: abs(t - target)))
            hits += 1
    return hits, len(unused), len(truth) - hits


def f1_score(true_positives: int, false_positives: int, false_negatives: int) -> float:
    if true_positives == 0:
        return 0.0 if false_positives or false_negatives else 1.0
    precision = true_positives / (true_positives + false_positives)
    recall = true_positives / (true_positives + false_negatives)
    return 2 * precision * recall / (precision + recall)


# ----------------------------------------------------------------------------------------------
# broken and non-video files


def write_truncated(source: Path, target: Path, keep: float = 0.5) -> Path:
    """Copy the first ``keep`` fraction of ``source``: a download that stopped half way."""
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * keep)])
    return target


def write_garbage(target: Path, size: int = 200_000, seed: int = 0) -> Path:
    """Random bytes with no container signature."""
    target.write_bytes(np.random.default_rng(seed).integers(0, 256, size=size, dtype=np.uint8).tobytes())
    return target


def write_text_file(target: Path) -> Path:
    target.write_text("This is a text file, not a video.\n" * 200, encoding="utf-8")
    return target


def write_audio_only(target: Path, seconds: float = 3.0) -> Path:
    """A WAV file: FFmpeg opens it, but it has no video stream."""
    samples = (0.2 * np.sin(np.arange(int(AUDIO_RATE * seconds)) * 2 * math.pi * 440 / AUDIO_RATE) * 32767).astype(
        np.int16
    )
    with av.open(str(target), "w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=AUDIO_RATE)
        stream.layout = "mono"
        for start in range(0, len(samples), 1024):
            frame = av.AudioFrame.from_ndarray(samples[np.newaxis, start : start + 1024], format="s16", layout="mono")
            frame.sample_rate = AUDIO_RATE
            frame.pts = start
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return target


def write_image(target: Path) -> Path:
    """A PNG picture: FFmpeg opens it as a one-frame stream, but it is no video."""
    Image.fromarray(np.full((90, 160, 3), 120, dtype=np.uint8)).save(target, format="PNG")
    return target


# ----------------------------------------------------------------------------------------------
# planning


@dataclass
class _Plan:
    frame_count: int
    shots: list[tuple[int, int, str]]  # (first frame, frame count, kind)
    cut_frames: list[int]
    fade_frames: list[int]
    fade_spans: list[tuple[int, int, int]]  # (fade-out start, black start, fade-in end)
    flash_frames: list[int]


def _plan(spec: VideoSpec, rng: np.random.Generator) -> _Plan:
    fps = spec.fps
    total = round(spec.duration * fps)
    fade_out = round(0.6 * fps)
    black = max(2, round(0.2 * fps))
    fade_in = round(0.6 * fps)
    boundaries = spec.cuts + (1 if spec.fade else 0)
    shot_count = boundaries + 1
    highlight_frames = round(spec.highlight_seconds * fps) if spec.highlight else 0
    min_shot = round(1.6 * fps)
    calm_count = shot_count - (1 if spec.highlight else 0)
    free = total - highlight_frames - (black if spec.fade else 0)
    if calm_count < 1 or free < calm_count * min_shot:
        raise ValueError("the video is too short for that many cuts")

    weights = rng.uniform(0.5, 1.5, size=calm_count)
    extra = free - calm_count * min_shot
    lengths = [min_shot + int(extra * w / weights.sum()) for w in weights]
    lengths[-1] += free - sum(lengths)

    kinds = ["calm"] * calm_count
    if spec.highlight:
        # Keep the highlight away from both ends so it has quiet context on each side.
        position = int(rng.integers(1, calm_count)) if calm_count > 1 else 1
        kinds.insert(position, "highlight")
        lengths.insert(position, highlight_frames)

    fade_after: int | None = None
    if spec.fade:
        candidates = [
            i
            for i in range(shot_count - 1)
            if kinds[i] == "calm"
            and kinds[i + 1] == "calm"
            and lengths[i] > fade_out + fps
            and lengths[i + 1] > fade_in + fps
        ]
        if not candidates:
            raise ValueError("no two calm shots long enough for a fade")
        fade_after = int(rng.choice(candidates))

    shots: list[tuple[int, int, str]] = []
    cut_frames: list[int] = []
    fade_frames: list[int] = []
    fade_spans: list[tuple[int, int, int]] = []
    start = 0
    for i, (length, kind) in enumerate(zip(lengths, kinds, strict=True)):
        shots.append((start, length, kind))
        start += length
        if i == shot_count - 1:
            break
        if fade_after == i:
            fade_spans.append((start - fade_out, start, start + black + fade_in))
            fade_frames.append(start + black // 2)
            start += black
        else:
            cut_frames.append(start)

    flash_frames: list[int] = []
    if spec.flash:
        fade_zone = {f for a, _, b in fade_spans for f in range(a - fps, b + fps)}
        for first, length, kind in shots:
            middle = first + length // 2
            if kind == "calm" and length >= 3 * fps and middle not in fade_zone:
                flash_frames.append(middle)
                break
    return _Plan(total, shots, cut_frames, fade_frames, fade_spans, flash_frames)


# ----------------------------------------------------------------------------------------------
# pictures


def _palette(rng: np.random.Generator, index: int, loud: bool) -> tuple[np.ndarray, np.ndarray]:
    # Successive shots walk round the colour wheel in big steps, so neighbours differ in colour.
    hue = (index * 0.37 + rng.uniform(0, 0.1)) % 1.0
    saturation = rng.uniform(0.45, 0.8)
    value = rng.uniform(0.55, 0.85)
    dark = _hsv_to_rgb(hue, saturation, value * rng.uniform(0.25, 0.45))
    light = _hsv_to_rgb((hue + rng.uniform(-0.06, 0.06)) % 1.0, saturation * 0.7, value)
    if loud:
        dark = _hsv_to_rgb(hue, 0.9, 0.15)
        light = _hsv_to_rgb((hue + 0.5) % 1.0, 0.6, 0.95)
    return dark, light


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return np.array(rgb, dtype=np.float32) * 255


def _smooth_field(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    low = rng.uniform(0, 255, size=(max(2, cells * height // width), cells)).astype(np.uint8)
    image = Image.fromarray(low).resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.float32) / 255


def _make_shot(spec: VideoSpec, rng: np.random.Generator, start: int, frames: int, kind: str, index: int) -> _Shot:
    scale = spec.width / 320
    pad = 0 if kind == "highlight" else max(4, int(0.08 * spec.width))
    height, width = spec.height + 2 * pad, spec.width + 2 * pad
    palette = _palette(rng, 0 if spec.same_colours and kind == "calm" else index, kind == "highlight")
    if kind == "highlight":
        texture = np.zeros((1, 1, 3), dtype=np.float32)
    else:
        blobs = _smooth_field(rng, height, width, int(rng.integers(4, 12)))
        detail = _smooth_field(rng, height, width, int(rng.integers(24, 48)))
        angle = rng.uniform(0, math.pi)
        wavelength = rng.uniform(18, 60) * scale
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        stripes = 0.5 + 0.5 * np.sin((xs * math.cos(angle) + ys * math.sin(angle)) * 2 * math.pi / wavelength)
        mix = np.clip(0.55 * blobs + 0.25 * detail + 0.2 * stripes, 0, 1)[..., np.newaxis]
        texture = palette[0] + mix * (palette[1] - palette[0])
    return _Shot(
        start=start,
        frames=frames,
        kind=kind,
        texture=texture.astype(np.float32),
        pad=pad,
        period=float(rng.uniform(4, 9) * spec.fps),
        phase=float(rng.uniform(0, 2 * math.pi)),
        noise=3.0 if kind == "calm" else 28.0,
        palette=palette,
    )


def _frames(
    spec: VideoSpec, plan: _Plan, shots: list[_Shot], noise_bank: np.ndarray, rng: np.random.Generator
) -> Iterator[np.ndarray]:
    brightness = np.ones(plan.frame_count, dtype=np.float32)
    for fade_start, black_start, fade_end in plan.fade_spans:
        out_frames = black_start - fade_start
        brightness[fade_start:black_start] = np.linspace(1, 0, out_frames + 1, dtype=np.float32)[1:]
        black_end = black_start + max(2, round(0.2 * spec.fps))
        brightness[black_start:black_end] = 0
        brightness[black_end:fade_end] = np.linspace(0, 1, fade_end - black_end + 1, dtype=np.float32)[1:]
    flashes = set(plan.flash_frames)
    ys, xs = np.mgrid[0 : spec.height, 0 : spec.width].astype(np.float32)
    black_frame = np.zeros((spec.height, spec.width, 3), dtype=np.uint8)

    shot_of_frame = np.full(plan.frame_count, -1, dtype=np.int64)
    for number, shot in enumerate(shots):
        shot_of_frame[shot.start : shot.start + shot.frames] = number

    for index in range(plan.frame_count):
        number = int(shot_of_frame[index])
        if number < 0:
            yield black_frame
            continue
        shot = shots[number]
        t = index - shot.start
        if shot.kind == "highlight":
            picture = _highlight_picture(spec, shot, t, xs, ys)
        else:
            angle = 2 * math.pi * t / shot.period + shot.phase
            dx = round(shot.pad * (1 + math.sin(angle)))
            dy = round(shot.pad * (1 + math.cos(angle * 0.7)))
            picture = shot.texture[dy : dy + spec.height, dx : dx + spec.width]
        oy, ox = int(rng.integers(0, 64)), int(rng.integers(0, 64))
        noise = noise_bank[oy : oy + spec.height, ox : ox + spec.width] * (shot.noise / 128)
        pixels = picture + noise
        if brightness[index] < 1:
            pixels = pixels * brightness[index]
        if index in flashes:
            pixels = 235 + 0.08 * pixels
        yield np.clip(pixels, 0, 255).astype(np.uint8)


def _highlight_picture(spec: VideoSpec, shot: _Shot, t: int, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """A fast-moving, rotating grating with a bouncing bright disc: lots of motion, steady colours."""
    scale = spec.width / 320
    angle = 0.6 + 0.05 * t
    phase = 0.9 * t
    wavelength = 26 * scale
    grating = 0.5 + 0.5 * np.sin((xs * math.cos(angle) + ys * math.sin(angle)) * (2 * math.pi / wavelength) + phase)
    cx = spec.width * (0.5 + 0.4 * math.sin(0.31 * t))
    cy = spec.height * (0.5 + 0.4 * math.cos(0.23 * t))
    disc = ((xs - cx) ** 2 + (ys - cy) ** 2) < (0.12 * spec.height) ** 2
    mix = np.where(disc, 1.0, grating)[..., np.newaxis]
    dark, light = shot.palette
    picture: np.ndarray = dark + mix * (light - dark)
    return picture


# ----------------------------------------------------------------------------------------------
# sound


def _audio_levels(spec: VideoSpec, plan: _Plan, shots: list[_Shot]) -> np.ndarray:
    """Amplitude per video frame: quiet everywhere, loud on the highlight, silent in fades."""
    levels = np.full(plan.frame_count, CALM_AUDIO_AMPLITUDE, dtype=np.float32)
    for shot in shots:
        if shot.kind == "highlight":
            levels[shot.start : shot.start + shot.frames] = LOUD_AUDIO_AMPLITUDE
    for fade_start, _, fade_end in plan.fade_spans:
        levels[fade_start:fade_end] *= 0.3
    return levels


def _audio_track(spec: VideoSpec, levels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    samples = round(len(levels) * AUDIO_RATE / spec.fps)
    per_sample = np.repeat(levels, math.ceil(samples / len(levels)))[:samples]
    time = np.arange(samples, dtype=np.float32) / AUDIO_RATE
    tone = np.sin(2 * math.pi * 220 * time) * 0.8
    hiss = rng.normal(0, 1, size=samples).astype(np.float32) * 0.6
    track: np.ndarray = ((tone + hiss) * per_sample).astype(np.float32)
    return track
