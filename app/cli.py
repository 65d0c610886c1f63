"""The service's CLI commands: ``litestar users create ...`` and ``litestar deps``."""

from __future__ import annotations

import asyncio
import json
import sys

import click
import msgspec
from litestar import Litestar
from litestar.cli._utils import LitestarEnv
from litestar.plugins import CLIPlugin

from app.di.graph import render_tree, route_dependencies
from app.di.providers import PASSWORD_HASHER_STATE_KEY
from app.plugins.database import DatabasePlugin
from app.video_cli import video_group
from app.worker import workers_group
from domain.errors import DomainError
from domain.users.repository import UserRepository
from domain.users.schemas import NewUser, UserOut
from domain.users.service import UserService, parse_scopes


async def add_user(app: Litestar, new_user: NewUser) -> UserOut:
    """Create a user in the app's database, in a transaction of its own (the CLI's and the tests' way)."""
    database = app.plugins.get(DatabasePlugin)
    async with database.db_config.get_session() as session:
        user = await UserService(UserRepository(session=session), app.state[PASSWORD_HASHER_STATE_KEY]).create(new_user)
        await session.commit()
    return user


async def _create_user(app: Litestar, new_user: NewUser) -> dict[str, object]:
    database = app.plugins.get(DatabasePlugin)
    engine = database.db_config.get_engine()
    try:
        state = await database.schema.state(engine)
        if not state.is_current:
            if not database.auto_migrate:
                raise click.ClickException(f"{state.describe()}; run `task migrate` first")
            await database.schema.upgrade(engine)
        user = await add_user(app, new_user)
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


@click.command(name="deps", help="Print, for each route, the dependency graph it resolves.")
@click.option("--path", "path_filter", default=None, help="only routes whose path contains this text")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def deps_command(app: Litestar, path_filter: str | None, as_json: bool) -> None:
    routes = [r for r in route_dependencies(app) if path_filter is None or path_filter in r.path]
    if as_json:
        click.echo(json.dumps([msgspec.to_builtins(r) for r in routes], indent=2))
        return
    for route in routes:
        click.echo("\n".join(render_tree(route)) + "\n")


class ServiceCLIPlugin(CLIPlugin):
    """The service's own commands: ``litestar users ...``, ``litestar deps``, ``litestar workers run``,
    ``litestar video analyze``."""

    def on_cli_init(self, cli: click.Group) -> None:
        cli.add_command(users_group)
        cli.add_command(deps_command)
        cli.add_command(workers_group)
        cli.add_command(video_group)
