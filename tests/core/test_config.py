"""Settings layers: defaults < user devloop.toml < project devloop.toml < DEVLOOP_* env < CLI flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from devloop import config
from devloop.config import ConfigError, load_settings


@pytest.fixture
def layers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    user = tmp_path / "user" / "devloop.toml"
    user.parent.mkdir()
    project = tmp_path / "proj"
    project.mkdir()
    monkeypatch.setattr(config, "user_config_file", lambda: user)
    monkeypatch.chdir(project)
    for var in ("DEVLOOP_MAX_ITERATIONS", "DEVLOOP_TEMPERATURE", "DEVLOOP_MODEL", "DEVLOOP_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    return user, project / "devloop.toml"


def test_defaults(layers: tuple[Path, Path]) -> None:
    s = load_settings()
    assert (s.max_iterations, s.temperature, s.tool_format, s.command_timeout) == (50, 0.0, "native", 120.0)


def test_each_layer_overrides_the_one_below(
    layers: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    user, project = layers
    user.write_text("max_iterations = 10\ntemperature = 0.1\nmodel = 'openai/a'\nseed = 1\n")
    project.write_text("max_iterations = 20\ntemperature = 0.2\n")
    monkeypatch.setenv("DEVLOOP_TEMPERATURE", "0.3")
    s = load_settings(model="openai/flag")
    assert s.seed == 1  # only in the user file
    assert s.max_iterations == 20  # project beats user
    assert s.temperature == 0.3  # env beats files
    assert s.model == "openai/flag"  # flag beats everything
    assert load_settings(temperature=None).temperature == 0.3  # None means "flag not given"


def test_bad_values_name_their_source(layers: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    _, project = layers
    with pytest.raises(ConfigError, match=r"max_iterations.*flag --max-iterations"):
        load_settings(max_iterations=0)
    monkeypatch.setenv("DEVLOOP_TEMPERATURE", "hot")
    with pytest.raises(ConfigError, match="DEVLOOP_TEMPERATURE"):
        load_settings()
    monkeypatch.delenv("DEVLOOP_TEMPERATURE")
    project.write_text("tool_fromat = 'xml'\n")
    with pytest.raises(ConfigError, match=r"tool_fromat.*devloop.toml"):
        load_settings()
