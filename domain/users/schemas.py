"""Request and response bodies of the auth endpoints."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec

from domain.text import NUL_FREE

FormText = Annotated[str, msgspec.Meta(pattern=NUL_FREE)]


class TokenRequest(msgspec.Struct, kw_only=True):
    """OAuth2 password grant, form-encoded (RFC 6749 section 4.3.2)."""

    grant_type: FormText = "password"
    username: FormText
    password: FormText
    scope: FormText | None = None


class TokenResponse(msgspec.Struct, kw_only=True):
    access_token: str
    token_type: str
    expires_in: int
    scope: str


class UserOut(msgspec.Struct, kw_only=True):
    id: UUID
    email: str
    scopes: list[str]


class NewUser(msgspec.Struct, kw_only=True):
    email: str
    password: str
    scopes: frozenset[str]
