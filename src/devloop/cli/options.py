"""Agent options shared by `devloop run`, `devloop eval` and `devloop demo`: one definition each.

Every option defaults to None, meaning "not given": the value then comes from DEVLOOP_* variables,
devloop.toml or the built-in default (see devloop.config).
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

AGENT = "Agent options"

Model = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="PROVIDER/NAME: openai/<name> (any OpenAI-compatible server at --base-url), "
        "mistral/<name> (Mistral's API), scripted/<file.jsonl> (replayed replies).",
        rich_help_panel=AGENT,
    ),
]
BaseUrl = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        help="Server base URL for openai/, e.g. http://localhost:8000/v1 \\[env: DEVLOOP_BASE_URL].",
        rich_help_panel=AGENT,
    ),
]
ApiKeyEnv = Annotated[
    str | None,
    typer.Option(
        "--api-key-env",
        metavar="VAR",
        help="Environment variable holding the API key "
        "\\[default: OPENAI_API_KEY, or MISTRAL_API_KEY for mistral/; local servers need none].",
        rich_help_panel=AGENT,
    ),
]
ToolFormat = Annotated[
    str | None,
    typer.Option(
        "--tool-format",
        metavar="native|mistral|xml|hermes|auto",
        help="How the model emits tool calls \\[default: native].",
        rich_help_panel=AGENT,
    ),
]
Temperature = Annotated[
    float | None,
    typer.Option("--temperature", help="Sampling temperature \\[default: 0].", rich_help_panel=AGENT),
]
TopP = Annotated[float | None, typer.Option("--top-p", help="Nucleus sampling.", rich_help_panel=AGENT)]
MaxTokens = Annotated[
    int | None, typer.Option("--max-tokens", help="Cap on tokens per completion.", rich_help_panel=AGENT)
]
Seed = Annotated[
    int | None,
    typer.Option("--seed", help="Sampling seed, for servers that honour it.", rich_help_panel=AGENT),
]
MaxRetries = Annotated[
    int | None,
    typer.Option(
        "--max-retries",
        help="Retries on 429/5xx/timeouts/resets, backoff honouring Retry-After \\[default: 5].",
        rich_help_panel=AGENT,
    ),
]
MaxIterations = Annotated[
    int | None,
    typer.Option("--max-iterations", help="Model calls per run \\[default: 50].", rich_help_panel=AGENT),
]
MaxTokensTotal = Annotated[
    int | None,
    typer.Option(
        "--max-tokens-total", help="Stop after this many prompt+completion tokens.", rich_help_panel=AGENT
    ),
]
TimeLimit = Annotated[
    float | None, typer.Option("--time-limit", help="Wall-clock seconds per run.", rich_help_panel=AGENT)
]
CommandTimeout = Annotated[
    float | None,
    typer.Option(
        "--command-timeout",
        help="Per-command timeout of execute_bash, seconds \\[default: 120].",
        rich_help_panel=AGENT,
    ),
]
OutputCap = Annotated[
    int | None,
    typer.Option(
        "--output-cap",
        help="Characters of command output shown to the model \\[default: 10000].",
        rich_help_panel=AGENT,
    ),
]
PromptDir = Annotated[
    Path | None,
    typer.Option(
        "--prompt-dir",
        help="Directory with system.j2 / task.j2 overriding the packaged prompts.",
        rich_help_panel=AGENT,
    ),
]
Retrieve = Annotated[
    int | None,
    typer.Option(
        "--retrieve",
        metavar="K",
        help="Show the K files ranked most relevant to the issue, as signatures, in the first prompt.",
        rich_help_panel=AGENT,
    ),
]
Sandbox = Annotated[
    str | None,
    typer.Option(
        "--sandbox",
        metavar="auto|bwrap|docker|none",
        help="Where commands run: bwrap (bubblewrap sandbox), docker, "
        "none (a local shell); auto = bwrap if it works \\[default: auto].",
        rich_help_panel=AGENT,
    ),
]


def agent_overrides(**kw: Any) -> dict[str, Any]:
    """The agent options that were given on the command line (None = not given)."""
    return {k: v for k, v in kw.items() if v is not None}


def settings_overrides(params: dict[str, Any]) -> dict[str, Any]:
    """The RunSettings fields among a command's parameters (pass `locals()` first thing), given ones only.

    Only None means "not given": an explicit False (`--no-network`) must reach load_settings, or a true from
    DEVLOOP_* or devloop.toml would win over the command line. So every boolean setting is declared
    `bool | None = None` with a `--X/--no-X` pair, never `bool = False`."""
    from devloop.config import RunSettings

    return {k: v for k, v in params.items() if k in RunSettings.model_fields and v is not None}


SANDBOX = "Sandbox and policy"
AllowNetwork = Annotated[
    bool | None,
    typer.Option(
        "--allow-network/--no-network",
        help="Let sandboxed commands reach the network \\[default: no network].",
        rich_help_panel=SANDBOX,
        show_default=False,
        metavar="",
    ),
]  # metavar "": a flag takes no value
Env = Annotated[
    list[str] | None,
    typer.Option(
        "--env",
        metavar="KEY=VAL",
        help="Set a variable inside the sandbox (repeatable).",
        rich_help_panel=SANDBOX,
    ),
]
PassEnv = Annotated[
    list[str] | None,
    typer.Option(
        "--pass-env",
        metavar="NAME",
        help="Pass a host variable into the sandbox (repeatable).",
        rich_help_panel=SANDBOX,
    ),
]
MemoryLimit = Annotated[
    str | None,
    typer.Option(
        "--memory-limit",
        help="Address-space limit per sandboxed command, e.g. 4G \\[default: 4G].",
        rich_help_panel=SANDBOX,
    ),
]
DiskLimit = Annotated[
    str | None,
    typer.Option(
        "--disk-limit",
        help="How much the sandbox's files (workspace, scratch) may grow over a run, e.g. 10G, or "
        "none; past it the command is stopped and the model told to delete files \\[default: 10G].",
        rich_help_panel=SANDBOX,
    ),
]
Policy = Annotated[
    list[Path] | None,
    typer.Option(
        "--policy",
        metavar="FILE",
        help="Extra command-policy file (TOML), checked first (repeatable).",
        rich_help_panel=SANDBOX,
    ),
]

FEEDBACK = "Test feedback"
Hook = Annotated[
    str | None,
    typer.Option(
        "--hook",
        metavar="pytest|jest|CMD",
        help="After each step that changed files, run the relevant tests and "
        "put a failure summary into the next request.",
        rich_help_panel=FEEDBACK,
    ),
]
TimeoutTest = Annotated[
    float | None,
    typer.Option(
        "--timeout-test",
        help="Seconds per test run; then it is killed with all it started \\[default: 60].",
        rich_help_panel=FEEDBACK,
    ),
]
HookScope = Annotated[
    str | None,
    typer.Option(
        "--hook-scope",
        metavar="related|all",
        help="Tests to run: related to the change, or the whole suite \\[default: related].",
        rich_help_panel=FEEDBACK,
    ),
]
SummaryTokens = Annotated[
    int | None,
    typer.Option(
        "--summary-tokens",
        help="Token budget of the failure summary \\[default: 512].",
        rich_help_panel=FEEDBACK,
    ),
]
RollbackThreshold = Annotated[
    int | None,
    typer.Option(
        "--rollback-threshold",
        help="File-changing steps without test progress before the best checkpoint is "
        "restored \\[default: 3].",
        rich_help_panel=FEEDBACK,
    ),
]
MaxRetry = Annotated[
    int | None,
    typer.Option(
        "--max-retry", help="Bound on rollbacks and re-attempts \\[default: 20].", rich_help_panel=FEEDBACK
    ),
]
Queues = Annotated[
    str | None,
    typer.Option(
        "--queues",
        metavar="fast:3,deep:10,rescue:7",
        help="Step budgets of the Fast / Deep / Rescue queues (needs --hook).",
        rich_help_panel=FEEDBACK,
    ),
]
Rules = Annotated[
    Path | None,
    typer.Option(
        "--rules",
        metavar="FILE",
        help="Extra rescue rules (TOML, or YAML with PyYAML).",
        rich_help_panel=FEEDBACK,
    ),
]
Minimize = Annotated[
    bool | None,
    typer.Option(
        "--minimize/--no-minimize",
        help="After a green run, shrink the diff by delta debugging, keeping the same "
        "tests green \\[default: no minimize].",
        rich_help_panel=FEEDBACK,
        show_default=False,
        metavar="",
    ),
]
StreamDiff = Annotated[
    str | None,
    typer.Option(
        "--stream-diff",
        metavar="-|FILE",
        help="Show the cumulative diff as it changes: '-' for the terminal, or a "
        "file rewritten on each change.",
        rich_help_panel=FEEDBACK,
    ),
]
MetricsPort = Annotated[
    int | None,
    typer.Option(
        "--metrics-port",
        help="Serve Prometheus metrics on this port (0 = any free port).",
        rich_help_panel=FEEDBACK,
    ),
]

# Every agent option, in the order --help lists them: the RunSettings fields a command that runs the agent
# takes from its command line. with_agent_options adds them all to a command.
AGENT_OPTIONS: dict[str, Any] = {
    "model": Model, "base_url": BaseUrl, "api_key_env": ApiKeyEnv, "tool_format": ToolFormat,
    "temperature": Temperature, "top_p": TopP, "max_tokens": MaxTokens, "seed": Seed,
    "max_retries": MaxRetries, "max_iterations": MaxIterations, "max_tokens_total": MaxTokensTotal,
    "time_limit": TimeLimit, "command_timeout": CommandTimeout, "output_cap": OutputCap,
    "prompt_dir": PromptDir, "retrieve": Retrieve, "sandbox": Sandbox, "allow_network": AllowNetwork, "env": Env,
    "pass_env": PassEnv, "memory_limit": MemoryLimit, "disk_limit": DiskLimit, "policy": Policy,
    "hook": Hook, "timeout_test": TimeoutTest, "hook_scope": HookScope, "summary_tokens": SummaryTokens,
    "rollback_threshold": RollbackThreshold, "max_retry": MaxRetry, "queues": Queues, "rules": Rules,
    "minimize": Minimize, "stream_diff": StreamDiff, "metrics_port": MetricsPort,
}  # fmt: skip


def with_agent_options(func: Callable[..., Any], *, without: tuple[str, ...] = ()) -> Callable[..., Any]:
    """`func` as a typer command that also takes every AGENT_OPTIONS flag (None = not given), passed to
    it in `**kwargs`: a command declares only its own options and a `**agent` catch-all.

    typer reads a command's parameters from its signature and type hints, so the wrapper carries both:
    `func`'s own parameters (their hints resolved in `func`'s module), then the agent options.
    `without`: agent options the command does not take."""
    hints = typing.get_type_hints(func, include_extras=True)
    own = [
        p.replace(annotation=hints.get(p.name, p.annotation))
        for p in inspect.signature(func).parameters.values()
        if p.kind is not inspect.Parameter.VAR_KEYWORD
    ]
    taken = {p.name for p in own}
    agent = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=kind)
        for name, kind in AGENT_OPTIONS.items()
        if name not in taken and name not in without
    ]

    @functools.wraps(func)
    def command(**kwargs: Any) -> Any:
        return func(**kwargs)

    params = [*own, *agent]
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    return command
