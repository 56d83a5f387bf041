"""The bundled demo: a small repository with a bug, its issue, and a scripted model reply list that fixes it.

Used by `devloop demo` and by the end-to-end tests (one per tool-call format).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

from devloop.models.scripted_server import load_script
from devloop.types import ToolCall

_DATA = resources.files("devloop") / "demo"


def demo_issue() -> str:
    return (_DATA / "issue.md").read_text(encoding="utf-8")


def make_demo_repo(dest: Path) -> Path:
    """Copy the demo repository to `dest` and commit it, as a user's repository would be."""
    shutil.copytree(str(_DATA / "repo"), dest)
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "demo",
        "GIT_AUTHOR_EMAIL": "demo@localhost",
        "GIT_COMMITTER_NAME": "demo",
        "GIT_COMMITTER_EMAIL": "demo@localhost",
    }
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "statkit 0.1"]):
        subprocess.run(["git", *args], cwd=dest, env=env, check=True, capture_output=True)
    return dest


def demo_script(tool_format: str = "native") -> list[dict[str, Any]]:
    """The scripted replies; for a text format, each reply's calls are re-encoded as text in that format."""
    return encode_script(load_script(Path(str(_DATA / "script.jsonl"))), tool_format)


def encode_script(script: list[dict[str, Any]], tool_format: str) -> list[dict[str, Any]]:
    """Native assistant messages re-encoded for `tool_format` (native and auto: unchanged)."""
    if tool_format in ("native", "auto"):
        return script
    from devloop.formats import render_call

    out = []
    for msg in script:
        if "tool_calls" not in msg:
            out.append(msg)
            continue
        calls = [
            ToolCall(tc["function"]["name"], json.loads(tc["function"]["arguments"]), tc.get("id", ""))
            for tc in msg["tool_calls"]
        ]
        text = "\n".join([msg.get("content") or "", *(str(render_call(tool_format, c)) for c in calls)])
        out.append({"role": "assistant", "content": text.strip()})
    return out
