"""The text a client may send: any Unicode but NUL (U+0000), in every field and query parameter.

PostgreSQL's ``text`` cannot hold a NUL (the statement fails: a 500 before this), and SQLite's
string functions stop at one; no name, title or search needs it. Each pattern below is a whole
constraint (msgspec takes one pattern per field), so the ones that ask more (not blank, no comma)
refuse NUL as well.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated

import msgspec

NUL_FREE = r"^[^\x00]*$"
"""Any text without NUL."""

NOT_BLANK = r"^(?=[^\x00]*[^\s\x00])[^\x00]*$"
"""Text without NUL that is not only whitespace."""

Description = Annotated[str, msgspec.Meta(max_length=10_000, pattern=NUL_FREE)]
"""A free-text description (projects, tasks)."""


def caseless(text: str) -> str:
    """``text`` in the form Unicode's caseless matching compares: case folded (``Été`` and ``été``,
    ``Straße`` and ``STRASSE`` become one) and with each accent in one form, however it was typed
    (NFC).

    Computed in Python, and stored in a key column where the database must compare it, rather than
    left to SQL's ``lower()``: SQLite lowers ASCII letters only, so the two databases would disagree."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).casefold())


def search_key(text: str) -> str:
    """``text`` in the form a search compares: case and accents ignored (``ete`` finds ``Été``,
    ``istanbul`` finds ``İstanbul``, ``strasse`` finds ``Straße``), compatibility forms unified
    (the ligature ``ﬁ`` is ``fi``, a full-width A is ``a``).

    Unicode's compatibility caseless form (NFKD of the case folding, twice) with the combining marks
    taken out: both the stored key and the query go through it, so a search is a substring test."""
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text.casefold()).casefold())
    return "".join(char for char in folded if not unicodedata.combining(char))
