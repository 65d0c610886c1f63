"""A small kustomize renderer in Python for the tests of ``k8s/``, and its own tests.

CI has no kustomize binary (``pip install -e '.[dev]'`` brings none), so the manifests are
rendered here, for the subset of kustomize that ``k8s/`` uses, and anything outside that
subset is refused with :class:`KustomizeError` instead of being rendered wrongly:

- ``resources``: YAML files (several documents each) and directories with a kustomization;
- ``configMapGenerator``: ``envs``, ``files`` (``key=path`` or ``path``) and ``literals``,
  ``behavior`` create/merge/replace, with kustomize's content-hash name suffix and the
  renaming of every reference to the generated ConfigMap in pod specs;
- ``patches``: strategic-merge patches by kind and name (``path`` or inline ``patch``), with
  the merge keys of the pod spec (containers, env, volumes, volumeMounts, ports);
- ``namespace``, ``labels`` (``includeSelectors: false`` only) and ``images``.

Where a real kustomize is on the machine (``kubectl kustomize`` or ``kustomize build``),
``test_renderer_matches_real_kustomize`` renders every kustomization with both and compares.

Render by hand: ``python -m tests.test_k8s_render k8s/overlays/prod``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
K8S_DIR = REPO_ROOT / "k8s"
KUSTOMIZATIONS = {
    "base": K8S_DIR / "base",
    "dev": K8S_DIR / "overlays" / "dev",
    "prod": K8S_DIR / "overlays" / "prod",
}

Obj = dict[str, Any]

_KUSTOMIZATION_FIELDS = {
    "apiVersion",
    "kind",
    "resources",
    "namespace",
    "labels",
    "images",
    "configMapGenerator",
    "patches",
}
_GENERATOR_FIELDS = {"name", "behavior", "envs", "files", "literals"}
_CLUSTER_SCOPED_KINDS = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "PriorityClass",
    "StorageClass",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
}


class KustomizeError(ValueError):
    """The kustomization uses something this renderer does not support, or is inconsistent."""


@dataclass
class _Resource:
    obj: Obj
    needs_hash: bool = False  # generated: gets the content-hash suffix when the build ends

    @property
    def kind(self) -> str:
        return str(self.obj["kind"])

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    @property
    def namespace(self) -> str | None:
        return self.obj["metadata"].get("namespace")


def load_documents(path: Path) -> list[Obj]:
    """The non-empty YAML documents of a file."""
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def build(directory: Path) -> list[Obj]:
    """Render the kustomization in ``directory`` as ``kustomize build`` would."""
    resources = _build(directory.resolve(), ())
    return _finish(resources)


# ------------------------------------------------------------------------------------- build


def _build(directory: Path, stack: tuple[Path, ...]) -> list[_Resource]:
    if directory in stack:
        raise KustomizeError(f"cycle of kustomizations through {directory}")
    path = directory / "kustomization.yaml"
    if not path.is_file():
        raise KustomizeError(f"{directory}: no kustomization.yaml")
    spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    unknown = set(spec) - _KUSTOMIZATION_FIELDS
    if unknown:
        raise KustomizeError(f"{path}: fields not supported by this renderer: {sorted(unknown)}")
    if spec.get("kind", "Kustomization") != "Kustomization":
        raise KustomizeError(f"{path}: kind must be Kustomization")

    resources: list[_Resource] = []
    for entry in spec.get("resources", []):
        target = (directory / entry).resolve()
        if target.is_dir():
            resources.extend(_build(target, (*stack, directory)))
        elif target.is_file():
            resources.extend(_Resource(doc) for doc in load_documents(target))
        else:
            raise KustomizeError(f"{path}: resource {entry!r} does not exist")
    _check_unique(resources, path)

    for generator in spec.get("configMapGenerator", []):
        _generate_config_map(directory, generator, resources)
    for patch in spec.get("patches", []):
        _apply_patch(directory, patch, resources)
    if "namespace" in spec:
        for resource in resources:
            if resource.kind not in _CLUSTER_SCOPED_KINDS:
                resource.obj["metadata"]["namespace"] = spec["namespace"]
    for labels in spec.get("labels", []):
        _add_labels(labels, resources, path)
    for image in spec.get("images", []):
        _set_image(image, resources)
    _check_unique(resources, path)
    return resources


def _check_unique(resources: list[_Resource], where: Path) -> None:
    seen: set[tuple[str, str | None, str]] = set()
    for resource in resources:
        key = (resource.kind, resource.namespace, resource.name)
        if key in seen:
            raise KustomizeError(f"{where}: {key} is defined twice")
        seen.add(key)


# ---------------------------------------------------------------------------------- generators


def parse_env_file(text: str) -> dict[str, str]:
    """kustomize's ``envs`` format: ``KEY=VALUE`` lines; blank lines and ``#`` comments skipped."""
    data: dict[str, str] = {}
    for number, raw in enumerate(text.removeprefix("\ufeff").splitlines(), start=1):
        line = raw.lstrip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise KustomizeError(f"line {number}: {raw!r} has no '=' (values from the environment are not supported)")
        key, value = line.split("=", 1)
        if not key or any(c.isspace() for c in key):
            raise KustomizeError(f"line {number}: invalid key {key!r}")
        data[key] = value
    return data


