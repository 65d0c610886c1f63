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
from litestar.openapi.spec import Components, OAuthFlows, SecurityScheme
from litestar.security.jwt import OAuth2PasswordBearerAuth, Token

from domain.principal import SCOPES, Principal

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


class PasswordBearerAuth(OAuth2PasswordBearerAuth[Principal, Token]):
    """Litestar's OAuth2 password bearer auth, documented as a valid OpenAPI 3.1 ``oauth2`` scheme.

    Litestar's own scheme mixes in the fields of an ``http`` bearer scheme (``scheme``,
    ``bearerFormat``, ``name``, ``in``) and leaves out the flow's ``scopes``, which OpenAPI requires:
    a strict validator, as some client generators run, refused the whole document."""

    @property
    def openapi_components(self) -> Components:
        scheme = SecurityScheme(type="oauth2", description=self.description, flows=OAuthFlows(password=self.oauth_flow))
        return Components(security_schemes={self.openapi_security_scheme_name: scheme})


def build_auth(*, secret: str, algorithm: str, issuer: str) -> PasswordBearerAuth:
    return PasswordBearerAuth(
        retrieve_user_handler=principal_from_token,
        oauth_scopes=SCOPES,
        description="An access token from POST /auth/token (OAuth2 password grant), sent as Authorization: Bearer",
        token_secret=secret,
        token_url="/auth/token",
        algorithm=algorithm,
        accepted_issuers=[issuer],
        require_claims=["exp", "sub", "iat"],
        exclude=PUBLIC_PATHS,
    )
