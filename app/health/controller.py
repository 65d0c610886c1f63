"""The probes of API.md. Every answer comes from the monitor's latest results: no probe touches a dependency.

- ``/health/live``: the process can serve (the event loop answers and the monitor runs);
  nothing outside the process, so a database outage never gets pods restarted.
- ``/health/ready``: started, not draining, and every required dependency passed.
- ``/health/startup``: start-up work (migrations checked, models loaded and warmed) is done.
- ``/health`` and ``/health/detailed``: the seed's summaries. Latencies and error texts only for ``admin``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Operation, Schema
from litestar.params import Parameter

from app.health.checks import CheckResult, Group, HealthRegistry, Status
from app.health.schemas import CheckView, HealthDetail, HealthSummary, LiveStatus, ReadyStatus, StartupStatus
from domain.principal import Principal

_STARTED = time.monotonic()


def _now() -> datetime:
    return datetime.now(UTC)


def _uptime() -> float:
    return round(time.monotonic() - _STARTED, 3)


def _unavailable(body: type, when: str) -> dict[int, ResponseSpec]:
    """The 503 of a probe: the same body as its 200, ``when`` the probe fails."""
    return {503: ResponseSpec(body, description=when, generate_examples=False)}


def _check_view(result: CheckResult, detailed: bool) -> CheckView:
    if not detailed:
        return CheckView(status=result.status, required=result.required)
    return CheckView(
        status=result.status,
        required=result.required,
        latency_ms=result.latency_ms,
        error=result.error,
        detail=result.detail,
        checked_at=result.checked_at,
    )


@dataclass
class _ReadyOperation(Operation):
    """``/health/ready`` documented with both of its answers: JSON, and the text of ``?verbose``."""

    def __post_init__(self) -> None:
        for status in ("200", "503"):
            response = (self.responses or {}).get(status)
            if isinstance(response, OpenAPIResponse) and response.content is not None:
                text = OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))
                response.content = {**response.content, "text/plain": text}  # a new dict: never share one


class HealthController(Controller):
    path = "/health"
    tags = ["health"]

    @get(
        "/",
        summary="Overall status (200 healthy, 503 unhealthy)",
        responses=_unavailable(HealthSummary, "Unhealthy: a required dependency fails, or start-up is not done"),
    )
    async def health(self, health_registry: NamedDependency[HealthRegistry]) -> Response[HealthSummary]:
        healthy = health_registry.ready
        body = HealthSummary(status="healthy" if healthy else "unhealthy", uptime=_uptime(), timestamp=_now())
        return Response(body, status_code=200 if healthy else 503)

    @get(
        "/detailed",
        summary="Each dependency group; latencies and errors for admin callers",
        responses=_unavailable(HealthDetail, "Unhealthy: a required dependency fails, or start-up is not done"),
    )
    async def detailed(
        self,
        health_registry: NamedDependency[HealthRegistry],
        optional_user: NamedDependency[Principal | None],
    ) -> Response[HealthDetail]:
        results = list(health_registry.latest.values())
        groups = {group.value: all(r.ok for r in results if r.group is group) for group in Group}
        groups["overall"] = health_registry.ready
        is_admin = optional_user is not None and optional_user.is_admin
        status = Status.HEALTHY if all(r.ok for r in results) else Status.DEGRADED
        if not groups["overall"]:
            status = Status.UNHEALTHY
        body = HealthDetail(
            status=status,
            dependencies=groups,
            checks={r.name: _check_view(r, is_admin) for r in results},
            draining=health_registry.draining,
            uptime=_uptime(),
            timestamp=_now(),
        )
        return Response(body, status_code=200 if groups["overall"] else 503)

    @get(
        "/live",
        summary="Liveness: the process can serve; checks nothing outside it",
        responses=_unavailable(LiveStatus, "The health monitor has stopped: restart the process"),
    )
    async def live(self, health_registry: NamedDependency[HealthRegistry]) -> Response[LiveStatus]:
        alive = health_registry.monitor_alive
        return Response(LiveStatus(status="ok" if alive else "failed"), status_code=200 if alive else 503)

    @get(
        "/ready",
        summary="Readiness: started, not draining, every required dependency answers",
        description="With ?verbose, a plain-text list of the checks (as Kubernetes' /readyz?verbose) instead of JSON.",
        responses={  # the return type is the union of the JSON and the text answers
            200: ResponseSpec(ReadyStatus, description="Ready", generate_examples=False),
            **_unavailable(ReadyStatus, "Not ready: starting, draining, or a required dependency fails"),
        },
        operation_class=_ReadyOperation,
    )
    async def ready(
        self,
        health_registry: NamedDependency[HealthRegistry],
        optional_user: NamedDependency[Principal | None],
        verbose: Annotated[
            str | None, Parameter(description="present: list each check, as Kubernetes' /readyz?verbose does")
        ] = None,
    ) -> Response[ReadyStatus] | Response[str]:
        ready = health_registry.ready
        status_code = 200 if ready else 503
        if verbose is None:
            return Response(ReadyStatus(status="ready" if ready else "unavailable"), status_code=status_code)
        is_admin = optional_user is not None and optional_user.is_admin
        lines = [_verbose_line(r, is_admin) for r in health_registry.latest.values()]
        if not health_registry.started:
            lines.append(f"[-]startup pending: {', '.join(sorted(health_registry.pending_startup))}")
        lines.append("[-]draining" if health_registry.draining else "[+]not draining")
        lines.append("readyz check passed" if ready else "readyz check failed")
        return Response("\n".join(lines) + "\n", status_code=status_code, media_type="text/plain")

    @get(
        "/startup",
        summary="Start-up work (migrations checked, models loaded and warmed) is done",
        responses=_unavailable(StartupStatus, "Still starting: pending lists what it waits for"),
    )
    async def startup(self, health_registry: NamedDependency[HealthRegistry]) -> Response[StartupStatus]:
        if health_registry.started:
            return Response(StartupStatus(status="started"), status_code=200)
        pending = sorted(health_registry.pending_startup)
        return Response(StartupStatus(status="starting", pending=pending), status_code=503)


def _verbose_line(result: CheckResult, detailed: bool) -> str:
    if result.ok:
        return f"[+]{result.name} ok"
    reason = result.error if detailed else "reason withheld"
    label = "failed" if result.required else "degraded"
    return f"[-]{result.name} {label}: {reason}"
