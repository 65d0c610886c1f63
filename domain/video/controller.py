"""``/video``: thin handlers, one service call each (API.md, "Video")."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, FromQuery, Parameter
from litestar.response import File, ServerSentEvent, ServerSentEventMessage

from domain.base import Page
from domain.errors import NotFoundError
from domain.guards import require_scope
from domain.openapi import ROUTE_BODIES, ROUTE_ERRORS
from domain.pagination import Limit, Offset
from domain.video.job_schemas import JobAccepted, JobCompleted, JobOut, ProcessRequest, UploadParts
from domain.video.models import JobStatus
from domain.video.service import VideoJobService
from domain.video.watch import JobEvent, JobSnapshot, with_keepalive

_CLIP_NAME = re.compile(r"^([1-9][0-9]{0,3})\.mp4$")
KEEPALIVE_SECONDS = 15.0


class VideoController(Controller):
    path = "/video"
    tags = ["video"]
    guards = [require_scope("video:process")]

    @post(
        "/process",
        status_code=200,
        summary="Process a video given by URL (JSON) or uploaded (multipart/form-data)",
        request_max_body_size=None,  # the service streams uploads to disk and enforces VIDEO_MAX_BYTES itself
        responses={  # the return type is the union of both; each status has one
            200: ResponseSpec(
                JobCompleted, description="The job ended within the synchronous budget", generate_examples=False
            ),
            202: ResponseSpec(
                JobAccepted,
                description="The job is queued or running: poll status_url (also the Location header)",
                generate_examples=False,
            ),
        },
        opt={
            ROUTE_BODIES: {"application/json": ProcessRequest, "multipart/form-data": UploadParts},
            ROUTE_ERRORS: {
                404: "project_id names no project of the caller's",
                409: "The job was cancelled while the request waited for it",
                413: "The video, the JSON body, a form field or the number of form fields is over its limit",
                415: "Neither JSON with a video_url nor a multipart/form-data upload",
                422: "The video cannot be fetched or decoded, or the multipart body is malformed",
                429: "Too many of the caller's jobs are under way (or rate limited); retry after Retry-After seconds",
                504: "The models did not answer in time",
            },
        },
    )
    async def process(
        self,
        request: Request[Any, Any, Any],
        video_service: NamedDependency[VideoJobService],
        wait: Annotated[bool, Parameter(description="answer with the result if the job ends in time")] = True,
    ) -> Response[JobCompleted | JobAccepted]:
        outcome = await video_service.process(request.headers.get("content-type"), request.stream(), wait=wait)
        if isinstance(outcome, JobAccepted):
            return Response(outcome, status_code=202, headers={"Location": outcome.status_url})
        return Response(outcome, status_code=200)

    @get("/jobs", summary="The caller's jobs, newest first")
    async def list_jobs(
        self,
        video_service: NamedDependency[VideoJobService],
        limit: Limit = 20,
        offset: Offset = 0,
        status: FromQuery[JobStatus | None] = None,
        project_id: FromQuery[UUID | None] = None,
    ) -> Page[JobOut]:
        return await video_service.list(limit=limit, offset=offset, status=status, project_id=project_id)

    @get("/jobs/{job_id:uuid}", summary="A job's status, progress and result")
    async def get_job(self, job_id: FromPath[UUID], video_service: NamedDependency[VideoJobService]) -> JobOut:
        return await video_service.get(job_id)

    @delete(
        "/jobs/{job_id:uuid}",
        summary="Cancel a queued or running job",
        opt={ROUTE_ERRORS: {409: "The job has already ended"}},
    )
    async def cancel_job(self, job_id: FromPath[UUID], video_service: NamedDependency[VideoJobService]) -> None:
        await video_service.cancel(job_id)

    @get(
        "/jobs/{job_id:uuid}/events",
        summary="Server-sent events with the job's progress until it ends",
        responses={
            200: ResponseSpec(
                JobEvent,
                media_type="text/event-stream",
                description="An event per change of the job (progress, then its end), with keep-alive comments",
                generate_examples=False,
            )
        },
    )
    async def job_events(
        self, job_id: FromPath[UUID], video_service: NamedDependency[VideoJobService]
    ) -> ServerSentEvent:
        changes = await video_service.events(job_id)
        return ServerSentEvent(_messages(changes), headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    @get("/jobs/{job_id:uuid}/thumbnail.jpg", summary="The job's thumbnail (JPEG)", media_type="image/jpeg")
    async def thumbnail(self, job_id: FromPath[UUID], video_service: NamedDependency[VideoJobService]) -> File:
        path = await video_service.thumbnail(job_id)
        return File(path, media_type="image/jpeg", content_disposition_type="inline", filename=f"{job_id}.jpg")

    @get(
        "/jobs/{job_id:uuid}/clips/{name:str}",
        summary="Clip n of a highlights job, as MP4: /clips/1.mp4",
        media_type="video/mp4",
    )
    async def clip(
        self, job_id: FromPath[UUID], name: FromPath[str], video_service: NamedDependency[VideoJobService]
    ) -> File:
        match = _CLIP_NAME.match(name)
        if match is None:
            raise NotFoundError(f"no clip {name!r}: clips are named 1.mp4, 2.mp4, ...")
        number = int(match.group(1))
        path = await video_service.clip(job_id, number)
        return File(path, media_type="video/mp4", content_disposition_type="inline", filename=f"{job_id}-{number}.mp4")


async def _messages(changes: AsyncIterator[JobSnapshot]) -> AsyncIterator[ServerSentEventMessage]:
    """``event: progress`` for each change, ``event: done`` with the final state, comments to keep proxies open."""
    async for snapshot in with_keepalive(changes, KEEPALIVE_SECONDS):
        if snapshot is None:
            yield ServerSentEventMessage(data=None, comment="keep-alive")
            continue
        kind = "done" if snapshot.status.is_final else "progress"
        yield ServerSentEventMessage(event=kind, data=msgspec.json.encode(snapshot).decode())
