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
import re
from pathlib import Path

from devloop.types import ToolCall

_LAST_ARG_TARGET = {"cp", "mv", "ln", "install", "rsync", "scp"}
_ALL_ARGS_TARGET = {"touch", "mkdir", "rm", "rmdir", "truncate", "chmod", "chown", "chgrp", "tee", "unlink"}
_EDITOR_WRITES = {"create", "str_replace", "insert", "undo_edit"}
ALLOWED_OUTSIDE: tuple[Path, ...] = (
    Path("/tmp"),
    Path("/dev/null"),
    Path("/dev/stdout"),
    Path("/dev/stderr"),
    Path("/dev/fd"),
)


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


# One shell token at a time, after blanks (ASCII only: to bash, a Unicode space is part of a word).
# Possessive quantifiers keep a word with an unclosed quote from being retried piece by piece
# (quadratic); the scan stops there, as bash would refuse the command too.
_TOKEN = re.compile(
    r"""[ \t\r\f\v]*+(?:(?P<newline>\n[ \t\r\f\v\n]*+)
    |(?P<comment>\#[^\n]*+)
    |(?P<redirect>\d*+(?:&>>|&>|>>|>&|>\||<<<|<<-|<<|<&|<>|>|<))
    |(?P<separator>[;|&()]++)  # a run of them separates just as one does
    |(?P<word>(?:[^ \t\n\r\f\v;&|()<>'"\\]++|'[^']*+'|"[^"\\]*+(?:\\.[^"\\]*+)*+"|\\.)++)
    |(?P<end>\Z))""",
    re.VERBOSE | re.DOTALL,
)
_QUOTED = re.compile(r"""'([^']*)'|"([^"\\]*(?:\\.[^"\\]*)*)"|\\(.)|([^'"\\]+)""", re.DOTALL)
# Inside double quotes a backslash escapes only these (bash); before anything else it stays.
_DOUBLE_QUOTED_ESCAPE = re.compile(r"\\([$`\"\\\n])")


def shell_tokens(command: str) -> list[tuple[str, str]] | None:
    """`command` as (kind, text) tokens, kinds: word (quotes removed), separator, redirect, input
    (`<`, `<<`, `<<<`, `<&`). Newlines are separators; comments and here-document bodies are dropped.
    None when the command does not tokenize (an unclosed quote). One pass, linear in the command."""
    tokens: list[tuple[str, str]] = []
    heredocs: list[tuple[str, bool]] = []  # delimiters whose bodies start after the next newline
    pos = 0
    while pos < len(command):
        match = _TOKEN.match(command, pos)
        if match is None:
            return None
        kind = match.lastgroup
        text = match.group(kind) if kind else ""
        pos = match.end()
        if kind == "end":
            break
        if kind == "newline":  # blank lines too: one token, not one per character
            tokens.append(("separator", ";"))
            if heredocs:
                pos = match.start("newline") + 1
                for delimiter, strip_tabs in heredocs:
                    pos = _heredoc_end(command, pos, delimiter, strip_tabs)
                heredocs = []
        elif kind == "redirect":
            inputs = text.lstrip("0123456789") in ("<", "<<", "<<-", "<<<", "<&")
            tokens.append(("input" if inputs else "redirect", text))
        elif kind == "word":
            word = _unquote(text)
            if tokens and tokens[-1][0] == "input" and tokens[-1][1].lstrip("0123456789") in ("<<", "<<-"):
                heredocs.append((word, tokens[-1][1].endswith("-")))
            tokens.append(("word", word))
        elif kind == "separator":
            tokens.append(("separator", text))
    return tokens


def _heredoc_end(command: str, pos: int, delimiter: str, strip_tabs: bool) -> int:
    """Where the here-document body starting at `pos` ends: after its delimiter line, or at the end."""
    line = re.compile(("^\t*" if strip_tabs else "^") + re.escape(delimiter) + "$", re.MULTILINE)
    match = line.search(command, pos)
    return len(command) if match is None else min(len(command), match.end() + 1)


def _unquote(word: str) -> str:
    """A shell word with its quotes and escapes removed, as the command would receive it."""
    if "'" not in word and '"' not in word and "\\" not in word:
        return word
    parts = []
    for match in _QUOTED.finditer(word):
        single, double, escaped, plain = match.groups()
        if single is not None:
            parts.append(single)
        elif double is not None:
            parts.append(
                _DOUBLE_QUOTED_ESCAPE.sub(lambda m: "" if m.group(1) == "\n" else m.group(1), double)
            )
        elif escaped is not None:
            parts.append("" if escaped == "\n" else escaped)  # backslash-newline continues the line
        else:
            parts.append(plain)
    return "".join(parts)


def bash_write_targets(command: str) -> list[str]:
    """Paths a bash command line names as write targets (best effort; [] if it does not parse)."""
    tokens = shell_tokens(command)
    if tokens is None:  # unbalanced quotes: bash will refuse it too
        return []
    targets: list[str] = []
    words: list[str] = []
    expect_target = skip = False
    for kind, text in [*tokens, ("separator", ";")]:
        if expect_target or skip:
            if kind == "word":
                if expect_target:
                    targets.append(text)
                expect_target = skip = False
                continue
            expect_target = skip = False
        if kind == "input":
            skip = True  # the next word is an input file or a here-doc delimiter
        elif kind == "redirect":
            expect_target = True
        elif kind == "separator":
            if words:
                targets += _command_targets(words)
                words = []
        else:
            words.append(text)
    return targets


def _command_targets(words: list[str]) -> list[str]:
    start = 0  # an index, not `words = words[1:]`, which copied the list once per VAR=value prefix
    while start < len(words) and "=" in words[start] and not words[start].startswith("="):
        start += 1
    if start < len(words) and words[start] in ("sudo", "command", "exec", "nohup", "env", "time"):
        start += 1
    words = words[start:]
    if not words:
        return []
    name = words[0].rstrip("/").rsplit("/", 1)[-1]  # the program's base name
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
