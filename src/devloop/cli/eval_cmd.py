"""`devloop eval`: grade predictions or the agent on SWE-bench-compatible tasks, without Docker."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from devloop.cli import options as o
from devloop.cli import task_options as topt
from devloop.cli.errors import fail
from devloop.config import ConfigError, load_settings

TASKS, RUN = topt.TASKS, topt.RUN
PROTOCOL = "Protocol"


def register(app: typer.Typer) -> None:
    # The agent options (declared once, in options.py) but the live views a pool of agents cannot share.
    app.command("eval", no_args_is_help=True)(
        o.with_agent_options(eval_, without=("stream_diff", "metrics_port"))
    )


def eval_(
    tasks: topt.Tasks = None,
    suite: topt.Suite = None,
    mirrors: topt.Mirrors = None,
    instances: topt.Instances = None,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="A bad task record is fatal (default: skipped and counted).",
            rich_help_panel=TASKS,
        ),
    ] = False,
    predictions: Annotated[
        str | None,
        typer.Option(
            "--predictions",
            help="gold | empty | FILE of SWE-bench predictions (instance_id, model_name_or_path, "
            "model_patch; .json or .jsonl). Mutually exclusive with --model.",
            rich_help_panel=RUN,
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers", min=1, help="Instances graded in parallel (processes).", rich_help_panel=RUN
        ),
    ] = 1,
    run_id: Annotated[
        str | None,
        typer.Option(
            "--run-id",
            help="Run id; the same id resumes a run, skipping finished instances \\[default: date-time].",
            rich_help_panel=RUN,
        ),
    ] = None,
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            help="Writes OUTPUT/<run-id>/report.json and instances/<id>/verdict.json.",
            rich_help_panel=RUN,
        ),
    ] = Path("runs"),
    test_timeout: topt.TestTimeout = 1800.0,
    cache_dir: topt.CacheDir = None,
    no_build_cache: topt.NoBuildCache = False,
    no_prefetch: topt.NoPrefetch = False,
    keep_workdirs: Annotated[
        bool,
        typer.Option("--keep-workdirs", help="Keep each instance's extracted tree.", rich_help_panel=RUN),
    ] = False,
    environment_overrides: Annotated[
        Path | None,
        typer.Option(
            "--environment-overrides",
            metavar="FILE",
            help="JSON or TOML keyed by instance id or repo@version: environment fields to set "
            "over the record's or the official table's environment.",
            rich_help_panel=RUN,
        ),
    ] = None,
    validated_only: Annotated[
        bool,
        typer.Option(
            "--validated-only",
            help="Only the SWE-bench Lite instances `devloop validate` validated on this project's machines.",
            rich_help_panel=TASKS,
        ),
    ] = False,
    grading: topt.Grading = "swebench4",
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Run the agent: PROVIDER/NAME as for `devloop run`, or 'oracle' (actions derived from "
            "each gold patch, through the real agent).",
            rich_help_panel=o.AGENT,
        ),
    ] = None,
    protocol: Annotated[
        str,
        typer.Option(
            "--protocol",
            metavar="single|iterative|samples|best-of",
            help="single: one attempt per task. iterative: up to --attempts attempts at --temperatures, re-running "
            "only tasks whose last attempt did not finish or left an empty patch (the Devstral protocol). samples: "
            "--samples attempts per task for pass@k. best-of: --samples attempts, one chosen by the visible tests "
            "and a vote.",
            rich_help_panel=PROTOCOL,
        ),
    ] = "single",
    attempts: Annotated[
        int,
        typer.Option(
            "--attempts", min=1, help="iterative: most attempts per task.", rich_help_panel=PROTOCOL
        ),
    ] = 3,
    temperatures: Annotated[
        str,
        typer.Option(
            "--temperatures",
            help="iterative: one temperature per attempt, comma-separated.",
            rich_help_panel=PROTOCOL,
        ),
    ] = "0,0.1,0.1",
    samples: Annotated[
        int,
        typer.Option(
            "--samples",
            min=1,
            help="samples / best-of: attempts per task, at --temperature.",
            rich_help_panel=PROTOCOL,
        ),
    ] = 1,
    executor: topt.Executor = "local",
    ray_address: topt.RayAddress = None,
    force_resume: Annotated[
        bool,
        typer.Option(
            "--force-resume",
            help="Resume --run-id even though it was made with other agent settings (mixes them in one run).",
            rich_help_panel=RUN,
        ),
    ] = False,
    **agent: Any,
) -> None:
    """Grade patches on SWE-bench-compatible tasks with the official rules, without Docker.

    Either grade --predictions, or run the agent (--model) on each task and grade its patch. Writes
    OUTPUT/<run-id>/report.json and OUTPUT/<run-id>/instances/<instance_id>/verdict.json, with each attempt's
    agent run and grading logs in instances/<instance_id>/attempts/<k>/.
    """
    overrides = o.settings_overrides({**locals(), **agent})
    overrides.pop("model", None)  # given to _solver on its own
    from devloop.cli.eval_support import protocol_config, run_protocol_cli
    from devloop.eval.store import default_run_id
    from devloop.tasks import TaskLoadError, load_predictions

    if (tasks is None) == (suite is None):
        fail("give exactly one of --tasks FILE or --suite builtin")
    if (predictions is None) == (model is None):
        fail("give exactly one of --predictions gold|empty|FILE or --model PROVIDER/NAME")
    config = protocol_config(
        protocol,
        attempts=attempts,
        temperatures=temperatures,
        samples=samples,
        temperature=agent.get("temperature"),
        executor=executor,
        ray_address=ray_address,
        grading_predictions=predictions is not None,
    )
    from devloop.swebench.grading import RULES

    if grading not in RULES:
        fail(f"--grading: unknown rules {grading!r}; expected one of {', '.join(RULES)}")
    console = Console(highlight=False, soft_wrap=True)  # a line is never broken for width
    task_list = load_task_list(tasks, suite, instances, strict=strict, cache_dir=cache_dir, console=console)
    if validated_only:
        task_list = keep_validated(task_list, console)
    print_environment_fill(task_list, console, environment_overrides, mirrors=mirrors, cache_dir=cache_dir)
    preds = settings = None
    if predictions is not None:
        try:
            preds = load_predictions(predictions, task_list)
        except (TaskLoadError, ValueError) as e:
            fail(str(e))
    else:
        settings = _solver(model, overrides).settings
    confinement = _grading_confinement(settings, overrides, console)
    run_id = run_id or default_run_id()
    result = run_protocol_cli(task_list, settings, config, predictions=preds, confinement=confinement,
        executor=executor, ray_address=ray_address, workers=workers, run_id=run_id, output=output,
        cache_dir=cache_dir, mirrors=mirrors, test_timeout=test_timeout, keep_workdirs=keep_workdirs,
        console=console, force_resume=force_resume, grading=grading, build_cache=not no_build_cache,
        prefetch=not no_prefetch)  # fmt: skip
    report = result.report
    if report.total and report.agent_error == report.total:
        fail(f"every instance failed in the agent (agent_error), none was answered by the model; see "
             f"{output / run_id / 'instances'}/<id>/verdict.json", code=1)  # fmt: skip


def keep_validated(task_list: list, console: Console) -> list:
    """The tasks in the shipped list of validated instances; fails with one line when none is."""
    from devloop.swebench.validation import validated_ids

    keep = validated_ids()
    kept = [t for t in task_list if t.instance_id in keep]
    if not kept:
        fail(
            f"--validated-only: none of the {len(task_list)} task(s) is in the shipped list of validated instances"
        )
    if len(kept) < len(task_list):
        console.print(f"[yellow]--validated-only:[/] {len(kept)} of {len(task_list)} task(s) kept")
    return kept


def print_environment_fill(
    task_list: list,
    console: Console,
    overrides: Path | None = None,
    *,
    mirrors: Path | None = None,
    cache_dir: Path | None = None,
) -> None:
    """Give records without an `environment` the official one (requirements files read from the mirrors
    and locked under the cache), patch in --environment-overrides, and say how many got one and why
    others did not (those grade env_error with the reason)."""
    from rich.markup import escape

    from devloop.eval.envs import default_cache_dir
    from devloop.swebench.records import OverridesError, fill_environments, load_overrides

    try:
        table = load_overrides(overrides) if overrides is not None else None
        locker = None
        if any(task.environment is None for task in task_list):  # the locking machinery only if used
            from devloop.swebench.locks import Locker

            locker = Locker(cache_dir or default_cache_dir())
        lines = fill_environments(
            task_list, table, origin=str(overrides), locker=locker, mirrors=mirrors
        ).lines()
    except OverridesError as exc:
        fail(f"--environment-overrides: {exc}")
    for number, line in enumerate(lines):
        console.print(f"[yellow]environments:[/] {escape(line)}" if number == 0 else escape(line))


def load_task_list(
    tasks: Path | None,
    suite: str | None,
    instances: str | None,
    *,
    strict: bool,
    cache_dir: Path | None,
    console: Console,
) -> list:  # -> list[Task]
    """The tasks of --tasks FILE or --suite NAME, narrowed to --instances; fails with one line."""
    from rich.markup import escape

    from devloop.eval.envs import default_cache_dir
    from devloop.tasks import TaskLoadError, load_suite, load_tasks

    if (tasks is None) == (suite is None):
        fail("give exactly one of --tasks FILE or --suite builtin")
    try:
        if tasks is not None:
            loaded = load_tasks(tasks, strict=strict)
            for problem in loaded.skipped:
                console.print(f"[yellow]skipped[/] {escape(problem)}")
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
    return task_list


def _grading_confinement(settings, overrides: dict, console: Console):  # -> tuple[str, Limits]
    """Grading's sandbox and limits: the agent's (--sandbox, --memory-limit, config files); fails with one line."""
    from devloop.eval.taskbox import grading_confinement

    try:
        settings = settings or load_settings(**overrides)
        name, limits, warning = grading_confinement(
            settings.sandbox, settings.memory_limit, settings.disk_limit
        )
    except ValueError as e:  # ConfigError included
        fail(str(e))
    if warning:
        console.print(f"[yellow]{escape(warning)}[/]")
    return name, limits


def _solver(model: str | None, overrides: dict):  # -> AgentSolver
    from devloop.eval.solver import ORACLE, AgentSolver
    from devloop.models import get_model

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
