"""An editor call shown as a diff before it is written, and rewritten when the user edits the change.

The proposed content is computed with the editor's own helpers (the same replace / insert rules, the
file read beneath the tree's open fd), so what is shown is what the tool would write.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass

from devloop.safefs import EscapeError, SafeFSError, SafeRoot
from devloop.tools.editor import resolve_path
from devloop.tools.edits import insert_after, replace_once
from devloop.tools.textfile import EditorError, read_text
from devloop.types import ToolCall

WRITES = ("create", "str_replace", "insert")
# Places in the tree the editor never writes from chat: the repository's git directory (a config or hook
# there runs in the user's next git command on the host) and devloop's own files (approvals, commands).
GUARDED = (".git", ".devloop", "devloop.toml")  # hooks and config; approvals; settings (sandbox, server)


@dataclass
class Proposed:
    rel: str  # the file, relative to the tree (links inside it resolved)
    before: str | None  # None: the file does not exist yet
    after: str

    def diff(self) -> str:
        old = [] if self.before is None else self.before.splitlines(keepends=True)
        new = self.after.splitlines(keepends=True)
        lines = difflib.unified_diff(old, new, "/dev/null" if self.before is None else f"a/{self.rel}",
                                     f"b/{self.rel}")  # fmt: skip
        return "".join(
            line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
        )


def guarded(rel: str) -> bool:
    first = rel.split("/", 1)[0]
    return first in GUARDED


def canonical(fs: SafeRoot, rel: str, shown: str) -> str:
    """`rel` with the links inside the tree resolved, as far as it exists (the editor makes missing
    directories, and a link on the way decides where they go). EscapeError for a way out of the tree."""
    parts = [p for p in rel.split("/") if p]
    for keep in range(len(parts), 0, -1):
        try:
            head = fs.resolve("/".join(parts[:keep]), shown=shown)
        except EscapeError:
            raise
        except SafeFSError:
            continue
        return "/".join(p for p in [head, *parts[keep:]] if p)
    return rel


def propose(call: ToolCall, root: os.PathLike[str] | str) -> Proposed | None:
    """What `call` would write, or None when it writes nothing or the editor will refuse it anyway (it
    then reports the problem to the model itself). EscapeError for a path that leads out of the tree."""
    args = call.arguments if isinstance(call.arguments, dict) else {}
    command = args.get("command")
    if call.name != "str_replace_editor" or command not in WRITES or not isinstance(args.get("path"), str):
        return None
    try:
        target = resolve_path(args["path"], root)  # type: ignore[arg-type]
    except EditorError:
        return None
    with SafeRoot(root) as fs:
        rel = canonical(fs, target.rel, target.shown)
        try:
            kind = fs.kind(target.rel, shown=target.shown)
        except EscapeError:
            raise
        except SafeFSError:
            kind = None  # a missing directory on the way: `create` makes it
        if guarded(rel):  # whatever the call is, so the caller refuses it
            return Proposed(rel, None, "")
        try:
            if command == "create":
                text = args.get("file_text")
                return Proposed(rel, None, text) if kind is None and isinstance(text, str) else None
            if kind != "file":
                return None
            tf = read_text(fs, target.rel, target.shown)
            if command == "str_replace":
                edit = replace_once(tf.text, args.get("old_str") or "", args.get("new_str") or "", tf.newline,
                                    target.shown)  # fmt: skip
            else:
                line = args.get("insert_line")
                if not isinstance(line, int) or not isinstance(args.get("new_str"), str):
                    return None
                edit = insert_after(tf.text, line, args["new_str"], tf.newline, target.shown)
        except EditorError:
            return None
    return Proposed(rel, tf.text, edit.text)


def rewrite(call: ToolCall, proposed: Proposed, text: str) -> None:
    """Make `call` write `text` instead (the user edited the change): the same file, its whole content."""
    path = call.arguments["path"]
    if proposed.before is None:
        call.arguments.clear()
        call.arguments.update(command="create", path=path, file_text=text)
    elif proposed.before == "":
        call.arguments.clear()
        call.arguments.update(command="insert", path=path, insert_line=0, new_str=text)
    else:
        call.arguments.clear()
        call.arguments.update(command="str_replace", path=path, old_str=proposed.before, new_str=text)
