"""The rules of the two stages, their defaults, and what a --filters TOML file may lay over them.

Each attempt that fails is counted under the first rule it fails (in the order of RULES), so the
report's drops and the rows kept add up to the attempts read. `per_instance` is applied last, to the
attempts that passed every other rule: fewest steps first, then run order.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

STAGE1: dict[str, Any] = {"resolved": True, "finished": True, "non_empty_patch": True}
STAGE2: dict[str, Any] = {
    **STAGE1,
    "no_format_errors": True,
    "max_steps": 30,
    "max_tool_errors": 0,
    "max_repeats": 2,
    "per_instance": 1,
}
FLAGS = ("resolved", "finished", "non_empty_patch", "no_format_errors")
LIMITS = ("max_steps", "max_tool_errors", "max_repeats", "per_instance")
KNOWN_RULES = set(FLAGS) | set(LIMITS)


def load_filters(path: Path | None) -> dict[str, dict[str, Any]]:
    """Stage rules: the defaults, with a TOML file's [stage1] / [stage2] tables laid over them."""
    import tomllib

    rules = {"stage1": dict(STAGE1), "stage2": dict(STAGE2)}
    if path is None:
        return rules
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not TOML ({exc})") from None
    for stage in rules:
        table = data.get(stage, {})
        if not isinstance(table, dict):
            raise ValueError(f"{path}: [{stage}] must be a table")
        unknown = set(table) - KNOWN_RULES
        if unknown:
            raise ValueError(f"{path}: [{stage}] unknown rule {sorted(unknown)[0]!r}")
        for key, value in table.items():
            if key in FLAGS and not isinstance(value, bool):
                raise ValueError(f"{path}: [{stage}] {key} must be true or false, not {value!r}")
            if key in LIMITS and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"{path}: [{stage}] {key} must be a non-negative integer, not {value!r}")
        rules[stage].update(table)
    return rules


def measures(events: list[dict[str, Any]]) -> dict[str, int]:
    """Counts of the trajectory as recorded: format errors, tool results marked as errors, and the
    most times one identical call (same tool, same arguments) was made."""
    steps = [e for e in events if e.get("type") == "step"]
    calls: Counter[str] = Counter()
    tool_errors = 0
    for step in steps:
        for call in step.get("calls") or []:
            if isinstance(call, dict):
                args = json.dumps(call.get("arguments"), sort_keys=True)
                calls[f"{call.get('name')}\x00{args}"] += 1
        tool_errors += sum(
            1 for o in step.get("observations") or [] if isinstance(o, dict) and o.get("is_error") is True
        )
    return {
        "format_errors": sum(1 for s in steps if s.get("format_error")),
        "tool_errors": tool_errors,
        "repeats": max(calls.values(), default=0),
    }


def failure(a: dict[str, Any], rules: dict[str, Any]) -> str | None:
    """The first rule (but per_instance) that attempt `a` fails, as its report name, or None. An attempt
    whose trajectory could not be read (missing, a symlink, not JSON lines) has no conversation to train
    on: it is dropped in every stage, whatever the rules say."""
    if not any(e.get("type") == "start" for e in a["events"]):
        return "no_trajectory"
    if rules.get("resolved") and not a["resolved"]:
        return "unresolved"
    if rules.get("finished") and not a["finished"]:
        return "unfinished"
    if rules.get("non_empty_patch") and not a["patch"].strip():
        return "empty_patch"
    m = measures(a["events"])
    if rules.get("no_format_errors") and m["format_errors"]:
        return "format_error"
    if "max_steps" in rules and a["steps"] > int(rules["max_steps"]):
        return "too_many_steps"
    if "max_tool_errors" in rules and m["tool_errors"] > int(rules["max_tool_errors"]):
        return "tool_errors"
    if "max_repeats" in rules and m["repeats"] > int(rules["max_repeats"]):
        return "repeats"
    return None
