"""Every dependency key of the app and its provider, in one place.

Scopes:
- app: pools and clients that lifespan plugins put in ``app.state``;
- request: the DB session, the services built on it, the current user.

``create_app(overrides={key: provider})`` swaps any key, which is how tests
replace a dependency without touching the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from sqlalchemy.ext.asyncio import AsyncSession

from domain.principal import Principal
from domain.projects.repository import ProjectRepository
from domain.projects.service import ProjectService
from domain.tags.repository import TagRepository
from domain.tags.service import TagService
from domain.tasks.repository import TaskRepository
from domain.tasks.service import TaskService
from domain.users.repository import UserRepository
from domain.users.service import AuthService
from infra.security.passwords import Argon2PasswordHasher
from infra.security.tokens import JwtAccessTokenIssuer

PASSWORD_HASHER_STATE_KEY = "password_hasher"
TOKEN_ISSUER_STATE_KEY = "token_issuer"


def provide(provider: Callable[..., Any] | Provide) -> Provide:
    """The one way a dependency is registered."""
    if isinstance(provider, Provide):
        return provider
    return Provide(provider, sync_to_thread=False)


def provide_current_user(request: Request[Principal, Any, Any]) -> Principal:
    return request.user


def provide_password_hasher(state: State) -> Argon2PasswordHasher:
    hasher: Argon2PasswordHasher = state[PASSWORD_HASHER_STATE_KEY]
    return hasher


def provide_token_issuer(state: State) -> JwtAccessTokenIssuer:
    issuer: JwtAccessTokenIssuer = state[TOKEN_ISSUER_STATE_KEY]
    return issuer


def provide_auth_service(
    db_session: NamedDependency[AsyncSession],
    password_hasher: NamedDependency[Argon2PasswordHasher],
    token_issuer: NamedDependency[JwtAccessTokenIssuer],
) -> AuthService:
    return AuthService(UserRepository(session=db_session), password_hasher, token_issuer)


def provide_project_service(
    db_session: NamedDependency[AsyncSession], current_user: NamedDependency[Principal]
) -> ProjectService:
    return ProjectService(ProjectRepository(session=db_session), current_user)


def provide_tag_service(
    db_session: NamedDependency[AsyncSession], current_user: NamedDependency[Principal]
) -> TagService:
    return TagService(TagRepository(session=db_session), current_user)


def provide_task_service(
    db_session: NamedDependency[AsyncSession],
    current_user: NamedDependency[Principal],
    project_service: NamedDependency[ProjectService],
    tag_service: NamedDependency[TagService],
) -> TaskService:
    return TaskService(TaskRepository(session=db_session), project_service, tag_service, current_user)


def app_dependencies() -> dict[str, Provide]:
    return {
        "current_user": provide(provide_current_user),
        "password_hasher": provide(provide_password_hasher),
        "token_issuer": provide(provide_token_issuer),
        "auth_service": provide(provide_auth_service),
        "project_service": provide(provide_project_service),
        "tag_service": provide(provide_tag_service),
        "task_service": provide(provide_task_service),
    }


def apply_overrides(
    dependencies: Mapping[str, Provide | Callable[..., Any]], overrides: Mapping[str, Callable[..., Any] | Provide]
) -> dict[str, Provide]:
    merged = {key: provide(value) for key, value in dependencies.items()}
    return {**merged, **{key: provide(value) for key, value in overrides.items()}}
