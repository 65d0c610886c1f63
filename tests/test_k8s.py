"""The Kubernetes deployment (``k8s/``) and the ``Dockerfile``, checked without a cluster.

Every kustomization (base, dev, prod) is rendered by the Python renderer of
``tests/test_k8s_render.py`` and each object is validated, strictly (unknown fields fail),
against the Kubernetes OpenAPI schemas that kubernetes-validate ships. Then the manifests
are held against the application itself: probe and metrics paths against the app's real GET
routes, every environment variable against ``app.settings.Settings``, the configuration
against ``load_settings``, the grace periods against SHUTDOWN_DRAIN_TIMEOUT (API) and
VIDEO_WORKER_SHUTDOWN_GRACE (worker), MEDIA_DIR against the ReadWriteMany claim both mount,
the network policies against who fetches video URLs, and the image's user, command and port
against the pods'. Offline, a few seconds.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import math
import re
import shlex
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatch
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version
from litestar import Litestar

from app.settings import Settings, load_settings
from tests.test_k8s_render import K8S_DIR, KUSTOMIZATIONS, REPO_ROOT, all_containers, build, load_documents, pod_spec

Obj = dict[str, Any]

APP_NAME = "video-opusclip"
API_DEPLOYMENT = "video-opusclip-api"
WORKER_DEPLOYMENT = "video-opusclip-worker"
MIGRATE_JOB = "video-opusclip-migrate"
COLLECTOR = "otel-collector"
MEDIA_CLAIM = "video-opusclip-media"
SECRET_NAME = "video-opusclip-secrets"
SECRET_EXAMPLE = K8S_DIR / "secret.example.yaml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"

# The oldest Kubernetes these manifests are for (the preStop `sleep` action is on by default
# from 1.30, `unhealthyPodEvictionPolicy` is GA in 1.31) and the newest kubernetes-validate knows.
K8S_VERSIONS = sorted({"1.31.0", latest_version()})

API_COMMAND = ["python", "-m", "app.server", "--host", "0.0.0.0", "--port", "8000"]
WORKER_COMMAND = ["litestar", "workers", "run"]
MIGRATE_COMMAND = ["litestar", "database", "upgrade", "--no-prompt"]
ASGI_APP = "app.asgi:app"
PROBES = {"startupProbe": "/health/startup", "livenessProbe": "/health/live", "readinessProbe": "/health/ready"}
# Seconds kept free between the end of the drain and SIGKILL (logging, exporters flushing).
GRACE_MARGIN_S = 5
# The worker's: after VIDEO_WORKER_SHUTDOWN_GRACE, cancelling the jobs and closing the model pool,
# the database and Redis pools and the exporters.
WORKER_GRACE_MARGIN_S = 15
# Video URLs are http or https: only the workers fetch them, to public addresses only.
FETCH_PORTS = {("TCP", 80), ("TCP", 443)}
NON_PUBLIC_IPV4 = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10")
# Environment variables that are not settings of the service but standard ones.
STANDARD_VARIABLES = {"TMPDIR", "LITESTAR_APP", "OMP_NUM_THREADS"}
STANDARD_PREFIXES = ("OTEL_", "PYTHON")
# A secret's value in a committed file must carry one of these.
PLACEHOLDER_MARKERS = ("CHANGE-ME", "dev-only")


# ------------------------------------------------------------------------------------ helpers


@cache
def rendered(name: str) -> tuple[Obj, ...]:
    return tuple(build(KUSTOMIZATIONS[name]))


def find(objects: tuple[Obj, ...], kind: str, name: str) -> Obj:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def find_config_map(objects: tuple[Obj, ...], name: str) -> Obj:
    """A ConfigMap by its rendered name (with the hash suffix)."""
    return find(objects, "ConfigMap", name)


def workloads(objects: tuple[Obj, ...]) -> list[Obj]:
    return [o for o in objects if pod_spec(o) is not None]


def app_workloads(objects: tuple[Obj, ...]) -> list[Obj]:
    return [o for o in workloads(objects) if o["metadata"]["labels"].get("app.kubernetes.io/name") == APP_NAME]


def container(workload: Obj, name: str | None = None) -> Obj:
    spec = pod_spec(workload)
    assert spec is not None
    containers = spec["containers"]
    if name is None:
        assert len(containers) == 1, workload["metadata"]["name"]
        return containers[0]
    return next(c for c in containers if c["name"] == name)


def pod_labels(workload: Obj) -> dict[str, str]:
    return workload["spec"]["template"]["metadata"]["labels"]


def selects(selector: Obj, labels: dict[str, str]) -> bool:
    """Whether a LabelSelector (matchLabels, matchExpressions In/NotIn/Exists) selects ``labels``."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def service_selects(service: Obj, labels: dict[str, str]) -> bool:
    selector = service["spec"].get("selector") or {}
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def resolve_port(port: int | str, c: Obj) -> int:
    """A port number, or a container port's name resolved against container ``c``."""
    if isinstance(port, int):
        return port
    named = [p["containerPort"] for p in c.get("ports", []) if p.get("name") == port]
    assert named, f"container {c['name']} has no port named {port!r}"
    return int(named[0])


