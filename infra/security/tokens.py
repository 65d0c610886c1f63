"""Signed JWT access tokens carrying the subject, email and granted scopes."""

from __future__ import annotations

import os
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

from litestar.security.jwt import Token


class JwtAccessTokenIssuer:
    """Implements :class:`domain.users.ports.AccessTokenIssuer` with Litestar's JWT ``Token``."""

    def __init__(self, secret: str, algorithm: str, issuer: str, lifetime_seconds: int) -> None:
        self._secret = secret
        self._algorithm = algorithm
        self._issuer = issuer
        self.lifetime_seconds = lifetime_seconds

    def issue(self, subject: UUID, email: str, scopes: frozenset[str]) -> str:
        now = datetime.now(UTC)
        token = Token(
            sub=str(subject),
            exp=now + timedelta(seconds=self.lifetime_seconds),
            iat=now,
            iss=self._issuer,
            jti=uuid4().hex,
            extras={"email": email, "scope": " ".join(sorted(scopes))},
        )
        return token.encode(secret=self._secret, algorithm=self._algorithm)


def load_or_create_secret(path: Path) -> str:
    """A signing secret kept in ``path`` (mode 0600), made on first use.

    For the embedded default only: tokens then survive a restart of the one process.
    A real deployment sets ``JWT_SECRET`` (production refuses to start without it).
    """
    if path.is_file():
        existing = path.read_text().strip()
        if len(existing) >= 32:
            return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(secret)
    return secret
