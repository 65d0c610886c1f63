"""Model pool benchmark: dynamic batching on vs off, side by side, on a small conv model.

Run from the repository root::

    .venv/bin/python bench/model_batching.py                      # about 1 minute
    .venv/bin/python bench/model_batching.py --duration 2 --rounds 1   # quick look
    .venv/bin/python bench/model_batching.py --device cuda --callers 16 64 256

What one run does:

1. scripts a small frame scorer (two strided 3x3 convs, global pooling, a linear head;
   uint8 frames of 3x64x64 in, one score out) into a temporary model repository, with
   ``max_batch_size`` and ``max_queue_delay_ms`` from the flags;
2. starts two pools on it, one with batching and one with ``batching=False`` (each
   request runs alone), each with its own metrics registry;
3. for each number of concurrent callers, runs ``--rounds`` rounds; in each round both
   pools get ``--duration`` seconds of closed-loop load (every caller sends one frame,
   awaits the score, sends the next), back to back, the order flipping every round;
4. prints items/s, the average batch size (inferences / executions, from the pool's own
   metrics), p50/p99 request latency (median over rounds) and the ratio on/off.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from prometheus_client import CollectorRegistry
from torch import nn

from infra.models import ModelPool

MODEL = "frame-scorer"


class FrameScorer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(32, 1)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(frames.float() / 255.0))


def make_repository(root: Path, *, max_batch_size: int, max_queue_delay_ms: float) -> None:
    model_dir = root / MODEL
    (model_dir / "1").mkdir(parents=True)
    (model_dir / "config.json").write_text(
        f'{{"max_batch_size": {max_batch_size}, "max_queue_delay_ms": {max_queue_delay_ms}, '
        '"warmup": {"shape": [3, 64, 64], "dtype": "uint8"}, "description": "benchmark frame scorer"}'
    )
    torch.manual_seed(0)
    torch.jit.save(torch.jit.script(FrameScorer().eval()), str(model_dir / "1" / "model.pt"))  # type: ignore[no-untyped-call]


@dataclass
class Mode:
    name: str
    pool: ModelPool
    registry: CollectorRegistry
    rates: dict[int, list[float]] = field(default_factory=dict)
    batch: dict[int, list[float]] = field(default_factory=dict)
    p50: dict[int, list[float]] = field(default_factory=dict)
    p99: dict[int, list[float]] = field(default_factory=dict)

    def counters(self) -> tuple[float, float]:
        labels = {"model": MODEL, "version": "1"}
        items = self.registry.get_sample_value("model_inference_count_total", labels) or 0.0
        runs = self.registry.get_sample_value("model_execution_count_total", labels) or 0.0
        return items, runs


async def load(pool: ModelPool, callers: int, duration: float) -> tuple[int, list[float], float]:
    frame = torch.randint(0, 256, (1, 3, 64, 64), dtype=torch.uint8)
    latencies: list[float] = []
    deadline = time.perf_counter() + duration

    async def caller() -> int:
        done = 0
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await pool.infer(MODEL, frame, timeout=30)
            latencies.append(time.perf_counter() - started)
            done += 1
        return done

    started = time.perf_counter()
    done = sum(await asyncio.gather(*(caller() for _ in range(callers))))
    return done, latencies, time.perf_counter() - started


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        repo = Path(scratch)
        make_repository(repo, max_batch_size=args.max_batch_size, max_queue_delay_ms=args.max_queue_delay_ms)
        modes = []
        for name, batching in (("batching", True), ("no batching", False)):
            registry = CollectorRegistry()
            pool = ModelPool([repo], device=args.device, num_threads=args.threads, batching=batching, registry=registry)
            await pool.start()
            if not pool.ready:
                raise SystemExit(f"the pool did not load the model: {pool.status()}")
            modes.append(Mode(name, pool, registry))

        print(
            f"torch {torch.__version__}, device {modes[0].pool.device}, intra-op threads {torch.get_num_threads()}, "
            f"{platform.processor() or platform.machine()}, cpus {len(os.sched_getaffinity(0))}; "
            f"max_batch_size {args.max_batch_size}, max_queue_delay_ms {args.max_queue_delay_ms}, "
            f"{args.rounds} round(s) x {args.duration:g} s per mode and caller count"
        )
        for mode in modes:  # a short untimed pass each, so the first timed round is not the JIT's
            await load(mode.pool, max(args.callers), 0.5)
        for callers in args.callers:
            for round_ in range(args.rounds):
                order = modes if round_ % 2 == 0 else modes[::-1]
                for mode in order:
                    items_before, runs_before = mode.counters()
                    done, latencies, elapsed = await load(mode.pool, callers, args.duration)
                    items_after, runs_after = mode.counters()
                    mode.rates.setdefault(callers, []).append(done / elapsed)
                    mode.batch.setdefault(callers, []).append(
                        (items_after - items_before) / max(runs_after - runs_before, 1)
                    )
                    mode.p50.setdefault(callers, []).append(quantile(latencies, 0.5))
                    mode.p99.setdefault(callers, []).append(quantile(latencies, 0.99))
        for mode in modes:
            await mode.pool.close()

    print()
    print(f"{'callers':>7}  {'mode':<12} {'items/s':>9} {'avg batch':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for callers in args.callers:
        for mode in modes:
            rate, batch = statistics.median(mode.rates[callers]), statistics.median(mode.batch[callers])
            p50, p99 = statistics.median(mode.p50[callers]) * 1000, statistics.median(mode.p99[callers]) * 1000
            print(f"{callers:>7}  {mode.name:<12} {rate:>9.0f} {batch:>9.1f} {p50:>8.1f} {p99:>8.1f}")
        ratio = statistics.median(modes[0].rates[callers]) / statistics.median(modes[1].rates[callers])
        print(f"{callers:>7}  {'ratio on/off':<12} {ratio:>9.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--callers", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of load per mode, round and caller count")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--max-queue-delay-ms", type=float, default=2.0)
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: CUDA when available)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message=r"`torch\.jit\.", category=DeprecationWarning)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
