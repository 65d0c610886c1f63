"""``litestar video analyze``: the pipeline from the command line, on real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.server import REPO_ROOT
from tests.videos import VideoSpec, render_video, write_garbage


def analyze(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "JWT_SECRET": "x" * 40, "DATA_DIR": str(cwd / "var"), "CLIP_MIN_SECONDS": "2"}
    return subprocess.run(
        [sys.executable, "-m", "litestar", "--app", "app.asgi:app", "video", "analyze", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_analyze_prints_the_result_and_writes_the_thumbnail(tmp_path: Path) -> None:
    truth = render_video(tmp_path / "talk.mp4", VideoSpec(duration=14, cuts=3, seed=21))
    thumbnail = tmp_path / "thumb.jpg"
    done = analyze(str(truth.path), "--max-length", "2", "--thumbnail", str(thumbnail), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["duration"] == pytest.approx(14, abs=0.1)
    assert 1 <= len(result["clips"]) <= 2
    assert result["scenes"][0]["start"] == 0.0
    assert Image.open(thumbnail).format == "JPEG"
    assert result["thumbnail"]["file"] == str(thumbnail)
    assert "talk.mp4" in done.stderr  # the progress bar

    scenes = analyze(str(truth.path), "--type", "scenes", "--max-length", "3", cwd=tmp_path)
    assert scenes.returncode == 0, scenes.stderr[-2000:]
    assert 1 <= len(json.loads(scenes.stdout)["scenes"]) <= 3


def test_a_file_that_is_not_a_video_is_a_clear_error(tmp_path: Path) -> None:
    done = analyze(str(write_garbage(tmp_path / "noise.mp4")), cwd=tmp_path)
    assert done.returncode == 1
    assert "not a video file" in done.stderr or "the video is corrupt" in done.stderr
    assert "Traceback" not in done.stderr
