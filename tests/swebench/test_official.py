"""Loading the reference package: only the light modules, nothing left behind, clear errors."""

from __future__ import annotations

import importlib.metadata
import sys

import pytest

from devloop.swebench import official


def test_a_missing_or_other_version_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def absent(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", absent)
    with pytest.raises(official.OfficialUnavailable, match=r"pip install --no-deps swebench==4\.1\.0"):
        official.load()
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "5.0.2")
    with pytest.raises(
        official.OfficialUnavailable, match="swebench 5.0.2 is installed; devloop follows 4.1.0"
    ):
        official.load()


def test_loading_imports_no_heavy_dependency_and_restores_sys_modules() -> None:
    before = set(sys.modules)
    try:
        ref = official.load()
    except official.OfficialUnavailable as exc:
        pytest.skip(f"needs the reference package: {exc}")
    added = set(sys.modules) - before
    assert not [
        name
        for name in added
        if name.split(".")[0] in ("swebench", "docker", "datasets", "modal", "requests")
    ]
    assert ref.parsers["django/django"] is ref.parser_functions["django"]
    assert ref.replace_requirements == [("types-pkg_resources", "types-setuptools")]
