"""``litestar workers run``: a worker process for video jobs on the Redis queue.

It builds the same app as the API (same settings, plugins and dependency wiring),
runs its lifespan without serving HTTP (database and Redis pools, the model pool,
the HTTP client), and drains the SAQ queue. On SIGTERM it stops taking jobs, gives
running ones ``VIDEO_WORKER_SHUTDOWN_GRACE`` seconds, then cancels them: their lease
goes stale and another worker retries them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from uuid import UUID

import click
from litestar import Litestar
from litestar.cli._utils import LitestarEnv

from app.plugins.models import MODEL_POOL_STATE_KEY
from app.plugins.video import JOB_QUEUE_STATE_KEY, VideoPlugin
from infra.models import ModelPool
from infra.queue.saq_queue import SaqJobQueue

logger = logging.getLogger("app.worker")


@click.group(name="workers", help="Video job workers.")
def workers_group() -> None:
    """Video job workers."""


@workers_group.command(name="run", help="Run video jobs from the Redis queue until SIGTERM.")
@click.pass_obj
def run_workers(env: LitestarEnv) -> None:
    app = env.app
    plugin = app.plugins.get(VideoPlugin)
    if not plugin.uses_redis:
        raise click.ClickException(
            "REDIS_URL is not set: without Redis, video jobs run inside the API process; no worker is needed"
        )
    asyncio.run(_serve(app, plugin))


async def _serve(app: Litestar, plugin: VideoPlugin) -> None:
    stop = asyncio.Event()
    async with app.lifespan():
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(app, plugin, stop)
    logger.info("worker stopped")


async def run_worker(app: Litestar, plugin: VideoPlugin, stop: asyncio.Event) -> None:
    """Drain the queue until ``stop`` is set; the app's lifespan must be running."""
    settings = plugin.settings
    pool: ModelPool = app.state[MODEL_POOL_STATE_KEY]
    await pool.wait_ready(timeout=300)
    queue: SaqJobQueue = app.state[JOB_QUEUE_STATE_KEY]
    runner = plugin.build_runner(app)

    async def handle(job_id: UUID, heartbeat: Callable[[], Awaitable[None]]) -> float | None:
        return (await runner.run(job_id, heartbeat)).retry_in

    worker = queue.worker(
        handle,
        concurrency=settings.video_worker_concurrency,
        sweep_seconds=settings.video_job_heartbeat * 3,
        shutdown_grace_seconds=settings.video_worker_shutdown_grace,
    )
    reaper = asyncio.create_task(plugin.reap_forever(app, queue), name="video-reaper")
    working = asyncio.create_task(worker.start(), name="saq-worker")
    stopping = asyncio.create_task(stop.wait())
    logger.info("worker started on queue %r (%d at a time)", settings.video_queue_name, worker.concurrency)
    await asyncio.wait({working, stopping}, return_when=asyncio.FIRST_COMPLETED)
    logger.info("worker stopping: no new jobs; running ones get %d s", settings.video_worker_shutdown_grace)
    reaper.cancel()
    await worker.stop()
    for task in (working, reaper, stopping):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
