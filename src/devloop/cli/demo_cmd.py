"""`devloop demo`: the agent fixing a bug in a bundled repository, driven by a scripted model over HTTP."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from devloop.cli import options as o
from devloop.cli.errors import fail
from devloop.cli.progress import StepPrinter
from devloop.cli.run_cmd import default_output, print_result
from devloop.config import ConfigError, load_settings
from devloop.demo import demo_issue, demo_script, make_demo_repo
from devloop.models.scripted_server import ScriptedServer
from devloop.session import run_agent


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    output: Annotated[
        Path | None, typer.Option("--output", help="Run directory \\[default: runs/demo-<time>].")
    ] = None,
    tool_format: o.ToolFormat = None,
) -> None:
    """Watch the agent fix a bug in a bundled example repository.

    A scripted model is served by a local OpenAI-compatible HTTP server, so the run goes through exactly the
    code path a real model server would (HTTP client, tool-call parsing, tools, shell, workspace, patch).
    With --tool-format the script is re-encoded in that text format (mistral, xml, hermes).
    Afterwards the patch is applied to the untouched repository and its tests are run.
    """
    console = Console(highlight=False, soft_wrap=True)  # a line is never broken for width
    try:
        settings = load_settings(
            model="openai/devstral-demo", tool_format=tool_format, base_url="http://unset"
        )
    except ConfigError as e:
        fail(str(e))
    issue = demo_issue()
    output = output or default_output("demo")
    with tempfile.TemporaryDirectory(prefix="devloop-demo-") as tmp:
        repo = make_demo_repo(Path(tmp) / "statkit")
        console.print(
            f"[bold]devloop demo[/] · repository {escape(str(repo))} · scripted model over HTTP · "
            f"format {settings.tool_format}\n[bold]issue:[/]\n{issue}"
        )
        with ScriptedServer(demo_script(settings.tool_format), model_name="devstral-demo") as server:
            settings = settings.model_copy(update={"base_url": server.url})
            result = run_agent(repo, issue, settings, output, on_step=StepPrinter(console))
        print_result(console, result)
        passed = _verify(console, repo, result.patch)
    raise typer.Exit(0 if result.exit_status == "finished" and passed else 1)


def _verify(console: Console, repo: Path, patch: str) -> bool:
    """Apply the patch to the untouched repository and run its tests, as a user would."""
    if not patch.strip():
        console.print("[red]no patch to verify[/]")
        return False
    subprocess.run(["git", "apply", "-"], cwd=repo, input=patch.encode(), check=True)
    proc = subprocess.run(
        [sys.executable, "-m", "unittest", "-q"], cwd=repo, capture_output=True, text=True, check=False
    )
    summary = [ln for ln in proc.stderr.splitlines() if ln.startswith(("Ran ", "OK", "FAILED"))]
    colour = "green" if proc.returncode == 0 else "red"
    console.print(f"[{colour}]tests after the patch:[/] {' · '.join(summary)}")
    return proc.returncode == 0
