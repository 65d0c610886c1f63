"""``highlight-scorer``: how much of a highlight one second of video is, from it and its neighbours.

One item is one second together with ``context`` seconds on each side: a window
``float32 [2 * context + 1, FEATURES]`` of per-second features (motion, loudness, cut rate; see
``infra.video.highlights``). Items are independent, so a pool may batch seconds of many videos.

The head is small and learnable: a fixed normalisation of the features (statistics of the
training data), one per-second MLP shared over the window, and a learnt temporal smoothing kernel
that mixes the window's logits before the sigmoid. ``infra.models.builtin.export`` fits it on
synthetic timelines; a later fine-tune on labelled clips only has to replace the weights.
"""

import torch
from torch import nn

__all__ = ["CONTEXT_SECONDS", "FEATURES", "HighlightScorer"]

FEATURES = 7
CONTEXT_SECONDS = 2


class HighlightScorer(nn.Module):
    """``float32 [N, 2 * context + 1, FEATURES]`` windows -> ``float32 [N]`` scores in 0..1."""

    feature_mean: torch.Tensor
    feature_std: torch.Tensor

    def __init__(self, features: int = FEATURES, context: int = CONTEXT_SECONDS, hidden: int = 16) -> None:
        super().__init__()
        self.features = features
        self.window = 2 * context + 1
        self.register_buffer("feature_mean", torch.zeros(features))
        self.register_buffer("feature_std", torch.ones(features))
        self.step = nn.Sequential(nn.Linear(features, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        # Zero logits: an even average over the window until training sharpens it.
        self.smoothing = nn.Parameter(torch.zeros(self.window))

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        if windows.dim() != 3 or windows.size(1) != self.window or windows.size(2) != self.features:
            raise ValueError("highlight-scorer expects float32 windows shaped [N, window, features]")
        normalised = (windows - self.feature_mean) / self.feature_std
        logits = self.step(normalised).squeeze(-1)  # [N, window]
        kernel = torch.softmax(self.smoothing, 0)
        return torch.sigmoid((logits * kernel).sum(-1))

    def set_normalisation(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Store the training data's feature statistics (``std`` is floored to keep it finite)."""
        self.feature_mean.copy_(mean)
        self.feature_std.copy_(std.clamp_min(1e-3))
