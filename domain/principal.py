"""Who is calling: the authenticated principal every service acts for."""

from __future__ import annotations

from uuid import UUID

import msgspec

ADMIN_SCOPE = "admin"
KNOWN_SCOPES = frozenset({"projects:read", "projects:write", "video:process", ADMIN_SCOPE})


class Principal(msgspec.Struct, frozen=True):
    """The caller as the access token describes it."""

    id: UUID
    email: str
    scopes: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return ADMIN_SCOPE in self.scopes

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes or self.is_admin
