"""The work every side does: the repository, the commands, the scripted replies."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from devloop.demo import make_demo_repo

SUBMIT = "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT && git add -A && git diff --cached"
ISSUE = "Tidy the notes under docs/."
N_DOCS = 10
BASH_TOOL = {
    "type": "function",
    "function": {
        "name": "bash",
        "description": "Run a bash command.",
        "parameters": {
            "type": "object",
            "properties": {"command": {"type": "string"}},
            "required": ["command"],
        },
    },
}


def template_repo(dest: Path) -> Path:
    """The demo repository plus ten committed text files of 2-5 KB, the commands' observations."""
    repo = make_demo_repo(dest)
    (repo / "docs").mkdir()
    for k in range(N_DOCS):
        size = 2000 + 300 * k
        lines, total = [], 0
        while total < size:
            line = f"line {len(lines)} of note {k}: the quick brown fox jumps over the lazy dog"
            lines.append(line)
            total += len(line) + 1
        (repo / "docs" / f"p{k}.txt").write_text("\n".join(lines) + "\n")
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@l", "GIT_COMMITTER_NAME": "b"}
    env["GIT_COMMITTER_EMAIL"] = "b@l"
    for args in (["add", "-A"], ["commit", "-q", "-m", "notes"]):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)
    return repo


def commands(n: int) -> list[str]:
    """`n` commands, each printing 2-5 KB; every fifth edits a file first."""
    out = []
    for i in range(n):
        p = f"docs/p{i % N_DOCS}.txt"
        out.append(
            [
                f"sed -i 's/^line {i % 30} of/line {i % 30}* of/' {p} && cat {p}",
                f"cat {p}",
                f"grep -n fox {p} | head -c 4000",
                f"nl {p} | tail -c 3000",
                f"ls -la docs && head -c 2500 {p}",
            ][i % 5]
        )
    return out


def tool_script(cmds: list[str], tool: str, final: dict[str, Any]) -> list[dict[str, Any]]:
    def call(i: int, name: str, args: dict[str, str]) -> dict[str, Any]:
        fn = {"name": name, "arguments": json.dumps(args)}
        return {"role": "assistant", "content": f"Step {i}.", "tool_calls": [{"id": f"c{i}", "function": fn}]}

    return [call(i, tool, {"command": c}) for i, c in enumerate(cmds)] + [call(len(cmds), *final.popitem())]
