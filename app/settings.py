"""Typed settings read from the environment (and an optional ``.env`` file).

Every field maps to one environment variable: the field name upper-cased
(``db_pool_size`` <- ``DB_POOL_SIZE``). A value that does not validate raises
:class:`SettingsError` whose message names the variable, so start-up can stop
with one clear line instead of a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

import limits
import msgspec
from dotenv import dotenv_values

from domain.validation import invalid_field
from infra.telemetry.tracing import ExporterName, OtlpProtocol, SamplerName

Environment = Literal["development", "production"]

_SQLITE_DEFAULT = "sqlite+aiosqlite:///./var/video_opusclip.db"
_SUPPORTED_DATABASE_SCHEMES = ("sqlite+aiosqlite", "postgresql+asyncpg")
_SUPPORTED_REDIS_SCHEMES = ("redis", "rediss", "unix")

PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
NonNegativeInt = Annotated[int, msgspec.Meta(ge=0)]
PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]


class SettingsError(ValueError):
    """A configuration value is missing or invalid; the message names the variable."""


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    """The service's configuration. Defaults give the embedded SQLite + in-memory setup."""

    app_env: Environment = "development"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    data_dir: str = "var"
    """Where the embedded default keeps its files (the generated JWT secret, uploads)."""

    database_url: str = _SQLITE_DEFAULT
    db_pool_size: PositiveInt = 10
    db_max_overflow: NonNegativeInt = 10
    db_pool_timeout: PositiveInt = 30
    db_pool_recycle: PositiveInt = 1800
    db_pool_pre_ping: bool = True
    db_echo: bool = False
    # None means "on for the embedded SQLite default, off for a real server".
    db_auto_migrate: bool | None = None

    redis_url: str | None = None
    cache_namespace: str = "video-opusclip"

    jwt_secret: str | None = None
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    jwt_access_token_ttl: Annotated[int, msgspec.Meta(ge=60, le=86_400)] = 900
    jwt_issuer: str = "video-opusclip"

    password_hash_time_cost: Annotated[int, msgspec.Meta(ge=1, le=20)] = 3
    password_hash_memory_kib: Annotated[int, msgspec.Meta(ge=1024, le=1_048_576)] = 65_536

    health_check_interval: Annotated[float, msgspec.Meta(ge=0.2, le=300)] = 10.0
    """Seconds between two runs of the background health monitor; readiness answers from its last run."""
    health_check_timeout: Annotated[float, msgspec.Meta(gt=0, le=60)] = 2.0
    """Seconds one dependency check may take before it counts as failed."""
    shutdown_drain_delay: Annotated[float, msgspec.Meta(ge=0, le=60)] = 2.0
    """After SIGTERM: seconds the server keeps accepting requests while readiness answers 503."""
    shutdown_drain_timeout: Annotated[float, msgspec.Meta(ge=0, le=600)] = 25.0
    """After the drain delay: seconds in-flight requests may take to finish before they are cut."""
    gc_gen0_threshold: Annotated[int, msgspec.Meta(ge=100, le=1_000_000)] = 10_000
    """The server's young-generation threshold for the cyclic garbage collector (Python's default is 700).
    Nearly everything a request allocates is freed by reference counting, yet at 700 a collection
    ran every 30 requests or so and walked every object of the requests in flight: 2-3 % of the
    server's CPU (bench/README.md). Cyclic garbage waits longer for its collection; a few MB at most."""

    rate_limit_enabled: bool = True
    rate_limit_default: str = "120/minute"
    """Per user (per client IP when anonymous), every route but probes and metrics."""
    rate_limit_video_process: str = "10/minute"
    """The stricter limit of ``POST /video/process``."""

    model_dir: str | None = None
    """An extra model repository (``<name>/<version>/model.pt``) over the shipped one: adds models and versions."""
    model_device: Literal["auto", "cpu", "cuda"] = "auto"
    model_mixed_precision: Literal["none", "bf16", "fp16"] = "none"
    """Autocast on CUDA (the seed's mixed precision); ignored on the CPU."""
    model_threads: Annotated[int, msgspec.Meta(ge=0, le=256)] = 1
    """Intra-op threads of torch; 0 keeps torch's default (the number of cores). The shipped models are
    small: one thread is fastest for them (bench/README.md); raise it for heavy models of your own."""
    model_batching: bool = True
    model_max_pending_items: PositiveInt = 4096
    """Queue bound per model, in items; beyond it callers get 503 with Retry-After."""
    model_request_timeout: PositiveFloat = 30.0
    """Seconds one inference request may wait and run before it fails with 504."""

    media_dir: str | None = None
    """Job files (uploads waiting for a worker, thumbnails, clips); default ``DATA_DIR/media``. On Kubernetes:
    a volume the API pods and the workers share."""
    media_retention_days: NonNegativeInt = 30
    """Days thumbnails and clips stay after their job ended; 0 keeps them for ever."""
    video_max_bytes: PositiveInt = 2 * 1024**3
    """Largest upload or download, in bytes (413 beyond it)."""
    video_max_duration: PositiveFloat = 4 * 3600.0
    """Longest video analysed, in seconds (422 beyond it)."""
    video_sync_budget: Annotated[float, msgspec.Meta(ge=0, le=120)] = 20.0
    """``POST /video/process?wait=true`` answers 200 with the result if the job ends within this many seconds."""
    video_max_active_jobs: PositiveInt = 3
    """Queued plus running jobs per user; the next submission gets 429."""
    video_job_attempts: Annotated[int, msgspec.Meta(ge=1, le=10)] = 3
    video_job_heartbeat: Annotated[float, msgspec.Meta(ge=0.2, le=120)] = 5.0
    """Seconds between lease renewals of a running job; a job silent for 3 of them is given to another worker."""
    video_job_timeout: Annotated[int, msgspec.Meta(ge=10)] = 4 * 3600
    video_worker_concurrency: Annotated[int, msgspec.Meta(ge=1, le=64)] = 1
    """Jobs one worker process runs at once (they share its model pool and cores)."""
    video_worker_shutdown_grace: Annotated[int, msgspec.Meta(ge=0, le=3600)] = 60
    """Seconds a stopping worker gives running jobs; then they are cancelled and retried elsewhere."""
    video_queue_name: str = "video"
    clip_min_seconds: PositiveFloat = 5.0
    clip_max_seconds: PositiveFloat = 60.0
    fetch_allow_networks: str = ""
    """Comma-separated networks (``127.0.0.1/32``) that video URLs may point to although they are private."""
    fetch_connect_timeout: PositiveFloat = 10.0
    fetch_read_timeout: PositiveFloat = 30.0
    fetch_total_timeout: PositiveFloat = 1800.0

    http_client_timeout: PositiveFloat = 10.0
    http_client_max_connections: PositiveInt = 100

    # OpenTelemetry, under the variable names of the OpenTelemetry specification.
    otel_service_name: str = "video-opusclip"
    otel_traces_exporter: ExporterName = "none"
    otel_exporter_otlp_endpoint: str | None = None
    otel_exporter_otlp_protocol: OtlpProtocol = "http/protobuf"
    otel_traces_sampler: SamplerName = "parentbased_always_on"
    otel_traces_sampler_arg: Annotated[float, msgspec.Meta(ge=0, le=1)] = 1.0

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"

    @property
    def uses_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def media_root(self) -> str:
        return self.media_dir or f"{self.data_dir}/media"

    @property
    def auto_migrate(self) -> bool:
        return self.uses_sqlite if self.db_auto_migrate is None else self.db_auto_migrate

    def __post_init__(self) -> None:
        scheme = self.database_url.split("://", 1)[0]
        if scheme not in _SUPPORTED_DATABASE_SCHEMES:
            raise SettingsError(
                f"DATABASE_URL: scheme {scheme!r} is not supported; "
                f"use one of {', '.join(s + '://' for s in _SUPPORTED_DATABASE_SCHEMES)}"
            )
        if self.redis_url is not None:
            redis_scheme = self.redis_url.split("://", 1)[0]
            if redis_scheme not in _SUPPORTED_REDIS_SCHEMES:
                raise SettingsError(
                    f"REDIS_URL: scheme {redis_scheme!r} is not supported; use redis://, rediss:// or unix://"
                )
        for variable, value in (
            ("RATE_LIMIT_DEFAULT", self.rate_limit_default),
            ("RATE_LIMIT_VIDEO_PROCESS", self.rate_limit_video_process),
        ):
            try:
                limits.parse(value)
            except ValueError:
                raise SettingsError(
                    f"{variable}: {value!r} is not a rate such as '120/minute' or '10 per second'"
                ) from None
        if self.clip_min_seconds > self.clip_max_seconds:
            raise SettingsError("CLIP_MIN_SECONDS: must not exceed CLIP_MAX_SECONDS")
        if self.health_check_timeout >= self.health_check_interval:
            raise SettingsError("HEALTH_CHECK_TIMEOUT: must be shorter than HEALTH_CHECK_INTERVAL")
        if self.is_production and not self.jwt_secret:
            raise SettingsError("JWT_SECRET: must be set when APP_ENV=production")
        if self.jwt_secret is not None and len(self.jwt_secret) < 32:
            raise SettingsError("JWT_SECRET: must be at least 32 characters")


