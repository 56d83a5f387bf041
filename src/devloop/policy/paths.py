"""Best-effort detection of tool calls that write outside the workspace.

For execute_bash this reads the command's words (redirections, tee, cp/mv/ln/install/rsync targets,
touch/mkdir/rm/truncate/chmod/chown operands, dd of=) and resolves them against the workspace root. It
cannot see through variables, `cd`, eval, or a program that writes on its own: a shell command can always
hide a write, so the sandbox (read-only root filesystem, private /tmp and HOME) is the real guarantee;
this rule exists to give the model a clear, early explanation. /tmp and /dev/null-like paths are allowed:
inside a sandbox /tmp is private, and scratch scripts commonly go there.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from devloop.types import ToolCall

_SEPARATORS = {";", "&&", "||", "|", "&", "(", ")", "|&", ";;"}
_REDIRECTS = {">", ">>", "&>", "&>>", ">|", ">&"}
_INPUTS = {"<", "<<", "<<<", "<&", "<<-"}
_LAST_ARG_TARGET = {"cp", "mv", "ln", "install", "rsync", "scp"}
_ALL_ARGS_TARGET = {"touch", "mkdir", "rm", "rmdir", "truncate", "chmod", "chown", "chgrp", "tee", "unlink"}
_EDITOR_WRITES = {"create", "str_replace", "insert", "undo_edit"}
ALLOWED_OUTSIDE: tuple[Path, ...] = (Path("/tmp"), Path("/dev/null"), Path("/dev/stdout"), Path("/dev/stderr"),
                                     Path("/dev/fd"))


def writes_outside(call: ToolCall, root: Path) -> str | None:
    """The first path outside `root` that `call` would write, or None."""
    args = call.arguments if isinstance(call.arguments, dict) else {}
    if call.name == "execute_bash" and isinstance(args.get("command"), str):
        targets = bash_write_targets(args["command"])
    elif call.name == "str_replace_editor" and args.get("command") in _EDITOR_WRITES:
        targets = [str(args.get("path", ""))]
    else:
        return None
    for target in targets:
        if target and _outside(target, root):
            return target
    return None


def _outside(target: str, root: Path) -> bool:
    if target.startswith("~"):
        return True  # HOME is never the workspace
    if target.startswith("$") or "$(" in target or "`" in target:
        return False  # unknown until the shell expands it; the sandbox decides
    path = Path(os.path.normpath(root / target))  # `root / "/abs"` is "/abs"
    root = Path(os.path.normpath(root))
    if path == root or root in path.parents:
        return False
    return not any(path == ok or ok in path.parents for ok in ALLOWED_OUTSIDE)


def bash_write_targets(command: str) -> list[str]:
    """Paths a bash command line names as write targets (best effort; [] if it does not parse)."""
    lexer = shlex.shlex(command.replace("\n", " ; "), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:  # unbalanced quotes: bash will refuse it too
        return []
    targets: list[str] = []
    words: list[str] = []
    expect_target = skip = False
    for token in [*tokens, ";"]:
        if expect_target:
            targets.append(token)
            expect_target = False
            continue
        if skip:
            skip = False
            continue
        if token in _INPUTS or (token.startswith("<") and token.strip("<&-") == ""):
            skip = True  # the next word is an input file or a here-doc delimiter
            continue
        if token in _REDIRECTS or (token.endswith(">") and token.rstrip(">&").isdigit()):
            expect_target = True
            continue
        if token in _SEPARATORS:
            targets += _command_targets(words)
            words = []
            continue
        words.append(token)
    return targets


def _command_targets(words: list[str]) -> list[str]:
    while words and ("=" in words[0] and not words[0].startswith("=")):  # VAR=value prefixes
        words = words[1:]
    if words and words[0] in ("sudo", "command", "exec", "nohup", "env", "time"):
        words = words[1:]
    if not words:
        return []
    name = Path(words[0]).name
    operands = [w for w in words[1:] if not w.startswith("-")]
    if name == "dd":
        return [w[3:] for w in words[1:] if w.startswith("of=")]
    if name in _LAST_ARG_TARGET:
        target_dir = next((w.split("=", 1)[1] for w in words if w.startswith("--target-directory=")), None)
        if "-t" in words[:-1]:
            target_dir = words[words.index("-t") + 1]
        return [target_dir] if target_dir else operands[-1:] if len(operands) >= 2 else []
    if name in _ALL_ARGS_TARGET:
        if name in ("chmod", "chown", "chgrp"):
            operands = operands[1:]  # the mode / owner
        return operands
    return []
