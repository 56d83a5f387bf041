"""Fill in the middle: the text a model would insert between a prefix and a suffix.

Two protocols, chosen by the model spec's provider:

* `mistral/<name>`: Mistral's FIM endpoint, ``POST /v1/fim/completions`` with ``prompt`` (before the
  cursor) and ``suffix`` (after it); the insertion is the reply's ``choices[0].message.content``.
* `openai/<name>`: an OpenAI-compatible server's legacy ``POST /v1/completions`` with its ``suffix``
  field (vLLM and others accept it for models trained with FIM); the insertion is ``choices[0].text``.
  A server that does not support ``suffix`` answers 400, reported as such.

Requests go through the `openai` SDK's HTTP client (its auth header, base URL and timeouts), as the chat
models do.
"""

from __future__ import annotations

import json
import os
from typing import Any

import openai

from devloop.models.base import ModelError
from devloop.models.openai_compat import server_message
from devloop.models.providers import MISTRAL_BASE_URL, PLACEHOLDER_KEY

FIM_PROVIDERS = ("mistral", "openai")


def fim_request(
    provider: str, name: str, prefix: str, suffix: str, max_tokens: int, temperature: float
) -> tuple[str, dict[str, Any]]:
    """The endpoint (relative to the base URL) and JSON body of a fill-in-the-middle request."""
    body: dict[str, Any] = {"model": name, "prompt": prefix, "suffix": suffix, "max_tokens": max_tokens,
                            "temperature": temperature}  # fmt: skip
    if provider == "mistral":
        return "/fim/completions", body
    return "/completions", body


def fill_in_middle(
    spec: str,
    prefix: str,
    suffix: str,
    *,
    base_url: str | None = None,
    api_key_env: str | None = None,
    max_tokens: int = 256,
    temperature: float = 0.0,
    timeout: float = 60.0,
    max_retries: int = 2,
) -> str:
    """The insertion `spec`'s model proposes between `prefix` and `suffix`. Raises ValueError for a spec
    or configuration that cannot work (one line), ModelError when the server fails or refuses."""
    provider, sep, name = spec.partition("/")
    if not sep or not name or provider not in FIM_PROVIDERS:
        raise ValueError(f"--model {spec!r}: fill in the middle needs mistral/<name> or openai/<name>")
    if provider == "mistral":
        env = api_key_env or "MISTRAL_API_KEY"
        key = os.environ.get(env)
        if not key:
            raise ValueError(f"{spec} needs an API key: set {env}")
        url = base_url or MISTRAL_BASE_URL
    else:
        env = api_key_env or "OPENAI_API_KEY"
        key = os.environ.get(env) or PLACEHOLDER_KEY
        url = base_url or os.environ.get("DEVLOOP_BASE_URL") or ""
        if not url:
            raise ValueError(f"--base-url is required for {spec} (or set DEVLOOP_BASE_URL)")
    path, body = fim_request(provider, name, prefix, suffix, max_tokens, temperature)
    client = openai.OpenAI(api_key=key, base_url=url, timeout=timeout, max_retries=max_retries)
    try:
        text = client.post(path, body=body, cast_to=str)
    except openai.APIStatusError as exc:
        message, _ = server_message(exc)
        if provider == "openai" and exc.status_code in (400, 422) and "suffix" in message.lower():
            raise ModelError(
                f"{url} does not support `suffix` on /v1/completions (fill in the middle) for {name}: {message}"
            ) from None
        raise ModelError(f"{url}{path} answered {exc.status_code}: {message}") from None
    except openai.APIError as exc:  # connection failures, timeouts
        raise ModelError(
            f"{url}{path}: {type(exc).__name__}: {exc}".splitlines()[0], retryable=True
        ) from None
    finally:
        client.close()
    return _insertion(provider, text)


def _insertion(provider: str, text: str) -> str:
    try:
        data = json.loads(text)
        choice = data["choices"][0]
        value = choice["message"]["content"] if provider == "mistral" else choice["text"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ModelError(f"malformed fill-in-the-middle reply ({type(exc).__name__})") from None
    if isinstance(value, list):  # Mistral may send content parts
        value = "".join(str(p.get("text", "")) for p in value if isinstance(p, dict))
    if not isinstance(value, str):
        raise ModelError("malformed fill-in-the-middle reply (no text)")
    return value
