"""Rebuild the shipped models: ``python -m infra.models.builtin.export [--repository DIR]``.

``scene-detector`` has no weights to learn; it is scripted as is. ``highlight-scorer`` is fitted
here, deterministically (fixed seeds, one thread, deterministic algorithms), on synthetic
per-second timelines: shots of ordinary footage (calm or busy camera work, speech or music level
audio, some silent videos) with planted highlights, where a loud and lively stretch is the
clearest highlight and a stretch that is only loud or only lively is half of one. The timelines
go through the same feature code as real videos (``infra.video.highlights``). A later fine-tune
on labelled clips replaces these weights; the architecture and features stay.

The script checks that each saved TorchScript file loads and matches the eager module, then
writes ``<name>/config.json`` and ``<name>/<version>/model.pt``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from infra.models.builtin import HIGHLIGHT_SCORER, REPOSITORY_PATH, SCENE_DETECTOR
from infra.models.builtin.highlight_scorer import CONTEXT_SECONDS, FEATURES, HighlightScorer
from infra.models.builtin.scene_detector import ANALYSIS_SIZE, SceneDetector
from infra.video.highlights import SILENCE_DB, SecondSignals, context_windows, highlight_features

__all__ = ["build_highlight_scorer", "build_scene_detector", "export", "synthetic_timeline"]

VERSION = 1
SEED = 20261125


@dataclass(frozen=True)
class Timeline:
    signals: SecondSignals
    labels: npt.NDArray[np.float32]


def build_scene_detector() -> SceneDetector:
    return SceneDetector().eval()


def synthetic_timeline(rng: np.random.Generator) -> Timeline:
    """One made-up video, as per-second signals, with a highlight label per second."""
    seconds = int(rng.integers(30, 400))
    has_audio = rng.random() > 0.1
    music = rng.random() < 0.15
    log_motion = np.zeros(seconds)
    loudness = np.zeros(seconds)
    cuts = np.zeros(seconds, dtype=np.float32)
    start = 0
    while start < seconds:
        length = int(np.clip(rng.gamma(2.0, 3.0), 1, 30))
        busy = rng.random() < 0.2
        log_motion[start : start + length] = rng.normal(-1.8, 0.35) + (rng.uniform(0.3, 0.8) if busy else 0.0)
        loudness[start : start + length] = rng.normal(-14 if music else -28, 4 if music else 6)
        if start:
            cuts[start] += 1
        start += length
    labels = np.zeros(seconds, dtype=np.float32)
    for _ in range(int(rng.integers(0, 4))):
        length = int(rng.integers(3, 13))
        at = int(rng.integers(0, max(1, seconds - length)))
        kind = rng.choice(["both", "loud", "lively"], p=[0.6, 0.2, 0.2])
        span = slice(at, at + length)
        if kind in ("both", "lively"):
            log_motion[span] += rng.uniform(0.7, 1.4)
            cuts[span] += (rng.random(length) < 0.25).astype(np.float32)
        if kind in ("both", "loud") and has_audio:
            loudness[span] = np.maximum(loudness[span] + rng.uniform(10, 25), rng.uniform(-14, -4))
        label = {"both": 1.0, "loud": 0.55, "lively": 0.45}[str(kind)]
        if kind == "loud" and not has_audio:
            label = 0.0
        labels[span] = np.maximum(labels[span], label)
    log_motion += rng.normal(0, 0.12, seconds)
    loudness = np.minimum(loudness + rng.normal(0, 2.5, seconds), -1.0)
    peak = np.minimum(loudness + np.abs(rng.normal(4, 2, seconds)), 0.0)
    if not has_audio:
        loudness[:] = SILENCE_DB
        peak[:] = SILENCE_DB
    motion = np.clip(10.0**log_motion, 0, 1).astype(np.float32)
    signals = SecondSignals(
        motion=motion,
        loudness_db=loudness.astype(np.float32),
        peak_db=peak.astype(np.float32),
        cuts=cuts,
        has_audio=bool(has_audio),
    )
    return Timeline(signals=signals, labels=labels)


def build_highlight_scorer(timelines: int = 250, steps: int = 300, *, verbose: bool = False) -> HighlightScorer:
    """Fit the head on synthetic timelines; same inputs give the same weights."""
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    inputs, targets = [], []
    for _ in range(timelines):
        timeline = synthetic_timeline(rng)
        inputs.append(context_windows(highlight_features(timeline.signals), CONTEXT_SECONDS))
        targets.append(timeline.labels)
    windows = torch.from_numpy(np.concatenate(inputs))
    labels = torch.from_numpy(np.concatenate(targets))

    model = HighlightScorer(FEATURES, CONTEXT_SECONDS)
    centre = windows[:, CONTEXT_SECONDS]
    model.set_normalisation(centre.mean(0), centre.std(0))
    optimiser = torch.optim.Adam(model.parameters(), lr=0.02)
    loss_function = nn.BCELoss()
    model.train()
    for step in range(steps):
        optimiser.zero_grad()
        loss = loss_function(model(windows), labels)
        loss.backward()
        optimiser.step()
        if verbose and (step % 100 == 0 or step == steps - 1):
            print(f"  step {step:4d}  loss {loss.item():.4f}")
    model.eval()
    if verbose:
        with torch.no_grad():
            scores = model(windows)
        highlight = labels >= 0.99
        print(
            f"  mean score: highlights {scores[highlight].mean():.3f}, "
            f"half {scores[(labels > 0) & ~highlight].mean():.3f}, rest {scores[labels == 0].mean():.3f}"
        )
    return model


def _check_and_save(module: nn.Module, example: torch.Tensor, target: Path) -> None:
    scripted = torch.jit.script(module)
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.save(scripted, str(target))
    loaded = torch.jit.load(str(target))  # type: ignore[no-untyped-call]
    with torch.inference_mode():
        expected, actual = module(example), loaded(example)
    if expected.shape != actual.shape or not torch.allclose(expected, actual, atol=1e-6):
        raise RuntimeError(f"{target}: TorchScript output differs from the eager module")


def _write_config(directory: Path, config: dict[str, Any]) -> None:
    (directory / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def export(repository: Path = REPOSITORY_PATH, *, verbose: bool = True) -> None:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    width, height = ANALYSIS_SIZE

    detector = build_scene_detector()
    frames = torch.from_numpy(np.random.default_rng(SEED).integers(0, 256, (8, height, width, 3), dtype=np.uint8))
    _check_and_save(detector, frames, repository / SCENE_DETECTOR / str(VERSION) / "model.pt")
    _write_config(
        repository / SCENE_DETECTOR,
        {
            "max_batch_size": 256,
            "max_queue_delay_ms": 2,
            "warmup": {"shape": [height, width, 3], "dtype": "uint8"},
            "description": (
                f"Per-frame colour signature for shot-boundary detection. In: uint8 [N, {height}, {width}, 3] RGB "
                f"frames. Out: float32 [N, {detector.features}]: 16-bin luma and 8x8 CbCr histograms, 4x4 grid "
                "of mean RGB, mean and spread of luma."
            ),
        },
    )

    if verbose:
        print("fitting highlight-scorer on synthetic timelines")
    scorer = build_highlight_scorer(verbose=verbose)
    window = 2 * CONTEXT_SECONDS + 1
    example = torch.from_numpy(np.random.default_rng(SEED).normal(0, 1, (8, window, FEATURES)).astype(np.float32))
    _check_and_save(scorer, example, repository / HIGHLIGHT_SCORER / str(VERSION) / "model.pt")
    _write_config(
        repository / HIGHLIGHT_SCORER,
        {
            "max_batch_size": 1024,
            "max_queue_delay_ms": 2,
            "warmup": {"shape": [window, FEATURES], "dtype": "float32"},
            "description": (
                f"Highlight score of one second from its +-{CONTEXT_SECONDS} s context. In: float32 "
                f"[N, {window}, {FEATURES}] per-second features (motion, loudness, cut rate). Out: float32 [N] in 0..1."
            ),
        },
    )
    if verbose:
        print(f"wrote {SCENE_DETECTOR} and {HIGHLIGHT_SCORER} version {VERSION} to {repository}")


def main() -> None:
    if os.environ.get("PYTHONHASHSEED") != "0":
        # TorchScript writes some module constants in set order: fix string hashing so that the
        # archives come out byte for byte the same on every run (the weights are the same anyway).
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable, "-m", "infra.models.builtin.export", *sys.argv[1:]])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repository", type=Path, default=REPOSITORY_PATH)
    parser.add_argument("--quiet", action="store_true")
    arguments = parser.parse_args()
    export(arguments.repository, verbose=not arguments.quiet)


if __name__ == "__main__":
    main()