def argument(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def env_sources(objects: tuple[Obj, ...], c: Obj) -> tuple[dict[str, str], list[str]]:
    """The variables a container gets from ConfigMaps (rendered) and the names of its Secrets."""
    values: dict[str, str] = {}
    secrets: list[str] = []
    for source in c.get("envFrom", []):
        if "configMapRef" in source:
            values.update(find_config_map(objects, source["configMapRef"]["name"])["data"])
        if "secretRef" in source:
            secrets.append(source["secretRef"]["name"])
    return values, secrets


def secret_values(name: str, secret_name: str) -> dict[str, str]:
    """The Secret a render provides (dev), or else the committed example of it (base, prod)."""
    provided = [o for o in rendered(name) if o["kind"] == "Secret" and o["metadata"]["name"] == secret_name]
    source = provided[0] if provided else load_documents(SECRET_EXAMPLE)[0]
    assert source["metadata"]["name"] == secret_name
    return dict(source.get("stringData", {}))


def environment(name: str, c: Obj) -> dict[str, str]:
    """What the process in container ``c`` sees: ConfigMaps, Secrets, then its literal env."""
    objects = rendered(name)
    values, secrets = env_sources(objects, c)
    environ = dict(values)
    for secret in secrets:
        environ.update(secret_values(name, secret))
    environ.update({e["name"]: e["value"] for e in c.get("env", []) if "value" in e})
    return environ


def quantity(value: str | int) -> float:
    text = str(value)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9}
    for suffix, factor in sorted(units.items(), key=lambda item: -len(item[0])):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def seconds_of_pre_stop(c: Obj) -> int:
    pre_stop = c.get("lifecycle", {}).get("preStop")
    assert pre_stop, f"{c['name']}: no lifecycle.preStop"
    if "sleep" in pre_stop:
        return int(pre_stop["sleep"]["seconds"])
    command = pre_stop["exec"]["command"]
    assert command[0] in ("sleep", "/bin/sleep"), command
    return int(command[1])


@cache
def built_app() -> Litestar:
    """The app as the API container builds it (construction connects to nothing)."""
    from app import create_app

    return create_app(Settings(database_url="sqlite+aiosqlite:///:memory:", jwt_secret="x" * 40))


def app_get_paths() -> frozenset[str]:
    return frozenset(
        route.path.rstrip("/") or "/" for route in built_app().routes if "GET" in getattr(route, "methods", ())
    )


def settings_variables() -> set[str]:
    return {name.upper() for name in Settings.__struct_fields__}


ALL = sorted(KUSTOMIZATIONS)


# ------------------------------------------------------------------------ render and validate


@pytest.mark.parametrize("name", ALL)
def test_renders_every_part_of_the_deployment(name: str) -> None:
    objects = rendered(name)
    present = {(o["kind"], o["metadata"]["name"]) for o in objects}
    for kind, obj_name in [
        ("ServiceAccount", APP_NAME),
        ("PersistentVolumeClaim", MEDIA_CLAIM),
        ("Deployment", API_DEPLOYMENT),
        ("Service", API_DEPLOYMENT),
        ("HorizontalPodAutoscaler", API_DEPLOYMENT),
        ("PodDisruptionBudget", API_DEPLOYMENT),
        ("Deployment", WORKER_DEPLOYMENT),
        ("PodDisruptionBudget", WORKER_DEPLOYMENT),
        ("Job", MIGRATE_JOB),
        ("Deployment", COLLECTOR),
        ("Service", COLLECTOR),
    ]:
        assert (kind, obj_name) in present, f"{name}: {kind}/{obj_name} missing"
    config_maps = {o["metadata"]["name"].rsplit("-", 1)[0] for o in objects if o["kind"] == "ConfigMap"}
    assert {"video-opusclip-config", "otel-collector-config"} <= config_maps
    assert any(o["kind"] == "NetworkPolicy" for o in objects)
    if name != "base":
        namespaces = [o for o in objects if o["kind"] == "Namespace"]
        assert len(namespaces) == 1
        namespace = namespaces[0]["metadata"]["name"]
        assert namespaces[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        assert all(o["metadata"].get("namespace") == namespace for o in objects if o["kind"] != "Namespace")


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("name", ALL)
def test_objects_validate_against_the_kubernetes_schemas(name: str, version: str) -> None:
    for obj in rendered(name):
        # SchemaNotFoundError (a kind or apiVersion this Kubernetes lacks) fails the test too.
        kubernetes_validate.validate(obj, version, strict=True)


def test_secret_example_validates() -> None:
    for obj in load_documents(SECRET_EXAMPLE):
        kubernetes_validate.validate(obj, K8S_VERSIONS[-1], strict=True)


def test_validation_is_strict() -> None:
    deployment = json.loads(json.dumps(find(rendered("base"), "Deployment", API_DEPLOYMENT)))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[-1], strict=True)


@pytest.mark.parametrize("name", ALL)
def test_every_config_map_reference_resolves(name: str) -> None:
    objects = rendered(name)
    config_maps = {o["metadata"]["name"] for o in objects if o["kind"] == "ConfigMap"}
    secrets = {o["metadata"]["name"] for o in objects if o["kind"] == "Secret"} | {SECRET_NAME}
    for workload in workloads(objects):
        spec = pod_spec(workload)
        assert spec is not None
        for c in all_containers(spec):
            for source in c.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in config_maps
                if "secretRef" in source:
                    assert source["secretRef"]["name"] in secrets
        for volume in spec.get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in config_maps


# ------------------------------------------------------------------------------------ secrets


def _assert_placeholder(key: str, value: str) -> None:
    if "://" in value:
        password = urlsplit(value).password
        assert password is None or any(m in password for m in PLACEHOLDER_MARKERS), f"{key}: real-looking password"
    else:
        assert any(m in value for m in PLACEHOLDER_MARKERS), f"{key}: {value!r} is not an obvious placeholder"


