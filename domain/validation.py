"""Bodies the service decodes itself, and naming the field a msgspec validation error is about, for
messages a person (or a client) can act on."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import TypeVar
from urllib.parse import parse_qsl

import msgspec

from domain.errors import InvalidFieldsError

T = TypeVar("T")

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


def convert(raw: object, kind: type[T]) -> T:
    """``raw`` (decoded JSON, form fields) as ``kind``; a 400 naming the field when it is not one."""
    try:
        return msgspec.convert(raw, kind, strict=False)
    except msgspec.ValidationError as exc:
        field, message = invalid_field(exc)
        raise InvalidFieldsError("invalid request", [{"field": field, "message": message, "source": "body"}]) from None


def decode_form(body: bytes, kind: type[T]) -> T:
    """An ``application/x-www-form-urlencoded`` body as ``kind``, read as browsers and the WHATWG URL
    standard write it: percent-escapes and raw bytes alike are UTF-8.

    Litestar's own form parser reads raw bytes as Latin-1, so ``curl -d username=émile@x.fr`` (curl
    does not escape) reached the service as ``Ã©mile@x.fr``, and such a user could not log in. A
    name given twice is a list, which no field of ``kind`` takes (a 400, as RFC 6749 asks); an empty
    value is left out, as Litestar does."""
    try:
        pairs = parse_qsl(body.decode("utf-8"), errors="strict")
    except UnicodeDecodeError:
        message = "the form must be UTF-8, raw or percent-encoded"
        raise InvalidFieldsError(
            "the form is not UTF-8", [{"field": None, "message": message, "source": "body"}]
        ) from None
    values: defaultdict[str, list[str]] = defaultdict(list)
    for name, value in pairs:
        values[name].append(value)
    return convert({name: found[0] if len(found) == 1 else found for name, found in values.items()}, kind)
