"""The shipped model repository: layout, configs, and TorchScript that matches the eager modules."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from infra.models.builtin import HIGHLIGHT_SCORER, REPOSITORY_PATH, SCENE_DETECTOR
from infra.models.builtin.highlight_scorer import CONTEXT_SECONDS, FEATURES, HighlightScorer
from infra.models.builtin.scene_detector import ANALYSIS_SIZE, LAYOUT, SceneDetector
from infra.video.analyzer import latest_model_path, load_model, read_model_config
from infra.video.highlights import FEATURE_NAMES

WINDOW = 2 * CONTEXT_SECONDS + 1


def frames(count: int, seed: int = 0) -> torch.Tensor:
    width, height = ANALYSIS_SIZE
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (count, height, width, 3), dtype=np.uint8))


def windows(count: int, seed: int = 0) -> torch.Tensor:
    values = np.random.default_rng(seed).normal(0, 1.5, (count, WINDOW, FEATURES)).astype(np.float32)
    return torch.from_numpy(values)


@pytest.mark.parametrize("name", [SCENE_DETECTOR, HIGHLIGHT_SCORER])
def test_the_repository_has_the_layout_the_pool_reads(name: str) -> None:
    config = json.loads((REPOSITORY_PATH / name / "config.json").read_text(encoding="utf-8"))
    assert set(config) == {"max_batch_size", "max_queue_delay_ms", "warmup", "description"}
    assert isinstance(config["max_batch_size"], int)
    assert config["max_batch_size"] > 0
    assert isinstance(config["max_queue_delay_ms"], int | float)
    assert config["warmup"]["dtype"] in {"uint8", "float32"}
    assert all(isinstance(size, int) and size > 0 for size in config["warmup"]["shape"])
    path = latest_model_path(REPOSITORY_PATH, name)
    assert path.parent.name.isdigit()
    assert int(path.parent.name) >= 1
    assert path.stat().st_size < 100_000
    assert read_model_config(REPOSITORY_PATH, name) == config


def test_warmup_shapes_are_what_the_models_take() -> None:
    detector = read_model_config(REPOSITORY_PATH, SCENE_DETECTOR)["warmup"]
    scorer = read_model_config(REPOSITORY_PATH, HIGHLIGHT_SCORER)["warmup"]
    assert detector == {"shape": [ANALYSIS_SIZE[1], ANALYSIS_SIZE[0], 3], "dtype": "uint8"}
    assert scorer == {"shape": [WINDOW, len(FEATURE_NAMES)], "dtype": "float32"}
    for name, warmup in ((SCENE_DETECTOR, detector), (HIGHLIGHT_SCORER, scorer)):
        batch = torch.zeros((3, *warmup["shape"]), dtype=getattr(torch, warmup["dtype"]))
        with torch.inference_mode():
            out = load_model(REPOSITORY_PATH, name)(batch)
        assert out.shape[0] == 3
        assert out.dtype == torch.float32


def test_the_scene_detector_torchscript_matches_the_eager_module() -> None:
    batch = frames(40)
    with torch.inference_mode():
        eager = SceneDetector()(batch)
        scripted = load_model(REPOSITORY_PATH, SCENE_DETECTOR)(batch)
    assert scripted.shape == (40, LAYOUT.size)
    torch.testing.assert_close(scripted, eager, rtol=0, atol=1e-6)
    histograms = scripted[:, : LAYOUT.cells.start]
    torch.testing.assert_close(histograms.sum(1), torch.full((40,), 2.0), rtol=0, atol=1e-5)


def test_the_highlight_scorer_torchscript_matches_the_eager_module() -> None:
    scripted = load_model(REPOSITORY_PATH, HIGHLIGHT_SCORER)
    eager = HighlightScorer()
    eager.load_state_dict(scripted.state_dict())
    eager.eval()
    batch = windows(64)
    with torch.inference_mode():
        torch.testing.assert_close(scripted(batch), eager(batch), rtol=0, atol=1e-6)


@pytest.mark.parametrize(("name", "make"), [(SCENE_DETECTOR, frames), (HIGHLIGHT_SCORER, windows)])
def test_items_are_independent(name: str, make: object) -> None:
    """The pool concatenates callers' batches: an item's output must not depend on its batch."""
    assert callable(make)
    model = load_model(REPOSITORY_PATH, name)
    batch = make(70, seed=3)
    with torch.inference_mode():
        whole = model(batch)
        pieces = torch.cat([model(batch[:1]), model(batch[1:33]), model(batch[33:])])
    torch.testing.assert_close(whole, pieces, rtol=0, atol=1e-6)


def test_the_shipped_scorer_ranks_a_loud_lively_second_above_a_calm_one() -> None:
    names = list(FEATURE_NAMES)
    calm = np.zeros((WINDOW, FEATURES), dtype=np.float32)
    calm[:, names.index("motion_level")] = 1.2
    calm[:, names.index("loudness_level")] = 0.8
    calm[:, names.index("has_audio")] = 1.0
    lively = calm.copy()
    lively[:, names.index("motion_z")] = 5.0
    lively[:, names.index("motion_level")] = 2.4
    lively[:, names.index("loudness_z")] = 5.0
    lively[:, names.index("loudness_peak_z")] = 4.0
    lively[:, names.index("loudness_level")] = 1.3
    with torch.inference_mode():
        scores = load_model(REPOSITORY_PATH, HIGHLIGHT_SCORER)(torch.from_numpy(np.stack([calm, lively])))
    assert scores[0] < 0.2 < 0.8 < scores[1]


def test_loading_does_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_model(REPOSITORY_PATH, SCENE_DETECTOR)
