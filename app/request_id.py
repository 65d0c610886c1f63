"""``X-Request-ID``: the caller's when it is a sane token of at most 128 characters, else a new one."""

from __future__ import annotations

import re

from litestar.types import Scope
from uuid_utils import uuid7

_SANE = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")
_HEADER = b"x-request-id"


def request_id(scope: Scope) -> str:
    """The id of this request, decided once and kept in the scope's state."""
    state = scope.setdefault("state", {})
    rid: str | None = state.get("request_id")
    if rid is None:
        for name, value in scope.get("headers", ()):
            if name == _HEADER:
                candidate = value.decode("latin-1")
                if _SANE.match(candidate):
                    rid = candidate
                break
        if rid is None:
            rid = uuid7().hex  # time-ordered: ids sort as the requests came
        state["request_id"] = rid
    return rid
