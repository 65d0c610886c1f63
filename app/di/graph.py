"""What each route resolves: the answer to "where does this argument come from?" (``litestar deps``)."""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from litestar import Litestar
from litestar.routes import HTTPRoute

from app.di.registry import TracedProvide, as_traced


@dataclass(frozen=True, slots=True)
class DependencyNode:
    key: str
    provider: str
    scope: str
    requires: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RouteDependencies:
    methods: tuple[str, ...]
    path: str
    handler: str
    roots: tuple[str, ...]
    """The keys the handler itself asks for."""
    nodes: dict[str, DependencyNode]


def _parameter_names(function: object) -> list[str]:
    try:
        return list(inspect.signature(function).parameters)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return []


def route_dependencies(app: Litestar) -> list[RouteDependencies]:
    routes: list[RouteDependencies] = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if not handler.http_methods - {"HEAD", "OPTIONS"}:
                continue  # Litestar's automatic OPTIONS handlers
            available = handler.resolve_dependencies()
            nodes: dict[str, DependencyNode] = {}
            for key, registration in available.items():
                traced = registration if isinstance(registration, TracedProvide) else as_traced(key, registration)
                requires = tuple(name for name in _parameter_names(traced.provider) if name in available)
                nodes[key] = DependencyNode(key, traced.provider_name, traced.policy.scope.value, requires)
            roots = tuple(name for name in _parameter_names(handler.fn) if name in available)
            reachable = _reachable(roots, nodes)
            routes.append(
                RouteDependencies(
                    methods=tuple(sorted(handler.http_methods - {"HEAD", "OPTIONS"})),
                    path=route.path,
                    handler=handler.handler_name,
                    roots=roots,
                    nodes={key: node for key, node in nodes.items() if key in reachable},
                )
            )
    return sorted(routes, key=lambda r: (r.path, r.methods))


def _reachable(roots: tuple[str, ...], nodes: dict[str, DependencyNode]) -> set[str]:
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        key = stack.pop()
        if key not in seen:
            seen.add(key)
            stack.extend(nodes[key].requires)
    return seen


def render_tree(route: RouteDependencies) -> list[str]:
    lines = [f"{' '.join(route.methods)} {route.path}  ({route.handler})"]

    def walk(key: str, prefix: str, last: bool, path: tuple[str, ...]) -> None:
        node = route.nodes[key]
        branch = "└── " if last else "├── "
        lines.append(f"{prefix}{branch}{key}  [{node.scope}]  {node.provider}")
        children = [child for child in node.requires if child not in path]
        for index, child in enumerate(children):
            walk(child, prefix + ("    " if last else "│   "), index == len(children) - 1, (*path, key))

    if not route.roots:
        lines.append("└── (no dependencies)")
    for index, root in enumerate(route.roots):
        walk(root, "", index == len(route.roots) - 1, ())
    return lines
