"""Auth per API.md: password grant, /auth/me, and the matrix of every protected route."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import jwt
import pytest
from litestar.routes import HTTPRoute

from app.auth import PUBLIC_PATHS
from domain.errors import ConflictError
from domain.users.schemas import NewUser
from tests.conftest import TEST_JWT_SECRET, Actor, Api

_PATH_PARAM = re.compile(r"\{[^}]+\}")


def protected_routes(api: Api) -> Iterator[tuple[str, str, str | None]]:
    """(method, concrete path, required scope) for every route that needs a token."""
    for route in api.app.routes:
        if not isinstance(route, HTTPRoute) or any(re.match(p, route.path) for p in PUBLIC_PATHS):
            continue
        for handler in route.route_handlers:
            if handler.opt.get("exclude_from_auth"):
                continue
            scopes = [getattr(getattr(g, "func", g), "required_scope", None) for g in handler.resolve_guards()]
            scope = next((s for s in scopes if s), None)
            path = _PATH_PARAM.sub(lambda _: str(uuid.uuid4()), route.path)
            for method in sorted(handler.http_methods - {"OPTIONS", "HEAD"}):
                yield method, path, scope


def forged(claims: dict[str, object], secret: str = TEST_JWT_SECRET) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


def claims_for(actor: Actor, **changes: object) -> dict[str, object]:
    now = datetime.now(UTC)
    base: dict[str, object] = {
        "sub": actor.id,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
        "iss": "video-opusclip",
        "extras": {"email": actor.email, "scope": " ".join(sorted(actor.scopes))},
    }
    return {**base, **changes}


async def test_an_address_with_a_non_ascii_capital_logs_in_in_any_case(api: Api) -> None:
    """SQLite's SQL ``lower()`` knows ASCII only: such a user could not log in on the embedded default."""
    email, password = f"Émile.{uuid.uuid4().hex[:8]}@Exemple.fr", "long-enough-password"
    await api.create_user(NewUser(email=email, password=password, scopes=frozenset({"projects:read"})))
    for spelling in (email, email.lower(), email.upper()):
        response = await api.client.post("/auth/token", data={"username": spelling, "password": password})
        assert response.status_code == 200, (spelling, response.text)
    with pytest.raises(ConflictError):
        await api.create_user(NewUser(email=email.lower(), password=password, scopes=frozenset()))


async def test_a_form_in_raw_utf8_logs_in_as_one_percent_encoded(api: Api) -> None:
    """``curl -d`` sends the form's UTF-8 as it is, browsers percent-encode it: both are the same
    login (Litestar's own parser read raw bytes as Latin-1, and such a user could not log in)."""
    email, password = f"émile.{uuid.uuid4().hex[:8]}@exemple.fr", "mot de passe d'été & co=1+2%"
    await api.create_user(NewUser(email=email, password=password, scopes=frozenset({"projects:read"})))
    form = {"content-type": "application/x-www-form-urlencoded"}
    # raw: the UTF-8 as it is, only the form's own characters escaped (a space as +)
    reserved = {"%": "%25", "&": "%26", "=": "%3D", "+": "%2B", " ": "+"}
    raw_password = "".join(reserved.get(char, char) for char in password)
    raw = f"username={email}&password={raw_password}".encode()
    escaped = f"username={quote(email)}&password={quote(password, safe='')}".encode()
    for body in (raw, escaped):
        response = await api.client.post("/auth/token", content=body, headers=form)
        assert response.status_code == 200, (body, response.text)


async def test_a_form_that_is_not_a_token_request_is_invalid_request(api: Api) -> None:
    """RFC 6749, 5.2: a missing, repeated or malformed parameter is ``invalid_request``; the body also
    names the field, as every other 400 of the service does."""
    form = {"content-type": "application/x-www-form-urlencoded"}
    for body, field in [
        (b"username=\xe9mile&password=x", None),
        (b"username=a&username=b&password=x", "username"),
        (b"username=a", "password"),
        (b"", "username"),
    ]:
        refused = await api.client.post("/auth/token", content=body, headers=form)
        assert refused.status_code == 400, (body, refused.text)
        answer = refused.json()
        assert answer["error"] == "invalid_request", answer
        assert answer["error_description"], answer
        assert [(entry["field"], entry["source"]) for entry in answer["detail"]] == [(field, "body")], answer