def test_secret_example_holds_only_placeholders() -> None:
    (secret,) = load_documents(SECRET_EXAMPLE)
    assert secret["kind"] == "Secret"
    assert secret["metadata"]["name"] == SECRET_NAME
    assert "data" not in secret, "use stringData so that placeholders are readable"
    for key, value in secret["stringData"].items():
        _assert_placeholder(key, value)
        assert "CHANGE-ME" in value, f"{key}: the example's values say CHANGE-ME"


def test_secret_example_is_not_rendered_by_any_kustomization() -> None:
    for path in K8S_DIR.rglob("kustomization.yaml"):
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        resources = {(path.parent / r).resolve() for r in spec.get("resources", [])}
        assert SECRET_EXAMPLE.resolve() not in resources, path


@pytest.mark.parametrize("name", ["base", "prod"])
def test_base_and_prod_commit_no_secret(name: str) -> None:
    assert [o["metadata"]["name"] for o in rendered(name) if o["kind"] == "Secret"] == []


def test_dev_secret_is_obviously_fake_and_matches_the_example() -> None:
    secrets = [o for o in rendered("dev") if o["kind"] == "Secret"]
    assert [s["metadata"]["name"] for s in secrets] == [SECRET_NAME]
    values = secrets[0]["stringData"]
    for key, value in values.items():
        _assert_placeholder(key, value)
    (example,) = load_documents(SECRET_EXAMPLE)
    assert set(values) == set(example["stringData"])


# ------------------------------------------------------------------------- probes and ports


@pytest.mark.parametrize("name", ALL)
def test_probe_paths_are_get_routes_of_the_app(name: str) -> None:
    api = container(find(rendered(name), "Deployment", API_DEPLOYMENT), "api")
    routes = app_get_paths()
    port = int(argument(api["args"], "--port"))
    for probe_name, path in PROBES.items():
        probe = api.get(probe_name)
        assert probe, f"api container has no {probe_name}"
        assert probe["httpGet"]["path"] == path
        assert path in routes, f"{probe_name} path {path} is not a GET route of the app: {sorted(routes)}"
        assert resolve_port(probe["httpGet"]["port"], api) == port


@pytest.mark.parametrize("name", ALL)
def test_metrics_scrape_annotations_point_at_the_metrics_route(name: str) -> None:
    deployment = find(rendered(name), "Deployment", API_DEPLOYMENT)
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    api = container(deployment, "api")
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == int(argument(api["args"], "--port"))
    assert annotations["prometheus.io/path"] in app_get_paths(), "GET /metrics is not a route of the app"


@pytest.mark.parametrize("name", ALL)
def test_container_port_matches_command_and_service(name: str) -> None:
    objects = rendered(name)
    deployment = find(objects, "Deployment", API_DEPLOYMENT)
    api = container(deployment, "api")
    assert [*api["command"], *api["args"]] == API_COMMAND
    port = int(argument(api["args"], "--port"))
    assert [p["containerPort"] for p in api["ports"]] == [port]
    service = find(objects, "Service", API_DEPLOYMENT)
    assert [resolve_port(p["targetPort"], api) for p in service["spec"]["ports"]] == [port]
    # The Service selects the API's pods and no other workload's.
    selected = [w["metadata"]["name"] for w in workloads(objects) if service_selects(service, pod_labels(w))]
    assert selected == [API_DEPLOYMENT]
    assert selects(deployment["spec"]["selector"], pod_labels(deployment))


@cache
def app_cli() -> click.Group:
    """The ``litestar`` command group as the app's CLI plugins extend it."""
    group = click.Group("litestar")
    for plugin in built_app().plugins.cli:
        plugin.on_cli_init(group)
    return group


@pytest.mark.parametrize("command", [WORKER_COMMAND, MIGRATE_COMMAND], ids=["worker", "migrate"])
def test_litestar_cli_commands_exist(command: list[str]) -> None:
    assert command[0] == "litestar"
    words = [w for w in command[1:] if not w.startswith("-")]
    options = [w for w in command[1:] if w.startswith("-")]
    node: click.Command = app_cli()
    for word in words:
        assert isinstance(node, click.Group), f"`litestar {' '.join(words)}`: {node.name} has no subcommands"
        assert word in node.commands, f"`litestar {' '.join(words)}`: no command {word!r} in {sorted(node.commands)}"
        node = node.commands[word]
    flags = {flag for param in node.params for flag in getattr(param, "opts", [])}
    assert set(options) <= flags, f"`{' '.join(command)}`: unknown options {set(options) - flags}"


def test_the_commands_exist_in_the_code() -> None:
    assert API_COMMAND[:2] == ["python", "-m"]
    assert importlib.util.find_spec(API_COMMAND[2]) is not None, f"module {API_COMMAND[2]} (the API command) is missing"
    module, _, attribute = ASGI_APP.partition(":")
    assert importlib.util.find_spec(module) is not None
    assert attribute


@pytest.mark.parametrize("name", ALL)
def test_probe_timings(name: str) -> None:
    api = container(find(rendered(name), "Deployment", API_DEPLOYMENT), "api")
    startup, liveness, readiness = (api[p] for p in PROBES)
    # Migrations checked and models loaded and warmed: allow 2 to 10 minutes.
    assert 120 <= startup["periodSeconds"] * startup["failureThreshold"] <= 600
    # A restart is drastic: only after a sustained failure.
    assert liveness["periodSeconds"] * liveness["failureThreshold"] >= 20
    assert liveness.get("initialDelaySeconds", 0) == 0, "the startup probe already guards start-up"
    assert readiness["periodSeconds"] <= liveness["periodSeconds"]
    for probe in (startup, liveness, readiness):
        assert probe.get("timeoutSeconds", 1) >= 2


