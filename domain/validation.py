"""Naming the field a msgspec validation error is about, for messages a person (or a client) can act on."""

from __future__ import annotations

import re

import msgspec

_AT_PATH = re.compile(r"^(?P<message>.*) - at `\$\.(?P<path>[^`]*)`$")
_NAMED = re.compile(r"^Object (?:missing required|contains unknown) field `(?P<field>[^`]+)`")


def invalid_field(error: msgspec.ValidationError) -> tuple[str | None, str]:
    """``(field, message)``: the top-level field at fault (None when msgspec names none) and its message."""
    text = str(error)
    if (located := _AT_PATH.match(text)) is not None:
        field = re.split(r"[.\[]", located["path"], maxsplit=1)[0]
        nested = _NAMED.match(located["message"])
        return (field or (nested["field"] if nested else None)), located["message"]
    if (named := _NAMED.match(text)) is not None:
        return named["field"], text
    return None, text
