"""``create_app``: the composition root. Binds every port to its adapter and every key to a provider."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from advanced_alchemy.extensions.litestar import SQLAlchemyInitPlugin
from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.logging import LoggingConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.plugins import InitPluginProtocol

from app.auth import build_auth
from app.cli import UsersCLIPlugin
from app.di import PASSWORD_HASHER_STATE_KEY, TOKEN_ISSUER_STATE_KEY, app_dependencies, apply_overrides
from app.errors import error_response, send_error_response
from app.health import STARTED_AT_STATE_KEY, HealthController
from app.plugins.cache import CachePlugin
from app.plugins.database import DatabasePlugin
from app.plugins.http_client import HttpClientPlugin
from app.request_id import add_request_id_header
from app.settings import Settings, SettingsError, load_settings
from domain.projects.controller import ProjectController
from domain.tags.controller import TagController
from domain.tasks.controller import TaskController
from domain.users.controller import AuthController
from infra.db.config import PoolOptions, build_sqlalchemy_config
from infra.db.transaction import TransactionMiddleware
from infra.security.passwords import Argon2PasswordHasher
from infra.security.tokens import JwtAccessTokenIssuer, load_or_create_secret

__all__ = ["create_app"]

VERSION = "0.1.0"
logger = logging.getLogger("app")

Overrides = Mapping[str, Callable[..., Any] | Provide]


class _DependencyOverrides(InitPluginProtocol):
    """Runs last, so an override replaces a key whichever plugin registered it."""

    def __init__(self, overrides: Overrides) -> None:
        self.overrides = overrides

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.dependencies = dict(apply_overrides(app_config.dependencies, self.overrides))
        return app_config


def _settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        raise SystemExit(f"configuration error: {exc}") from None


def _signing_secret(settings: Settings) -> str:
    if settings.jwt_secret:
        return settings.jwt_secret
    path = Path(settings.data_dir) / "jwt-secret"
    logger.warning("JWT_SECRET is not set: signing tokens with the generated secret in %s (development only)", path)
    return load_or_create_secret(path)


def create_app(settings: Settings | None = None, overrides: Overrides | None = None) -> Litestar:
    """Build the service. ``settings`` default to the environment; ``overrides`` swap dependency keys."""
    settings = settings or _settings_or_exit()
    secret = _signing_secret(settings)
    sqlalchemy_config = build_sqlalchemy_config(
        settings.database_url,
        PoolOptions(
            size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            timeout=settings.db_pool_timeout,
            recycle=settings.db_pool_recycle,
            pre_ping=settings.db_pool_pre_ping,
        ),
        echo=settings.db_echo,
    )
    auth = build_auth(secret=secret, algorithm=settings.jwt_algorithm, issuer=settings.jwt_issuer)
    state = {
        "settings": settings,
        PASSWORD_HASHER_STATE_KEY: Argon2PasswordHasher(
            time_cost=settings.password_hash_time_cost, memory_kib=settings.password_hash_memory_kib
        ),
        TOKEN_ISSUER_STATE_KEY: JwtAccessTokenIssuer(
            secret=secret,
            algorithm=settings.jwt_algorithm,
            issuer=settings.jwt_issuer,
            lifetime_seconds=settings.jwt_access_token_ttl,
        ),
    }

    def _mark_started(app: Litestar) -> None:
        import time

        app.state[STARTED_AT_STATE_KEY] = time.monotonic()

    return Litestar(
        route_handlers=[AuthController, ProjectController, TaskController, TagController, HealthController],
        dependencies=app_dependencies(),
        plugins=[
            SQLAlchemyInitPlugin(config=sqlalchemy_config),
            DatabasePlugin(sqlalchemy_config, auto_migrate=settings.auto_migrate),
            CachePlugin(settings.redis_url, settings.cache_namespace),
            HttpClientPlugin(
                timeout=settings.http_client_timeout,
                max_connections=settings.http_client_max_connections,
                user_agent=f"video-opusclip/{VERSION}",
            ),
            UsersCLIPlugin(),
            _DependencyOverrides(overrides or {}),
        ],
        on_app_init=[auth.on_app_init],
        on_startup=[_mark_started],
        middleware=[TransactionMiddleware(sqlalchemy_config.session_scope_key, send_error_response)],
        before_send=[add_request_id_header],
        exception_handlers={Exception: error_response},
        state=__import__("litestar").datastructures.State(state),
        openapi_config=OpenAPIConfig(
            title="Video-OpusClip",
            version=VERSION,
            path="/schema",
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin(path="/swagger")],
        ),
        logging_config=LoggingConfig(
            root={"level": settings.log_level, "handlers": ["queue_listener"]},
            log_exceptions="never",
        ),
        debug=False,
    )
