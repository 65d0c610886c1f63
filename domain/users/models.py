"""The ``users`` table."""

from __future__ import annotations

from sqlalchemy import Boolean, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from domain.base import AuditBase


def email_key(email: str) -> str:
    """What makes two addresses one user's: equal once trimmed and lowered (Python's Unicode
    lowering, not case folding: ``straße@`` and ``strasse@`` are two mailboxes).

    Computed here rather than with SQL's ``lower()``, which SQLite applies to ASCII letters only (a
    user whose address had a non-ASCII capital could not log in there)."""
    return email.strip().lower()


class User(AuditBase):
    __tablename__ = "users"
    __table_args__ = (Index("uq_users_email_key", "email_key", unique=True),)

    email: Mapped[str] = mapped_column(String(320))
    email_key: Mapped[str] = mapped_column(Text)
    """:func:`email_key` of ``email``: unique."""
    password_hash: Mapped[str] = mapped_column(String(255))
    scopes: Mapped[str] = mapped_column(String(255), default="")
    """Space-separated OAuth2 scopes, as the ``scope`` parameter spells them."""
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
