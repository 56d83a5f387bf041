"""`devloop run`: resolve an issue in a repository."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.syntax import Syntax

from devloop.cli import options as o
from devloop.cli.errors import fail
from devloop.cli.progress import StepPrinter
from devloop.cli.safe_text import shown
from devloop.config import ConfigError, load_settings
from devloop.session import RunResult, run_agent


def register(app: typer.Typer) -> None:
    app.command("run", no_args_is_help=True)(run)


def run(
    repo: Annotated[
        Path, typer.Option("--repo", help="The repository to work on. Never modified unless --apply.")
    ],
    issue: Annotated[str | None, typer.Option("--issue", help="The issue text.")] = None,
    issue_file: Annotated[
        Path | None, typer.Option("--issue-file", help="A file holding the issue text.")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            help="Run directory for patch.diff, trajectory.jsonl, result.json \\[default: runs/<time>].",
        ),
    ] = None,
    apply: Annotated[
        bool, typer.Option("--apply", help="Apply the final patch to --repo's working tree.", metavar="")
    ] = False,  # metavar "": a flag takes no value
    keep_workspace: Annotated[
        bool | None,
        typer.Option(
            "--keep-workspace/--no-keep-workspace",
            help="Keep the isolated workspace \\[default: no].",
            show_default=False,
            metavar="",
        ),
    ] = None,  # None = not given: DEVLOOP_KEEP_WORKSPACE / devloop.toml decide
    model: o.Model = None,
    base_url: o.BaseUrl = None,
    api_key_env: o.ApiKeyEnv = None,
    tool_format: o.ToolFormat = None,
    temperature: o.Temperature = None,
    top_p: o.TopP = None,
    max_tokens: o.MaxTokens = None,
    seed: o.Seed = None,
    max_retries: o.MaxRetries = None,
    max_iterations: o.MaxIterations = None,
    max_tokens_total: o.MaxTokensTotal = None,
    time_limit: o.TimeLimit = None,
    command_timeout: o.CommandTimeout = None,
    output_cap: o.OutputCap = None,
    prompt_dir: o.PromptDir = None,
    sandbox: o.Sandbox = None,
    allow_network: o.AllowNetwork = None,
    env: o.Env = None,
    pass_env: o.PassEnv = None,
    memory_limit: o.MemoryLimit = None,
    disk_limit: o.DiskLimit = None,
    policy: o.Policy = None,
    hook: o.Hook = None,
    timeout_test: o.TimeoutTest = None,
    hook_scope: o.HookScope = None,
    summary_tokens: o.SummaryTokens = None,
    rollback_threshold: o.RollbackThreshold = None,
    max_retry: o.MaxRetry = None,
    queues: o.Queues = None,
    rules: o.Rules = None,
    minimize: o.Minimize = None,
    stream_diff: o.StreamDiff = None,
    metrics_port: o.MetricsPort = None,
) -> None:
    """Resolve an issue in a repository: the agent works in an isolated copy and writes
    DIR/patch.diff, DIR/trajectory.jsonl and DIR/result.json.

    Exit code 0 when the agent finished, 1 when it stopped otherwise (a limit, a model error...), 2 for bad usage.
    """
    overrides = o.settings_overrides(locals())
    if (issue is None) == (issue_file is None):
        fail("give exactly one of --issue TEXT or --issue-file FILE")
    if issue_file is not None:
        try:
            issue = issue_file.read_text(encoding="utf-8")
        except OSError as e:
            fail(f"cannot read --issue-file {issue_file}: {e.strerror}")
    if not repo.is_dir():
        fail(f"--repo {repo}: not a directory")
    try:
        settings = load_settings(**overrides)
    except ConfigError as e:
        fail(str(e))
    if not settings.model:
        fail("--model is required (or set DEVLOOP_MODEL / model in devloop.toml)")
    output = output or default_output("run")
    if held := [name for name in ("trajectory.jsonl", "result.json") if (output / name).exists()]:
        # The session appends to trajectory.jsonl: a second run there would interleave with the first.
        fail(f"--output {output}: already holds a run ({', '.join(held)}); give a new directory")
    console = Console(highlight=False, soft_wrap=True)  # a line is never broken for width
    console.print(
        f"[bold]devloop run[/] {escape(str(repo))} · model {escape(settings.model)} · format "
        f"{settings.tool_format} · output {escape(str(output))}"
    )
    if result_extra := _feedback_line(settings):
        console.print(result_extra)
    try:
        result = run_agent(
            repo,
            issue or "",
            settings,
            output,
            on_step=StepPrinter(console),
            on_warning=lambda w: console.print(f"[yellow]{escape(w)}[/]"),
        )
    except ValueError as e:
        fail(str(e))
    print_result(console, result)
    if apply and result.patch.strip():
        apply_patch(console, repo, result.patch)
    raise typer.Exit(0 if result.exit_status == "finished" else 1)


def _feedback_line(settings) -> str:
    parts = [f"hook {settings.hook}"] if settings.hook else []
    parts += [f"queues {settings.queues}"] if settings.queues else []
    parts += ["minimize"] if settings.minimize else []
    return ("[dim]feedback: " + " · ".join(parts) + "[/]") if parts else ""


def default_output(kind: str) -> Path:
    import time

    return Path("runs") / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"


def print_result(console: Console, result: RunResult, show_patch: bool = True) -> None:
    if show_patch and result.patch.strip():
        console.print(Syntax(shown(result.patch), "diff", theme="ansi_dark", background_color="default"))
    colour = "green" if result.exit_status == "finished" else "yellow"
    lines = result.patch.count("\n")
    console.print(
        f"[{colour}]{result.exit_status}[/] after {result.steps} steps · "
        f"{result.prompt_tokens:,}+{result.completion_tokens:,} tokens · {result.duration_s:.1f} s · "
        f"patch {lines} lines -> {result.patch_path}"
        + (
            f"\n  reason: {escape(shown(result.reason))}"
            if result.exit_status != "finished" and result.reason
            else ""
        )
    )


def apply_patch(console: Console, repo: Path, patch: str) -> None:
    """Check, then apply `patch` (paths relative to `repo`) to the working tree of `repo`.

    git apply run inside a repository takes patch paths relative to that repository's top level and
    silently skips those outside the current directory, so for a `repo` that is a subdirectory of another
    repository it would report success and change nothing. GIT_CEILING_DIRECTORIES stops git's search at
    `repo` itself: `repo`'s own .git is still used when it has one, else git applies to plain files
    relative to `repo`, as patch(1) would. isolated_git_env(): no user or system git config takes part."""
    from devloop.workspace import isolated_git_env

    env = isolated_git_env() | {"GIT_CEILING_DIRECTORIES": str(repo.resolve().parent)}

    def git_apply(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            ["git", "apply", *args, "-"],
            cwd=repo,
            input=patch.encode(),
            env=env,
            capture_output=True,
            check=False,
        )

    for args in (("--check",), ()):
        proc = git_apply(*args)
        if proc.returncode != 0:
            why = proc.stderr.decode(errors="replace").strip().splitlines()
            fail(
                f"--apply: the patch does not apply to {repo}: {why[0] if why else 'git apply failed'}",
                code=1,
            )
    console.print(f"[green]applied[/] the patch to {escape(str(repo))}")
