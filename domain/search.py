"""Substring search that ignores case and accents, and treats ``%`` and ``_`` in user input literally."""

from __future__ import annotations

from sqlalchemy import ColumnElement, false
from sqlalchemy.orm import InstrumentedAttribute

from domain.text import search_key


def contains(searched: InstrumentedAttribute[str], text: str) -> ColumnElement[bool]:
    """Rows whose text contains ``text``, ignoring case and accents: ``searched`` is a column that holds
    the :func:`~domain.text.search_key` of that text, computed in Python, so the search is the same
    on SQLite as on PostgreSQL (SQL's ``lower()`` lowers ASCII letters only on SQLite)."""
    key = search_key(text)
    if not key:  # only accents: nothing a name holds once they are taken out
        return false()
    escaped = key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return searched.like(f"%{escaped}%", escape="\\")
