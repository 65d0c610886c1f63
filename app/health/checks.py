"""Health checks: each dependency registers one where it is provided; they run concurrently with timeouts.

A check is an async callable that returns (optionally a short detail) when the
dependency answers and raises when it does not. A *required* check that fails
makes the service unready; an *optional* one (a cache with a fallback) makes it
degraded, which readiness tolerates.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from litestar import Litestar
from litestar.config.app import AppConfig

CheckFunction = Callable[[Litestar], Awaitable[str | None]]

REGISTRY_STATE_KEY = "health_registry"


class Group(StrEnum):
    """The dependency groups of ``/health/detailed``."""

    DATABASE = "database"
    CACHE = "cache"
    MODELS = "models"
    SERVICES = "services"


class Status(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    """An optional dependency failed: the service works, with less (e.g. per-process rate limits)."""
    UNHEALTHY = "unhealthy"


@dataclass(frozen=True, slots=True)
class HealthCheck:
    name: str
    group: Group
    check: CheckFunction
    required: bool = True
    timeout: float | None = None
    """Seconds; None means the registry's default (``HEALTH_CHECK_TIMEOUT``)."""


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    group: Group
    required: bool
    ok: bool
    latency_ms: float
    error: str | None
    detail: str | None
    checked_at: datetime

    @property
    def status(self) -> Status:
        if self.ok:
            return Status.HEALTHY
        return Status.UNHEALTHY if self.required else Status.DEGRADED


@dataclass
class HealthRegistry:
    """The checks of one app, their latest results, and the start-up gates."""

    default_timeout: float = 2.0
    checks: dict[str, HealthCheck] = field(default_factory=dict)
    latest: dict[str, CheckResult] = field(default_factory=dict)
    pending_startup: set[str] = field(default_factory=set)
    draining: bool = False
    """Set on SIGTERM: readiness answers 503 while in-flight requests finish."""
    monitor: asyncio.Task[None] | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    reported_failures: set[str] = field(default_factory=set)
    """Checks whose failure the monitor logged (it logs the recovery once, too)."""

    def recheck_soon(self) -> None:
        """Have the monitor run the checks now rather than at its next tick (after start-up work, say)."""
        self.wake.set()

    @property
    def monitor_alive(self) -> bool:
        """False when the background monitor died: then liveness fails, and a restart is the cure."""
        return self.monitor is None or not self.monitor.done()

    def register(self, check: HealthCheck) -> None:
        if check.name in self.checks:
            raise ValueError(f"a health check named {check.name!r} is registered already")
        self.checks[check.name] = check

    def require_startup(self, gate: str) -> None:
        """``/health/startup`` stays 503 until :meth:`startup_done` is called for ``gate``."""
        self.pending_startup.add(gate)

    def startup_done(self, gate: str) -> None:
        self.pending_startup.discard(gate)

    @property
    def started(self) -> bool:
        return not self.pending_startup

    @property
    def ready(self) -> bool:
        """Started, not draining, and every required check passed on its latest run."""
        if not self.started or self.draining:
            return False
        return all(self._passed(name) for name, check in self.checks.items() if check.required)

    def _passed(self, name: str) -> bool:
        result = self.latest.get(name)
        return result is not None and result.ok

    async def run(self, app: Litestar) -> Mapping[str, CheckResult]:
        """Run every check concurrently, each bounded by its timeout; store and return the results."""
        results = await asyncio.gather(*(self._run_one(app, check) for check in self.checks.values()))
        self.latest = {result.name: result for result in results}
        return self.latest

    async def _run_one(self, app: Litestar, check: HealthCheck) -> CheckResult:
        timeout = check.timeout or self.default_timeout
        started = time.perf_counter()
        error: str | None = None
        detail: str | None = None
        try:
            async with asyncio.timeout(timeout):
                detail = await check.check(app)
        except TimeoutError:
            error = f"no answer within {timeout:g} s"
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}".strip()[:300]
        return CheckResult(
            name=check.name,
            group=check.group,
            required=check.required,
            ok=error is None,
            latency_ms=round((time.perf_counter() - started) * 1000, 2),
            error=error,
            detail=detail,
            checked_at=datetime.now(UTC),
        )


def health_registry(config: AppConfig | Litestar) -> HealthRegistry:
    """The app's registry, made on first use, so plugins can register checks in any order."""
    state: Any = config.state
    registry = state.get(REGISTRY_STATE_KEY)
    if registry is None:
        registry = HealthRegistry()
        state[REGISTRY_STATE_KEY] = registry
    assert isinstance(registry, HealthRegistry)
    return registry
