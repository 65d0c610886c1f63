"""The embedded default's queue: asyncio tasks in the API process, no other server needed.

Durability comes from the job rows, not from this queue: on start-up the app enqueues
every job that is still queued (or whose worker stopped), so a job survives a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from uuid import UUID

logger = logging.getLogger("infra.queue")

Handler = Callable[[UUID], Awaitable[float | None]]
"""Runs one job; returns seconds after which to run it again (a retry), or None."""


class InProcessJobQueue:
    def __init__(self, concurrency: int = 1) -> None:
        self.concurrency = concurrency
        self._ready: asyncio.Queue[UUID] = asyncio.Queue()
        self._waiting: set[UUID] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self._consumers: list[asyncio.Task[None]] = []
        self._busy: set[asyncio.Task[None]] = set()

    @property
    def running(self) -> bool:
        return bool(self._consumers) and not all(task.done() for task in self._consumers)

    async def enqueue(self, job_id: UUID) -> None:
        """Idempotent: a job already waiting is not queued twice."""
        if job_id not in self._waiting:
            self._waiting.add(job_id)
            self._ready.put_nowait(job_id)

    def enqueue_later(self, job_id: UUID, delay: float) -> None:
        def put() -> None:
            self._timers.discard(timer)
            self._ready.put_nowait(job_id)

        self._waiting.add(job_id)
        timer = asyncio.get_running_loop().call_later(delay, put)
        self._timers.add(timer)

    def start(self, handler: Handler) -> None:
        self._consumers = [
            asyncio.create_task(self._consume(handler), name=f"video-worker-{n}") for n in range(self.concurrency)
        ]

    async def _consume(self, handler: Handler) -> None:
        me = asyncio.current_task()
        assert me is not None
        while True:
            job_id = await self._ready.get()
            self._waiting.discard(job_id)
            self._busy.add(me)
            try:
                retry_in = await handler(job_id)
            except Exception:
                logger.exception("job %s: the handler failed", job_id)
                continue
            finally:
                self._busy.discard(me)
            if retry_in is not None:
                self.enqueue_later(job_id, retry_in)

    async def stop(self, grace: float) -> None:
        """Take no new job; give running ones ``grace`` seconds, then cancel them (the reaper retries them)."""
        for timer in self._timers:
            timer.cancel()
        busy = [task for task in self._consumers if task in self._busy]
        for task in self._consumers:
            if task not in self._busy:
                task.cancel()
        if busy:
            _, pending = await asyncio.wait(busy, timeout=grace)
            for task in pending:
                task.cancel()
        for task in self._consumers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
