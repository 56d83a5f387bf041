"""One agent run end to end: workspace, runtime, model, loop, and the files a run leaves behind.

`run_agent` is what `devloop run`, `devloop demo` and `devloop eval --model` call. Whatever happens
(finish, a limit, a model error, Ctrl-C, a crash), patch.diff and result.json are written.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from devloop.agent import Agent, Limits, StepInfo, Stop
from devloop.config import RunSettings
from devloop.feedback import build_feedback
from devloop.formats import get_format
from devloop.models import get_model
from devloop.models.base import ModelError
from devloop.policy import GatedToolbox, PolicyError, load_policy
from devloop.runtime import get_runtime, resolve_sandbox
from devloop.runtime.identity import take_back
from devloop.runtime.limits import sandbox_limits
from devloop.runtime.sandbox_env import parse_env_assignments
from devloop.runtime.stale import disown
from devloop.tools.base import ToolContext
from devloop.tools.registry import default_toolbox
from devloop.trajectory import Trajectory
from devloop.types import SamplingParams
from devloop.workspace import Workspace


@dataclass
class RunResult:
    exit_status: str
    reason: str
    steps: int
    prompt_tokens: int
    completion_tokens: int
    duration_s: float
    patch_path: str
    trajectory_path: str
    model: str
    tool_format: str
    workspace: str | None = None
    patch: str = ""
    sandbox: str = "none"
    extra: dict = field(default_factory=dict)  # the feedback loop's fields (tests, rollbacks, queues...)

    def to_json(self) -> dict:
        d = asdict(self)
        d.pop("patch")
        d.update(d.pop("extra"))
        return d


def render_prompts(settings: RunSettings, issue: str, root: Path, tools_text: str) -> tuple[str, str]:
    """The system and task prompts from the Jinja templates (packaged, or --prompt-dir overrides)."""
    loaders: list[jinja2.BaseLoader] = []
    if settings.prompt_dir:
        loaders.append(jinja2.FileSystemLoader(str(settings.prompt_dir)))
    loaders.append(jinja2.FileSystemLoader(str(resources.files("devloop") / "prompts")))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    ctx = {
        "issue": issue.strip(),
        "root": str(root),
        "tools_text": tools_text,
        "command_timeout": int(settings.command_timeout),
    }
    return env.get_template("system.j2").render(ctx), env.get_template("task.j2").render(ctx)


def sampling_params(settings: RunSettings) -> SamplingParams:
    """Sampling settings, plus what each text format needs from the server.

    xml: stop at `</function` as OpenHands does (the parser tolerates the cut), so the model cannot go on to
    imagine the tool's output. mistral on a self-hosted server: keep `[TOOL_CALLS]`/`[ARGS]` in the text,
    which vLLM drops by default as special tokens (other OpenAI-compatible servers ignore the field).
    """
    params = SamplingParams(settings.temperature, settings.top_p, settings.max_tokens, settings.seed)
    if settings.tool_format == "xml":
        params.stop = ["</function"]
    if settings.tool_format == "mistral" and settings.model.startswith("openai/"):
        params.extra_body = {"skip_special_tokens": False}
    return params


def run_agent(
    repo: Path,
    issue: str,
    settings: RunSettings,
    output: Path,
    *,
    env: dict[str, str] | None = None,
    in_place: bool = False,
    on_step: Callable[[StepInfo], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
    hide: Sequence[Path] = (),
) -> RunResult:
    """Run the agent on `repo` for `issue`; write patch.diff, trajectory.jsonl and result.json to `output`.

    The sandbox hides `output` and the directories in `hide` (an eval's run directory, with every task's
    gold patch; the mirrors, with the history that holds the fix).

    Raises ValueError (bad model spec or settings) before anything is created; never raises after that.
    """
    started = time.monotonic()
    fmt = get_format(settings.tool_format)
    sandbox, warning = resolve_sandbox(settings.sandbox)
    if warning and on_warning:
        on_warning(warning)
    runtime_kw = _runtime_options(sandbox, settings, env or {})
    rules = _load_rules(settings)
    try:
        policy = load_policy(Path.cwd(), extra_files=settings.policy)
    except PolicyError as e:
        raise ValueError(str(e)) from None
    model = get_model(
        settings.model,
        base_url=settings.base_url,
        api_key_env=settings.api_key_env,
        max_retries=settings.max_retries,
        timeout=settings.request_timeout,
    )
    output.mkdir(parents=True, exist_ok=True)
    traj = Trajectory(output / "trajectory.jsonl")
    ws: Workspace | None = None
    runtime = None
    loop = None
    queue_runner = None
    minimized: dict | None = None
    agent: Agent | None = None
    stop = Stop("runtime_error", "the run did not start")
    try:
        ws = Workspace.create(repo, in_place=in_place)
        if sandbox != "none":  # the agent's own git needs the user's object store
            runtime_kw["ro_binds"] = [*runtime_kw.get("ro_binds", []), *ws.read_only_paths]
        if sandbox == "bwrap":
            runtime_kw["hide"] = [p.resolve() for p in (output, *hide) if p is not None]
        runtime = get_runtime(sandbox, ws.root, env={**os.environ, **(env or {})}, **runtime_kw)
        ws.attach(runtime)
        toolbox = GatedToolbox(default_toolbox(), policy, ws.root, interactive=False)
        loop = build_feedback(settings, workspace=ws, runtime=runtime, out_dir=output)
        if loop is not None:
            model = loop.instrument(model)
        ctx = ToolContext(
            runtime=runtime,
            root=ws.root,
            command_timeout=settings.command_timeout,
            output_cap=settings.output_cap,
        )
        system, task = render_prompts(settings, issue, ws.root, fmt.render_tools(toolbox.specs()))
        traj.write(
            "start",
            model=settings.model,
            settings=settings.model_dump(mode="json"),
            sandbox=sandbox,
            repo=str(repo),
            workspace=str(ws.root),
            system=system,
            task=task,
        )
        agent = Agent(
            model=model,
            fmt=fmt,
            toolbox=toolbox,
            ctx=ctx,
            on_step=on_step,
            trajectory=traj,
            patch=ws.diff,
            hooks=loop.hooks if loop else [],
            params=sampling_params(settings),
            limits=Limits(
                settings.max_iterations,
                settings.max_tokens_total,
                settings.time_limit,
                settings.max_format_errors,
            ),
        )
        if rules is not None and loop is not None:
            queue_runner = _queue_runner(agent, loop, rules, settings, ws, runtime)
            stop = queue_runner.run(system, task)
        else:
            stop = agent.run(system, task)
        if settings.minimize and loop is not None and stop.status == "finished":
            minimized = _minimize(loop, ws, settings)
    except ModelError as e:
        stop = Stop("model_error", e.reason)
    except KeyboardInterrupt:
        stop = Stop("interrupted", "interrupted by the user (Ctrl-C)")
    except Exception as e:  # a crash still saves the patch below
        stop = Stop("runtime_error", f"{type(e).__name__}: {e}".splitlines()[0])
    finally:
        patch = _safe_diff(ws)
        (output / "patch.diff").write_text(patch, encoding="utf-8")
        extra = {**_safe_fields(loop), **_safe_fields(queue_runner)}
        if getattr(runtime, "disk_peak_bytes", None) is not None:  # a sandbox with a disk limit
            extra["disk_peak_bytes"] = runtime.disk_peak_bytes  # type: ignore[union-attr]
        if minimized is not None:
            extra["minimize"] = minimized
        for closer in (loop, runtime, model):
            try:
                if closer is not None:
                    closer.close()
            except Exception:  # closing must not hide the run's result
                pass
        keep = settings.keep_workspace and ws is not None
        if ws is not None and not keep:
            ws.cleanup()
        elif ws is not None:
            take_back(ws.root)  # the sandbox user wrote it; the user keeps it
            disown(ws.gitdir.parent)  # kept on purpose: no later run's sweep of dead runs may remove it
    usage = agent.usage if agent else None
    result = RunResult(
        exit_status=stop.status,
        reason=stop.reason,
        steps=agent.steps if agent else 0,
        prompt_tokens=usage.prompt_tokens if usage else 0,
        completion_tokens=usage.completion_tokens if usage else 0,
        duration_s=round(time.monotonic() - started, 3),
        patch_path=str(output / "patch.diff"),
        trajectory_path=str(output / "trajectory.jsonl"),
        model=settings.model,
        tool_format=settings.tool_format,
        workspace=str(ws.root) if keep and ws else None,
        patch=patch,
        sandbox=sandbox,
        extra=extra,
    )
    traj.write("end", result=result.to_json())
    traj.close()
    tmp = output / "result.json.tmp"
    tmp.write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, output / "result.json")
    return result


def _load_rules(settings: RunSettings) -> Any:
    """The rescue rules for --queues (checked before anything is created); None without --queues."""
    if not settings.queues:
        return None
    if not settings.hook:
        raise ValueError(
            "--queues needs a test hook (--hook pytest|jest|CMD) to tell when the tests are green"
        )
    from devloop.feedback.rules import RuleError, load_rules

    try:
        return load_rules(settings.rules)
    except RuleError as e:
        raise ValueError(str(e)) from None


def _queue_runner(
    agent: Agent, loop: Any, rules: Any, settings: RunSettings, ws: Workspace, runtime: Any
) -> Any:
    from devloop.feedback.queues import QueueRunner, parse_queues
    from devloop.feedback.rules import RescueContext, RescueEngine

    engine = RescueEngine(
        rules, RescueContext(ws.root, runtime=runtime, checkpoints=loop.checkpoints, events=loop.events)
    )
    return QueueRunner(agent, loop, engine, parse_queues(settings.queues or ""))


def _minimize(loop: Any, ws: Workspace, settings: RunSettings) -> dict:
    """--minimize: shrink the final diff keeping the same tests' statuses (delta debugging)."""
    from devloop.feedback.minimize import minimize

    if not loop.hook.last_tests and loop.hook.last_tests is not None:
        return {"skipped": "no tests ran in this run"}
    result = minimize(
        ws.root,
        ws.diff(),
        loop.runner,
        loop.hook.last_tests or [],
        timeout=settings.timeout_test,
        current_diff=ws.diff,
        workspace=ws,
    )
    return result.to_json()


def _runtime_options(sandbox: str, settings: RunSettings, task_env: dict[str, str]) -> dict:
    """Keyword arguments for the sandbox runtimes; the task's variables (venv PATH...) survive the scrub.
    The limits are checked even without a sandbox, so a bad value is an error wherever it runs."""
    limits = sandbox_limits(settings.memory_limit, settings.disk_limit)
    try:
        extra_env = {**task_env, **parse_env_assignments(settings.env)}
    except ValueError as e:
        raise ValueError(f"--env: {e}") from None
    if sandbox == "none":
        return {}
    return {
        "allow_network": settings.allow_network,
        "extra_env": extra_env,
        "pass_env": settings.pass_env,
        "limits": limits,
    }


def _safe_fields(loop: object | None) -> dict:
    try:
        return loop.result_fields() if loop is not None else {}  # type: ignore[attr-defined]
    except Exception as e:
        return {"feedback_error": f"{type(e).__name__}: {e}".splitlines()[0]}


def _safe_diff(ws: Workspace | None) -> str:
    if ws is None:
        return ""
    try:
        return ws.diff()
    except Exception:
        return ""
