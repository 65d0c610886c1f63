"""The text a client may send: any Unicode but NUL (U+0000), in every field and query parameter.

PostgreSQL's ``text`` cannot hold a NUL (the statement fails: a 500 before this), and SQLite's
string functions stop at one; no name, title or search needs it. Each pattern below is a whole
constraint (msgspec takes one pattern per field), so the ones that ask more (not blank, no comma)
refuse NUL as well.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

import msgspec

NUL_FREE = r"^[^\x00]*$"
"""Any text without NUL."""

WHITESPACE = r"\t\n\v\f\r \x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
"""The whitespace characters, spelled out for a character class. Not ``\\s``: Python's (which
validates, and strips) and JSON Schema's (ECMA-262, which clients validate with) differ, so a name
like ``\\x1c`` was refused here and allowed by the document. This is both sets."""

NOT_BLANK = rf"^(?=[^\x00]*[^{WHITESPACE}\x00])[^\x00]*$"
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


_DIACRITICS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
"""Unicode's blocks of combining diacritical marks: the accents of Latin, Greek and Cyrillic letters.
Other scripts' marks (Japanese voicing, Indic viramas, Thai tones) make other letters: kept."""

_UNDECOMPOSED = str.maketrans(
    {"ł": "l", "ø": "o", "đ": "d", "ð": "d", "ħ": "h", "\u0131": "i", "ŧ": "t", "æ": "ae", "œ": "oe"}
)
"""Latin letters that read as a letter with a stroke or a ligature but have no decomposition."""


def search_key(text: str) -> str:
    """``text`` in the form a search compares: case and accents ignored (``ete`` finds ``Été``,
    ``istanbul`` finds ``İstanbul``, ``strasse`` finds ``Straße``, ``lodz`` finds ``Łódź``),
    compatibility forms unified (the ligature ``ﬁ`` is ``fi``, a full-width A is ``a``).

    Unicode's compatibility caseless form (NFKD of the case folding, twice) without the diacritics
    of :data:`_DIACRITICS`, recomposed (NFC: Hangul syllables and Japanese voiced kana stay whole).
    Both the stored key and the query go through it, so a search is a substring test."""
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text.casefold()).casefold())
    bare = _DIACRITICS.sub("", folded)
    return unicodedata.normalize("NFC", bare).translate(_UNDECOMPOSED)
