"""The bodies of the probes (API.md, "Health"), typed so the OpenAPI document describes them."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from app.health.checks import Status


class HealthSummary(msgspec.Struct, kw_only=True):
    """``GET /health``."""

    status: Literal["healthy", "unhealthy"]
    uptime: float
    """Seconds since the process started."""
    timestamp: datetime


class CheckView(msgspec.Struct, kw_only=True):
    """One check of ``GET /health/detailed``; its latency, error and detail for ``admin`` callers only."""

    status: Status
    required: bool
    latency_ms: float | msgspec.UnsetType = msgspec.UNSET
    error: str | msgspec.UnsetType | None = msgspec.UNSET
    detail: str | msgspec.UnsetType | None = msgspec.UNSET
    checked_at: datetime | msgspec.UnsetType = msgspec.UNSET


class HealthDetail(msgspec.Struct, kw_only=True):
    """``GET /health/detailed``."""

    status: Status
    dependencies: dict[str, bool]
    """Each dependency group (database, cache, models, services) and ``overall``: whether it passes."""
    checks: dict[str, CheckView]
    draining: bool
    uptime: float
    timestamp: datetime


class LiveStatus(msgspec.Struct, kw_only=True):
    """``GET /health/live``."""

    status: Literal["ok", "failed"]


class ReadyStatus(msgspec.Struct, kw_only=True):
    """``GET /health/ready`` (``?verbose`` answers a plain-text list of the checks instead)."""

    status: Literal["ready", "unavailable"]


class StartupStatus(msgspec.Struct, kw_only=True):
    """``GET /health/startup``."""

    status: Literal["started", "starting"]
    pending: list[str] | msgspec.UnsetType = msgspec.UNSET
    """What start-up still waits for, while starting."""
