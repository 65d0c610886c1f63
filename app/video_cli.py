"""``litestar video analyze PATH``: the pipeline on a local file, without HTTP, a database or a queue.

The same model pool (shipped weights, ``MODEL_DIR``, placement settings) and the same analysis
and selection code as the workers; the result is the job result's JSON on stdout, the progress
on stderr.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import click
from litestar.cli._utils import LitestarEnv

from app.plugins.models import ModelPlugin
from app.settings import Settings
from domain.errors import DomainError
from domain.video.results import build_result, thumbnail_time
from domain.video.schemas import ClipLengths, ProcessingType
from infra.video.analyzer import AnalyzerOptions, VideoAnalyzer
from infra.video.renderers import JpegThumbnailRenderer


@click.group(name="video", help="Video analysis from the command line.")
def video_group() -> None:
    """Video analysis from the command line."""


@video_group.command(name="analyze", help="Analyse a local video file and print the result as JSON.")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--type",
    "processing_type",
    type=click.Choice([t.value for t in ProcessingType]),
    default=ProcessingType.HIGHLIGHTS.value,
    show_default=True,
)
@click.option("--max-length", type=click.IntRange(1, 500), default=10, show_default=True, help="most clips or scenes")
@click.option(
    "--thumbnail", "thumbnail_out", type=click.Path(dir_okay=False, path_type=Path), help="also write the JPEG here"
)
@click.pass_obj
def analyze(env: LitestarEnv, path: Path, processing_type: str, max_length: int, thumbnail_out: Path | None) -> None:
    settings: Settings = env.app.state["settings"]
    try:
        result = asyncio.run(_analyze(settings, path, ProcessingType(processing_type), max_length, thumbnail_out))
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(json.dumps(result, indent=2))


async def _analyze(
    settings: Settings, path: Path, processing_type: ProcessingType, max_length: int, thumbnail_out: Path | None
) -> dict[str, object]:
    pool = ModelPlugin(settings).build_pool()
    async with pool:
        analyzer = VideoAnalyzer(pool, AnalyzerOptions(max_duration=settings.video_max_duration))
        with click.progressbar(length=1000, label=path.name, file=sys.stderr, show_eta=True) as bar:

            async def progress(fraction: float) -> None:
                bar.update(round(fraction * 1000) - bar.pos)

            analysis = await analyzer.analyze(path, on_progress=progress)
        lengths = ClipLengths(min_seconds=settings.clip_min_seconds, max_seconds=settings.clip_max_seconds)
        result = build_result(analysis, processing_type, max_length, lengths)
        chosen = thumbnail_time(analysis)
        result["thumbnail"] = {"time": round(chosen, 3)}
        if thumbnail_out is not None:
            jpeg = await JpegThumbnailRenderer().render(path, chosen)
            await asyncio.to_thread(thumbnail_out.write_bytes, jpeg)
            result["thumbnail"]["file"] = str(thumbnail_out)
    return result
