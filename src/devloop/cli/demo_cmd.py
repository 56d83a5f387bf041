"""`devloop demo`: the agent fixing a bug in a bundled repository, driven by a scripted model over HTTP."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from devloop.cli import options as o
from devloop.cli.errors import fail
from devloop.cli.progress import StepPrinter
from devloop.cli.run_cmd import default_output, print_result
from devloop.config import ConfigError, load_settings
from devloop.models.scripted_server import ScriptedServer, load_script
from devloop.session import run_agent


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    output: Annotated[Path | None, typer.Option("--output", help="Run directory [default: runs/demo-<time>].")] = None,
    tool_format: o.ToolFormat = None,
) -> None:
    """Watch the agent fix a bug in a bundled example repository.

    A scripted model is served by a local OpenAI-compatible HTTP server, so the run goes through exactly the
    code path a real model server would (HTTP client, tool-call parsing, tools, shell, workspace, patch).
    With --tool-format the script is re-encoded in that text format (mistral, xml, hermes).
    Afterwards the patch is applied to a fresh copy of the repository and its tests are run.
    """
    console = Console(highlight=False)
    data = resources.files("devloop") / "demo"
    try:
        settings = load_settings(model="openai/devstral-demo", tool_format=tool_format, base_url="http://unset")
    except ConfigError as e:
        fail(str(e))
    script = _encode(load_script(Path(str(data / "script.jsonl"))), settings.tool_format)
    issue = (data / "issue.md").read_text(encoding="utf-8")
    output = output or default_output("demo")
    with tempfile.TemporaryDirectory(prefix="devloop-demo-") as tmp:
        repo = Path(tmp) / "statkit"
        shutil.copytree(str(data / "repo"), repo)
        _git_init(repo)
        console.print(f"[bold]devloop demo[/] · repository {repo} · scripted model over HTTP · "
                      f"format {settings.tool_format}\n[bold]issue:[/]\n{issue}")
        with ScriptedServer(script, model_name="devstral-demo") as server:
            settings = settings.model_copy(update={"base_url": server.url})
            result = run_agent(repo, issue, settings, output, on_step=StepPrinter(console))
        print_result(console, result)
        passed = _verify(console, repo, result.patch)
    raise typer.Exit(0 if result.exit_status == "finished" and passed else 1)


def _encode(script: list[dict], tool_format: str) -> list[dict]:
    """The native script re-encoded as text in a text tool-call format (native/auto: unchanged)."""
    if tool_format in ("native", "auto"):
        return script
    import json

    from devloop.formats import render_call
    from devloop.types import ToolCall

    out = []
    for msg in script:
        calls = [ToolCall(tc["function"]["name"], json.loads(tc["function"]["arguments"]), tc["id"])
                 for tc in msg.get("tool_calls", [])]
        text = (msg.get("content") or "") + "\n" + "\n".join(str(render_call(tool_format, c)) for c in calls)
        out.append({"role": "assistant", "content": text.strip()})
    return out


def _git_init(repo: Path) -> None:
    env = {"GIT_AUTHOR_NAME": "demo", "GIT_AUTHOR_EMAIL": "demo@localhost", "GIT_COMMITTER_NAME": "demo",
           "GIT_COMMITTER_EMAIL": "demo@localhost"}
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "statkit 0.1"]):
        subprocess.run(["git", *args], cwd=repo, env={**os.environ, **env}, check=True, capture_output=True)


def _verify(console: Console, repo: Path, patch: str) -> bool:
    """Apply the patch to the untouched repository and run its tests, as a user would."""
    if not patch.strip():
        console.print("[red]no patch to verify[/]")
        return False
    subprocess.run(["git", "apply", "-"], cwd=repo, input=patch.encode(), check=True)
    proc = subprocess.run([sys.executable, "-m", "unittest", "-q"], cwd=repo, capture_output=True, text=True,
                          check=False)
    summary = [ln for ln in proc.stderr.splitlines() if ln.startswith(("Ran ", "OK", "FAILED"))]
    colour = "green" if proc.returncode == 0 else "red"
    console.print(f"[{colour}]tests after the patch:[/] {' · '.join(summary)}")
    return proc.returncode == 0
