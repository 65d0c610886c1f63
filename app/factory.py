"""``create_app``: the composition root. Binds every port to its adapter and every key to a provider."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from advanced_alchemy.extensions.litestar import SQLAlchemyInitPlugin
from litestar import Litestar, Request
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.plugins import PluginProtocol
from opentelemetry.trace import TracerProvider

from app.auth import PUBLIC_PATHS, build_auth, principal_from_bearer
from app.cli import ServiceCLIPlugin
from app.di import provide
from app.di.plugin import DependencyRegistryPlugin, Overrides
from app.di.providers import PASSWORD_HASHER_STATE_KEY, TOKEN_ISSUER_STATE_KEY, service_dependencies
from app.errors import error_response, send_error_response
from app.health import HealthPlugin
from app.openapi_bodies import RequestBodiesPlugin
from app.openapi_errors import ErrorResponsesPlugin
from app.openapi_structs import StrictStructSchemaPlugin
from app.plugins.cache import CachePlugin
from app.plugins.database import DatabasePlugin
from app.plugins.http_client import HttpClientPlugin
from app.plugins.models import ModelPlugin
from app.plugins.video import VideoPlugin
from app.rate_limit import RateLimitPlugin
from app.request_context import finish_response
from app.settings import Settings, SettingsError, load_settings
from app.telemetry import TelemetryPlugin
from domain.principal import Principal
from domain.projects.controller import ProjectController
from domain.tags.controller import TagController
from domain.tasks.controller import TaskController
from domain.users.controller import AuthController
from infra.db.config import PoolOptions, build_sqlalchemy_config
from infra.db.transaction import TransactionMiddleware
from infra.security.passwords import Argon2PasswordHasher
from infra.security.tokens import JwtAccessTokenIssuer, load_or_create_secret
from infra.telemetry.logging import configure_logging

__all__ = ["create_app"]

VERSION = "0.1.0"
logger = logging.getLogger("app")


def _settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        raise SystemExit(f"configuration error: {exc}") from None


def optional_user_provider(secret: str, settings: Settings) -> Callable[[Request[Any, Any, Any]], Principal | None]:
    """The caller of a public route, when it sent a valid token (``/health/detailed`` shows admins more)."""

    def provide_optional_user(request: Request[Any, Any, Any]) -> Principal | None:
        return principal_from_bearer(
            request.headers.get("authorization"),
            secret=secret,
            algorithm=settings.jwt_algorithm,
            issuer=settings.jwt_issuer,
        )

    return provide_optional_user


def _signing_secret(settings: Settings) -> str:
    if settings.jwt_secret:
        return settings.jwt_secret
    path = Path(settings.data_dir) / "jwt-secret"
    logger.warning("JWT_SECRET is not set: signing tokens with the generated secret in %s (development only)", path)
    return load_or_create_secret(path)


def create_app(
    settings: Settings | None = None,
    overrides: Overrides | None = None,
    *,
    tracer_provider: TracerProvider | None = None,
) -> Litestar:
    """Build the service.

    Args:
        settings: defaults to the environment (and ``.env``).
        overrides: dependency keys to replace, ``{"project_service": fake_provider}``.
        tracer_provider: trace with this provider instead of the one the ``OTEL_*`` settings describe.
    """
    settings = settings or _settings_or_exit()
    configure_logging(settings.log_level, json_lines=settings.is_production)
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
    telemetry = TelemetryPlugin(settings, VERSION, tracer_provider)
    request_span = telemetry.request_span_middleware()
    # Order matters: lifespans open in this order and close in reverse.
    plugins: list[PluginProtocol] = [telemetry]
    database = DatabasePlugin(sqlalchemy_config, auto_migrate=settings.auto_migrate)
    plugins += [
        SQLAlchemyInitPlugin(config=sqlalchemy_config),
        database,
        CachePlugin(settings.redis_url, settings.cache_namespace),
        HttpClientPlugin(
            timeout=settings.http_client_timeout,
            max_connections=settings.http_client_max_connections,
            user_agent=f"video-opusclip/{VERSION}",
        ),
        ModelPlugin(settings),
        VideoPlugin(settings, database),
    ]
    if settings.rate_limit_enabled:
        plugins.append(
            RateLimitPlugin(
                default=settings.rate_limit_default,
                routes={("POST", "/video/process"): settings.rate_limit_video_process},
                namespace=settings.cache_namespace,
            )
        )
    plugins += [
        HealthPlugin(interval=settings.health_check_interval, timeout=settings.health_check_timeout),
        ServiceCLIPlugin(),
        ErrorResponsesPlugin(PUBLIC_PATHS, rate_limited=settings.rate_limit_enabled),
        StrictStructSchemaPlugin(),
        RequestBodiesPlugin(),
        DependencyRegistryPlugin(overrides or {}, telemetry.tracer),  # last: sees every registration
    ]
    dependencies = {
        **service_dependencies(),
        "optional_user": provide("optional_user", optional_user_provider(secret, settings)),
    }

    return Litestar(
        route_handlers=[AuthController, ProjectController, TaskController, TagController],
        dependencies=dict(dependencies),
        plugins=plugins,
        on_app_init=[auth.on_app_init],
        middleware=[
            *([request_span] if request_span is not None else []),
            TransactionMiddleware(sqlalchemy_config.session_scope_key, send_error_response, telemetry.tracer),
        ],
        before_send=[finish_response],
        exception_handlers={Exception: error_response},
        state=State(state),
        openapi_config=OpenAPIConfig(
            title="Video-OpusClip",
            version=VERSION,
            path="/schema",
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin(path="/swagger")],
        ),
        logging_config=None,  # configure_logging above: structured, with request and trace ids
        debug=False,
    )
