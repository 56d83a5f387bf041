"""get_model: spec parsing, configuration errors, and the scripted provider end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devloop.models import get_model
from devloop.models.openai_compat import OpenAICompatModel
from devloop.models.providers import MISTRAL_BASE_URL, PLACEHOLDER_KEY
from devloop.types import SamplingParams


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OPENAI_API_KEY", "MISTRAL_API_KEY", "DEVLOOP_BASE_URL", "MY_KEY"):
        monkeypatch.delenv(var, raising=False)


@pytest.mark.parametrize("spec", ["gpt-4o", "anthropic/claude", "openai/", "/x", ""])
def test_unknown_spec_lists_providers(spec: str) -> None:
    with pytest.raises(ValueError, match=r"expected one of openai/<name>, mistral/<name>, scripted/<name>"):
        get_model(spec)


def test_openai_needs_base_url() -> None:
    with pytest.raises(
        ValueError, match=r"^--base-url is required for openai/qwen \(or set DEVLOOP_BASE_URL\)$"
    ):
        get_model("openai/qwen")


def test_openai_local_server_needs_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVLOOP_BASE_URL", "http://127.0.0.1:8000/v1")
    model = get_model("openai/org/model-7b", max_retries=2, timeout=30)
    assert isinstance(model, OpenAICompatModel)
    assert (model.name, model.base_url, model.max_retries, model.timeout) == (
        "org/model-7b",
        "http://127.0.0.1:8000/v1",
        2,
        30,
    )
    assert model._client.api_key == PLACEHOLDER_KEY
    model.close()


def test_openai_key_from_named_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_KEY", "sk-mine")
    model = get_model("openai/m", base_url="http://127.0.0.1:1/v1", api_key_env="MY_KEY")
    assert isinstance(model, OpenAICompatModel)
    assert model._client.api_key == "sk-mine" and model.api_key_env == "MY_KEY"
    model.close()


def test_mistral_needs_key_and_defaults_url(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="set MISTRAL_API_KEY"):
        get_model("mistral/devstral-small")
    with pytest.raises(ValueError, match="set MY_KEY"):
        get_model("mistral/devstral-small", api_key_env="MY_KEY")
    monkeypatch.setenv("MISTRAL_API_KEY", "mk")
    model = get_model("mistral/devstral-small")
    assert isinstance(model, OpenAICompatModel)
    assert model.base_url == MISTRAL_BASE_URL and model._client.api_key == "mk"
    model.close()


def test_scripted_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "none.jsonl"
    with pytest.raises(ValueError, match=f"no such script file: {missing}"):
        get_model(f"scripted/{missing}")


def test_scripted_bad_script_names_line(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text('{"content": "a"}\nnot json\n')
    with pytest.raises(ValueError, match=r"s\.jsonl:2: invalid JSON"):
        get_model(f"scripted/{path}")


def test_scripted_runs_through_http_and_close_stops_server(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    lines = [{"fault": {"status": 500}}, {"content": "hi", "tool_calls": [{"function": {"name": "finish"}}]}]
    path.write_text("\n".join(json.dumps(line) for line in lines))
    model = get_model(f"scripted/{path}", max_retries=1)
    assert isinstance(model, OpenAICompatModel)
    model.backoff_base = 0.01
    result = model.complete([{"role": "user", "content": "go"}], None, SamplingParams())
    assert result.retries == 1 and result.content == "hi"
    assert result.tool_calls[0]["function"] == {"name": "finish", "arguments": "{}"}
    model.close()
    # The server is gone: a new client gets a connection error, not a reply.
    after = OpenAICompatModel("scripted", model.base_url, "k", max_retries=0, timeout=2)
    with pytest.raises(Exception, match="connection to .* failed"):
        after.complete([{"role": "user", "content": "go"}], None, SamplingParams())
    after.close()
