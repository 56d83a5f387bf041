"""Policy files: TOML, user- and project-level, and the one-line errors for bad ones.

User file: `<user config dir>/devloop/policy.toml` (platformdirs). Project file:
`<project>/.devloop/policy.toml`. Format:

    [[rule]]
    tool = "execute_bash"          # a tool name, "mcp" (every MCP tool), or "*" (default; never allows MCP)
    pattern = "\\bmake\\s+deploy\\b"  # Python regex searched in the command (other tools: argument values)
    when = "writes-outside-workspace"   # optional predicate instead of / besides a pattern
    action = "deny"                # allow | ask | deny
    reason = "deploys are manual"  # shown to the model when denied
    mode = "any"                   # any | interactive | batch: when the rule applies

A rule needs a `pattern` or a `when`, except to match every call of a tool.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, get_args

import platformdirs

from devloop.policy.defaults import DEFAULT_RULES
from devloop.policy.rules import WHEN_CHOICES, Action, Mode, Policy, Rule

PROJECT_POLICY = Path(".devloop") / "policy.toml"
_FIELDS = {"tool", "pattern", "when", "action", "reason", "mode"}
_RULE_HEADER = re.compile(r"^\s*\[\[\s*rule\s*\]\]")
_TOML_POS = re.compile(r"\(at line (\d+), column (\d+)\)")


class PolicyError(ValueError):
    """A policy file is unreadable or invalid; the message is one line: `file:line: field: problem`."""


def user_policy_file() -> Path:
    return Path(platformdirs.user_config_dir("devloop")) / "policy.toml"


def project_policy_file(project_dir: Path) -> Path:
    return Path(project_dir) / PROJECT_POLICY


def load_policy(
    project_dir: Path | None = None, *, user_file: Path | None = None, extra_files: Iterable[Path] = ()
) -> Policy:
    """The effective policy: rules of `extra_files` (in order, first wins), then the project file, then
    the user file (default: user_policy_file()), then the built-in defaults. Missing files are skipped;
    an explicitly given extra file that is missing is an error. Raises PolicyError."""
    rules: list[Rule] = []
    for path in extra_files:
        if not Path(path).is_file():
            raise PolicyError(f"{path}: policy file not found")
        rules += read_rules(Path(path))
    if project_dir is not None:
        rules += read_rules(project_policy_file(project_dir), missing_ok=True)
    rules += read_rules(user_file or user_policy_file(), missing_ok=True)
    return Policy([*rules, *DEFAULT_RULES])


def read_rules(path: Path, *, missing_ok: bool = False) -> list[Rule]:
    """The rules in one policy file, each with `source` = "FILE:LINE" of its [[rule]] header."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if missing_ok:
            return []
        raise PolicyError(f"{path}: policy file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path}: cannot read the policy file: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        pos = _TOML_POS.search(message)
        line = pos.group(1) if pos else "1"
        raise PolicyError(f"{path}:{line}: syntax: {_TOML_POS.sub('', message).strip()}") from None
    headers = [n for n, text_line in enumerate(text.splitlines(), 1) if _RULE_HEADER.match(text_line)]
    unknown = sorted(set(data) - {"rule", "chat"})  # [chat]: devloop chat's approvals (chat.approvals)
    if unknown:
        raise PolicyError(f"{path}:1: {unknown[0]}: unknown top-level key (only [[rule]] tables are allowed)")
    raw_rules = data.get("rule", [])
    if not isinstance(raw_rules, list):
        raise PolicyError(f"{path}:1: rule: must be an array of tables, written [[rule]]")
    return [_rule(item, path, i, headers[i] if i < len(headers) else 1) for i, item in enumerate(raw_rules)]


def _rule(item: Any, path: Path, index: int, line: int) -> Rule:
    where = f"{path}:{line}: rule[{index}]"

    def bad(field: str, problem: str) -> PolicyError:
        return PolicyError(f"{where}.{field}: {problem}")

    if not isinstance(item, dict):
        raise PolicyError(f"{where}: must be a table")
    for key in item:
        if key not in _FIELDS:
            raise bad(key, f"unknown field (known: {', '.join(sorted(_FIELDS))})")
    for key, value in item.items():
        if not isinstance(value, str):
            raise bad(key, f"must be a string, got {type(value).__name__}")
    if "action" not in item:
        raise bad("action", "missing (allow, ask or deny)")
    if item["action"] not in get_args(Action):
        raise bad("action", f"{item['action']!r} is not one of allow, ask, deny")
    mode = item.get("mode", "any")
    if mode not in get_args(Mode):
        raise bad("mode", f"{mode!r} is not one of any, interactive, batch")
    when = item.get("when")
    if when is not None and when not in WHEN_CHOICES:
        raise bad("when", f"{when!r} is not one of {', '.join(WHEN_CHOICES)}")
    pattern = item.get("pattern")
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise bad("pattern", f"invalid regex: {exc}") from None
    tool = item.get("tool", "*").strip() or "*"
    if pattern is None and when is None and tool == "*":
        raise bad("pattern", "a rule for every tool needs a `pattern` or a `when`")
    return Rule(
        action=item["action"],
        tool=tool,
        pattern=pattern,
        when=when,
        reason=item.get("reason", ""),
        mode=mode,
        source=f"{path}:{line}",
    )
