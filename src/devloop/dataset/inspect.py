"""`devloop dataset inspect DIR`: the counts of a built data set and one example as the model sees it.

The example is model-written text; the command passes what this returns through `shown`, so no
control character in it reaches the terminal.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

WIDTH = 400


def _lines(path: Path) -> list[str]:
    if path.is_symlink() or not path.is_file():
        return []
    return path.read_text(encoding="utf-8", errors="replace").splitlines()


def _cut(text: str) -> str:
    return text if len(text) <= WIDTH else text[:WIDTH] + f"... ({len(text)} chars)"


def render_example(row: dict[str, Any]) -> str:
    """The row's conversation as text: a [role] line per message, its content and its tool calls."""
    out = [f"example: {row.get('instance_id')} (attempt {row.get('attempt')}, render {row.get('render')})"]
    for turn in row.get("conversations") or []:  # ShareGPT
        if isinstance(turn, dict):
            out += [f"[{turn.get('from')}]", _cut(str(turn.get("value", "")))]
    for msg in row.get("messages") or []:
        if not isinstance(msg, dict):
            continue
        out.append(
            f"[{msg.get('role')}"
            + (f" {msg['tool_call_id']}" if msg.get("tool_call_id") else "")
            + (" weight 0: left out of the loss" if msg.get("weight") == 0 else "")
            + "]"
        )
        if msg.get("content"):
            out.append(_cut(str(msg["content"])))
        for call in msg.get("tool_calls") or []:
            fn = call.get("function", {}) if isinstance(call, dict) else {}
            fn = fn if isinstance(fn, dict) else {}
            out.append(f"  -> {fn.get('name')}({_cut(str(fn.get('arguments', '')))})")
    return "\n".join(out)


def inspect(directory: Path) -> str:
    """Counts per stage and split, then the first row found rendered; ValueError if not a data set."""
    if directory.is_symlink() or not (directory / "filter_report.json").is_file():
        raise ValueError(f"{directory}: no filter_report.json (not a devloop data set)")
    out = []
    example = None
    for stage in ("stage1", "stage2"):
        for split in ("train", "valid"):
            path = directory / stage / f"{split}.jsonl"
            lines = _lines(path)
            out.append(f"{stage}/{split}: {len(lines)}")
            for lineno, line in enumerate(lines[:1], 1):
                try:
                    row = json.loads(line)
                except ValueError:
                    raise ValueError(f"{path}:{lineno}: not JSON") from None
                example = example or (row if isinstance(row, dict) else None)
    report = json.loads((directory / "filter_report.json").read_text(encoding="utf-8"))
    outputs = report.get("outputs") if isinstance(report, dict) else None
    for name, n in sorted((outputs if isinstance(outputs, dict) else {}).items()):
        out.append(f"{name}: {n}")
    out.append(render_example(example) if example else "no examples")
    return "\n".join(out)
