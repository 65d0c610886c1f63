from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from domain.text import WHITESPACE

# no comma (a tag list reads as one), no leading blank, no NUL (domain/text.py)
TagName = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=rf"^[^{WHITESPACE},\x00][^,\x00]*$")]


class TagCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: TagName


class TagOut(msgspec.Struct, kw_only=True):
    id: UUID
    name: str
    created_at: datetime