@pytest.mark.parametrize("name", ALL)
def test_grace_period_covers_pre_stop_and_drain(name: str) -> None:
    objects = rendered(name)
    deployment = find(objects, "Deployment", API_DEPLOYMENT)
    api = container(deployment, "api")
    config, _ = env_sources(objects, api)
    assert "SHUTDOWN_DRAIN_TIMEOUT" in config, "the drain the grace period is sized for is set explicitly"
    # As the app reads them: the drain delay (readiness 503, still accepting) then the drain.
    settings = load_settings(environment(name, api), env_file=None)
    drain = getattr(settings, "shutdown_drain_delay", 0.0) + settings.shutdown_drain_timeout
    pre_stop = seconds_of_pre_stop(api)
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert pre_stop >= 5, "give endpoints and load balancers time to drop the pod before SIGTERM"
    assert grace >= pre_stop + drain + GRACE_MARGIN_S, f"{grace=} < {pre_stop=} + {drain=} + {GRACE_MARGIN_S}"
    # A `POST /video/process?wait=true` in flight at SIGTERM answers within the drain.
    assert settings.video_sync_budget <= settings.shutdown_drain_timeout


@pytest.mark.parametrize("name", ALL)
def test_worker_grace_period_covers_the_shutdown_grace(name: str) -> None:
    objects = rendered(name)
    deployment = find(objects, "Deployment", WORKER_DEPLOYMENT)
    worker = container(deployment, "worker")
    config, _ = env_sources(objects, worker)
    literal = {e["name"] for e in worker.get("env", []) if "value" in e}
    assert "VIDEO_WORKER_SHUTDOWN_GRACE" in config.keys() | literal, "the grace the period is sized for is explicit"
    # As the worker reads it: running jobs get this long after SIGTERM, then are cancelled.
    shutdown_grace = load_settings(environment(name, worker), env_file=None).video_worker_shutdown_grace
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace >= shutdown_grace + WORKER_GRACE_MARGIN_S, (
        f"{grace=} < VIDEO_WORKER_SHUTDOWN_GRACE {shutdown_grace} + {WORKER_GRACE_MARGIN_S}"
    )
    assert "preStop" not in worker.get("lifecycle", {}), "no Service to leave: SIGTERM at once"


@pytest.mark.parametrize("name", ALL)
def test_worker(name: str) -> None:
    objects = rendered(name)
    worker_deployment = find(objects, "Deployment", WORKER_DEPLOYMENT)
    api_deployment = find(objects, "Deployment", API_DEPLOYMENT)
    worker = container(worker_deployment, "worker")
    api = container(api_deployment, "api")
    assert worker["image"] == api["image"]
    assert [*worker["command"], *worker.get("args", [])] == WORKER_COMMAND
    assert environment(name, worker)["LITESTAR_APP"] == ASGI_APP
    assert "ports" not in worker
    services = [o for o in objects if o["kind"] == "Service"]
    assert not any(service_selects(s, pod_labels(worker_deployment)) for s in services), "the worker has no Service"
    worker_grace = worker_deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    api_grace = api_deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert worker_grace > api_grace
    assert worker_grace >= 120
    assert worker["resources"] != api["resources"]
    assert worker_deployment["spec"]["replicas"] >= 1
    # The API enqueues on the queue the workers drain.
    api_settings = load_settings(environment(name, api), env_file=None)
    worker_settings = load_settings(environment(name, worker), env_file=None)
    assert api_settings.redis_url == worker_settings.redis_url
    assert api_settings.video_queue_name == worker_settings.video_queue_name
    assert api_settings.video_job_heartbeat == worker_settings.video_job_heartbeat


def _threads_from_cpu_limit(c: Obj, variable: str) -> None:
    (entry,) = [e for e in c.get("env", []) if e["name"] == variable]
    ref = entry.get("valueFrom", {}).get("resourceFieldRef")
    assert ref, f"{c['name']}: {variable} comes from the container's CPU limit"
    assert (ref.get("containerName"), ref["resource"], str(ref.get("divisor", "1"))) == (c["name"], "limits.cpu", "1")


@pytest.mark.parametrize("name", ALL)
def test_threads_and_concurrency_follow_the_cpu_limit(name: str) -> None:
    objects = rendered(name)
    for deployment_name, container_name in ((API_DEPLOYMENT, "api"), (WORKER_DEPLOYMENT, "worker")):
        c = container(find(objects, "Deployment", deployment_name), container_name)
        # torch's pool and the app's model pool, pinned to the limit rather than the node's cores.
        _threads_from_cpu_limit(c, "OMP_NUM_THREADS")
        _threads_from_cpu_limit(c, "MODEL_THREADS")
    worker = container(find(objects, "Deployment", WORKER_DEPLOYMENT), "worker")
    concurrency = load_settings(environment(name, worker), env_file=None).video_worker_concurrency
    cpu_limit = quantity(worker["resources"]["limits"]["cpu"])
    # CPU-bound jobs: about one per 2 cores.
    assert 1 <= concurrency <= max(1, math.ceil(cpu_limit / 2)), f"{concurrency=} jobs on {cpu_limit} cores"


