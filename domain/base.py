"""Building blocks shared by the domain areas: the ORM base and the page schema."""

from __future__ import annotations

from typing import Generic, TypeVar

import msgspec
from advanced_alchemy.base import UUIDv7AuditBase

__all__ = ["AuditBase", "Page"]

AuditBase = UUIDv7AuditBase
"""Tables get a time-ordered UUID ``id`` plus ``created_at`` / ``updated_at`` (UTC)."""

ItemT = TypeVar("ItemT")


class Page(msgspec.Struct, Generic[ItemT]):
    """One page of a listing: ``{"items", "total", "limit", "offset"}``."""

    items: list[ItemT]
    total: int
    limit: int
    offset: int
