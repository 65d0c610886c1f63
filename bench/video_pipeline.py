"""Video pipeline benchmark: the highlights pipeline against a pure PyAV decode floor and PySceneDetect.

Run from the repository root::

    .venv/bin/python bench/video_pipeline.py               # about 4 minutes on 2 cores (1 for the first render)
    .venv/bin/python bench/video_pipeline.py --repeat 3    # quicker look

Needs PySceneDetect for the third contender (``.venv/bin/pip install 'scenedetect[opencv-headless]'``,
the project's ``bench`` extra); ``--no-scenedetect`` leaves it out.

What one run does:

1. renders (or reuses, from ``bench/results/videos/``) a 60 s 1280x720 30 fps H.264 + AAC video
   with known hard cuts, a fade, a flash and a planted highlight (``tests/videos.py``), plus
   five smaller videos of other sizes, rates and cut counts (one whose shots all share one
   colour family, so that cuts show only in texture and layout) for the accuracy figures;
2. warms each contender once, then runs ``--repeat`` rounds on the big video, the order of the
   contenders rotating every round so that drift on a shared machine hits all alike:

   a. **decode floor**: PyAV decodes every video frame (``thread_type = "AUTO"``) and does
      nothing else: the frames the pipeline decodes, since scene detection sees every frame;
   b. **pipeline**: ``VideoAnalyzer.analyze`` through the ``DirectRunner`` (decode, both models,
      scenes, per-second scores, thumbnail candidates) and the clip selection of a
      ``highlights`` job;
   c. **PySceneDetect**: ``scenedetect.detect(path, AdaptiveDetector())`` with its defaults;

3. prints medians (wall and CPU seconds), the ratio pipeline / floor (target <= 1.25: on the
   medians, as the median of each round's ratio, and in CPU seconds, which a busy shared
   machine disturbs least) and pipeline vs PySceneDetect, and the hard-cut F1 (within 2 frames) of (b) and (c) on all
   videos; writes everything to ``bench/results/video-<stamp>.json``.

For the F1, detections within 1 s of a fade to black count neither way for either detector
(ours reports fades apart from cuts, PySceneDetect has no such notion); the one-frame flash is a
false positive for whoever reports it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import av  # noqa: E402
import torch  # noqa: E402

from domain.video.schemas import ClipLengths  # noqa: E402
from domain.video.selection import highlights_result  # noqa: E402
from infra.video.analyzer import DirectRunner, VideoAnalyzer  # noqa: E402
from tests.videos import VideoSpec, VideoTruth, f1_score, match_f1, render_video  # noqa: E402

MAIN = VideoSpec(width=1280, height=720, fps=30, duration=60, cuts=12, seed=7)
ACCURACY = [
    VideoSpec(width=640, height=360, fps=30, duration=40, cuts=10, seed=21),
    VideoSpec(width=320, height=180, fps=25, duration=30, cuts=6, seed=22),
    VideoSpec(width=480, height=270, fps=24, duration=30, cuts=9, seed=23),
    VideoSpec(width=360, height=640, fps=30, duration=30, cuts=5, seed=24, audio=False),
    VideoSpec(width=640, height=360, fps=25, duration=40, cuts=10, seed=25, same_colours=True),
]


@dataclass
class Timing:
    wall: list[float]
    cpu: list[float]

    def median_wall(self) -> float:
        return statistics.median(self.wall)

    def median_cpu(self) -> float:
        return statistics.median(self.cpu)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def decode_floor(path: Path) -> int:
    frames = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for _ in container.decode(stream):
            frames += 1
    return frames


def pyscenedetect_cuts(path: Path) -> list[float]:
    from scenedetect import AdaptiveDetector, detect  # type: ignore[import-untyped]

    scenes = detect(str(path), AdaptiveDetector())
    return [start.seconds for start, _ in scenes[1:]]


def cut_f1(found: list[float], truth: VideoTruth) -> tuple[int, int, int]:
    kept = [t for t in found if all(abs(t - fade) > 1.0 for fade in truth.fade_times)]
    return match_f1(kept, truth.cut_times, tolerance=2 / truth.fps + 1e-3)


def video(spec: VideoSpec, cache: Path) -> VideoTruth:
    """Render ``spec`` once; later runs reuse the file (the truth is recomputed, it is cheap to plan)."""
    colours = "-samecolours" if spec.same_colours else ""
    name = f"{spec.width}x{spec.height}-{spec.fps}fps-{spec.duration:g}s-{spec.cuts}cuts-seed{spec.seed}{colours}.mp4"
    path = cache / name
    marker = path.with_suffix(".json")
    if path.exists() and marker.exists():
        truth_fields = json.loads(marker.read_text())
        return VideoTruth(
            path=path,
            spec=spec,
            frame_count=truth_fields["frame_count"],
            cut_frames=tuple(truth_fields["cut_frames"]),
            fade_frames=tuple(truth_fields["fade_frames"]),
            flash_frames=tuple(truth_fields["flash_frames"]),
            highlight=(truth_fields["highlight"][0], truth_fields["highlight"][1])
            if truth_fields["highlight"]
            else None,
        )
    print(f"rendering {name} ...", flush=True)
    truth = render_video(path, spec)
    marker.write_text(
        json.dumps(
            {
                "frame_count": truth.frame_count,
                "cut_frames": truth.cut_frames,
                "fade_frames": truth.fade_frames,
                "flash_frames": truth.flash_frames,
                "highlight": truth.highlight,
            }
        )
    )
    return truth


async def main() -> None:
    parser = argparse.ArgumentParser(description="Video pipeline vs decode floor vs PySceneDetect")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--no-scenedetect", action="store_true")
    parser.add_argument("--cache", type=Path, default=ROOT / "bench" / "results" / "videos")
    arguments = parser.parse_args()
    arguments.cache.mkdir(parents=True, exist_ok=True)

    main_video = video(MAIN, arguments.cache)
    others = [video(spec, arguments.cache) for spec in ACCURACY]
    runner = DirectRunner(threads=arguments.threads)
    analyzer = VideoAnalyzer(runner)
    lengths = ClipLengths()

    async def pipeline(path: Path) -> list[float]:
        analysis = await analyzer.analyze(path)
        highlights_result(analysis, max_clips=10, lengths=lengths)
        return analysis.cuts

    contenders: dict[str, Callable[[Path], Any]] = {
        "decode floor (PyAV)": decode_floor,
        "pipeline (ours)": pipeline,
    }
    if not arguments.no_scenedetect:
        contenders["PySceneDetect AdaptiveDetector"] = pyscenedetect_cuts

    async def run(name: str, path: Path) -> tuple[float, float, Any]:
        function = contenders[name]
        cpu, wall = cpu_seconds(), time.perf_counter()
        result = function(path)
        if asyncio.iscoroutine(result):
            result = await result
        return time.perf_counter() - wall, cpu_seconds() - cpu, result

    names = list(contenders)
    for name in names:  # warm-up: imports, model loading, page cache
        await run(name, main_video.path)
    timings = {name: Timing([], []) for name in names}
    for round_number in range(arguments.repeat):
        order = names[round_number % len(names) :] + names[: round_number % len(names)]
        for name in order:
            wall, cpu, _ = await run(name, main_video.path)
            timings[name].wall.append(wall)
            timings[name].cpu.append(cpu)
        print(f"round {round_number + 1}: " + ", ".join(f"{n} {timings[n].wall[-1]:.2f}s" for n in names), flush=True)

    accuracy: dict[str, dict[str, list[int]]] = {}
    for truth in [main_video, *others]:
        label = truth.path.name
        accuracy[label] = {"pipeline (ours)": list(cut_f1(await pipeline(truth.path), truth))}
        if not arguments.no_scenedetect:
            accuracy[label]["PySceneDetect AdaptiveDetector"] = list(cut_f1(pyscenedetect_cuts(truth.path), truth))

    floor = timings["decode floor (PyAV)"].median_wall()
    ours = timings["pipeline (ours)"].median_wall()
    print()
    print(f"video: {main_video.path.name} ({main_video.frame_count} frames), {arguments.repeat} rounds, medians")
    print("| contender | wall s | CPU s | wall / floor |")
    print("|---|---:|---:|---:|")
    for name in names:
        timing = timings[name]
        print(
            f"| {name} | {timing.median_wall():.2f} | {timing.median_cpu():.2f} | {timing.median_wall() / floor:.2f} |"
        )
    floor_timing, ours_timing = timings["decode floor (PyAV)"], timings["pipeline (ours)"]
    paired = [o / f for o, f in zip(ours_timing.wall, floor_timing.wall, strict=True)]
    print(
        f"\npipeline / floor: {ours / floor:.3f} on medians, {statistics.median(paired):.3f} as the median of the "
        f"rounds' ratios (min {min(paired):.3f}, max {max(paired):.3f}), "
        f"{ours_timing.median_cpu() / floor_timing.median_cpu():.3f} in CPU seconds (target <= 1.25)"
    )
    if not arguments.no_scenedetect:
        other = timings["PySceneDetect AdaptiveDetector"]
        print(
            f"PySceneDetect / pipeline: {other.median_wall() / ours:.2f} wall, "
            f"{other.median_cpu() / ours_timing.median_cpu():.2f} CPU"
        )
    print(f"load average after the rounds: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("\n| video | ours TP/FP/FN | ours F1 | PySceneDetect TP/FP/FN | PySceneDetect F1 |")
    print("|---|---|---:|---|---:|")
    totals: dict[str, list[int]] = {}
    for label, by_detector in accuracy.items():
        cells = []
        for detector in ("pipeline (ours)", "PySceneDetect AdaptiveDetector"):
            counts = by_detector.get(detector)
            if counts is None:
                cells += ["-", "-"]
                continue
            totals[detector] = [a + b for a, b in zip(totals.get(detector, [0, 0, 0]), counts, strict=True)]
            cells += ["/".join(map(str, counts)), f"{f1_score(*counts):.3f}"]
        print(f"| {label} | " + " | ".join(cells) + " |")
    print(
        "| **all** | "
        + " | ".join(
            f"{'/'.join(map(str, totals[d]))} | {f1_score(*totals[d]):.3f}" if d in totals else "- | -"
            for d in ("pipeline (ours)", "PySceneDetect AdaptiveDetector")
        )
        + " |"
    )

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report = {
        "date": stamp,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "versions": {"torch": torch.__version__, "av": av.__version__},
        "torch_threads": arguments.threads,
        "video": {"path": main_video.path.name, "frames": main_video.frame_count, "spec": asdict(MAIN)},
        "timings": {name: asdict(timing) for name, timing in timings.items()},
        "paired_ratios": paired,
        "accuracy": accuracy,
    }
    out = ROOT / "bench" / "results" / f"video-{stamp}.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {out.relative_to(ROOT)}")
    runner.close()


if __name__ == "__main__":
    asyncio.run(main())
