"""``create_app``: the composition root. Binds every port to its adapter and every key to a provider."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from advanced_alchemy.extensions.litestar import SQLAlchemyInitPlugin
from litestar import Litestar
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from opentelemetry.sdk.trace import TracerProvider

from app.auth import build_auth
from app.cli import ServiceCLIPlugin
from app.di.plugin import DependencyRegistryPlugin, Overrides
from app.di.providers import PASSWORD_HASHER_STATE_KEY, TOKEN_ISSUER_STATE_KEY, service_dependencies
from app.errors import error_response, send_error_response
from app.health import STARTED_AT_STATE_KEY, HealthController
from app.plugins.cache import CachePlugin
from app.plugins.database import DatabasePlugin
from app.plugins.http_client import HttpClientPlugin
from app.request_context import finish_response
from app.settings import Settings, SettingsError, load_settings
from app.telemetry import TelemetryPlugin
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
    request_tracing = telemetry.opentelemetry_plugin()

    return Litestar(
        route_handlers=[AuthController, ProjectController, TaskController, TagController, HealthController],
        dependencies=dict(service_dependencies()),
        plugins=[
            # Order matters: lifespans open in this order and close in reverse.
            telemetry,
            *([request_tracing] if request_tracing else []),
            SQLAlchemyInitPlugin(config=sqlalchemy_config),
            DatabasePlugin(sqlalchemy_config, auto_migrate=settings.auto_migrate),
            CachePlugin(settings.redis_url, settings.cache_namespace),
            HttpClientPlugin(
                timeout=settings.http_client_timeout,
                max_connections=settings.http_client_max_connections,
                user_agent=f"video-opusclip/{VERSION}",
            ),
            ServiceCLIPlugin(),
            DependencyRegistryPlugin(overrides or {}, telemetry.tracer),
        ],
        on_app_init=[auth.on_app_init],
        on_startup=[_mark_started],
        middleware=[TransactionMiddleware(sqlalchemy_config.session_scope_key, send_error_response, telemetry.tracer)],
        before_send=[finish_response],
        exception_handlers={Exception: error_response},
        state=State(state),
        openapi_config=OpenAPIConfig(
            title="Video-OpusClip",
            version=VERSION,
            path="/schema",
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin(path="/swagger")],
        ),
        logging_config=None,  # TelemetryPlugin configures logging (structured, with request and trace ids)
        debug=False,
    )


def _mark_started(app: Litestar) -> None:
    app.state[STARTED_AT_STATE_KEY] = time.monotonic()
