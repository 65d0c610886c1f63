"""``scene-detector``: a colour signature per frame, from which shot boundaries are found.

One item is one frame, so items are independent and a pool may batch frames of many videos
together. The signature holds

- a 16-bin luma histogram and an 8x8 joint chroma (Cb, Cr) histogram, each summing to 1: they
  barely move when the camera or the subject moves, and jump when the shot changes;
- the mean RGB of a 4x4 grid of cells (0..1): catches a cut between two shots with the same
  colours in a different layout;
- the mean and the standard deviation of the luma (0..1): fades to black and flashes.

Comparing signatures over time (the adaptive threshold, flash and fade rules) needs the whole
timeline and happens in ``infra.video.scenes``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional

__all__ = ["ANALYSIS_SIZE", "LAYOUT", "SceneDetector", "SignatureLayout"]

ANALYSIS_SIZE = (64, 36)
"""Width and height the decoder scales every frame to for this model (the pool batches them)."""


@dataclass(frozen=True)
class SignatureLayout:
    luma_bins: int = 16
    chroma_bins: int = 8
    grid: int = 4

    @property
    def luma(self) -> slice:
        return slice(0, self.luma_bins)

    @property
    def chroma(self) -> slice:
        return slice(self.luma_bins, self._cells_start)

    @property
    def cells(self) -> slice:
        return slice(self._cells_start, self.mean_luma)

    @property
    def mean_luma(self) -> int:
        return self._cells_start + 3 * self.grid**2

    @property
    def luma_std(self) -> int:
        return self.mean_luma + 1

    @property
    def size(self) -> int:
        return self.mean_luma + 2

    @property
    def _cells_start(self) -> int:
        return self.luma_bins + self.chroma_bins**2


LAYOUT = SignatureLayout()


class SceneDetector(nn.Module):
    """``uint8 [N, H, W, 3]`` RGB frames -> ``float32 [N, LAYOUT.size]`` signatures."""

    def __init__(self, layout: SignatureLayout = LAYOUT, chunk: int = 32) -> None:
        super().__init__()
        self.luma_bins = layout.luma_bins
        self.chroma_bins = layout.chroma_bins
        self.grid = layout.grid
        self.features = layout.size
        # Frames are processed a few at a time so the float copies stay in the CPU cache.
        self.chunk = chunk

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.dim() != 4 or frames.size(3) != 3:
            raise ValueError("scene-detector expects uint8 frames shaped [N, H, W, 3]")
        if frames.size(0) == 0:
            return torch.zeros((0, self.features), dtype=torch.float32, device=frames.device)
        parts: list[torch.Tensor] = []
        for part in torch.split(frames, self.chunk):
            parts.append(self._signature(part))
        return torch.cat(parts, 0)

    def _signature(self, frames: torch.Tensor) -> torch.Tensor:
        count, height, width = frames.size(0), frames.size(1), frames.size(2)
        pixels = height * width
        planes = frames.permute(0, 3, 1, 2).to(torch.float32)  # [n, 3, H, W], 0..255
        flat = planes.reshape(count, 3, pixels)
        red, green, blue = flat[:, 0], flat[:, 1], flat[:, 2]
        # BT.601 full-range YCbCr; luma 0..255, chroma 0..255 centred on 128.
        luma = red * 0.299 + green * 0.587 + blue * 0.114
        cb = red * -0.168736 + green * -0.331264 + blue * 0.5 + 128.0
        cr = red * 0.5 + green * -0.418688 + blue * -0.081312 + 128.0

        luma_bin = (luma * (self.luma_bins / 256.0)).to(torch.int64).clamp_(0, self.luma_bins - 1)
        cb_bin = (cb * (self.chroma_bins / 256.0)).to(torch.int64).clamp_(0, self.chroma_bins - 1)
        cr_bin = (cr * (self.chroma_bins / 256.0)).to(torch.int64).clamp_(0, self.chroma_bins - 1)
        bins = self.luma_bins + self.chroma_bins * self.chroma_bins
        offset = (torch.arange(count, device=frames.device, dtype=torch.int64) * bins).unsqueeze(1)
        index = torch.cat([luma_bin + offset, cb_bin * self.chroma_bins + cr_bin + (offset + self.luma_bins)], 1)
        histograms = torch.bincount(index.reshape(-1), minlength=count * bins).reshape(count, bins)
        histograms = histograms.to(torch.float32) / float(pixels)

        cells = functional.adaptive_avg_pool2d(planes, (self.grid, self.grid)).reshape(count, -1) / 255.0
        scaled_luma = luma / 255.0
        mean_luma = scaled_luma.mean(1, keepdim=True)
        luma_std = ((scaled_luma * scaled_luma).mean(1, keepdim=True) - mean_luma * mean_luma).clamp_min(0.0).sqrt()
        return torch.cat([histograms, cells, mean_luma, luma_std], 1)
