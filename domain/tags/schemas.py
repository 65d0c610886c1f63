from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

TagName = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[^\s,][^,]*$")]


class TagCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: TagName


class TagOut(msgspec.Struct, kw_only=True):
    id: UUID
    name: str
    created_at: datetime
