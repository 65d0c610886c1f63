"""Users and the OAuth2 password grant."""

from __future__ import annotations

import re

from domain.errors import ConflictError, InvalidFieldsError, InvalidInputError, OAuthError
from domain.principal import ADMIN_SCOPE, KNOWN_SCOPES, Principal
from domain.users.models import User, email_key
from domain.users.ports import AccessTokenIssuer, PasswordHasher
from domain.users.repository import UserRepository
from domain.users.schemas import NewUser, TokenRequest, TokenResponse, UserOut
from domain.validation import decode_form

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD_LENGTH = 8


def parse_scopes(text: str | None) -> frozenset[str]:
    return frozenset(text.split()) if text else frozenset()


class UserService:
    def __init__(self, repository: UserRepository, hasher: PasswordHasher) -> None:
        self._users = repository
        self._hasher = hasher

    async def create(self, new_user: NewUser) -> UserOut:
        email = new_user.email.strip()
        if not _EMAIL.match(email):
            raise InvalidInputError(f"{email!r} is not an email address")
        if len(new_user.password) < MIN_PASSWORD_LENGTH:
            raise InvalidInputError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
        unknown = new_user.scopes - KNOWN_SCOPES
        if unknown:
            raise InvalidInputError(f"unknown scopes: {' '.join(sorted(unknown))}")
        if await self._users.get_by_email(email) is not None:
            raise ConflictError(f"a user with email {email!r} already exists")
        user = await self._users.add(
            User(
                email=email,
                email_key=email_key(email),
                password_hash=await self._hasher.hash(new_user.password),
                scopes=" ".join(sorted(new_user.scopes)),
            )
        )
        return UserOut(id=user.id, email=user.email, scopes=sorted(parse_scopes(user.scopes)))


class AuthService:
    """Checks credentials and issues access tokens for the password grant."""

    def __init__(self, repository: UserRepository, hasher: PasswordHasher, tokens: AccessTokenIssuer) -> None:
        self._users = repository
        self._hasher = hasher
        self._tokens = tokens

    async def issue_token_for_form(self, form: bytes) -> TokenResponse:
        """The token the ``application/x-www-form-urlencoded`` request ``form`` asks for. A form that is
        not a token request is RFC 6749's ``invalid_request`` (section 5.2), with the bad field."""
        try:
            request = decode_form(form, TokenRequest)
        except InvalidFieldsError as exc:
            first = exc.detail[0]
            where = f"{first['field']}: " if first.get("field") else ""
            raise OAuthError("invalid_request", f"{where}{first['message']}", detail=exc.detail) from None
        return await self.issue_token(request)

    async def issue_token(self, request: TokenRequest) -> TokenResponse:
        if request.grant_type != "password":
            raise OAuthError("unsupported_grant_type", "only the password grant is supported")
        user = await self._users.get_by_email(request.username)
        # Verify even when the user is unknown so that timing does not reveal which emails exist.
        valid = await self._hasher.verify(user.password_hash if user else "", request.password)
        if user is None or not valid or not user.is_active:
            raise OAuthError("invalid_grant", "invalid username or password")
        held = parse_scopes(user.scopes)
        requested = parse_scopes(request.scope)
        if requested - KNOWN_SCOPES:
            raise OAuthError("invalid_scope", f"unknown scopes: {' '.join(sorted(requested - KNOWN_SCOPES))}")
        if requested and not (ADMIN_SCOPE in held or requested <= held):
            raise OAuthError("invalid_scope", f"scopes not granted to this user: {' '.join(sorted(requested - held))}")
        granted = requested or held
        token = self._tokens.issue(user.id, user.email, granted)
        return TokenResponse(
            access_token=token,
            token_type="bearer",
            expires_in=self._tokens.lifetime_seconds,
            scope=" ".join(sorted(granted)),
        )

    @staticmethod
    def describe(principal: Principal) -> UserOut:
        return UserOut(id=principal.id, email=principal.email, scopes=sorted(principal.scopes))
