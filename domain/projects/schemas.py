"""Bodies of the ``/projects`` endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from domain.text import NOT_BLANK, Description

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=NOT_BLANK)]


class ProjectCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Name
    description: Description | None = None


class ProjectUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Partial update: only the fields present in the body change."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType | None = msgspec.UNSET


class ProjectOut(msgspec.Struct, kw_only=True):
    id: UUID
    name: str
    description: str | None
    created_at: datetime
    updated_at: datetime
