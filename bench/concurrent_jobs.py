"""Throughput of concurrent short video jobs through the model pool, dynamic batching on vs off.

Sixteen (``--jobs``) analyses of a short generated video run at once against one model pool, as
a worker with ``VIDEO_WORKER_CONCURRENCY=16`` would run them; the same with a pool that runs
every request alone. Rounds alternate which pool goes first. Prints jobs/s, the wall time of a
round and the average batch size from the pool's own metrics.

    .venv/bin/python bench/concurrent_jobs.py              # about a minute
    .venv/bin/python bench/concurrent_jobs.py --jobs 32 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

from prometheus_client import CollectorRegistry

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from infra.models import BUILTIN_REPOSITORY, ModelPool  # noqa: E402
from infra.video.analyzer import VideoAnalyzer  # noqa: E402
from tests.videos import VideoSpec, render_video  # noqa: E402

VIDEOS = REPO_ROOT / "bench" / "results" / "videos"


def sample_video() -> Path:
    path = VIDEOS / "short-jobs-320x180-12s.mp4"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        render_video(path, VideoSpec(duration=12, cuts=3, seed=41))
    return path


def batch_average(registry: CollectorRegistry) -> float:
    inferences = executions = 0.0
    for family in registry.collect():
        for sample in family.samples:
            if sample.name == "model_inference_count_total":
                inferences += sample.value
            elif sample.name == "model_execution_count_total":
                executions += sample.value
    return inferences / executions if executions else 0.0


async def one_round(pool: ModelPool, video: Path, jobs: int) -> float:
    analyzer = VideoAnalyzer(pool)
    started = time.perf_counter()
    await asyncio.gather(*(analyzer.analyze(video) for _ in range(jobs)))
    return time.perf_counter() - started


async def main(args: argparse.Namespace) -> None:
    video = sample_video()
    registries = {"batching": CollectorRegistry(), "no batching": CollectorRegistry()}
    pools = {
        name: ModelPool([BUILTIN_REPOSITORY], batching=name == "batching", num_threads=1, registry=registry)
        for name, registry in registries.items()
    }
    for pool in pools.values():
        await pool.start()
        await one_round(pool, video, 2)  # warm
    walls: dict[str, list[float]] = {name: [] for name in pools}
    for round_no in range(args.rounds):
        order = list(pools) if round_no % 2 == 0 else list(reversed(pools))
        for name in order:
            walls[name].append(await one_round(pools[name], video, args.jobs))
    for pool in pools.values():
        await pool.close()
    print(f"{args.jobs} concurrent analyses of a 12 s 320x180 video, {args.rounds} rounds, 1 torch thread")
    print(f"{'mode':<12} {'jobs/s':>8} {'round s':>8} {'avg batch':>10}  rounds s")
    rates = {}
    for name, values in walls.items():
        wall = statistics.median(values)
        rates[name] = args.jobs / wall
        rounds = "/".join(f"{v:.2f}" for v in values)
        print(f"{name:<12} {rates[name]:>8.2f} {wall:>8.2f} {batch_average(registries[name]):>10.1f}  {rounds}")
    print(f"batching on/off: {rates['batching'] / rates['no batching']:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=4)
    asyncio.run(main(parser.parse_args()))
