"""The service-level dependency keys and their providers.

Plugins register the keys of the resources they own (``db_session``, ``db_engine``,
``redis``, ``http_client``, ...) next to the resource; the keys here are the ones
built from those: the current user, the security adapters, and the domain services.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

from app.di.registry import TracedProvide, provide
from app.di.scopes import singleton
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


def provide_current_user(request: Request[Principal, Any, Any]) -> Principal:
    return request.user


@singleton
def provide_password_hasher(state: State) -> Argon2PasswordHasher:
    hasher: Argon2PasswordHasher = state[PASSWORD_HASHER_STATE_KEY]
    return hasher


@singleton
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


def service_dependencies() -> dict[str, TracedProvide]:
    return {
        "current_user": provide("current_user", provide_current_user),
        "password_hasher": provide("password_hasher", provide_password_hasher),
        "token_issuer": provide("token_issuer", provide_token_issuer),
        "auth_service": provide("auth_service", provide_auth_service),
        "project_service": provide("project_service", provide_project_service),
        "tag_service": provide("tag_service", provide_tag_service),
        "task_service": provide("task_service", provide_task_service),
    }
