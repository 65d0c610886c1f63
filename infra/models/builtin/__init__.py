"""The service's own torch models, and the export script that writes them to the model repository.

``scene-detector`` turns each frame into a colour signature; ``highlight-scorer`` scores one second
of video from its context. Both are small TorchScript archives shipped in
``infra/models/repository/<name>/<version>/model.pt`` and rebuilt deterministically with
``python -m infra.models.builtin.export``.
"""

from __future__ import annotations

from pathlib import Path

REPOSITORY_PATH = Path(__file__).resolve().parent.parent / "repository"
"""Where the shipped models live: ``<name>/config.json`` and ``<name>/<version>/model.pt``."""

SCENE_DETECTOR = "scene-detector"
HIGHLIGHT_SCORER = "highlight-scorer"
