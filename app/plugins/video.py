"""Video jobs: binds the job ports to their adapters and runs the queue the configuration asks for.

- With ``REDIS_URL``: jobs go to SAQ on Redis; worker processes (``litestar workers run``,
  the worker Deployment) run them. The API process only enqueues.
- Without it (the embedded default): an in-process queue runs jobs in this process, and
  on start-up re-enqueues what a previous run left queued or running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.plugins import InitPluginProtocol
from sqlalchemy.ext.asyncio import AsyncSession

from app.di import provide, singleton
from app.health import Group, HealthCheck, health_registry
from app.plugins.cache import REDIS_STATE_KEY
from app.plugins.database import DatabasePlugin
from app.plugins.http_client import HTTP_CLIENT_STATE_KEY
from app.plugins.models import MODEL_POOL_STATE_KEY
from app.settings import Settings
from domain.principal import Principal
from domain.projects.service import ProjectService
from domain.video.controller import VideoController
from domain.video.ports import JobQueue
from domain.video.repository import VideoJobRepository
from domain.video.retention import expire_media
from domain.video.runner import RunnerPolicy, VideoJobRunner, reap
from domain.video.schemas import ClipLengths
from domain.video.service import JobPolicy, VideoJobService
from domain.video.watch import JobWatcher
from infra.models import ModelPool
from infra.queue.in_process import InProcessJobQueue
from infra.queue.saq_queue import SaqJobQueue
from infra.video.analyzer import AnalyzerOptions, VideoAnalyzer
from infra.video.clips import PyAvClipCutter
from infra.video.fetch import SafeVideoFetcher
from infra.video.media_store import LocalMediaStore
from infra.video.renderers import JpegThumbnailRenderer
from infra.video.upload import MultipartUploadReceiver

logger = logging.getLogger("app.video")

JOB_QUEUE_STATE_KEY = "video_job_queue"
MEDIA_STATE_KEY = "video_media"
FETCHER_STATE_KEY = "video_fetcher"
UPLOADS_STATE_KEY = "video_uploads"
WATCHER_STATE_KEY = "video_watcher"
MEDIA_EXPIRY_INTERVAL = 3600.0


class VideoPlugin(InitPluginProtocol):
    """Register after the database, cache, HTTP client and model plugins: it builds on their resources."""

    def __init__(self, settings: Settings, database: DatabasePlugin) -> None:
        self.settings = settings
        self.database = database
        self.uses_redis = settings.redis_url is not None
        self.policy = RunnerPolicy(
            max_attempts=settings.video_job_attempts,
            heartbeat_seconds=settings.video_job_heartbeat,
            clip_lengths=ClipLengths(min_seconds=settings.clip_min_seconds, max_seconds=settings.clip_max_seconds),
        )

    # wiring -------------------------------------------------------------------------------------

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.route_handlers.append(VideoController)
        app_config.dependencies["video_service"] = provide("video_service", provide_video_service)
        app_config.dependencies["job_policy"] = provide("job_policy", self.provide_job_policy)
        app_config.state[MEDIA_STATE_KEY] = LocalMediaStore(Path(self.settings.media_root))
        app_config.state[WATCHER_STATE_KEY] = JobWatcher(self.sessions)
        app_config.state[UPLOADS_STATE_KEY] = MultipartUploadReceiver(max_bytes=self.settings.video_max_bytes)
        if not self.uses_redis:
            health_registry(app_config).register(HealthCheck("video_worker", Group.SERVICES, _check_in_process_worker))
        app_config.lifespan.append(self._lifespan)
        return app_config

    @singleton
    def provide_job_policy(self) -> JobPolicy:
        return JobPolicy(
            max_active_per_user=self.settings.video_max_active_jobs,
            sync_budget_seconds=self.settings.video_sync_budget,
        )

    def sessions(self) -> contextlib.AbstractAsyncContextManager[AsyncSession]:
        """Short sessions of their own, for the watcher and the runner (never the request's)."""
        return self.database.db_config.get_session()

    def fetcher(self, client: httpx.AsyncClient) -> SafeVideoFetcher:
        settings = self.settings
        allow = [entry.strip() for entry in settings.fetch_allow_networks.split(",") if entry.strip()]
        return SafeVideoFetcher(
            client,
            max_bytes=settings.video_max_bytes,
            allow=allow,
            connect_timeout=settings.fetch_connect_timeout,
            read_timeout=settings.fetch_read_timeout,
            total_timeout=settings.fetch_total_timeout,
        )

    def build_runner(self, app: Litestar) -> VideoJobRunner:
        pool: ModelPool = app.state[MODEL_POOL_STATE_KEY]
        analyzer = VideoAnalyzer(pool, AnalyzerOptions(max_duration=self.settings.video_max_duration))
        return VideoJobRunner(
            self.sessions,
            fetcher=app.state[FETCHER_STATE_KEY],
            analyzer=analyzer,
            thumbnails=JpegThumbnailRenderer(),
            clips=PyAvClipCutter(),
            media=app.state[MEDIA_STATE_KEY],
            policy=self.policy,
        )

    def saq_queue(self, app: Litestar) -> SaqJobQueue:
        settings = self.settings
        return SaqJobQueue(
            app.state[REDIS_STATE_KEY],
            name=settings.video_queue_name,
            max_attempts=settings.video_job_attempts,
            heartbeat_seconds=settings.video_job_heartbeat,
            retry_delay_seconds=self.policy.retry_delay_seconds,
            job_timeout_seconds=settings.video_job_timeout,
        )

    # lifespan -----------------------------------------------------------------------------------

    @asynccontextmanager
    async def _lifespan(self, app: Litestar) -> AsyncIterator[None]:
        app.state[FETCHER_STATE_KEY] = self.fetcher(app.state[HTTP_CLIENT_STATE_KEY])
        if self.uses_redis:
            app.state[JOB_QUEUE_STATE_KEY] = self.saq_queue(app)
            yield
            return
        queue = InProcessJobQueue(concurrency=self.settings.video_worker_concurrency)
        app.state[JOB_QUEUE_STATE_KEY] = queue
        runner = self.build_runner(app)

        async def handle(job_id: UUID) -> float | None:
            return (await runner.run(job_id)).retry_in

        queue.start(handle)
        reaper = asyncio.create_task(self.reap_forever(app, queue), name="video-reaper")
        logger.info("video jobs run in this process (no REDIS_URL)")
        try:
            yield
        finally:
            reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reaper
            await queue.stop(grace=self.settings.video_worker_shutdown_grace)
            logger.info("in-process video worker stopped")

    async def reap_forever(self, app: Litestar, queue: JobQueue) -> None:
        """Every heartbeat: give stale and forgotten jobs to a worker again (the first run at once);
        every hour, remove job files past their retention."""
        policy = self.policy
        next_expiry = 0.0
        while True:
            if time.monotonic() >= next_expiry:
                next_expiry = time.monotonic() + MEDIA_EXPIRY_INTERVAL
                try:
                    await expire_media(
                        self.sessions, app.state[MEDIA_STATE_KEY], retention_days=self.settings.media_retention_days
                    )
                except Exception:
                    logger.warning("removing expired job files failed; trying again later", exc_info=True)
            try:
                for job_id in await reap(
                    self.sessions, app.state[MEDIA_STATE_KEY], policy, requeue_after=policy.stale_after
                ):
                    await queue.enqueue(job_id)
            except Exception:
                logger.warning("the job reaper failed; trying again", exc_info=True)
            await asyncio.sleep(policy.heartbeat_seconds)


def provide_video_service(
    db_session: NamedDependency[AsyncSession],
    project_service: NamedDependency[ProjectService],
    current_user: NamedDependency[Principal],
    job_policy: NamedDependency[JobPolicy],
    state: State,
) -> VideoJobService:
    return VideoJobService(
        VideoJobRepository(session=db_session),
        project_service,
        current_user,
        queue=state[JOB_QUEUE_STATE_KEY],
        media=state[MEDIA_STATE_KEY],
        uploads=state[UPLOADS_STATE_KEY],
        url_guard=state[FETCHER_STATE_KEY],
        watcher=state[WATCHER_STATE_KEY],
        policy=job_policy,
    )


async def _check_in_process_worker(app: Litestar) -> str:
    state: Any = app.state
    queue = state.get(JOB_QUEUE_STATE_KEY)
    if not isinstance(queue, InProcessJobQueue) or not queue.running:
        raise RuntimeError("the in-process video worker is not running")
    return f"in-process, {queue.concurrency} at a time"
