"""SAQ on Redis: the queue that API pods enqueue into and worker pods (``litestar workers run``) drain.

SAQ's key de-duplicates: a job id enqueued twice while its SAQ job is queued or
active runs once. A worker touches the SAQ job on each lease renewal, so when a worker
dies, SAQ's sweep (in any live worker) notices the silence, aborts the SAQ job and
retries it; the row's own lease and attempt count decide what actually runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from uuid import UUID

from redis.asyncio import Redis
from saq import Job, Worker
from saq.queue.redis import RedisQueue
from saq.types import Context, PartialTimersDict

logger = logging.getLogger("infra.queue")

TASK_NAME = "process_video_job"

Handler = Callable[[UUID, Callable[[], Awaitable[None]]], Awaitable[float | None]]
"""Runs one job given its id and a heartbeat; returns seconds until a retry, or None when done."""


UPKEEP_NAME_PREFIX = "saq-upkeep"
IDLE_CHECK_SECONDS = 1.0
"""How long an idle slot waits for a job in one call before it looks whether the worker is stopping."""


class PromptWorker(Worker[Context]):
    """SAQ's worker, which an idle worker leaves at once when told to stop.

    SAQ's upkeep loops (the sweep, aborts, schedules, the worker's info) sleep their whole period
    (the sweep's: three heartbeats) before they look at the stop event, and its ``stop`` waits for
    them, up to the shutdown grace: an idle worker took 13 s to stop with the default heartbeat,
    and a Kubernetes rollout waits for each pod. Here ``stop`` cancels them first: they only poll,
    and whatever one of them was doing is done again by the next live worker. The job slots are
    not cancelled (a slot may be taking a job off the queue that moment); they wait for a job at
    most ``IDLE_CHECK_SECONDS`` at a time, then look at the stop event; running jobs get the grace.
    """

    async def upkeep(self) -> list[asyncio.Task[None]]:
        tasks = await super().upkeep()
        for number, task in enumerate(tasks):
            task.set_name(f"{UPKEEP_NAME_PREFIX}-{number}")
        return tasks

    async def stop(self) -> None:
        # first: an upkeep loop cancelled while it polls swallows the cancellation unless stopping
        self.event.set()
        for task in list(self.tasks):
            if task.get_name().startswith(UPKEEP_NAME_PREFIX):
                task.cancel()
        await super().stop()


class RetryLaterError(Exception):
    """Raised inside the SAQ task so that SAQ schedules the job again (with its retry delay)."""


class SaqJobQueue:
    def __init__(
        self,
        redis: Redis,
        *,
        name: str,
        max_attempts: int,
        heartbeat_seconds: float,
        retry_delay_seconds: float,
        job_timeout_seconds: int,
    ) -> None:
        self.queue = RedisQueue(redis, name=name)
        self.max_attempts = max_attempts
        self.heartbeat_seconds = heartbeat_seconds
        self.retry_delay_seconds = retry_delay_seconds
        self.job_timeout_seconds = job_timeout_seconds

    async def enqueue(self, job_id: UUID) -> None:
        await self.queue.enqueue(
            Job(
                function=TASK_NAME,
                kwargs={"job_id": str(job_id)},
                key=f"video:{job_id}",
                retries=self.max_attempts + 1,  # the row counts attempts; SAQ must not give up first
                retry_delay=self.retry_delay_seconds,
                retry_backoff=True,
                # no touch for this long and SAQ's sweep treats the worker as dead
                heartbeat=max(1, round(self.heartbeat_seconds * 3)),
                timeout=self.job_timeout_seconds,
            )
        )

    def worker(
        self,
        handler: Handler,
        *,
        concurrency: int,
        sweep_seconds: float,
        shutdown_grace_seconds: int,
        startup: Callable[[Context], Awaitable[None]] | None = None,
    ) -> Worker[Context]:
        async def process_video_job(ctx: Context, *, job_id: str) -> None:
            saq_job: Job = ctx["job"]
            retry_in = await handler(UUID(job_id), saq_job.update)
            if retry_in is not None:
                raise RetryLaterError(f"job {job_id}: retry in {retry_in:.0f} s")

        process_video_job.__name__ = TASK_NAME
        return PromptWorker(
            self.queue,
            functions=[(TASK_NAME, process_video_job)],
            concurrency=concurrency,
            startup=startup,
            timers=PartialTimersDict(sweep=max(1, round(sweep_seconds)), abort=1, schedule=1, worker_info=10),
            shutdown_grace_period_s=shutdown_grace_seconds,
            dequeue_timeout=IDLE_CHECK_SECONDS,
        )