@pytest.mark.parametrize("name", ALL)
def test_media_volume_is_shared_by_the_api_and_the_workers(name: str) -> None:
    objects = rendered(name)
    claim = find(objects, "PersistentVolumeClaim", MEDIA_CLAIM)
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"], "API pods and workers mount it on any node at once"
    assert claim["spec"].get("volumeMode", "Filesystem") == "Filesystem"
    assert quantity(claim["spec"]["resources"]["requests"]["storage"]) >= 2**30
    seen: dict[str, tuple[str, str, str]] = {}
    for deployment_name, container_name in ((API_DEPLOYMENT, "api"), (WORKER_DEPLOYMENT, "worker")):
        deployment = find(objects, "Deployment", deployment_name)
        c = container(deployment, container_name)
        environ = environment(name, c)
        media_dir = environ.get("MEDIA_DIR", "")
        assert media_dir.startswith("/"), f"{deployment_name}: MEDIA_DIR is set, absolute"
        assert load_settings(environ, env_file=None).media_root == media_dir
        mounts = c.get("volumeMounts", [])
        # The mount MEDIA_DIR lives on (the deepest one at or above it)...
        covering = [m for m in mounts if media_dir == m["mountPath"] or media_dir.startswith(m["mountPath"] + "/")]
        assert covering, f"{deployment_name}: nothing is mounted at MEDIA_DIR {media_dir}"
        mount = max(covering, key=lambda m: len(m["mountPath"]))
        # ... and no other below it: incoming/ -> jobs/<id>/upload is a rename, on one filesystem.
        below = [m["mountPath"] for m in mounts if m["mountPath"].startswith(media_dir.rstrip("/") + "/")]
        assert not below, f"{deployment_name}: mounts under MEDIA_DIR split it across filesystems: {below}"
        assert not mount.get("readOnly"), f"{deployment_name}: MEDIA_DIR is written"
        (volume,) = [v for v in pod_spec(deployment)["volumes"] if v["name"] == mount["name"]]  # type: ignore[index]
        source = volume.get("persistentVolumeClaim")
        assert source, f"{deployment_name}: MEDIA_DIR is on {sorted(set(volume) - {'name'})}, not the shared claim"
        assert source["claimName"] == MEDIA_CLAIM
        assert not source.get("readOnly")
        relative = media_dir.removeprefix(mount["mountPath"])
        seen[deployment_name] = (source["claimName"], mount.get("subPath", ""), relative)
    assert seen[API_DEPLOYMENT] == seen[WORKER_DEPLOYMENT], f"API and workers see different media: {seen}"


@pytest.mark.parametrize("name", ALL)
def test_migration_job(name: str) -> None:
    objects = rendered(name)
    job = find(objects, "Job", MIGRATE_JOB)
    migrate = container(job)
    api = container(find(objects, "Deployment", API_DEPLOYMENT), "api")
    assert [*migrate["command"], *migrate.get("args", [])] == MIGRATE_COMMAND
    assert migrate["image"] == api["image"]
    assert migrate["envFrom"] == api["envFrom"], "the Job migrates the database the API uses"
    assert environment(name, migrate)["LITESTAR_APP"] == ASGI_APP
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert job["spec"]["backoffLimit"] >= 1
    assert job["spec"]["activeDeadlineSeconds"] > 0
    # Pods never migrate by themselves: the Job does.
    for workload in app_workloads(objects):
        env = environment(name, container(workload))
        assert env["DB_AUTO_MIGRATE"] == "false"
        assert not pod_spec(workload).get("initContainers")  # type: ignore[union-attr]


# ---------------------------------------------------------------------------- pods in general


