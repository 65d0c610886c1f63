"""The ``users`` table."""

from __future__ import annotations

from sqlalchemy import Boolean, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from domain.base import AuditBase


class User(AuditBase):
    __tablename__ = "users"
    __table_args__ = (Index("uq_users_email_lower", text("lower(email)"), unique=True),)

    email: Mapped[str] = mapped_column(String(320))
    password_hash: Mapped[str] = mapped_column(String(255))
    scopes: Mapped[str] = mapped_column(String(255), default="")
    """Space-separated OAuth2 scopes, as the ``scope`` parameter spells them."""
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
