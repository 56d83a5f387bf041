"""What a run is built from before its workspace exists: the prompts, the limits, the condenser and the
sandbox runtime's options (devloop.session puts them together)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from devloop.agent import RunLimits
from devloop.condense import Condenser, context_window_of
from devloop.models import Model
from devloop.runtime.limits import sandbox_limits
from devloop.runtime.sandbox_env import parse_env_assignments
from devloop.session_settings import LimitSettings, ModelSettings, SandboxSettings, ToolSettings
from devloop.types import SamplingParams


def render_prompts(
    tools: ToolSettings, issue: str, root: Path, tools_text: str, retrieved: str = ""
) -> tuple[str, str]:
    """The system and task prompts from the Jinja templates (packaged, or --prompt-dir overrides)."""
    env = _templates(str(tools.prompt_dir) if tools.prompt_dir else "")
    ctx = {
        "issue": issue.strip(),
        "root": str(root),
        "tools_text": tools_text,
        "command_timeout": int(tools.command_timeout),
        "retrieved": retrieved,
    }
    return env.get_template("system.j2").render(ctx), env.get_template("task.j2").render(ctx)


@functools.lru_cache(maxsize=8)
def _templates(prompt_dir: str) -> Any:
    """One Jinja environment per prompt directory for the process: its compiled templates are reused by
    later runs (a few ms each), and a template file edited since is still reloaded (auto_reload)."""
    import jinja2  # here, not at import: ~20 ms that `import devloop.session` (chat, eval) need not pay

    loaders: list[jinja2.BaseLoader] = []
    if prompt_dir:
        loaders.append(jinja2.FileSystemLoader(prompt_dir))
    loaders.append(jinja2.FileSystemLoader(str(resources.files("devloop") / "prompts")))
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


def retrieved_files(root: Path, issue: str, k: int, cache_dir: Path | None = None) -> str:
    """The `k` files of `root` ranked for `issue`, each with its skeleton (signatures only); "" for k=0.
    The index goes through the on-disk cache (`cache_dir`, default the user cache dir): runs on trees
    alike (one repository at nearby commits) re-parse only the files that differ."""
    if k <= 0:
        return ""
    from devloop.retrieval import Index
    from devloop.retrieval.store import IndexCache, default_dir, with_cache

    cache = IndexCache(cache_dir or default_dir())
    index, _ = with_cache(lambda c: Index.of_directory(str(root), cache=c), cache)
    blocks = [f"{hit.path}\n{index.skeleton(hit.path, 40)}".rstrip() for hit in index.search(issue, k)]
    return "\n\n".join(blocks)


def run_limits(limits: LimitSettings) -> RunLimits:
    return RunLimits(
        limits.max_iterations, limits.max_tokens_total, limits.time_limit, limits.max_format_errors
    )


def condenser(
    m: ModelSettings, model: Model, params: SamplingParams, on_warning: Callable[[str], None] | None
) -> Condenser | None:
    """With `condense` on: the Condenser for the model's window (the setting, else the server's listing)."""
    if not m.condense:
        return None
    window = m.context_window or context_window_of(model)
    if window is None and on_warning:
        on_warning(
            f"--condense: the server lists no context window for {m.model} and context_window is not set: "
            "the conversation is compacted only when the server refuses it as too long"
        )
    return Condenser(model, window, at=m.condense_at, reserve=params.max_tokens or 0)


def runtime_options(sandbox: str, group: SandboxSettings, task_env: dict[str, str]) -> dict[str, Any]:
    """Keyword arguments for the sandbox runtimes; the task's variables (venv PATH...) survive the scrub.
    The limits are checked even without a sandbox, so a bad value is an error wherever it runs."""
    limits = sandbox_limits(group.memory_limit, group.disk_limit)
    try:
        extra_env = {**task_env, **parse_env_assignments(group.env)}
    except ValueError as e:
        raise ValueError(f"--env: {e}") from None
    # The shell's scratch files (an output file per command) go on the background thread once its
    # processes are dead, as the workspace does: nothing of the run reads them after it ends.
    later = {"release_later": True} if sandbox in ("none", "bwrap") else {}
    if sandbox == "none":
        return later
    return {
        "allow_network": group.allow_network,
        "extra_env": extra_env,
        "pass_env": group.pass_env,
        "limits": limits,
        **later,
    }
