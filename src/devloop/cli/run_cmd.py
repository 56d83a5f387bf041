"""`devloop run`: resolve an issue in a repository."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from devloop.cli import options as o
from devloop.cli.errors import fail
from devloop.cli.interactive import terminal_asker
from devloop.cli.interrupts import latched_interrupt
from devloop.cli.progress import StepPrinter
from devloop.cli.safe_text import shown
from devloop.config import ConfigError, load_settings
from devloop.repoenv import EnvChoiceError, choose_environment, prepare
from devloop.session import RunResult, run_agent


def register(app: typer.Typer) -> None:
    app.command("run", no_args_is_help=True)(o.with_agent_options(run))


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
            help="Run directory for patch.diff, trajectory.jsonl, result.json \\[default: "
            "./runs/run-<time>; inside --repo, <user data dir>/devloop/runs/run-<time>].",
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
    python: Annotated[
        Path | None,
        typer.Option(
            "--python",
            help="The interpreter for the agent's commands and the test hook \\[default: the repo's, detected].",
            rich_help_panel=o.SANDBOX,
        ),
    ] = None,
    venv: Annotated[
        Path | None,
        typer.Option(
            "--venv",
            help="The virtual environment for the agent's commands and the test hook \\[default: detected].",
            rich_help_panel=o.SANDBOX,
        ),
    ] = None,
    condense: Annotated[
        bool | None,
        typer.Option(
            "--condense/--no-condense",
            help="Compact the conversation when it nears the model's context window (the server's "
            "max_model_len, or --context-window) \\[default: no].",
            show_default=False,
            metavar="",
        ),
    ] = None,
    context_window: Annotated[
        int | None,
        typer.Option(
            "--context-window",
            help="The model's context window in tokens, for --condense \\[default: from the server].",
        ),
    ] = None,
    **agent: Any,  # every agent option (cli/options.py AGENT_OPTIONS)
) -> None:
    """Resolve an issue in a repository: the agent works in an isolated copy and writes
    DIR/patch.diff, DIR/trajectory.jsonl and DIR/result.json.

    Exit code 0 when the agent finished, 1 when it stopped otherwise (a limit, a model error...), 2 for bad usage.
    """
    overrides = o.settings_overrides({**locals(), **agent})
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
    output = output or default_output("run", repo)  # outside the repository (cli/run_dirs.py)
    if held := [name for name in ("trajectory.jsonl", "result.json") if (output / name).exists()]:
        # The session appends to trajectory.jsonl: a second run there would interleave with the first.
        fail(f"--output {output}: already holds a run ({', '.join(held)}); give a new directory")
    try:
        environment = choose_environment(
            repo, python=settings.python, venv=settings.venv, sandbox=settings.sandbox
        )
    except EnvChoiceError as e:
        fail(str(e))
    console = Console(highlight=False, soft_wrap=True)  # a line is never broken for width
    console.print(
        f"[bold]devloop run[/] {escape(str(repo))} · model {escape(settings.model)} · format "
        f"{settings.tool_format} · output {escape(str(output))} · {escape(environment.line())}"
    )
    if environment.pending is not None:  # a cached env to build (once per lock): named first, then built
        environment = prepare(environment, repo, on_line=lambda w: console.print(f"[yellow]{escape(w)}[/]"))
        console.print(f"[dim]{escape(environment.line())}[/]")
    if result_extra := _feedback_line(settings):
        console.print(result_extra)
    cancel = threading.Event()  # a Ctrl-C Python dropped (it landed in a fork) still ends the run
    try:
        with latched_interrupt(cancel):
            result = run_agent(
                repo,
                issue or "",
                settings,
                output,
                on_step=StepPrinter(console),
                on_warning=lambda w: console.print(f"[yellow]{escape(w)}[/]"),
                ask=terminal_asker(console),  # stdin a terminal: "ask" rules ask (y / n / always)
                environment=environment,
                cancel=cancel,
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


def default_output(kind: str, repo: Path | None = None) -> Path:
    from devloop.cli.run_dirs import default_output as fresh

    return fresh(kind, repo)


def print_result(console: Console, result: RunResult, show_patch: bool = True) -> None:
    if show_patch and result.patch.strip():
        from rich.syntax import Syntax  # pygments' lexers: only when there is a patch to show

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
    if result.extra.get("test_status"):  # the test hook's last verdict, or why it could not give one
        extra = result.extra
        why = f": {extra['hook_error']}" if extra.get("hook_error") else ""
        counts = (
            f" ({extra.get('tests_passed')} passed, {extra.get('tests_failed')} failed)" if not why else ""
        )
        colour = {"green": "green", "hook_error": "red"}.get(extra["test_status"], "yellow")
        console.print(f"  tests: [{colour}]{extra['test_status']}[/]{escape(shown(why + counts))}")


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
