"""The typed status the pool reports per model (for health checks and admin endpoints)."""

from __future__ import annotations

from enum import StrEnum

import msgspec


class ModelState(StrEnum):
    LOADING = "loading"
    """The first load (or a retry after a failure) is under way; nothing serves yet."""
    READY = "ready"
    """A version serves (a reload may be loading the next one beside it)."""
    FAILED = "failed"
    """The last attempt failed; ``retry_in_s`` says when the next one is, ``None`` when retries gave up."""
    UNLOADED = "unloaded"
    """Not started yet, or the pool was closed."""


class ModelStatus(msgspec.Struct, frozen=True, kw_only=True):
    """One model's state, as ``ModelPool.status()`` reports it (encodes to JSON with msgspec)."""

    name: str
    state: ModelState
    version: int | None
    """The version serving now (``None`` when none is)."""
    device: str | None
    precision: str | None
    """``fp32``, or the autocast dtype (``bf16``/``fp16``) on CUDA."""
    attempts: int
    """Load attempts since the last successful load or the start of a reload (the success included)."""
    last_error: str | None
    """The error of the last failed attempt; cleared by a successful load."""
    load_time_s: float | None
    """Seconds that loading and warming up the serving version took."""
    retry_in_s: float | None
    """Seconds until the next background attempt, when one is scheduled."""
    versions: tuple[int, ...]
    """Versions the repositories hold, as of the last (re)load attempt."""
    pending_requests: int
    description: str = ""
