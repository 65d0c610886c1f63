"""Reading model repositories: which models exist, their versions and their config.

Layout of one repository (several are read in order, later ones overriding/adding)::

    <repository>/<name>/config.json          optional, see ``ModelConfig``
    <repository>/<name>/<version>/model.pt   TorchScript archive; version = positive integer

Merging rules: versions are the union over the repositories, a later repository's file
replacing an earlier one for the same version; ``config.json`` comes from the last
repository that has one for that name (so a user who drops ``highlight-scorer/2/model.pt``
into MODEL_DIR gets a new version served with the shipped config).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from infra.models.config import DEFAULT_CONFIG, ModelConfig, parse_config

MODEL_FILE = "model.pt"
CONFIG_FILE = "config.json"
BUILTIN_REPOSITORY = Path(__file__).resolve().parent / "repository"
"""The repository shipped as package data (may hold no models)."""


@dataclass(frozen=True)
class ModelEntry:
    """What the repositories hold for one model name."""

    name: str
    config: ModelConfig = DEFAULT_CONFIG
    config_path: Path | None = None
    config_error: str | None = None
    versions: Mapping[int, Path] = field(default_factory=dict)

    @property
    def newest(self) -> int | None:
        return max(self.versions, default=None)


def _is_model_dir(path: Path) -> bool:
    # Package data directories also hold __init__.py / __pycache__; hidden dirs are editor or VCS litter.
    return path.is_dir() and not path.name.startswith((".", "_"))


def _version_of(path: Path) -> int | None:
    if not path.is_dir() or not path.name.isdigit():
        return None
    version = int(path.name)
    if version < 1 or not (path / MODEL_FILE).is_file():
        return None
    return version


def _merge(entry: ModelEntry | None, name: str, model_dir: Path) -> ModelEntry:
    config, config_path, config_error = (
        (entry.config, entry.config_path, entry.config_error) if entry else (DEFAULT_CONFIG, None, None)
    )
    config_file = model_dir / CONFIG_FILE
    if config_file.is_file():
        config_path = config_file
        try:
            config, config_error = parse_config(config_file.read_bytes()), None
        except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
            config, config_error = DEFAULT_CONFIG, f"invalid {config_file}: {exc}"
    versions = dict(entry.versions) if entry else {}
    for child in model_dir.iterdir():
        version = _version_of(child)
        if version is not None:
            versions[version] = child / MODEL_FILE
    return ModelEntry(name=name, config=config, config_path=config_path, config_error=config_error, versions=versions)


def _existing(repositories: Iterable[Path]) -> Iterable[Path]:
    return (repo for repo in repositories if repo.is_dir())


def scan(repositories: Sequence[Path]) -> dict[str, ModelEntry]:
    """Every model of the repositories, merged. Missing repository directories are skipped."""
    entries: dict[str, ModelEntry] = {}
    for repo in _existing(repositories):
        for model_dir in sorted(repo.iterdir()):
            if _is_model_dir(model_dir):
                entries[model_dir.name] = _merge(entries.get(model_dir.name), model_dir.name, model_dir)
    return {name: entry for name, entry in entries.items() if entry.versions or entry.config_path}


def find(repositories: Sequence[Path], name: str) -> ModelEntry | None:
    """One model of the repositories (``None`` when no repository has a directory for it)."""
    if not name or name != Path(name).name or name in (".", ".."):
        return None  # not a plain directory name: never look outside the repositories
    entry: ModelEntry | None = None
    for repo in _existing(repositories):
        model_dir = repo / name
        if _is_model_dir(model_dir):
            entry = _merge(entry, name, model_dir)
    return entry
