"""Model specs (`provider/name`) to Model objects. Providers are looked up by name, imported lazily."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Protocol

from devloop.models.base import Model

MISTRAL_BASE_URL = "https://api.mistral.ai/v1"
# Local servers (vLLM, llama.cpp, ...) ignore the key, but the SDK insists on one.
PLACEHOLDER_KEY = "not-needed"


class _Factory(Protocol):
    def __call__(
        self, name: str, *, base_url: str | None, api_key_env: str | None, max_retries: int, timeout: float
    ) -> Model: ...


# provider -> "module:function"; the module is imported only when the provider is used.
PROVIDERS: dict[str, str] = {
    "openai": "devloop.models.providers:openai_model",
    "mistral": "devloop.models.providers:mistral_model",
    "scripted": "devloop.models.providers:scripted_model",
}


def get_model(
    spec: str,
    *,
    base_url: str | None = None,
    api_key_env: str | None = None,
    max_retries: int = 5,
    timeout: float = 600,
) -> Model:
    """The Model for `spec` ("openai/<name>", "mistral/<name>" or "scripted/<path.jsonl>").

    Raises ValueError with a one-line message for an unknown provider or missing configuration.
    """
    provider, sep, name = spec.partition("/")
    if not sep or not name or provider not in PROVIDERS:
        known = ", ".join(f"{p}/<name>" for p in PROVIDERS)
        raise ValueError(f"unknown model {spec!r}: expected one of {known}")
    module, _, attr = PROVIDERS[provider].partition(":")
    factory: _Factory = getattr(importlib.import_module(module), attr)
    return factory(name, base_url=base_url, api_key_env=api_key_env, max_retries=max_retries, timeout=timeout)


def openai_model(
    name: str, *, base_url: str | None, api_key_env: str | None, max_retries: int, timeout: float
) -> Model:
    """Any OpenAI-compatible server; the key is optional (local servers need none)."""
    from devloop.models.openai_compat import OpenAICompatModel

    base_url = base_url or os.environ.get("DEVLOOP_BASE_URL")
    if not base_url:
        raise ValueError(f"--base-url is required for openai/{name} (or set DEVLOOP_BASE_URL)")
    env = api_key_env or "OPENAI_API_KEY"
    return OpenAICompatModel(
        name,
        base_url,
        os.environ.get(env) or PLACEHOLDER_KEY,
        max_retries=max_retries,
        timeout=timeout,
        api_key_env=env,
    )


def mistral_model(
    name: str, *, base_url: str | None, api_key_env: str | None, max_retries: int, timeout: float
) -> Model:
    """Mistral's hosted API (OpenAI-compatible chat completions); needs a key."""
    from devloop.models.openai_compat import OpenAICompatModel

    env = api_key_env or "MISTRAL_API_KEY"
    key = os.environ.get(env)
    if not key:
        raise ValueError(f"mistral/{name} needs an API key: set {env}")
    return OpenAICompatModel(
        name, base_url or MISTRAL_BASE_URL, key, max_retries=max_retries, timeout=timeout, api_key_env=env
    )


def scripted_model(
    name: str, *, base_url: str | None, api_key_env: str | None, max_retries: int, timeout: float
) -> Model:
    """A scripted_server on the JSONL file `name`, reached through the real HTTP client.

    close() on the returned model stops the server.
    """
    from devloop.models.openai_compat import OpenAICompatModel
    from devloop.models.scripted_server import ScriptedServer, load_script

    path = Path(name)
    if not path.is_file():
        raise ValueError(f"scripted model: no such script file: {path}")
    server = ScriptedServer(load_script(path), keep_bodies=False)  # a replayed run may be long
    return OpenAICompatModel(
        "scripted",
        server.url,
        PLACEHOLDER_KEY,
        max_retries=max_retries,
        timeout=timeout,
        on_close=server.close,
    )
