"""``litestar users create ...``: user management from the command line."""

from __future__ import annotations

import asyncio
import json
import sys

import click
from litestar import Litestar
from litestar.cli._utils import LitestarEnv
from litestar.plugins import CLIPlugin

from app.di import PASSWORD_HASHER_STATE_KEY
from app.plugins.database import DatabasePlugin
from domain.errors import DomainError
from domain.users.repository import UserRepository
from domain.users.schemas import NewUser
from domain.users.service import UserService, parse_scopes


async def _create_user(app: Litestar, new_user: NewUser) -> dict[str, object]:
    database = app.plugins.get(DatabasePlugin)
    engine = database.db_config.get_engine()
    try:
        state = await database.schema.state(engine)
        if not state.is_current:
            if not database.auto_migrate:
                raise click.ClickException(f"{state.describe()}; run `task migrate` first")
            await database.schema.upgrade(engine)
        async with database.db_config.get_session() as session:
            service = UserService(UserRepository(session=session), app.state[PASSWORD_HASHER_STATE_KEY])
            user = await service.create(new_user)
            await session.commit()
    finally:
        await engine.dispose()
    return {"id": str(user.id), "email": user.email, "scopes": user.scopes}


@click.group(name="users", help="Manage users.")
def users_group() -> None:
    """Manage users."""


@users_group.command(name="create", help="Create a user who can then get a token at POST /auth/token.")
@click.option("--email", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--scopes", default="projects:read projects:write", show_default=True, help="space-separated")
@click.pass_obj
def create_user(env: LitestarEnv, email: str, password: str, scopes: str) -> None:
    new_user = NewUser(email=email, password=password, scopes=parse_scopes(scopes))
    try:
        created = asyncio.run(_create_user(env.app, new_user))
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(json.dumps(created))
    sys.stdout.flush()


class UsersCLIPlugin(CLIPlugin):
    def on_cli_init(self, cli: click.Group) -> None:
        cli.add_command(users_group)
