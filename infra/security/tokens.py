"""Signed JWT access tokens carrying the subject, email and granted scopes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
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