def _literal(source: str) -> tuple[str, str]:
    if "=" not in source:
        raise KustomizeError(f"literal {source!r} is not KEY=VALUE")
    key, value = source.split("=", 1)
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return key, value


def _generator_data(directory: Path, generator: Obj) -> dict[str, str]:
    data: dict[str, str] = {}

    def put(key: str, value: str) -> None:
        if key in data:
            raise KustomizeError(f"configMapGenerator {generator['name']}: key {key} given twice")
        data[key] = value

    for env_file in generator.get("envs", []):
        for key, value in parse_env_file((directory / env_file).read_text(encoding="utf-8")).items():
            put(key, value)
    for source in generator.get("files", []):
        key, _, file_name = source.rpartition("=")
        file_path = directory / file_name
        put(key or file_path.name, file_path.read_text(encoding="utf-8"))
    for source in generator.get("literals", []):
        put(*_literal(source))
    return data


def _generate_config_map(directory: Path, generator: Obj, resources: list[_Resource]) -> None:
    unknown = set(generator) - _GENERATOR_FIELDS
    if unknown:
        raise KustomizeError(f"configMapGenerator {generator.get('name')}: unsupported {sorted(unknown)}")
    name = generator["name"]
    behavior = generator.get("behavior", "create")
    data = _generator_data(directory, generator)
    existing = [r for r in resources if r.kind == "ConfigMap" and r.name == name and r.namespace is None]
    if behavior == "create":
        if existing:
            raise KustomizeError(f"configMapGenerator {name}: exists already (use behavior: merge or replace)")
        obj: Obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}
        resources.append(_Resource(obj, needs_hash=True))
    elif behavior in ("merge", "replace"):
        if len(existing) != 1:
            raise KustomizeError(
                f"configMapGenerator {name}: behavior {behavior} but no ConfigMap {name} to {behavior}"
            )
        target = existing[0].obj
        target["data"] = {**target.get("data", {}), **data} if behavior == "merge" else data
    else:
        raise KustomizeError(f"configMapGenerator {name}: unknown behavior {behavior!r}")


def content_hash(config_map: Obj) -> str:
    """kustomize's name suffix for a generated ConfigMap.

    kustomize (api/hasher) hashes the JSON of ``{"kind", "name", "data"[, "binaryData"]}``
    with sorted keys, takes 10 hex digits of its SHA-256 and swaps ``0 1 3 a e`` for
    ``g h k m t``. Its lookup of the name uses ``metadata/name`` as one key, which finds
    nothing, so the name is always ``""`` in what is hashed (checked against kustomize v5.5.0:
    ``{"A": "b"}`` -> ``b9t2424hkf``).
    """
    encoded: dict[str, Any] = {"kind": "ConfigMap", "name": "", "data": config_map.get("data") or {}}
    if config_map.get("binaryData"):
        encoded["binaryData"] = config_map["binaryData"]
    text = json.dumps(encoded, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # Go's encoding/json escapes these.
    for char, escaped in (
        ("&", "\\u0026"),
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escaped)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]
    return digest.translate(str.maketrans("013ae", "ghkmt"))


# ------------------------------------------------------------------------------------ patches

# Strategic-merge keys of the lists this renderer merges (from the Kubernetes API's
# patchMergeKey); every other list is replaced by the patch's, as in kustomize.
_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
}


def _merge_key(kind: str, path: tuple[str, ...]) -> str | None:
    key = path[-1]
    if key == "ports":
        if len(path) >= 2 and path[-2] in ("containers", "initContainers"):
            return "containerPort"
        if kind == "Service" and path == ("spec", "ports"):
            return "port"
        return None
    return _MERGE_KEYS.get(key)


