"""Outbound HTTP: one pooled httpx.AsyncClient, opened at start-up and closed at shutdown."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.datastructures import State
from litestar.plugins import InitPluginProtocol

from app.di import provide, singleton
from app.health import Group, HealthCheck, health_registry
from infra.http.client import create_http_client

logger = logging.getLogger("app.http_client")

HTTP_CLIENT_STATE_KEY = "http_client"


@singleton
def provide_http_client(state: State) -> httpx.AsyncClient:
    client: httpx.AsyncClient = state[HTTP_CLIENT_STATE_KEY]
    return client


class HttpClientPlugin(InitPluginProtocol):
    def __init__(self, *, timeout: float, max_connections: int, user_agent: str) -> None:
        self.timeout = timeout
        self.max_connections = max_connections
        self.user_agent = user_agent

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.lifespan.append(self._lifespan)
        health_registry(app_config).register(HealthCheck("http_client", Group.SERVICES, _check_client_open))
        app_config.dependencies["http_client"] = provide("http_client", provide_http_client)
        return app_config

    @asynccontextmanager
    async def _lifespan(self, app: Litestar) -> AsyncIterator[None]:
        client = create_http_client(
            timeout=self.timeout, max_connections=self.max_connections, user_agent=self.user_agent
        )
        app.state[HTTP_CLIENT_STATE_KEY] = client
        logger.info("http client pool opened")
        try:
            yield
        finally:
            await client.aclose()
            logger.info("http client pool closed")


async def _check_client_open(app: Litestar) -> str:
    """In-process only: whether a remote answers depends on the remote, not on this pod's health."""
    client: httpx.AsyncClient | None = app.state.get(HTTP_CLIENT_STATE_KEY)
    if client is None or client.is_closed:
        raise RuntimeError("the outbound HTTP client is not open")
    return "open"
