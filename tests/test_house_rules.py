"""ARCHITECTURE.md's rule that import-linter's forbidden lists cannot state: infra imports from domain
only ports, schemas and errors (an allow-list, so that a new domain module is covered too)."""

from __future__ import annotations

import ast
import re

from tests.server import REPO_ROOT

ALLOWED = re.compile(r"^domain(\.errors|\.[a-z_]+\.(ports|schemas|errors))?$")


def domain_imports(source: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "domain":
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "domain")
    return found


def test_infra_imports_only_ports_schemas_and_errors_of_the_domain() -> None:
    offenders = {
        f"{path.relative_to(REPO_ROOT)}: {module}"
        for path in (REPO_ROOT / "infra").rglob("*.py")
        for module in domain_imports(path.read_text())
        if not ALLOWED.match(module)
    }
    assert offenders == set()


def test_the_rule_catches_a_service_import() -> None:
    assert domain_imports("from domain.video.service import VideoJobService\nimport domain.base") == {
        "domain.video.service",
        "domain.base",
    }
    assert not ALLOWED.match("domain.video.sources")
    assert ALLOWED.match("domain.video.ports")
