"""One agent run end to end: workspace, runtime, model, loop, and the files a run leaves behind.

`Session` builds the run from the settings' groups (devloop.session_settings), one collaborator per
group: `Session.prepare` checks every setting and builds what needs no workspace (format, model, policy,
rescue rules, runtime options), so a bad value fails before anything is created; `Session.run` makes the
workspace and the sandbox, runs the agent and writes the run directory. Whatever happens (finish, a
limit, a model error, Ctrl-C, a crash), patch.diff and result.json are written.

The builders that need no workspace (prompts, limits, the condenser, the runtime's options) are in
`devloop.session.build`.

`run_agent` is what `devloop run`, `devloop demo` and `devloop eval --model` call.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from devloop.agent import Agent, ExitStatus, StepInfo, Stop
from devloop.condense import Condenser
from devloop.config import RunSettings
from devloop.feedback.loop import FeedbackLoop, build_feedback, check_feedback
from devloop.feedback.rescue import Rules
from devloop.formats import ToolFormat, get_format
from devloop.models import Model, get_model
from devloop.policy import GatedToolbox, Policy, PolicyError, load_policy
from devloop.runtime import Runtime, get_runtime, resolve_sandbox
from devloop.runtime.identity import take_back
from devloop.runtime.shell import PersistentShell
from devloop.runtime.stale import disown
from devloop.session.build import condenser, render_prompts, retrieved_files, run_limits, runtime_options
from devloop.session_settings import SessionSettings
from devloop.tools.base import Tool, ToolContext
from devloop.tools.mcp import McpServers
from devloop.tools.registry import default_toolbox
from devloop.trajectory import Trajectory
from devloop.types import SamplingParams
from devloop.workspace import Alongside, Executor, GitSeed, Workspace

__all__ = [
    "RunResult",
    "Session",
    "render_prompts",
    "retrieved_files",
    "run_agent",
    "run_limits",
    "runtime_options",
]

if TYPE_CHECKING:  # repoenv reaches into the eval harness's environments; a run without one never loads it
    from devloop.repoenv import RepoEnvironment


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
    extra: dict[str, Any] = field(default_factory=dict)  # the feedback loop's fields (tests, queues...)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("patch")
        d.update(d.pop("extra"))
        return d


@dataclass
class Session:
    """One run's settings and the collaborators built from them before the workspace exists."""

    settings: RunSettings  # the flat settings, recorded as they are in the trajectory's start event
    groups: SessionSettings
    fmt: ToolFormat
    params: SamplingParams
    model: Model
    policy: Policy
    rules: Rules | None  # the rescue rules, when --queues is on
    sandbox: str  # the runtime's name, `auto` resolved
    env: dict[str, str]  # the task's variables for the sandbox (a venv's PATH...)
    runtime_kw: dict[str, Any]
    condenser: Condenser | None = None  # --condense

    @classmethod
    def prepare(
        cls,
        settings: RunSettings,
        *,
        env: dict[str, str] | None = None,
        on_warning: Callable[[str], None] | None = None,
    ) -> Session:
        """Check every setting and build what needs no workspace. Raises ValueError with one line."""
        groups = SessionSettings.of(settings)
        fmt = get_format(groups.tools.tool_format)
        sandbox, warning = resolve_sandbox(groups.sandbox.sandbox)
        if warning and on_warning:
            on_warning(warning)
        runtime_kw = runtime_options(sandbox, groups.sandbox, env or {})
        rules = check_feedback(groups.feedback)
        try:
            policy = load_policy(Path.cwd(), extra_files=groups.tools.policy)
        except PolicyError as e:
            raise ValueError(str(e)) from None
        m = groups.model
        model = get_model(
            m.model,
            base_url=m.base_url,
            api_key_env=m.api_key_env,
            max_retries=m.max_retries,
            timeout=m.request_timeout,
        )
        s = groups.sampling
        params = fmt.tune(SamplingParams(s.temperature, s.top_p, s.max_tokens, s.seed), m.model)
        condense = condenser(m, model, params, on_warning)
        return cls(
            settings,
            groups,
            fmt,
            params,
            model,
            policy,
            rules,
            sandbox,
            dict(env or {}),
            runtime_kw,
            condense,
        )

    def _early_runtime(self, environment: RepoEnvironment | None) -> Alongside | None:
        """An unsandboxed shell needs nothing of the tree but its directory, so it starts while git
        writes the clone's files (both are waits on other processes). A sandbox takes the finished tree:
        it hands it to its user and measures it for the disk limit."""
        if self.sandbox != "none":
            return None
        return Alongside(lambda root: get_runtime("none", root, **self._runtime_kw(root, environment)))

    @staticmethod
    def _workspace(repo: Path, in_place: bool, early: Alongside | None, seed: GitSeed | None) -> Workspace:
        """Workspace.create, closing what `early` started if it fails."""
        try:
            return Workspace.create(repo, in_place=in_place, alongside=early, seed=seed)
        except BaseException:
            with contextlib.suppress(Exception):
                if early is not None and (runtime := early.join()) is not None:
                    cast(Runtime, runtime).close()
            raise

    def _runtime_kw(self, root: Path, environment: RepoEnvironment | None) -> dict[str, Any]:
        """The runtime's keyword arguments that need no finished tree: the options and the environment,
        with the repository's interpreter (if chosen) first on PATH."""
        kw, env = dict(self.runtime_kw), dict(self.env)
        if environment is not None:
            env = {**env, **environment.variables(root)}
            kw.update(runtime_options(self.sandbox, self.groups.sandbox, env))
        return {**kw, "env": {**os.environ, **env}}

    def open_runtime(
        self,
        ws: Workspace,
        output: Path,
        hide: Sequence[Path],
        environment: RepoEnvironment | None,
        protect: Sequence[Path] = (),
    ) -> Runtime:
        """The runtime for the workspace: the user's object store readable, the run directory and `hide`
        hidden, and the repository's interpreter (if chosen) read-only and first on PATH."""
        kw = self._runtime_kw(ws.root, environment)
        if self.sandbox != "none":  # the agent's own git needs the user's object store
            shown = environment.read_only() if environment is not None else []
            kw["ro_binds"] = [*kw.get("ro_binds", []), *ws.read_only_paths, *shown]
        if self.sandbox == "bwrap":
            kw["hide"] = [p.resolve() for p in (output, *hide) if p is not None]
        if self.sandbox in ("bwrap", "docker") and protect:
            kw["ro_inside"] = [p.absolute() for p in protect]
        return get_runtime(self.sandbox, ws.root, **kw)

    def agent(
        self,
        ws: Workspace,
        runtime: Runtime,
        loop: FeedbackLoop | None,
        trajectory: Trajectory,
        ask: Callable[[Any, Any], bool] | None,
        on_step: Callable[[StepInfo], None] | None,
        extra_tools: Sequence[Tool] = (),
    ) -> Agent:
        tools = self.groups.tools
        return Agent(
            model=loop.instrument(self.model) if loop is not None else self.model,
            fmt=self.fmt,
            toolbox=GatedToolbox(
                default_toolbox(extra_tools), self.policy, ws.root, interactive=ask is not None, ask=ask
            ),
            ctx=ToolContext(runtime, ws.root, tools.command_timeout, tools.output_cap),
            params=self.params,
            limits=run_limits(self.groups.limits),
            trajectory=trajectory,
            patch=ws.diff,
            patch_now=ws.patch_if_unchanged,
            on_step=on_step,
            hooks=list(loop.hooks) if loop is not None else [],
            condenser=self.condenser,
        )

    def run(
        self,
        repo: Path,
        issue: str,
        output: Path,
        *,
        in_place: bool = False,
        on_step: Callable[[StepInfo], None] | None = None,
        hide: Sequence[Path] = (),
        ask: Callable[[Any, Any], bool] | None = None,
        environment: RepoEnvironment | None = None,
        protect: Sequence[Path] = (),
        cancel: threading.Event | None = None,
        seed: GitSeed | None = None,
    ) -> RunResult:
        """Run the agent on `repo` for `issue` and write the run directory `output`; never raises.
        `protect`: paths inside the tree the sandbox may read but not write (bwrap, docker), and that the
        editor (on the host) never writes into, whatever link leads there. `cancel`: set from another thread, it
        interrupts the run as Ctrl-C does (exit status `interrupted`). `seed`: see run_agent."""
        started = time.monotonic()
        output.mkdir(parents=True, exist_ok=True)
        traj = Trajectory(output / "trajectory.jsonl")
        ws: Workspace | None = None
        runtime: Runtime | None = None
        loop: FeedbackLoop | None = None
        agent: Agent | None = None
        mcp = McpServers(self.groups.tools.mcp_servers) if self.groups.tools.mcp_servers else None
        extra: dict[str, Any] = {}
        stop = Stop(ExitStatus.RUNTIME_ERROR, "the run did not start")
        try:
            early = self._early_runtime(environment)
            ws = self._workspace(repo, in_place, early, seed if in_place else None)
            # A failed early start raises here, with the workspace made (and removed below).
            shell = cast("Runtime | None", early.join() if early is not None else None)
            runtime = shell or self.open_runtime(ws, output, hide, environment, protect)
            ws.attach(cast(Executor, runtime))  # every registered runtime has `exec`; the protocol omits it
            loop = build_feedback(
                self.groups.feedback, workspace=ws, runtime=runtime, out_dir=output, rules=self.rules
            )
            agent = self.agent(ws, runtime, loop, traj, ask, on_step, mcp.start() if mcp else ())
            agent.ctx.protected = _inside(ws.root, protect)
            agent.cancel = cancel
            if isinstance(runtime, PersistentShell):
                runtime.cancel = cancel
            system, task = render_prompts(
                self.groups.tools,
                issue,
                ws.root,
                self.fmt.render_tools(agent.toolbox.specs()),
                retrieved_files(ws.root, issue, self.groups.tools.retrieve),
            )
            traj.write(
                "start",
                model=self.groups.model.model,
                settings=self.settings.model_dump(mode="json"),
                sandbox=self.sandbox,
                repo=str(repo),
                workspace=str(ws.root),
                system=system,
                task=task,
                tools=[spec.openai() for spec in agent.toolbox.specs()],  # what the model was offered
            )
            stop = agent.run(system, task)
            if self.groups.feedback.minimize and loop is not None and stop.status == ExitStatus.FINISHED:
                extra["minimize"] = loop.minimize(ws)
        except KeyboardInterrupt:
            stop = Stop(ExitStatus.INTERRUPTED, "interrupted by the user (Ctrl-C)")
        except Exception as e:  # a crash still saves the patch below
            stop = Stop(ExitStatus.RUNTIME_ERROR, f"{type(e).__name__}: {e}".splitlines()[0])
        finally:
            patch = _safe_diff(ws)
            (output / "patch.diff").write_text(patch, encoding="utf-8")
            extra = {**_safe_fields(loop), **extra}
            if getattr(runtime, "disk_peak_bytes", None) is not None:  # a sandbox with a disk limit
                extra["disk_peak_bytes"] = runtime.disk_peak_bytes  # type: ignore[union-attr]
            if environment is not None:
                extra["environment"] = environment.to_json()
            self._close(loop, runtime, mcp)
            keep = self.groups.sandbox.keep_workspace and ws is not None
            if ws is not None and not keep:
                ws.cleanup(later=True)  # nothing after this reads it; its rmdirs cost ms apiece on some disks
            elif ws is not None:
                ws.stop_watching()
                take_back(ws.root)  # the sandbox user wrote it; the user keeps it
                disown(ws.gitdir.parent)  # kept on purpose: no later run's sweep of dead runs may remove it
        result = RunResult(
            exit_status=stop.status,
            reason=stop.reason,
            steps=agent.steps if agent else 0,
            prompt_tokens=agent.usage.prompt_tokens if agent else 0,
            completion_tokens=agent.usage.completion_tokens if agent else 0,
            duration_s=round(time.monotonic() - started, 3),
            patch_path=str(output / "patch.diff"),
            trajectory_path=str(output / "trajectory.jsonl"),
            model=self.groups.model.model,
            tool_format=self.groups.tools.tool_format,
            workspace=str(ws.root) if keep and ws else None,
            patch=patch,
            sandbox=self.sandbox,
            extra=extra,
        )
        traj.write("end", result=result.to_json())
        traj.close()
        tmp = output / "result.json.tmp"
        tmp.write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, output / "result.json")
        return result

    def _close(self, loop: FeedbackLoop | None, runtime: Runtime | None, mcp: McpServers | None) -> None:
        for closer in (loop, runtime, mcp, self.model):
            try:
                if closer is not None:
                    closer.close()
            except Exception:  # closing must not hide the run's result
                pass


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
    ask: Callable[[Any, Any], bool] | None = None,
    environment: RepoEnvironment | None = None,
    cancel: threading.Event | None = None,
    seed: GitSeed | None = None,
) -> RunResult:
    """Run the agent on `repo` for `issue`; write patch.diff, trajectory.jsonl and result.json to `output`.
    `cancel`: set from anywhere, it ends the run as Ctrl-C does (exit status `interrupted`).

    The sandbox hides `output` and the directories in `hide` (an eval's run directory, with every task's
    gold patch; the mirrors, with the history that holds the fix). `ask(call, rule)`: a person answers the
    policy's "ask" rules (True runs the call); without it the run is a batch run and they deny. `seed`:
    for a tree the caller made (in place), what it is known to hold (see Workspace.create).

    Raises ValueError (bad model spec or settings) before anything is created; never raises after that.
    """
    session = Session.prepare(settings, env=env, on_warning=on_warning)
    return session.run(
        repo,
        issue,
        output,
        in_place=in_place,
        on_step=on_step,
        hide=hide,
        ask=ask,
        environment=environment,
        cancel=cancel,
        seed=seed,
    )


def _inside(root: Path, paths: Sequence[Path]) -> tuple[str, ...]:
    """`paths` (the last component not followed) as root-relative paths, those under `root`."""
    base, full = root.resolve(), [Path(p).parent.resolve() / Path(p).name for p in paths]
    return tuple(p.relative_to(base).as_posix() for p in full if p.is_relative_to(base))


def _safe_fields(loop: FeedbackLoop | None) -> dict[str, Any]:
    try:
        return loop.result_fields() if loop is not None else {}
    except Exception as e:
        return {"feedback_error": f"{type(e).__name__}: {e}".splitlines()[0]}


def _safe_diff(ws: Workspace | None) -> str:
    if ws is None:
        return ""
    try:
        return ws.diff(fresh=True)  # the run's patch: a scan's word, not only the watch's
    except Exception:
        return ""