@pytest.mark.parametrize("name", ALL)
def test_security_context_of_every_pod(name: str) -> None:
    objects = rendered(name)
    for workload in workloads(objects):
        label = workload["metadata"]["name"]
        spec = pod_spec(workload)
        assert spec is not None
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, label
        assert isinstance(pod["runAsUser"], int), label
        assert pod["runAsUser"] > 0, label
        assert pod["seccompProfile"]["type"] == "RuntimeDefault", label
        assert spec.get("automountServiceAccountToken") is False, label
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            assert not spec.get(key), label
        for c in all_containers(spec):
            context = c["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, label
            assert context["readOnlyRootFilesystem"] is True, label
            assert context["capabilities"]["drop"] == ["ALL"], label
            assert not context["capabilities"].get("add"), label
            assert not context.get("privileged"), label
            assert context.get("runAsUser", pod["runAsUser"]) > 0, label
    for workload in app_workloads(objects):
        spec = pod_spec(workload)
        assert spec is not None
        pod = spec["securityContext"]
        assert pod["runAsUser"] == pod["runAsGroup"] == pod["fsGroup"] == dockerfile_user()[0]
        # Read-only root: /tmp (TMPDIR, DATA_DIR, caches) is a writable emptyDir; job files go to
        # MEDIA_DIR (test_media_volume_is_shared_by_the_api_and_the_workers).
        volumes = {v["name"]: v for v in spec["volumes"]}
        c = container(workload)
        tmp = [m for m in c["volumeMounts"] if m["mountPath"] == "/tmp"]
        assert len(tmp) == 1
        assert "emptyDir" in volumes[tmp[0]["name"]]
        assert not tmp[0].get("readOnly")
        env = environment(name, c)
        assert env["TMPDIR"] == "/tmp"
        assert env["DATA_DIR"].startswith("/tmp/")


@pytest.mark.parametrize("name", ALL)
def test_every_container_has_requests_and_limits(name: str) -> None:
    for workload in workloads(rendered(name)):
        spec = pod_spec(workload)
        assert spec is not None
        for c in all_containers(spec):
            resources = c["resources"]
            for resource in ("cpu", "memory"):
                request = quantity(resources["requests"][resource])
                limit = quantity(resources["limits"][resource])
                assert 0 < request <= limit, f"{workload['metadata']['name']}/{c['name']} {resource}"


@pytest.mark.parametrize("name", ALL)
def test_one_image_for_every_app_workload(name: str) -> None:
    objects = rendered(name)
    images = set()
    for workload in app_workloads(objects):
        spec = pod_spec(workload)
        assert spec is not None
        for c in all_containers(spec):
            images.add(c["image"])
            assert c["imagePullPolicy"] == "IfNotPresent"
    assert len(images) == 1, images
    assert {w["metadata"]["name"] for w in app_workloads(objects)} == {API_DEPLOYMENT, WORKER_DEPLOYMENT, MIGRATE_JOB}
    (image,) = images
    if name == "prod":
        repository, _, tag = image.rpartition(":")
        assert "/" in repository, f"prod pulls from a registry, not {image}"
        assert tag not in ("", "latest"), f"prod must pin a released image, not {image}"
    if name == "dev":
        assert image == "video-opusclip:dev"


# --------------------------------------------------------------------------- configuration


@pytest.mark.parametrize("name", ALL)
def test_every_environment_variable_is_a_setting_or_standard(name: str) -> None:
    objects = rendered(name)
    known = settings_variables()
    names: set[str] = set()
    for workload in app_workloads(objects):
        c = container(workload)
        values, secrets = env_sources(objects, c)
        names |= set(values) | {e["name"] for e in c.get("env", [])}
        for secret in secrets:
            names |= set(secret_values(name, secret))
    unknown = sorted(
        n for n in names if n not in known and n not in STANDARD_VARIABLES and not n.startswith(STANDARD_PREFIXES)
    )
    assert not unknown, f"not fields of app.settings.Settings (nor standard variables): {unknown}"


@pytest.mark.parametrize("name", ALL)
def test_configuration_loads_with_the_apps_settings(name: str) -> None:
    for workload in app_workloads(rendered(name)):
        settings = load_settings(environment(name, container(workload)), env_file=None)
        assert settings.auto_migrate is False
        assert settings.database_url.startswith("postgresql+asyncpg://")
        assert settings.redis_url is not None, "workers share the Redis queue"
        if name != "dev":
            assert settings.is_production


@pytest.mark.parametrize("name", ["base", "prod"])
def test_no_private_network_may_be_fetched(name: str) -> None:
    for workload in app_workloads(rendered(name)):
        c = container(workload)
        assert "FETCH_ALLOW_NETWORKS" not in {e["name"] for e in c.get("env", []) if "value" not in e}
        settings = load_settings(environment(name, c), env_file=None)
        assert settings.fetch_allow_networks.strip() == "", f"{workload['metadata']['name']}: FETCH_ALLOW_NETWORKS"


@pytest.mark.parametrize("name", ALL)
def test_autoscaler_and_disruption_budgets(name: str) -> None:
    objects = rendered(name)
    deployment = find(objects, "Deployment", API_DEPLOYMENT)
    hpa = find(objects, "HorizontalPodAutoscaler", API_DEPLOYMENT)
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == ("apps/v1", "Deployment", API_DEPLOYMENT)
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    if name == "prod":
        assert hpa["spec"]["minReplicas"] >= 2
    metrics = [m["resource"] for m in hpa["spec"]["metrics"] if m["type"] == "Resource"]
    assert [m["name"] for m in metrics] == ["cpu"]
    assert metrics[0]["target"]["type"] == "Utilization"
    assert "cpu" in container(deployment, "api")["resources"]["requests"]
    for pdb in (o for o in objects if o["kind"] == "PodDisruptionBudget"):
        selected = [w for w in workloads(objects) if selects(pdb["spec"]["selector"], pod_labels(w))]
        assert [w["metadata"]["name"] for w in selected] == [pdb["metadata"]["name"]]
        assert pdb["spec"].get("maxUnavailable", 0) >= 1 or "minAvailable" in pdb["spec"]


def _egress_rules(policies: list[Obj], labels: dict[str, str]) -> list[Obj]:
    return [
        rule
        for policy in policies
        if "Egress" in policy["spec"]["policyTypes"] and selects(policy["spec"]["podSelector"], labels)
        for rule in policy["spec"].get("egress", [])
    ]


def _rule_ports(rule: Obj) -> set[tuple[str, int]]:
    return {(p.get("protocol", "TCP"), p["port"]) for p in rule.get("ports", [])}


def _allowed_egress(policies: list[Obj], labels: dict[str, str]) -> set[tuple[str, int]]:
    allowed: set[tuple[str, int]] = set()
    for rule in _egress_rules(policies, labels):
        allowed |= _rule_ports(rule)
    return allowed


def _public_only(rule: Obj) -> bool:
    """Whether a rule's destinations are ipBlocks that leave out every non-public IPv4 range."""
    peers = rule.get("to", [])
    if not peers:
        return False  # every destination
    for peer in peers:
        block = peer.get("ipBlock")
        if set(peer) != {"ipBlock"} or block is None:
            return False
        excepted = [ipaddress.ip_network(e) for e in block.get("except", [])]
        cidr = ipaddress.ip_network(block["cidr"])
        for private in map(ipaddress.ip_network, NON_PUBLIC_IPV4):
            if private.overlaps(cidr) and not any(private.subnet_of(e) for e in excepted):  # type: ignore[arg-type]
                return False
    return True


@pytest.mark.parametrize("name", ALL)
def test_network_policies(name: str) -> None:
    objects = rendered(name)
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    api_deployment = find(objects, "Deployment", API_DEPLOYMENT)
    api = container(api_deployment, "api")
    port = int(argument(api["args"], "--port"))
    api_ingress = [
        rule
        for p in policies
        if "Ingress" in p["spec"]["policyTypes"] and selects(p["spec"]["podSelector"], pod_labels(api_deployment))
        for rule in p["spec"].get("ingress", [])
    ]
    assert api_ingress
    for rule in api_ingress:
        assert [resolve_port(x["port"], api) for x in rule["ports"]] == [port], "the API takes traffic on its port only"
    environ = environment(name, api)
    database_port = urlsplit(environ["DATABASE_URL"]).port or 5432
    redis_port = urlsplit(environ["REDIS_URL"]).port or 6379
    otlp_port = urlsplit(environ["OTEL_EXPORTER_OTLP_ENDPOINT"]).port
    required = {("UDP", 53), ("TCP", 53), ("TCP", database_port), ("TCP", redis_port), ("TCP", 4317), ("TCP", 4318)}
    required |= {("TCP", otlp_port or 0)}
    for workload in app_workloads(objects):
        workload_name = workload["metadata"]["name"]
        rules = _egress_rules(policies, pod_labels(workload))
        assert rules, f"{workload_name}: no egress policy (default allow)"
        assert all(rule.get("ports") for rule in rules), f"{workload_name}: an egress rule allows every port"
        # Only the workers fetch video URLs (http and https); the API only resolves their host.
        wanted = required | FETCH_PORTS if workload_name == WORKER_DEPLOYMENT else required
        allowed = _allowed_egress(policies, pod_labels(workload))
        assert not wanted - allowed, f"{workload_name}: egress to {sorted(wanted - allowed)} not allowed"
        assert not allowed - wanted, f"{workload_name}: egress to {sorted(allowed - wanted)} allowed"
        for rule in rules:
            if _rule_ports(rule) & FETCH_PORTS:
                assert _rule_ports(rule) <= FETCH_PORTS, f"{workload_name}: fetch rule mixed with other ports"
                assert _public_only(rule), f"{workload_name}: 80/443 may reach private addresses: {rule.get('to')}"
        ingress_types = [
            p
            for p in policies
            if "Ingress" in p["spec"]["policyTypes"] and selects(p["spec"]["podSelector"], pod_labels(workload))
        ]
        assert ingress_types, f"{workload['metadata']['name']}: no ingress policy (default allow)"
    for workload in app_workloads(objects):
        if workload["metadata"]["name"] != API_DEPLOYMENT:
            rules = [
                rule
                for p in policies
                if "Ingress" in p["spec"]["policyTypes"] and selects(p["spec"]["podSelector"], pod_labels(workload))
                for rule in p["spec"].get("ingress", [])
            ]
            assert rules == [], f"{workload['metadata']['name']} serves nothing"


# -------------------------------------------------------------------------- OpenTelemetry


@pytest.mark.parametrize("name", ALL)
def test_traces_go_to_the_collector(name: str) -> None:
    objects = rendered(name)
    collector_service = find(objects, "Service", COLLECTOR)
    collector_deployment = find(objects, "Deployment", COLLECTOR)
    collector = container(collector_deployment, COLLECTOR)
    service_ports = {p["name"]: p for p in collector_service["spec"]["ports"]}
    for workload in app_workloads(objects):
        environ = environment(name, container(workload))
        assert environ["OTEL_TRACES_EXPORTER"] == "otlp"
        assert environ["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio"
        assert 0 <= float(environ["OTEL_TRACES_SAMPLER_ARG"]) <= 1
        assert environ["OTEL_SERVICE_NAME"].startswith(APP_NAME)
        endpoint = urlsplit(environ["OTEL_EXPORTER_OTLP_ENDPOINT"])
        assert endpoint.hostname == COLLECTOR
        wanted = {"http/protobuf": "otlp-http", "grpc": "otlp-grpc"}[environ["OTEL_EXPORTER_OTLP_PROTOCOL"]]
        assert endpoint.port == service_ports[wanted]["port"]
    assert service_selects(collector_service, pod_labels(collector_deployment))
    for p in collector_service["spec"]["ports"]:
        resolve_port(p["targetPort"], collector)


@pytest.mark.parametrize("name", ALL)
def test_collector_configuration(name: str) -> None:
    objects = rendered(name)
    deployment = find(objects, "Deployment", COLLECTOR)
    collector = container(deployment, COLLECTOR)
    (config_arg,) = [a for a in collector["args"] if a.startswith("--config=")]
    config_path = Path(config_arg.removeprefix("--config="))
    (mount,) = [m for m in collector["volumeMounts"] if m["mountPath"] == str(config_path.parent)]
    (volume,) = [v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"]]
    config = yaml.safe_load(find_config_map(objects, volume["configMap"]["name"])["data"][config_path.name])

    def port_of(endpoint: str) -> int:
        return int(endpoint.rsplit(":", 1)[1])

    protocols = config["receivers"]["otlp"]["protocols"]
    ports = {p["name"]: p["containerPort"] for p in collector["ports"]}
    assert port_of(protocols["grpc"]["endpoint"]) == ports["otlp-grpc"] == 4317
    assert port_of(protocols["http"]["endpoint"]) == ports["otlp-http"] == 4318
    for protocol in protocols.values():
        assert not protocol["endpoint"].startswith(("localhost", "127.")), "reachable from other pods"
    assert {"memory_limiter", "batch"} <= set(config["processors"])
    health = port_of(config["extensions"]["health_check"]["endpoint"])
    for probe in ("livenessProbe", "readinessProbe"):
        assert resolve_port(collector[probe]["httpGet"]["port"], collector) == health
    assert "health_check" in config["service"]["extensions"]
    pipeline = config["service"]["pipelines"]["traces"]
    assert pipeline["receivers"] == ["otlp"]
    assert pipeline["processors"][0] == "memory_limiter"
    assert "batch" in pipeline["processors"]
    assert set(pipeline["exporters"]) <= set(config["exporters"])
    exporters = {e.split("/")[0] for e in pipeline["exporters"]}
    assert exporters == ({"debug"} if name == "dev" else {"otlp"})


# ---------------------------------------------------------------------------------- Dockerfile


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, instruction: str) -> list[str]:
        return [a for i, a in self.instructions if i == instruction]


def _logical_lines(text: str) -> Iterator[str]:
    buffer = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not buffer):
            continue
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        yield buffer + line
        buffer = ""
    if buffer:
        yield buffer


@cache
def dockerfile() -> tuple[dict[str, str], tuple[Stage, ...]]:
    """The global ARG defaults and the stages of the Dockerfile."""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in _logical_lines(DOCKERFILE.read_text(encoding="utf-8")):
        instruction, _, rest = line.partition(" ")
        instruction, rest = instruction.upper(), rest.strip()
        if instruction == "FROM":
            words = rest.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: global_args[m.group(1)], words[0])
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base, name))
        elif not stages:
            assert instruction == "ARG", line
            key, _, value = rest.partition("=")
            global_args[key] = value
        else:
            stages[-1].instructions.append((instruction, rest))
    return global_args, tuple(stages)


