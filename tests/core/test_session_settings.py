"""The flat settings (devloop.toml keys, DEVLOOP_* variables, flags) map onto the session's groups."""

from __future__ import annotations

from pathlib import Path

import pytest

from devloop.config import RunSettings, load_settings
from devloop.session import Session, run_limits
from devloop.session_settings import SessionSettings, grouped_keys


def test_every_flat_key_belongs_to_exactly_one_group() -> None:
    keys = grouped_keys()
    assert set(keys) == set(RunSettings.model_fields)
    assert set(keys.values()) == {"model", "sampling", "limits", "tools", "sandbox", "feedback"}


def test_flat_keys_from_every_layer_reach_their_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "devloop.toml").write_text('max_iterations = 7\ntool_format = "xml"\n')
    monkeypatch.setenv("DEVLOOP_TEMPERATURE", "0.4")
    groups = SessionSettings.of(load_settings(model="openai/m", hook="pytest", memory_limit="1G"))
    assert (groups.model.model, groups.sampling.temperature, groups.limits.max_iterations) == (
        "openai/m",
        0.4,
        7,
    )
    assert (groups.tools.tool_format, groups.sandbox.memory_limit, groups.feedback.hook) == (
        "xml",
        "1G",
        "pytest",
    )
    assert run_limits(groups.limits).max_iterations == 7


@pytest.mark.parametrize(
    ("fmt", "model", "stop", "extra_body"),
    [
        ("xml", "openai/m", ["</function"], None),
        ("mistral", "openai/m", None, {"skip_special_tokens": False}),
        ("mistral", "mistral/devstral", None, None),  # Mistral's own API: no vLLM field
        ("native", "openai/m", None, None),
    ],
)
def test_the_format_tunes_the_sampling(
    fmt: str,
    model: str,
    stop: list[str] | None,
    extra_body: dict[str, bool] | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MISTRAL_API_KEY", "k")
    settings = load_settings(model=model, base_url="http://127.0.0.1:9/v1", tool_format=fmt, temperature=0.3)
    session = Session.prepare(settings)
    try:
        assert (session.params.temperature, session.params.stop, session.params.extra_body) == (
            0.3,
            stop,
            extra_body,
        )
    finally:
        session.model.close()


def test_bad_settings_fail_before_anything_is_created(tmp_path: Path) -> None:
    settings = load_settings(model="openai/m", base_url="http://127.0.0.1:9/v1", queues="fast:2")
    with pytest.raises(ValueError, match="--queues needs a test hook"):
        Session.prepare(settings)
    with pytest.raises(ValueError, match="--env"):
        Session.prepare(load_settings(model="openai/m", base_url="http://127.0.0.1:9/v1", env=["NOEQUALS"]))
