"""The floor: a bare ASGI app (no framework, no ORM) for the benchmark in ``bench/load.py``.

It serves the three routes the benchmark measures with the same SQL the service
sends, the same JWT check and the same JSON shapes, and nothing else:

- ``GET  /projects/{id}``      -> ``ProjectOut`` (404 when not the caller's)
- ``GET  /projects?limit&offset`` -> ``{"items", "total", "limit", "offset"}``
- ``POST /projects``           -> 201 ``ProjectOut`` + ``Location`` (409 on a name clash)

Per request, like the service: verify the bearer token (pyjwt, HS256, ``exp``, ``iss``,
required ``exp``/``sub``/``iat``), build the caller from the claims, check the scope,
take one pooled connection, run the statements in one transaction, commit.

Not done here (these are the service's extra work, i.e. part of what the benchmark
measures): the pool pre-ping, the re-SELECT after INSERT, request ids, middleware,
dependency injection, ORM identity map and unit of work.

Configuration (environment):
    FLOOR_DSN          asyncpg DSN, e.g. postgresql://postgres@127.0.0.1:5432/db (required)
    JWT_SECRET         signing secret (required)
    JWT_ISSUER         accepted issuer (default ``video-opusclip``)
    FLOOR_POOL_MIN     pool min size (default 10, the service's DB_POOL_SIZE)
    FLOOR_POOL_MAX     pool max size (default 20, DB_POOL_SIZE + DB_MAX_OVERFLOW)
    FLOOR_READ_TX      1 (default): reads run in BEGIN/COMMIT like the service's
                       per-request session; 0: reads run as single autocommit statements

Run: ``uvicorn bench.floor_app:app`` (from the repository root).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl
from uuid import UUID

import asyncpg
import jwt
import msgspec
from uuid_utils.compat import uuid7

from domain.text import search_key

ADMIN_SCOPE = "admin"
MAX_BODY = 1 << 20

_COLUMNS = "id, owner_id, name, description, sa_orm_sentinel, created_at, updated_at"
SQL_GET = f"SELECT {_COLUMNS} FROM projects WHERE id = $1 AND owner_id = $2"
SQL_GET_ADMIN = f"SELECT {_COLUMNS} FROM projects WHERE id = $1"
SQL_LIST = (
    f"SELECT {_COLUMNS}, count(*) OVER () AS total FROM projects WHERE owner_id = $1"
    " ORDER BY created_at DESC LIMIT $2 OFFSET $3"
)
SQL_LIST_ADMIN = (
    f"SELECT {_COLUMNS}, count(*) OVER () AS total FROM projects ORDER BY created_at DESC LIMIT $1 OFFSET $2"
)
SQL_NAME_CLASH = f"SELECT {_COLUMNS} FROM projects WHERE owner_id = $1 AND name = $2"
SQL_INSERT = (
    "INSERT INTO projects (id, owner_id, name, name_search, description, created_at, updated_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7)"
)

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"\S")]
Description = Annotated[str, msgspec.Meta(max_length=10_000)]


class ProjectCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Name
    description: Description | None = None


class ProjectOut(msgspec.Struct, kw_only=True):
    id: UUID
    name: str
    description: str | None
    created_at: datetime
    updated_at: datetime


class Page(msgspec.Struct):
    items: list[ProjectOut]
    total: int
    limit: int
    offset: int


_decode_create = msgspec.json.Decoder(ProjectCreate).decode
_encode = msgspec.json.Encoder().encode


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _out(row: asyncpg.Record) -> ProjectOut:
    return ProjectOut(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class FloorApp:
    def __init__(self) -> None:
        self.dsn = os.environ.get("FLOOR_DSN", "")
        self.secret = os.environ.get("JWT_SECRET", "")
        self.issuer = os.environ.get("JWT_ISSUER", "video-opusclip")
        self.pool_min = int(os.environ.get("FLOOR_POOL_MIN", "10"))
        self.pool_max = int(os.environ.get("FLOOR_POOL_MAX", "20"))
        self.read_tx = os.environ.get("FLOOR_READ_TX", "1") != "0"
        self.pool: asyncpg.Pool | None = None

    # -- ASGI ---------------------------------------------------------------------------------
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        try:
            status, body, extra = await self._dispatch(scope, receive)
        except HttpError as exc:
            status, body, extra = exc.status, _encode({"error": exc.message}), []
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
        if status == 401:
            headers.append((b"www-authenticate", b"Bearer"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _lifespan(self, receive: Any, send: Any) -> None:
        for _ in range(2):  # startup, then shutdown
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if not self.dsn or len(self.secret) < 32:
                        raise RuntimeError("FLOOR_DSN and JWT_SECRET (>= 32 characters) must be set")
                    self.pool = await asyncpg.create_pool(self.dsn, min_size=self.pool_min, max_size=self.pool_max)
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.pool is not None:
                    await self.pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- routing --------------------------------------------------------------------------------
    async def _dispatch(self, scope: dict[str, Any], receive: Any) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        path: str = scope["path"].rstrip("/") or "/"
        method: str = scope["method"]
        if path == "/projects":
            if method == "GET":
                owner, admin = self._principal(scope, "projects:read")
                return 200, await self._list(owner, admin, scope.get("query_string", b"")), []
            if method == "POST":
                owner, _ = self._principal(scope, "projects:write")
                body = await _read_body(receive)
                return await self._create(owner, body)
            raise HttpError(405, "method not allowed")
        if path.startswith("/projects/") and path.count("/") == 2:
            try:
                project_id = UUID(path[10:])
            except ValueError:
                raise HttpError(404, "not found") from None
            if method != "GET":
                raise HttpError(405, "method not allowed")
            owner, admin = self._principal(scope, "projects:read")
            return 200, await self._get(owner, admin, project_id), []
        raise HttpError(404, "not found")

    # -- auth: the same checks as litestar's OAuth2PasswordBearerAuth + app.auth + the scope guard --
    def _principal(self, scope: dict[str, Any], needed: str) -> tuple[UUID, bool]:
        auth = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                auth = value
                break
        if not auth[:7].lower() == b"bearer ":
            raise HttpError(401, "No JWT token found in request header")
        try:
            claims = jwt.decode(
                auth[7:].strip().decode("latin-1"),
                self.secret,
                algorithms=["HS256"],
                issuer=self.issuer,
                options={"require": ["exp", "sub", "iat"], "verify_aud": False},
            )
            owner = UUID(claims["sub"])
        except (jwt.InvalidTokenError, KeyError, ValueError, TypeError):
            raise HttpError(401, "Invalid token") from None
        extras = claims.get("extras") or {}
        scope_claim = extras.get("scope", "") if isinstance(extras, dict) else ""
        if not isinstance(scope_claim, str):
            raise HttpError(401, "Invalid token")
        scopes = scope_claim.split()
        admin = ADMIN_SCOPE in scopes
        if not (admin or needed in scopes):
            raise HttpError(403, f"this needs the {needed!r} scope")
        return owner, admin

    # -- handlers ----------------------------------------------------------------------------------
    async def _get(self, owner: UUID, admin: bool, project_id: UUID) -> bytes:
        assert self.pool is not None
        async with self.pool.acquire() as conn:
            args = (project_id,) if admin else (project_id, owner)
            sql = SQL_GET_ADMIN if admin else SQL_GET
            if self.read_tx:
                async with conn.transaction():
                    row = await conn.fetchrow(sql, *args)
            else:
                row = await conn.fetchrow(sql, *args)
        if row is None:
            raise HttpError(404, f"project {project_id} not found")
        return _encode(_out(row))

    async def _list(self, owner: UUID, admin: bool, query_string: bytes) -> bytes:
        assert self.pool is not None
        limit, offset = 20, 0
        try:
            for key, value in parse_qsl(query_string.decode("latin-1")):
                if key == "limit":
                    limit = int(value)
                elif key == "offset":
                    offset = int(value)
        except ValueError:
            raise HttpError(400, "invalid request") from None
        if not (1 <= limit <= 100) or offset < 0:
            raise HttpError(400, "invalid request")
        args: tuple[Any, ...] = (limit, offset) if admin else (owner, limit, offset)
        sql = SQL_LIST_ADMIN if admin else SQL_LIST
        async with self.pool.acquire() as conn:
            if self.read_tx:
                async with conn.transaction():
                    rows = await conn.fetch(sql, *args)
            else:
                rows = await conn.fetch(sql, *args)
        total = rows[0]["total"] if rows else 0
        return _encode(Page(items=[_out(r) for r in rows], total=total, limit=limit, offset=offset))

    async def _create(self, owner: UUID, body: bytes) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        assert self.pool is not None
        try:
            data = _decode_create(body)
        except msgspec.DecodeError:  # ValidationError is a subclass
            raise HttpError(400, "invalid request") from None
        name = data.name.strip()
        project_id = uuid7()
        now = datetime.now(UTC)
        async with self.pool.acquire() as conn, conn.transaction():
            if await conn.fetchrow(SQL_NAME_CLASH, owner, name) is not None:
                raise HttpError(409, f"a project named {name!r} already exists")
            try:
                await conn.execute(SQL_INSERT, project_id, owner, name, search_key(name), data.description, now, now)
            except asyncpg.UniqueViolationError:
                raise HttpError(409, "conflicts with an existing resource") from None
        out = ProjectOut(id=project_id, name=name, description=data.description, created_at=now, updated_at=now)
        return 201, _encode(out), [(b"location", f"/projects/{project_id}".encode())]


async def _read_body(receive: Any) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise HttpError(400, "client disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise HttpError(413, "request body too large")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


app = FloorApp()
