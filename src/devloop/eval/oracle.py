"""The oracle: agent actions derived from a task's gold patch, for an end-to-end check with no model.

`oracle_script` turns the gold patch into OpenAI assistant messages with native tool calls: view each
touched file, one `str_replace` per hunk (old_str widened with context until unique), `create` for new
files, `rm` for deleted ones, run the tests, finish. Replayed through the real agent (the `scripted/`
model), it must produce a patch that resolves the task.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from devloop import safefs
from devloop.parse.diffs import FileDiff, Hunk, parse_diff, test_directives
from devloop.tasks.model import Task

# Files the gold patch edits are source files; anything larger is not one.
_MAX_FILE_BYTES = 64 * 1024 * 1024


class OracleError(Exception):
    """The gold patch does not fit the tree (a hunk's old lines are not where the patch says)."""


def _call(number: int, name: str, arguments: dict[str, Any], content: str = "") -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": content,
        "tool_calls": [{"id": f"call_{number}", "type": "function",
                        "function": {"name": name, "arguments": json.dumps(arguments)}}],
    }  # fmt: skip


def _locate(lines: list[str], hunk: Hunk, guess: int) -> int:
    """Where the hunk's old lines start: at the patch's position if they are there, else the nearest match."""
    old = hunk.old_lines
    if not old:
        return min(max(guess, 0), len(lines))
    starts = [i for i in range(len(lines) - len(old) + 1) if lines[i : i + len(old)] == old]
    if not starts:
        raise OracleError(f"hunk at line {hunk.old_start} does not match the file")
    return min(starts, key=lambda i: abs(i - guess))


def hunk_edit(content: str, hunk: Hunk, guess: int) -> tuple[str, str, str, int]:
    """(old_str, new_str, new content, line delta) for one hunk: old_str is the hunk's old lines,
    widened one line each way at a time until it occurs exactly once in `content`."""
    lines = content.splitlines(keepends=True)
    at = _locate(lines, hunk, guess)
    lo, hi = at, at + len(hunk.old_lines)
    while True:
        old_str = "".join(lines[lo:hi])
        if old_str and content.count(old_str) == 1:
            break
        if lo == 0 and hi == len(lines):
            break  # the whole file: unique by definition (or the file is empty)
        lo, hi = max(lo - 1, 0), min(hi + 1, len(lines))
    new_str = "".join(lines[lo:at]) + "".join(hunk.new_lines) + "".join(lines[at + len(hunk.old_lines) : hi])
    updated = "".join(lines[:lo]) + new_str + "".join(lines[hi:])
    return old_str, new_str, updated, len(hunk.new_lines) - len(hunk.old_lines)


def _edits_for_file(f: FileDiff, tree: Path, shown: str, calls: list[dict[str, Any]]) -> None:
    try:  # beneath the tree: a path or link in the task data that leads out of it is not read
        content = safefs.read_text(tree, f.old_path or "", max_bytes=_MAX_FILE_BYTES, errors="strict")
    except OSError as exc:
        raise OracleError(f"{f.old_path}: cannot read it in the tree: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise OracleError(f"{f.old_path}: not UTF-8 text") from None
    calls.append(_call(len(calls) + 1, "str_replace_editor", {"command": "view", "path": shown},
                       f"Let me read {shown}."))  # fmt: skip
    delta = 0
    for number, hunk in enumerate(f.hunks, 1):
        guess = max(hunk.old_start - 1, 0) + delta if hunk.old_lines else hunk.old_start + delta
        old_str, new_str, content, change = hunk_edit(content, hunk, guess)
        delta += change
        if not old_str:  # an empty file: str_replace cannot anchor, so write it whole
            calls.append(_call(len(calls) + 1, "str_replace_editor",
                               {"command": "create", "path": shown, "file_text": new_str}))  # fmt: skip
            continue
        calls.append(_call(len(calls) + 1, "str_replace_editor",
                           {"command": "str_replace", "path": shown, "old_str": old_str, "new_str": new_str},
                           f"Edit {number} of {len(f.hunks)} in {shown}."))  # fmt: skip


def oracle_script(task: Task, tree: Path, *, shown_root: str | Path | None = None) -> list[dict[str, Any]]:
    """Assistant messages (native tool_calls) that make the gold patch's change in `tree` and finish.

    `tree` is the repository at base_commit, read to widen edits until unique. Paths in the calls are
    relative to the repository root, or under `shown_root` when given (e.g. the agent's workspace path).
    Raises OracleError when the gold patch does not fit the tree.
    """

    def shown(rel: str) -> str:
        return str(Path(shown_root) / rel) if shown_root is not None else rel

    calls: list[dict[str, Any]] = []
    for f in parse_diff(task.patch):
        if f.new_path is None:
            calls.append(_call(len(calls) + 1, "execute_bash", {"command": f"rm {shlex.quote(shown(f.old_path or ''))}"},
                               f"{f.old_path} is no longer needed."))  # fmt: skip
        elif f.old_path is None:
            text = "".join(line for hunk in f.hunks for line in hunk.new_lines)
            calls.append(_call(len(calls) + 1, "str_replace_editor",
                               {"command": "create", "path": shown(f.new_path), "file_text": text},
                               f"Create {f.new_path}."))  # fmt: skip
        else:
            if f.old_path != f.new_path:
                move = f"mv {shlex.quote(shown(f.old_path))} {shlex.quote(shown(f.new_path))}"
                calls.append(_call(len(calls) + 1, "execute_bash", {"command": move}))
            if f.hunks:
                _edits_for_file(f, tree, shown(f.new_path), calls)
    spec = task.environment
    test_cmd = spec.test_cmd if spec else "python -m pytest -rA"
    existing = [p for p in test_directives(task.test_patch) if (tree / p).is_file()]
    command = " ".join([test_cmd, *map(shlex.quote, existing)])
    calls.append(_call(len(calls) + 1, "execute_bash", {"command": command}, "Run the tests."))
    calls.append(_call(len(calls) + 1, "finish", {"message": "Applied the fix."}))
    return calls


def write_oracle_script(path: Path, messages: list[dict[str, Any]]) -> Path:
    """Write the messages as JSONL (one assistant message a line), the `scripted/<path>` model's input."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(m) + "\n" for m in messages), encoding="utf-8")
    return path
