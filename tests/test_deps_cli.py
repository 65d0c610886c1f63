"""``litestar deps``: where every argument of every route comes from."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable

from litestar import Litestar

from app.di.graph import render_tree, route_dependencies
from tests.server import REPO_ROOT


def test_the_graph_of_a_route_names_keys_providers_scopes_and_edges(build_app: Callable[..., Litestar]) -> None:
    routes = {(r.methods, r.path): r for r in route_dependencies(build_app())}
    tasks = routes[(("POST",), "/projects/{project_id:uuid}/tasks")]
    assert tasks.roots == ("task_service",)
    assert set(tasks.nodes["task_service"].requires) == {"db_session", "current_user", "project_service", "tag_service"}
    assert tasks.nodes["project_service"].provider == "app.di.providers.provide_project_service"
    assert tasks.nodes["db_session"].scope == "request"
    assert routes[(("POST",), "/auth/token")].nodes["password_hasher"].scope == "app"
    tree = render_tree(tasks)
    assert tree[0] == "POST /projects/{project_id:uuid}/tasks  (create_task)"
    assert any(line.endswith("app.di.providers.provide_task_service") for line in tree)


def test_litestar_deps_command(tmp_path: object) -> None:
    env = {**os.environ, "JWT_SECRET": "x" * 40, "DATABASE_URL": "sqlite+aiosqlite:///:memory:"}
    result = subprocess.run(
        [sys.executable, "-m", "litestar", "deps", "--path", "/tags", "--json"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    routes = json.loads(result.stdout)
    assert {route["path"] for route in routes} == {"/tags", "/tags/{tag_id:uuid}"}
    assert all(route["roots"] == ["tag_service"] for route in routes)
