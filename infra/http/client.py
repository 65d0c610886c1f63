from __future__ import annotations

import httpx


def create_http_client(*, timeout: float, max_connections: int, user_agent: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections // 2 or 1),
        headers={"User-Agent": user_agent},
        follow_redirects=False,
    )
