"""Following a job as it runs: for server-sent events and for ``?wait=true``.

The job row is the one source of truth, shared by every API pod and worker, so the
watcher polls it with short transactions of its own (never the request's session, which
is finished when the response starts).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.video.models import JobStatus, VideoJob

T = TypeVar("T")

SessionFactory = Callable[[], AbstractAsyncContextManager[AsyncSession]]


class JobSnapshot(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    id: UUID
    status: JobStatus
    progress: float
    result: dict[str, Any] | None = None
    error: str | None = None
    error_status: int | None = None


class JobEvent(msgspec.Struct, kw_only=True):
    """One server-sent event of a job's event stream, as the OpenAPI document describes it: ``event:
    progress`` for each change, ``event: done`` with the final state, the state as JSON in ``data``
    (a :class:`JobSnapshot`). A keep-alive is a comment, with neither."""

    event: Literal["progress", "done"] | msgspec.UnsetType = msgspec.UNSET
    data: (
        Annotated[str, msgspec.Meta(description="the job's id, status, progress and result or error, as JSON")]
        | msgspec.UnsetType
    ) = msgspec.UNSET


class JobWatcher:
    def __init__(self, sessions: SessionFactory, poll_interval: float = 0.25) -> None:
        self._sessions = sessions
        self._poll_interval = poll_interval

    async def snapshot(self, job_id: UUID) -> JobSnapshot | None:
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(
                        VideoJob.status, VideoJob.progress, VideoJob.result, VideoJob.error, VideoJob.error_status
                    ).where(VideoJob.id == job_id)
                )
            ).one_or_none()
        if row is None:
            return None
        return JobSnapshot(
            id=job_id,
            status=row.status,
            progress=round(row.progress, 4),
            result=row.result,
            error=row.error,
            error_status=row.error_status,
        )

    async def changes(self, job_id: UUID) -> AsyncIterator[JobSnapshot]:
        """Each new (status, progress) of the job, the first at once, until a final status (included)."""
        last: tuple[JobStatus, float] | None = None
        while True:
            current = await self.snapshot(job_id)
            if current is None:
                return
            if (current.status, current.progress) != last:
                last = (current.status, current.progress)
                yield current
            if current.status.is_final:
                return
            await asyncio.sleep(self._poll_interval)

    async def wait_final(self, job_id: UUID, within: float) -> JobSnapshot | None:
        """The job's final snapshot if it ends within ``within`` seconds, else None."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            current = await self.snapshot(job_id)
            if current is None or current.status.is_final:
                return current
            await asyncio.sleep(min(self._poll_interval, max(0.0, deadline - time.monotonic())))
        return None


async def with_keepalive(source: AsyncIterator[T], interval: float) -> AsyncIterator[T | None]:
    """Items of ``source``, with a None whenever ``interval`` seconds pass without one (a keep-alive)."""
    iterator = aiter(source)
    next_item: asyncio.Task[T] | None = None
    try:
        while True:
            if next_item is None:
                next_item = asyncio.ensure_future(anext(iterator))
            done, _ = await asyncio.wait({next_item}, timeout=interval)
            if not done:
                yield None
                continue
            try:
                item = next_item.result()
            except StopAsyncIteration:
                return
            next_item = None
            yield item
    finally:
        if next_item is not None and not next_item.done():
            next_item.cancel()
