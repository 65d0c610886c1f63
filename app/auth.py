"""JWT bearer authentication with Litestar's ``OAuth2PasswordBearerAuth``.

The principal is built from the token's claims (subject, email, scopes) without a
database round trip: tokens are short-lived (``JWT_ACCESS_TOKEN_TTL``), so a
deactivated user keeps access at most that long.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.security.jwt import OAuth2PasswordBearerAuth, Token

from domain.principal import Principal

PUBLIC_PATHS = ["^/schema", "^/health", "^/metrics$"]


async def principal_from_token(token: Token, _: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    try:
        subject = UUID(token.sub)
    except ValueError:
        return None
    scope = token.extras.get("scope", "")
    email = token.extras.get("email", "")
    if not isinstance(scope, str) or not isinstance(email, str):
        return None
    return Principal(id=subject, email=email, scopes=frozenset(scope.split()))


def principal_from_bearer(authorization: str | None, *, secret: str, algorithm: str, issuer: str) -> Principal | None:
    """The principal of an ``Authorization: Bearer`` header, or None when absent or invalid.

    For public routes that show more to some callers (``/health/detailed`` to ``admin``).
    """
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not encoded:
        return None
    try:
        token = Token.decode(encoded.strip(), secret=secret, algorithm=algorithm, issuer=[issuer])
    except NotAuthorizedException:
        return None
    try:
        subject = UUID(token.sub)
    except ValueError:
        return None
    scope, email = token.extras.get("scope", ""), token.extras.get("email", "")
    if not isinstance(scope, str) or not isinstance(email, str):
        return None
    return Principal(id=subject, email=email, scopes=frozenset(scope.split()))


def build_auth(*, secret: str, algorithm: str, issuer: str) -> OAuth2PasswordBearerAuth[Principal, Token]:
    return OAuth2PasswordBearerAuth[Principal, Token](
        retrieve_user_handler=principal_from_token,
        token_secret=secret,
        token_url="/auth/token",
        algorithm=algorithm,
        accepted_issuers=[issuer],
        require_claims=["exp", "sub", "iat"],
        exclude=PUBLIC_PATHS,
    )
