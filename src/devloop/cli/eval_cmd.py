"""`devloop eval`: grade predictions or the agent on SWE-bench-compatible tasks, without Docker."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from devloop.cli import options as o
from devloop.cli.errors import fail
from devloop.config import ConfigError, load_settings

TASKS = "Tasks"
RUN = "Run"


def register(app: typer.Typer) -> None:
    app.command("eval", no_args_is_help=True)(eval_)


def eval_(
    tasks: Annotated[Path | None, typer.Option("--tasks", help="Task records: .json (list or dict by id) or .jsonl, "
                                               "in SWE-bench's fields (+ optional environment, repo_path).",
                                               rich_help_panel=TASKS)] = None,
    suite: Annotated[str | None, typer.Option("--suite", help="A built-in suite: 'builtin' (20+ small Python "
                                              "projects with real bugs).", rich_help_panel=TASKS)] = None,
    mirrors: Annotated[Path | None, typer.Option("--mirrors", help="DIR with DIR/<owner>__<name> git repositories "
                                                 "holding the base commits.", rich_help_panel=TASKS)] = None,
    instances: Annotated[str | None, typer.Option("--instances", help="Only these instance ids (comma-separated).",
                                                  rich_help_panel=TASKS)] = None,
    strict: Annotated[bool, typer.Option("--strict", help="A bad task record is fatal (default: skipped and "
                                         "counted).", rich_help_panel=TASKS)] = False,
    predictions: Annotated[str | None, typer.Option(
        "--predictions", help="gold | empty | FILE of SWE-bench predictions (instance_id, model_name_or_path, "
        "model_patch; .json or .jsonl). Mutually exclusive with --model.", rich_help_panel=RUN)] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Instances graded in parallel (processes).",
                                         rich_help_panel=RUN)] = 1,
    run_id: Annotated[str | None, typer.Option("--run-id", help="Run id; the same id resumes a run, skipping "
                                               "finished instances [default: date-time].", rich_help_panel=RUN)] = None,
    output: Annotated[Path, typer.Option("--output", help="Writes OUTPUT/<run-id>/report.json and "
                                         "instances/<id>/verdict.json.", rich_help_panel=RUN)] = Path("runs"),
    test_timeout: Annotated[float, typer.Option("--test-timeout", help="Seconds for one instance's tests.",
                                                rich_help_panel=RUN)] = 1800.0,
    cache_dir: Annotated[Path | None, typer.Option("--cache-dir", help="Environment cache [default: the user "
                                                   "cache dir].", rich_help_panel=RUN)] = None,
    keep_workdirs: Annotated[bool, typer.Option("--keep-workdirs", help="Keep each instance's extracted tree.",
                                                rich_help_panel=RUN)] = False,
    model: Annotated[str | None, typer.Option(
        "--model", help="Run the agent: PROVIDER/NAME as for `devloop run`, or 'oracle' (actions derived from "
        "each gold patch, through the real agent).", rich_help_panel=o.AGENT)] = None,
    base_url: o.BaseUrl = None, api_key_env: o.ApiKeyEnv = None,
    tool_format: o.ToolFormat = None, temperature: o.Temperature = None, top_p: o.TopP = None,
    max_tokens: o.MaxTokens = None, seed: o.Seed = None, max_retries: o.MaxRetries = None,
    max_iterations: o.MaxIterations = None, max_tokens_total: o.MaxTokensTotal = None,
    time_limit: o.TimeLimit = None, command_timeout: o.CommandTimeout = None, output_cap: o.OutputCap = None,
    prompt_dir: o.PromptDir = None, sandbox: o.Sandbox = None,
) -> None:
    """Grade patches on SWE-bench-compatible tasks with the official rules, without Docker.

    Either grade --predictions, or run the agent (--model) on each task and grade its patch. Writes
    OUTPUT/<run-id>/report.json and OUTPUT/<run-id>/instances/<instance_id>/verdict.json (+ test log, and the
    agent's run directory for --model).
    """
    from devloop.harness import default_cache_dir, run_eval
    from devloop.tasks import TaskLoadError, load_predictions, load_suite, load_tasks

    if (tasks is None) == (suite is None):
        fail("give exactly one of --tasks FILE or --suite builtin")
    if (predictions is None) == (model is None):
        fail("give exactly one of --predictions gold|empty|FILE or --model PROVIDER/NAME")
    console = Console(highlight=False)
    try:
        if tasks is not None:
            loaded = load_tasks(tasks, strict=strict)
            for problem in loaded.skipped:
                console.print(f"[yellow]skipped[/] {problem}")
            task_list = loaded.tasks
        else:
            task_list = load_suite(suite or "", (cache_dir or default_cache_dir().parent) / "suites")
    except TaskLoadError as e:
        fail(str(e))
    if instances:
        wanted = [i.strip() for i in instances.split(",") if i.strip()]
        unknown = sorted(set(wanted) - {t.instance_id for t in task_list})
        if unknown:
            fail(f"--instances: no such instance: {', '.join(unknown[:5])}")
        task_list = [t for t in task_list if t.instance_id in set(wanted)]
    if not task_list:
        fail("no tasks to evaluate")
    agent = preds = None
    if predictions is not None:
        try:
            preds = load_predictions(predictions, task_list)
        except (TaskLoadError, ValueError) as e:
            fail(str(e))
    else:
        agent = _solver(model, o.agent_overrides(
            base_url=base_url, api_key_env=api_key_env, tool_format=tool_format, temperature=temperature,
            top_p=top_p, max_tokens=max_tokens, seed=seed, max_retries=max_retries, max_iterations=max_iterations,
            max_tokens_total=max_tokens_total, time_limit=time_limit, command_timeout=command_timeout,
            output_cap=output_cap, prompt_dir=prompt_dir, sandbox=sandbox))
    run_eval(task_list, predictions=preds, agent=agent, workers=workers, run_id=run_id, output=output,
             cache_dir=cache_dir, mirrors=mirrors, test_timeout=test_timeout, keep_workdirs=keep_workdirs,
             model_name=model if model else None, console=console)


def _solver(model: str | None, overrides: dict):  # -> AgentSolver
    from devloop.models import get_model
    from devloop.solver import ORACLE, AgentSolver

    try:
        settings = load_settings(model=model, **overrides)
    except ConfigError as e:
        fail(str(e))
    if settings.model != ORACLE:
        try:  # fail fast on a bad model spec, before any environment is built
            get_model(settings.model, base_url=settings.base_url, api_key_env=settings.api_key_env).close()
        except ValueError as e:
            fail(str(e))
    return AgentSolver(settings)
