"""What the users service needs from the outside world; infra/security implements these."""

from __future__ import annotations

from typing import Protocol
from uuid import UUID


class PasswordHasher(Protocol):
    async def hash(self, password: str) -> str: ...

    async def verify(self, password_hash: str, password: str) -> bool:
        """True when ``password`` matches; runs the same work when the hash is a dummy."""
        ...


class AccessTokenIssuer(Protocol):
    lifetime_seconds: int

    def issue(self, subject: UUID, email: str, scopes: frozenset[str]) -> str: ...