def _key_values(words: list[str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for word in words:
        for item in shlex.split(word):
            key, _, value = item.partition("=")
            pairs[key] = value
    return pairs


def dockerfile_user() -> tuple[int, int]:
    (user,) = dockerfile()[1][-1].args("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit(), "USER must be numeric (uid:gid) for runAsNonRoot"
    assert gid.isdigit(), "USER must be numeric (uid:gid) for runAsNonRoot"
    return int(uid), int(gid)


def test_dockerfile_is_multi_stage_on_python_slim() -> None:
    _, stages = dockerfile()
    assert len(stages) >= 2
    runtime = stages[-1]
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", runtime.base), runtime.base
    builder_names = {s.name for s in stages[:-1]}
    copies = runtime.args("COPY")
    assert any(c.startswith("--from=") and c.split()[0].removeprefix("--from=") in builder_names for c in copies)
    assert all(c.startswith("--from=") for c in copies), "the runtime stage takes only the venv from the builder"
    for run in runtime.args("RUN"):
        assert not re.search(r"\b(gcc|g\+\+|clang|build-essential|make|cmake|python3-dev)\b", run), run
        assert "pip install" not in run


def test_dockerfile_user_matches_the_pods() -> None:
    uid, gid = dockerfile_user()
    assert uid >= 10000
    for name in ALL:
        for workload in app_workloads(rendered(name)):
            pod = pod_spec(workload)["securityContext"]  # type: ignore[index]
            assert (pod["runAsUser"], pod["runAsGroup"], pod["fsGroup"]) == (uid, gid, gid)


def test_dockerfile_command_port_and_environment() -> None:
    runtime = dockerfile()[1][-1]
    assert not runtime.args("ENTRYPOINT")
    (cmd,) = runtime.args("CMD")
    assert json.loads(cmd) == API_COMMAND, "exec form, the API container's command"
    for name in ALL:
        api = container(find(rendered(name), "Deployment", API_DEPLOYMENT), "api")
        assert json.loads(cmd) == [*api["command"], *api["args"]]
        assert runtime.args("EXPOSE") == [str(api["ports"][0]["containerPort"])]
    env = _key_values(runtime.args("ENV"))
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["LITESTAR_APP"] == ASGI_APP
    assert env["TMPDIR"] == "/tmp"


def test_dockerfile_installs_the_pinned_cpu_torch() -> None:
    _, stages = dockerfile()
    builder_args = {k: v for s in stages[:-1] for k, v in _key_values(s.args("ARG")).items()}
    assert builder_args["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (pin,) = [d for d in pyproject["project"]["dependencies"] if re.match(r"torch\s*==", d)]
    assert builder_args["TORCH_VERSION"] == pin.split("==")[1].strip()
    runs = " ".join(r for s in stages[:-1] for r in s.args("RUN"))
    assert '--index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"' in runs


def _dockerignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    return [line.strip().rstrip("/") for line in lines if line.strip() and not line.startswith("#")]


def _ignored(path: str, patterns: list[str]) -> bool:
    parts = Path(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch(prefix, p.removeprefix("**/")) or fnmatch(prefix, p) for p in patterns for prefix in prefixes)


def test_dockerignore() -> None:
    patterns = _dockerignore_patterns()
    for must in (".git", ".venv", "var", ".env", ".pytest_cache", ".mypy_cache", ".ruff_cache", "tests"):
        assert _ignored(must, patterns), f".dockerignore should exclude {must}"
    assert not any(p.startswith("!") for p in patterns)
    # Everything the Dockerfile copies from the context exists and is sent.
    _, stages = dockerfile()
    for stage in stages:
        for copy_args in stage.args("COPY"):
            if copy_args.startswith("--from="):
                continue
            *sources, _ = copy_args.split()
            for source in sources:
                assert (REPO_ROOT / source).exists(), source
                assert not _ignored(source, patterns), f"{source} is copied but .dockerignore excludes it"