async def test_password_grant_and_me(api: Api, alice: Actor) -> None:
    response = await api.client.post("/auth/token", data={"username": alice.email.upper(), "password": alice.password})
    assert response.status_code == 200
    token = response.json()
    assert token["token_type"] == "bearer"
    assert token["expires_in"] == 900
    assert token["scope"] == "projects:read projects:write"
    assert response.headers["cache-control"] == "no-store"
    me = await api.client.get("/auth/me", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert me.status_code == 200
    assert me.json() == {"id": alice.id, "email": alice.email, "scopes": ["projects:read", "projects:write"]}


async def test_bad_credentials_are_invalid_grant(api: Api, alice: Actor) -> None:
    for form in (
        {"username": alice.email, "password": "wrong-password"},
        {"username": "nobody@example.com", "password": alice.password},
    ):
        response = await api.client.post("/auth/token", data=form)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_grant"
        assert "access_token" not in response.json()


async def test_scope_can_be_narrowed_not_widened(api: Api, alice: Actor) -> None:
    narrow = await api.client.post(
        "/auth/token", data={"username": alice.email, "password": alice.password, "scope": "projects:read"}
    )
    assert narrow.json()["scope"] == "projects:read"
    headers = {"Authorization": f"Bearer {narrow.json()['access_token']}"}
    assert (await api.client.post("/projects", json={"name": "nope"}, headers=headers)).status_code == 403
    wide = await api.client.post(
        "/auth/token", data={"username": alice.email, "password": alice.password, "scope": "admin"}
    )
    assert wide.status_code == 400
    assert wide.json()["error"] == "invalid_scope"


async def test_unsupported_grant_type(api: Api, alice: Actor) -> None:
    response = await api.client.post(
        "/auth/token", data={"grant_type": "client_credentials", "username": alice.email, "password": alice.password}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


async def test_every_protected_route_needs_a_valid_token(api: Api, alice: Actor) -> None:
    routes = list(protected_routes(api))
    assert len(routes) >= 13  # the ADR's routes are all there
    expired = forged(claims_for(alice, exp=int((datetime.now(UTC) - timedelta(minutes=1)).timestamp())))
    tampered = alice.token[:-4] + ("AAAA" if not alice.token.endswith("AAAA") else "BBBB")
    wrong_key = forged(claims_for(alice), secret="another-secret-of-enough-length-000000")
    wrong_issuer = forged(claims_for(alice, iss="someone-else"))
    cases = {
        "no token": {},
        "expired": {"Authorization": f"Bearer {expired}"},
        "tampered": {"Authorization": f"Bearer {tampered}"},
        "wrong key": {"Authorization": f"Bearer {wrong_key}"},
        "wrong issuer": {"Authorization": f"Bearer {wrong_issuer}"},
        "not a jwt": {"Authorization": "Bearer not-a-jwt"},
    }
    for method, path, _ in routes:
        for case, headers in cases.items():
            response = await api.client.request(method, path, headers=headers, json={})
            assert response.status_code == 401, (method, path, case, response.text)
            assert response.headers["www-authenticate"].startswith("Bearer"), (method, path, case)
            assert response.json()["request_id"] == response.headers["x-request-id"]


async def test_every_scoped_route_is_403_without_its_scope(api: Api) -> None:
    nobody = await api.actor(scopes=[])
    checked = 0
    for method, path, scope in protected_routes(api):
        if scope is None:
            continue
        response = await api.client.request(method, path, headers=nobody.headers, json={})
        assert response.status_code == 403, (method, path, response.text)
        assert scope in response.json()["error"]
        checked += 1
    assert checked >= 12


@pytest.mark.parametrize("scope", ["projects:read", "projects:write"])
async def test_read_and_write_scopes_are_separate(api: Api, scope: str) -> None:
    actor = await api.actor(scopes=[scope])
    create = await api.client.post("/projects", json={"name": f"scoped {uuid.uuid4()}"}, headers=actor.headers)
    listing = await api.client.get("/projects", headers=actor.headers)
    if scope == "projects:write":
        assert (create.status_code, listing.status_code) == (201, 403)
    else:
        assert (create.status_code, listing.status_code) == (403, 200)
