"""The shipped table of official environment specs (`specs.json`, generated from swebench 4.1.0)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class SpecTable:
    """The official table: per-(repo, version) specs and the repository-wide maps that go with them."""

    swebench_version: str
    specs: dict[str, dict[str, dict[str, Any]]]
    log_parsers: dict[str, str]
    requirements_paths: dict[str, list[str]]
    environment_yml_paths: dict[str, list[str]]
    install_commands: dict[str, str]
    replace_requirements: list[tuple[str, str | None]]
    non_test_exts: tuple[str, ...]

    def spec(self, repo: str, version: str | None) -> dict[str, Any] | None:
        """The official spec of (repo, version), or None when the table has none."""
        if version is None:
            return None
        return self.specs.get(repo, {}).get(version)

    def pairs(self) -> list[tuple[str, str]]:
        """Every (repo, version) the table covers, sorted."""
        return sorted((repo, version) for repo, versions in self.specs.items() for version in versions)


@cache
def table() -> SpecTable:
    """The shipped table (read once per process)."""
    raw = json.loads(resources.files("devloop.swebench").joinpath("specs.json").read_text(encoding="utf-8"))
    return SpecTable(
        swebench_version=raw["swebench_version"],
        specs=raw["specs"],
        log_parsers=raw["log_parsers"],
        requirements_paths=raw["requirements_paths"],
        environment_yml_paths=raw["environment_yml_paths"],
        install_commands=raw["install_commands"],
        replace_requirements=[(a, b) for a, b in raw["replace_requirements"]],
        non_test_exts=tuple(raw["non_test_exts"]),
    )