def strategic_merge(kind: str, target: Any, patch: Any, path: tuple[str, ...] = ()) -> Any:
    """Merge ``patch`` into ``target`` (both plain YAML values) the strategic-merge way."""
    if isinstance(patch, dict):
        if any(str(k).startswith("$") for k in patch):
            raise KustomizeError(f"patch directives ({[k for k in patch if str(k).startswith('$')]}) are not supported")
        if not isinstance(target, dict):
            return copy.deepcopy(patch)
        merged = dict(target)
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            elif key in merged:
                merged[key] = strategic_merge(kind, merged[key], value, (*path, key))
            else:
                merged[key] = copy.deepcopy(value)
        return merged
    if isinstance(patch, list):
        merge_key = _merge_key(kind, path) if path else None
        if merge_key is None or not isinstance(target, list):
            return copy.deepcopy(patch)
        merged_list = list(target)
        for item in patch:
            if not isinstance(item, dict) or merge_key not in item:
                raise KustomizeError(f"patch of {'.'.join(path)}: every item needs {merge_key}")
            for index, current in enumerate(merged_list):
                if isinstance(current, dict) and current.get(merge_key) == item[merge_key]:
                    merged_list[index] = strategic_merge(kind, current, item, path)
                    break
            else:
                merged_list.append(copy.deepcopy(item))
        return merged_list
    return copy.deepcopy(patch)


def _apply_patch(directory: Path, entry: Obj, resources: list[_Resource]) -> None:
    if set(entry) - {"path", "patch"} or len(entry) != 1:
        raise KustomizeError(f"patch {entry}: only one of `path` or `patch` (strategic merge, no target) is supported")
    text = (directory / entry["path"]).read_text(encoding="utf-8") if "path" in entry else entry["patch"]
    documents = [doc for doc in yaml.safe_load_all(text) if doc]
    if len(documents) != 1:
        raise KustomizeError(f"patch {entry}: one document per patch")
    patch = documents[0]
    if isinstance(patch, list) or "op" in patch:
        raise KustomizeError(f"patch {entry}: JSON 6902 patches are not supported")
    kind, name = patch["kind"], patch["metadata"]["name"]
    namespace = patch["metadata"].get("namespace")
    matches = [
        r for r in resources if r.kind == kind and r.name == name and (namespace is None or r.namespace == namespace)
    ]
    if len(matches) != 1:
        raise KustomizeError(f"patch {entry}: {len(matches)} resources match {kind}/{name}")
    target = matches[0]
    merged = strategic_merge(kind, target.obj, {k: v for k, v in patch.items() if k not in ("apiVersion", "kind")})
    merged["metadata"] = {**target.obj["metadata"], **merged["metadata"], "name": target.name}
    target.obj = merged


# ------------------------------------------------------------------------------ transformers


def _add_labels(spec: Obj, resources: list[_Resource], where: Path) -> None:
    unknown = set(spec) - {"pairs", "includeSelectors", "includeTemplates"}
    if unknown or spec.get("includeSelectors") or spec.get("includeTemplates"):
        raise KustomizeError(f"{where}: labels supports only `pairs` with includeSelectors/includeTemplates false")
    for resource in resources:
        labels = resource.obj["metadata"].setdefault("labels", {})
        labels.update({str(k): str(v) for k, v in spec["pairs"].items()})


def pod_spec(obj: Obj) -> Obj | None:
    """The pod spec of a workload, or None."""
    kind = obj.get("kind")
    if kind == "Pod":
        return obj.get("spec")
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        return obj.get("spec", {}).get("template", {}).get("spec")
    if kind == "CronJob":
        return obj.get("spec", {}).get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec")
    return None


def all_containers(spec: Obj) -> Iterator[Obj]:
    yield from spec.get("initContainers", [])
    yield from spec.get("containers", [])


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """``registry:5000/repo/name:tag@sha256:...`` -> (name, tag, digest)."""
    rest, _, digest = image.partition("@")
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        return rest[:colon], rest[colon + 1 :], digest or None
    return rest, None, digest or None


def _set_image(spec: Obj, resources: list[_Resource]) -> None:
    unknown = set(spec) - {"name", "newName", "newTag", "digest"}
    if unknown:
        raise KustomizeError(f"images entry {spec}: unsupported {sorted(unknown)}")
    for resource in resources:
        pod = pod_spec(resource.obj)
        if pod is None:
            continue
        for container in all_containers(pod):
            name, tag, digest = split_image(container["image"])
            if name != spec["name"]:
                continue
            name = spec.get("newName", name)
            if "newTag" in spec:
                tag, digest = str(spec["newTag"]), None
            if "digest" in spec:
                tag, digest = None, spec["digest"]
            container["image"] = name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


# ------------------------------------------------------------------------------------- finish


