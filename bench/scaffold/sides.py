"""devloop's sides of bench/scaffold_overhead.py: the scripted trajectory through run_agent, and variants of
it with one thing changed (the model client, the patch's staging, the shell's subreaper flag)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devloop.config import load_settings
from devloop.session import run_agent
from scaffold.servers import SENT, serve
from scaffold.work import ISSUE, tool_script


def devloop_once(repo: Path, out: Path, cmds: list[str]) -> float:
    script = tool_script(cmds, "execute_bash", {"finish": {"message": "done"}})
    with serve(script) as server:
        settings = load_settings(
            model="openai/bench", base_url=server.url, max_iterations=len(cmds) + 10, sandbox="none"
        )
        t0 = time.perf_counter()
        result = run_agent(repo, ISSUE, settings, out)
        elapsed = time.perf_counter() - t0
    SENT["devloop"] = server.request_sizes
    assert result.exit_status == "finished" and result.steps == len(cmds) + 1, result
    assert "* of note" in result.patch, "devloop: the edits are missing from the patch"
    return elapsed


def _sdk_request(
    self: Any, method: str, path: str, *, content: bytes | None = None, timeout: float | None = None
) -> str:
    """ChatHttp.request through the openai SDK's low-level post, as devloop sent requests before."""
    import openai

    client = self.__dict__.get("_bench_sdk")
    if client is None:
        client = self._bench_sdk = openai.OpenAI(
            api_key=self.api_key, base_url=self.base_url, timeout=self.timeout, max_retries=0
        )
    assert method == "POST"
    return str(client.post(path, content=content, cast_to=str))


def devloop_staging_once(repo: Path, out: Path, cmds: list[str]) -> float:
    from devloop.workspace import Workspace

    real = Workspace.diff

    def staging(self: Workspace) -> str:
        self.diff_unstaged = False
        return real(self)

    Workspace.diff = staging  # type: ignore[method-assign]
    try:
        return devloop_once(repo, out, cmds)
    finally:
        Workspace.diff = real  # type: ignore[method-assign]


def devloop_scan_once(repo: Path, out: Path, cmds: list[str]) -> float:
    """devloop with its tree's inotify watch ignored: every step's patch takes its stat scan, as before."""
    from devloop.workspace import Workspace

    real = Workspace.diff

    def scanning(self: Workspace, **kwargs: bool) -> str:
        self.scans.watch_changes = False
        return real(self, **kwargs)

    Workspace.diff = scanning  # type: ignore[method-assign]
    try:
        return devloop_once(repo, out, cmds)
    finally:
        Workspace.diff = real  # type: ignore[method-assign]


def devloop_sdk_once(repo: Path, out: Path, cmds: list[str]) -> float:
    import openai  # noqa: F401  (imported before the clock, as in a process that already has it)

    from devloop.models.http import ChatHttp

    real = ChatHttp.request
    ChatHttp.request = _sdk_request  # type: ignore[method-assign,assignment]
    try:
        return devloop_once(repo, out, cmds)
    finally:
        ChatHttp.request = real  # type: ignore[method-assign]


def devloop_preexec_once(repo: Path, out: Path, cmds: list[str]) -> float:
    from devloop.runtime import subreaper

    subreaper._failed = True  # as after a launcher that failed: the shell's flags set by a preexec_fn
    try:
        return devloop_once(repo, out, cmds)
    finally:
        subreaper._failed = False


# Sides that are devloop with one thing changed (--sdk-side, --staging-side, --preexec-side, --scan-side):
# flag, name.
VARIANTS: dict[str, tuple[str, Callable[[Path, Path, list[str]], float]]] = {
    "sdk": ("devloop, SDK client", devloop_sdk_once),
    "staging": ("devloop, staging", devloop_staging_once),
    "preexec": ("devloop, preexec shell", devloop_preexec_once),
    "scan": ("devloop, scan every step", devloop_scan_once),
}
