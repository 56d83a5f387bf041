"""Settings for an agent run, layered: defaults < devloop.toml (user, then project) < DEVLOOP_* env < CLI flags.

The user file is `<user config dir>/devloop/devloop.toml`; the project file is `./devloop.toml`, which wins
over the user file. Keys are the field names below (e.g. `max_iterations = 30`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from devloop.feedback.settings import FeedbackSettings
from devloop.runtime.limits import parse_limit
from devloop.tools.mcp import McpServerConfig, check_server_name

ToolFormatName = Literal["native", "mistral", "xml", "hermes", "auto"]


class ConfigError(ValueError):
    """A settings file, variable or flag holds a bad value; the message is one line naming where."""


def user_config_file() -> Path:
    return Path(platformdirs.user_config_dir("devloop")) / "devloop.toml"


def project_config_file() -> Path:
    return Path.cwd() / "devloop.toml"


class RunSettings(BaseSettings, FeedbackSettings):
    """Everything that shapes one agent run. Each field is a `devloop run` flag of the same name
    (the feedback loop's fields come from FeedbackSettings)."""

    model_config = SettingsConfigDict(env_prefix="DEVLOOP_", extra="forbid", validate_default=True)

    model: str = ""
    """PROVIDER/NAME: openai/<name>, mistral/<name> or scripted/<path.jsonl>."""
    base_url: str | None = None
    """Base URL of an OpenAI-compatible server (openai/ provider), e.g. http://localhost:8000/v1."""
    api_key_env: str | None = None
    """Environment variable holding the API key (default OPENAI_API_KEY; MISTRAL_API_KEY for mistral/)."""
    tool_format: ToolFormatName = "native"
    """How tool calls travel: native tool_calls, or text in the mistral / xml / hermes shape; auto = any."""
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(None, gt=0)
    """Cap on tokens per completion."""
    seed: int | None = None
    max_retries: int = Field(5, ge=0)
    """Retries for 429 / 5xx / timeouts / connection resets, with exponential backoff."""
    request_timeout: float = Field(600.0, gt=0)
    """Seconds to wait for one completion."""
    condense: bool = False
    """Compact the conversation when it nears the model's context window (devloop.condense)."""
    context_window: int | None = Field(None, gt=0)
    """The model's context window in tokens (default: the server's /v1/models max_model_len, if listed)."""
    condense_at: float = Field(0.8, gt=0.1, lt=1.0)
    """With condense: compact once the prompt passes this fraction of the context window."""
    max_iterations: int = Field(50, gt=0)
    """Model calls per run (the Devstral paper's optimum is 50)."""
    max_tokens_total: int | None = Field(None, gt=0)
    """Stop when prompt + completion tokens over the run exceed this."""
    time_limit: float | None = Field(None, gt=0)
    """Wall-clock seconds for the whole run."""
    command_timeout: float = Field(120.0, gt=0)
    """Default per-command timeout of execute_bash, in seconds."""
    output_cap: int = Field(10_000, gt=100)
    """Characters of command output shown to the model (head + tail beyond it)."""
    max_format_errors: int = Field(3, gt=0)
    """Consecutive replies without a valid tool call before the run ends with format_errors."""
    retrieve: int = Field(0, ge=0, le=50)
    """Files ranked for the issue (with their skeletons) shown in the first prompt; 0 = none."""
    prompt_dir: Path | None = None
    """Directory with system.j2 / task.j2 overriding the packaged prompts."""
    sandbox: str = "auto"
    """Where commands run: bwrap (bubblewrap sandbox), docker, none (a local shell); auto = bwrap if it works."""
    allow_network: bool = False
    """Let sandboxed commands reach the network."""
    env: list[str] = Field(default_factory=list)
    """KEY=VAL variables set inside the sandbox."""
    pass_env: list[str] = Field(default_factory=list)
    """Names of host variables passed into the sandbox (beyond PATH, LANG, TERM and the like)."""
    memory_limit: str = "4G"
    """Address-space limit per sandboxed command (e.g. 4G, 512M)."""
    disk_limit: str = "10G"
    """How much the files a sandbox can write (workspace, scratch dir) may grow over a run (e.g. 10G), or
    none; past it the running command is stopped and the model is told to delete files."""
    policy: list[Path] = Field(default_factory=list)
    """Extra command-policy files (TOML), checked before the project and user policies."""
    keep_workspace: bool = False
    """Keep the isolated workspace after the run (its path is in result.json)."""
    mcp_servers: dict[str, McpServerConfig] = Field(default_factory=dict)
    """Stdio MCP servers whose tools the agent is offered (`[mcp_servers.NAME]` tables: command, env, cwd,
    timeout). They run on the host, outside the sandbox, so they are read from the user's config file
    (or DEVLOOP_MCP_SERVERS), never from a project's devloop.toml."""
    python: Path | None = None
    """The interpreter the agent's commands and the test hook use (default: the repository's, detected)."""
    venv: Path | None = None
    """The virtual environment the agent's commands and the test hook use (default: detected)."""

    @field_validator("disk_limit")
    @classmethod
    def _disk_limit_is_a_size(cls, value: str) -> str:
        parse_limit(value)  # checked here, so that `devloop eval` fails on it before any task starts
        return value

    @field_validator("mcp_servers")
    @classmethod
    def _mcp_server_names(cls, value: dict[str, McpServerConfig]) -> dict[str, McpServerConfig]:
        for name in value:
            check_server_name(name)
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        files = [f for f in (project_config_file(), user_config_file()) if f.is_file()]
        tomls = [TomlConfigSettingsSource(settings_cls, toml_file=f) for f in files]
        return (init_settings, env_settings, *tomls)


def load_settings(**overrides: Any) -> RunSettings:
    """RunSettings from all layers; `overrides` are CLI flags (None values mean "not given").

    Raises ConfigError with one line naming the field and the layer it probably came from.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    tables = {f: _read_toml(f) for f in (project_config_file(), user_config_file()) if f.is_file()}
    project = project_config_file()
    if "mcp_servers" in tables.get(project, {}) and project.resolve() != user_config_file().resolve():
        # A repository's file may come from anyone (or from the model, in chat): it never starts a process.
        line = _key_line(project, "mcp_servers") or 1
        raise ConfigError(
            f"{project}:{line}: mcp_servers: MCP servers run on the host, so they are read only from the user "
            f"config file {user_config_file()} (or DEVLOOP_MCP_SERVERS), not from a project's devloop.toml"
        )
    try:
        return RunSettings(**given)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "?"
        key = str(err["loc"][0]) if err["loc"] else field
        raise ConfigError(f"setting {field!r}: {err['msg']} ({_where(key, given, tables)})") from None
    except Exception as e:  # what _read_toml did not foresee
        raise ConfigError(f"cannot read settings: {e}") from None


def _read_toml(path: Path) -> dict[str, Any]:
    """The table in a settings file; ConfigError `FILE:LINE: ...` when it is not valid TOML."""
    import re
    import tomllib

    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        at = re.search(r"\(at line (\d+), column \d+\)", str(e))
        why = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(e)) or "invalid TOML"
        raise ConfigError(f"{path}:{at.group(1) if at else 1}: not valid TOML: {why}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read the settings file: {e}") from None


def _key_line(path: Path, key: str) -> int | None:
    """The line of `path` where top-level `key` is set (or its table begins), if it can be found."""
    import re

    name = rf"(?:{re.escape(key)}|\"{re.escape(key)}\"|'{re.escape(key)}')"
    assign, table = re.compile(rf"\s*{name}\s*[=.]"), re.compile(rf"\s*\[+\s*{name}\s*[\].]")
    in_tables = False
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if table.match(line):
            return n
        in_tables = in_tables or line.lstrip().startswith("[")
        if not in_tables and assign.match(line):
            return n
    return None


def _where(key: str, given: dict[str, Any], tables: dict[Path, dict[str, Any]]) -> str:
    if key in given:
        return f"flag --{key.replace('_', '-')}"
    if f"DEVLOOP_{key.upper()}" in os.environ:
        return f"environment variable DEVLOOP_{key.upper()}"
    if holder := next((f for f, table in tables.items() if key in table), None):
        line = _key_line(holder, key)
        return f"config file {holder}:{line}" if line else f"config file {holder}"
    files = [str(f) for f in tables]
    return f"config file {' or '.join(files)}" if files else "default"