_FIELDS = {name: name.upper() for name in Settings.__struct_fields__}
_FALSY_EMPTY = {"", "none", "null"}
_NULLABLE = {field.name for field in msgspec.structs.fields(Settings) if field.default is None}


def _raw_values(environ: Mapping[str, str], env_file: Path | None) -> dict[str, str | None]:
    file_values: dict[str, str | None] = {}
    if env_file is not None and env_file.is_file():
        file_values = dict(dotenv_values(env_file))
    raw: dict[str, str | None] = {}
    for field, variable in _FIELDS.items():
        value = environ.get(variable, file_values.get(variable))
        if value is None:
            continue
        raw[field] = None if field in _NULLABLE and value.strip().lower() in _FALSY_EMPTY else value
    return raw


def load_settings(environ: Mapping[str, str] | None = None, env_file: Path | None = Path(".env")) -> Settings:
    """Build :class:`Settings` from environment variables, falling back to ``.env``.

    Raises:
        SettingsError: naming the offending variable.
    """
    raw = _raw_values(os.environ if environ is None else environ, env_file)
    try:
        return msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(_explain(exc)) from None


def _explain(exc: msgspec.ValidationError) -> str:
    field, message = invalid_field(exc)
    return f"{_FIELDS.get(field, field.upper())}: {message}" if field else message
