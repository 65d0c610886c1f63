"""Who is calling: the authenticated principal every service acts for."""

from __future__ import annotations

from uuid import UUID

import msgspec

ADMIN_SCOPE = "admin"
SCOPES = {
    "projects:read": "Read the caller's projects, tasks and tags",
    "projects:write": "Create, change and delete the caller's projects, tasks and tags",
    "video:process": "Submit videos for processing, read and cancel the caller's jobs",
    ADMIN_SCOPE: "Everything, on every user's resources",
}
"""Every scope a token can carry, with what it allows (also in the OpenAPI document)."""
KNOWN_SCOPES = frozenset(SCOPES)


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
