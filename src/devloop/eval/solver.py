"""The agent as the evaluation harness calls it: `(task, workdir, env, out_dir) -> AgentOutcome`.

A module-level, picklable callable so `devloop eval --workers N` can ship it to worker processes.
`--model oracle` scripts the agent from each task's gold patch (view, one str_replace per hunk, run the
tests, finish) and replays the script through the real agent over HTTP: an end-to-end check of agent,
tools and harness with no model server.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from devloop.config import RunSettings
from devloop.tasks.model import Task

if TYPE_CHECKING:
    from devloop.workspace import GitSeed

ORACLE = "oracle"

AGENT_FAILURES = frozenset({"model_error", "runtime_error"})
"""Exit statuses that are not the model's answer: the server or the runtime failed."""


@dataclass(frozen=True)
class AgentOutcome:
    """What one agent run left: its patch, how it stopped (result.json's exit_status and reason), steps."""

    patch: str
    exit_status: str | None
    steps: int = 0
    reason: str = ""

    @property
    def failed(self) -> bool:
        """The agent did not give an answer: its model server or runtime failed."""
        return self.exit_status in AGENT_FAILURES


@dataclass(frozen=True)
class AgentSolver:
    settings: RunSettings
    hide: tuple[Path | None, ...] = ()  # hidden from the agent's sandbox: the run directory, the mirrors

    def __call__(
        self, task: Task, workdir: Path, env: dict[str, str], out_dir: Path, seed: GitSeed | None = None
    ) -> AgentOutcome:
        """Run the agent in `workdir` (in place); `seed`: what its tree holds (see Workspace.create)."""
        settings = self.settings
        if settings.model == ORACLE:
            from devloop.eval.oracle import oracle_script, write_oracle_script

            script = out_dir / "oracle.jsonl"
            out_dir.mkdir(parents=True, exist_ok=True)
            write_oracle_script(script, oracle_script(task, workdir))
            settings = settings.model_copy(update={"model": f"scripted/{script}", "tool_format": "native"})
        # Imported here: grading given predictions never runs the agent, and the agent's session
        # (tools, feedback, model client) is ~0.2 s of an `eval` process's start-up.
        from devloop.session import run_agent

        hide = tuple(p for p in self.hide if p is not None)
        result = run_agent(
            workdir, task.problem_statement, settings, out_dir, env=env, in_place=True, hide=hide, seed=seed
        )
        return AgentOutcome(result.patch or "", str(result.exit_status), result.steps, result.reason)
