"""``/metrics``: Prometheus text that prometheus_client parses, with the dependency and request metrics."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from litestar import Litestar
from litestar.di import NamedDependency
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from sqlalchemy.ext.asyncio import AsyncSession

from domain.projects.service import ProjectService
from tests.conftest import Actor, Api, serve


def samples(text: str) -> dict[str, list[Sample]]:
    found: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append(sample)
    return found


async def test_metrics_hold_dependency_and_request_metrics(api: Api, alice: Actor) -> None:
    project = (await api.client.post("/projects", json={"name": "measured"}, headers=alice.headers)).json()
    for _ in range(3):
        assert (await api.client.get(f"/projects/{project['id']}", headers=alice.headers)).status_code == 200

    response = await api.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    metrics = samples(response.text)

    resolved = {(s.labels["dependency"], s.labels["status"]): s.value for s in metrics["dependency_requests_total"]}
    assert resolved[("project_service", "ok")] >= 4
    assert resolved[("db_session", "ok")] >= 4
    durations = {s.labels["dependency"] for s in metrics["dependency_duration_seconds_count"]}
    assert {"project_service", "db_session", "current_user"} <= durations
    assert any(s.labels.get("le") == "+Inf" for s in metrics["dependency_duration_seconds_bucket"])

    requests = metrics["http_requests_total"]
    paths = {s.labels["path"] for s in requests}
    assert "/projects/{project_id}" in paths  # route templates, not raw ids: bounded cardinality
    assert not any(project["id"] in path for path in paths)


def dependency_errors(text: str, key: str) -> float:
    found = samples(text).get("dependency_requests_total", [])
    return sum(s.value for s in found if s.labels == {"dependency": key, "status": "error"})


async def test_a_failing_provider_counts_as_an_error_and_unmatched_paths_add_no_labels(
    build_app: Callable[..., Litestar], alice: Actor
) -> None:
    def broken_project_service(db_session: NamedDependency[AsyncSession]) -> ProjectService:
        raise RuntimeError("the provider broke")

    stray_path = f"/no-such-route/{secrets.token_hex(8)}"
    async with serve(build_app(overrides={"project_service": broken_project_service})) as client:
        before = dependency_errors((await client.get("/metrics")).text, "project_service")
        assert (await client.get("/projects", headers=alice.headers)).status_code == 500
        assert (await client.get(stray_path)).status_code == 404
        text = (await client.get("/metrics")).text

    assert dependency_errors(text, "project_service") == before + 1
    paths = {s.labels.get("path") for s in samples(text)["http_requests_total"]}
    assert stray_path not in paths  # a scanner's random paths cannot grow the label set


async def test_the_document_gives_the_content_type_served(api: Api, document: dict[str, Any]) -> None:
    response = await api.client.get("/metrics")
    documented = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(documented) == [response.headers["content-type"]]
    assert response.headers["content-type"].startswith("text/plain")