def _finish(resources: list[_Resource]) -> list[Obj]:
    renames: dict[tuple[str | None, str], str] = {}
    for resource in resources:
        if resource.needs_hash:
            new_name = f"{resource.name}-{content_hash(resource.obj)}"
            renames[(resource.namespace, resource.name)] = new_name
            resource.obj["metadata"]["name"] = new_name
    for resource in resources:
        pod = pod_spec(resource.obj)
        if pod is not None:
            _rename_config_map_refs(pod, resource.namespace, renames)
    return [resource.obj for resource in resources]


def _rename_config_map_refs(pod: Obj, namespace: str | None, renames: dict[tuple[str | None, str], str]) -> None:
    def rename(ref: Obj | None) -> None:
        if ref and (namespace, ref.get("name")) in renames:
            ref["name"] = renames[(namespace, ref["name"])]

    for container in all_containers(pod):
        for source in container.get("envFrom", []):
            rename(source.get("configMapRef"))
        for variable in container.get("env", []):
            rename(variable.get("valueFrom", {}).get("configMapKeyRef"))
    for volume in pod.get("volumes", []):
        rename(volume.get("configMap"))
        for source in volume.get("projected", {}).get("sources", []):
            rename(source.get("configMap"))


# ====================================================================== tests of the renderer


def test_content_hash_matches_kustomize() -> None:
    # Values printed by kustomize v5.5.0 (kubectl 1.32 `kubectl kustomize`).
    assert content_hash({"data": {"A": "b"}}) == "b9t2424hkf"


def test_env_file_parsing() -> None:
    text = "# comment\n\nA=1\nC=x=y\n  D=indented\nE=\n"
    assert parse_env_file(text) == {"A": "1", "C": "x=y", "D": "indented", "E": ""}
    with pytest.raises(KustomizeError):
        parse_env_file("NO_VALUE\n")
    with pytest.raises(KustomizeError):
        parse_env_file("SPACE IN KEY=1\n")


def test_strategic_merge_by_key_and_replace() -> None:
    target = {
        "spec": {
            "replicas": 2,
            "template": {
                "spec": {
                    "containers": [
                        {"name": "a", "image": "x", "args": ["1", "2"], "env": [{"name": "K", "value": "1"}]},
                        {"name": "b", "image": "y"},
                    ]
                }
            },
        }
    }
    patch = {
        "spec": {
            "replicas": None,
            "template": {
                "spec": {
                    "containers": [
                        {"name": "a", "args": ["3"], "env": [{"name": "K", "value": "2"}, {"name": "L", "value": "3"}]}
                    ]
                }
            },
        }
    }
    merged = strategic_merge("Deployment", target, patch)
    assert "replicas" not in merged["spec"]
    a, b = merged["spec"]["template"]["spec"]["containers"]
    assert a == {
        "name": "a",
        "image": "x",
        "args": ["3"],
        "env": [{"name": "K", "value": "2"}, {"name": "L", "value": "3"}],
    }
    assert b == {"name": "b", "image": "y"}
    assert target["spec"]["replicas"] == 2  # the target is not modified in place


def test_split_image() -> None:
    assert split_image("video-opusclip") == ("video-opusclip", None, None)
    assert split_image("registry:5000/team/app:1.2") == ("registry:5000/team/app", "1.2", None)
    assert split_image("app@sha256:abc") == ("app", None, "sha256:abc")


def test_unsupported_kustomization_fields_are_refused(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("namePrefix: x-\nresources: []\n")
    with pytest.raises(KustomizeError, match="namePrefix"):
        build(tmp_path)


def _real_kustomize() -> list[str] | None:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        probe = subprocess.run(["kubectl", "kustomize", "--help"], capture_output=True, timeout=60, check=False)
        if probe.returncode == 0:
            return ["kubectl", "kustomize"]
    return None


def _by_identity(objects: list[Obj]) -> dict[tuple[str, str, str | None, str], Obj]:
    return {(o["apiVersion"], o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in objects}


@pytest.mark.parametrize("name", sorted(KUSTOMIZATIONS))
def test_renderer_matches_real_kustomize(name: str) -> None:
    """Cross-check against a real kustomize where the machine has one (CI may not)."""
    command = _real_kustomize()
    if command is None:
        pytest.skip("no kustomize or kubectl on this machine; the Python renderer alone is used")
    result = subprocess.run(
        [*command, str(KUSTOMIZATIONS[name])], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    real = _by_identity([doc for doc in yaml.safe_load_all(result.stdout) if doc])
    ours = _by_identity(build(KUSTOMIZATIONS[name]))
    assert sorted(ours, key=str) == sorted(real, key=str)
    for key, obj in real.items():
        assert ours[key] == obj, key


if __name__ == "__main__":
    for directory in sys.argv[1:] or [str(KUSTOMIZATIONS["prod"])]:
        sys.stdout.write(yaml.safe_dump_all(build(Path(directory)), sort_keys=False))
