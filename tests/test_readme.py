"""The README stays true: every setting is documented, and the commands it names exist."""

from __future__ import annotations

import re

import msgspec
import yaml

from app.settings import Settings
from tests.server import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()


def test_every_setting_is_in_the_configuration_table() -> None:
    table = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([A-Z0-9_]+)` \|", table, flags=re.MULTILINE))
    settings = {field.name.upper() for field in msgspec.structs.fields(Settings)}
    assert settings - documented == set(), "settings missing from the README"
    assert documented - settings == set(), "the README documents settings that do not exist"


def test_the_tasks_the_readme_names_exist() -> None:
    tasks = set(yaml.safe_load((REPO_ROOT / "Taskfile.yml").read_text())["tasks"])
    named = set(re.findall(r"\./task ([a-z]+)", README))
    assert named <= tasks, named - tasks
    assert {"run", "test", "lint", "migrate", "bench", "setup", "worker"} <= tasks
