"""``/auth``: the OAuth2 password grant and the caller's identity."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency

from domain.openapi import ROUTE_BODIES, ROUTE_ERRORS
from domain.principal import Principal
from domain.users.schemas import TokenRequest, TokenResponse, UserOut
from domain.users.service import AuthService


class AuthController(Controller):
    path = "/auth"
    tags = ["auth"]

    @post(
        "/token",
        status_code=200,
        exclude_from_auth=True,
        summary="Issue an access token (OAuth2 password grant)",
        response_headers=[ResponseHeader(name="Cache-Control", value="no-store")],
        opt={
            # the form is decoded here, not by Litestar, whose parser reads raw bytes as Latin-1
            ROUTE_BODIES: {"application/x-www-form-urlencoded": TokenRequest},
            ROUTE_ERRORS: {
                400: "An OAuth2 error (RFC 6749, 5.2): error is its code (invalid_grant, unsupported_grant_type, "
                "invalid_scope), error_description says why; or a field of the form is invalid (detail)"
            },
        },
    )
    async def issue_token(
        self, request: Request[Any, Any, Any], auth_service: NamedDependency[AuthService]
    ) -> TokenResponse:
        return await auth_service.issue_token_for_form(await request.body())

    @get("/me", summary="The caller")
    async def me(self, current_user: NamedDependency[Principal]) -> UserOut:
        return AuthService.describe(current_user)
