"""Case-insensitive substring search that treats ``%`` and ``_`` in user input literally."""

from __future__ import annotations

from sqlalchemy import ColumnElement
from sqlalchemy.orm import InstrumentedAttribute

from domain.text import caseless


def contains(key: InstrumentedAttribute[str], text: str) -> ColumnElement[bool]:
    """Rows whose text contains ``text``, ignoring case: ``key`` is a column that holds the
    :func:`~domain.text.caseless` form of that text, so ``été`` finds ``Été`` on SQLite as on
    PostgreSQL (SQL's ``lower()`` would lower ASCII letters only on SQLite)."""
    escaped = caseless(text).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return key.like(f"%{escaped}%", escape="\\")
