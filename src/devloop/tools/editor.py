"""`str_replace_editor`: the file viewer/editor, with OpenHands CodeAct's command and argument names.

It works directly on the host file system under the workspace root (no shell round-trip). The sandbox
can change the workspace meanwhile, so every path is resolved beneath an open fd of the root (`safefs`:
openat2 RESOLVE_BENEATH), never checked and then opened: anything that leads outside the workspace,
even for an instant, is refused. It never changes bytes it was not asked to change: line endings,
encoding, BOM and the final newline survive every edit (see `textfile` and `edits`).
"""

from __future__ import annotations

import errno
import json
import os
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from devloop.safefs import EscapeError, SafeFSError, SafeRoot
from devloop.tools.base import ToolContext, ToolSpec
from devloop.tools.common import load_description, make_spec
from devloop.tools.edits import Edit, insert_after, numbered, replace_once, snippet
from devloop.tools.textfile import (
    EditorError,
    TextFile,
    read_text,
    split_lines,
    write_bytes,
)
from devloop.types import Observation

Command = Literal["view", "create", "str_replace", "insert", "undo_edit"]

# Larger views are cut at a line boundary; a single line longer than a quarter of this is shortened.
DEFAULT_MAX_VIEW_CHARS = 16_000
MAX_DIR_ENTRIES = 1_000
# Undo states kept per file; older ones are dropped.
MAX_UNDO_DEPTH = 50


class EditorArgs(BaseModel):
    """Arguments of `str_replace_editor`; the field descriptions are the schema the model reads."""

    model_config = ConfigDict(extra="forbid")

    command: Command = Field(
        description="The command to run: `view`, `create`, `str_replace`, `insert` or `undo_edit`."
    )
    path: str = Field(
        description="Absolute path of the file or directory inside the workspace, e.g. `/workspace/repo/app.py`."
    )
    file_text: str | None = Field(
        default=None, description="Required for `create`: the complete content of the new file."
    )
    old_str: str | None = Field(
        default=None,
        description="Required for `str_replace`: the exact text to replace. It must occur exactly once in the file.",
    )
    new_str: str | None = Field(
        default=None,
        description="For `str_replace`: the replacement text (empty to delete `old_str`). "
        "Required for `insert`: the lines to insert.",
    )
    insert_line: int | None = Field(
        default=None,
        description="Required for `insert`: `new_str` goes after this line number (0 = at the top of the file).",
    )
    view_range: list[int] | None = Field(
        default=None,
        description="Optional for `view` of a file: [start, end] line numbers, 1-based and inclusive, "
        "e.g. [11, 40]; end -1 means to the end of the file.",
    )

    @field_validator("view_range", mode="before")
    @classmethod
    def _range_from_text(cls, value: Any) -> Any:
        # Models often send the range as the text "[11, 40]" (or "11,40") instead of a JSON array.
        if isinstance(value, str):
            text = value.strip()
            try:
                return json.loads(text if text.startswith("[") else f"[{text}]")
            except ValueError:
                return value
        return value


@dataclass
class Target:
    """A path the model named: how to show it, where it is relative to the workspace root, and the open
    root every file operation on it goes through."""

    raw: str
    shown: str
    rel: str
    root: Path
    fs: SafeRoot | None = None

    @property
    def files(self) -> SafeRoot:
        assert self.fs is not None, "the target's root is opened by EditorTool.run"
        return self.fs

    def kind(self) -> str | None:
        """'dir', 'file' (regular), 'other' (device, socket, pipe) or None when it does not exist."""
        try:
            return self.files.kind(self.rel, shown=self.shown)
        except EscapeError:
            raise
        except SafeFSError as exc:
            raise EditorError(f"Cannot read {self.shown}: {exc.strerror}.") from None

    def key(self) -> str:
        """The file behind the path (links inside the workspace followed), to key the undo history."""
        try:
            return self.files.resolve(self.rel, shown=self.shown)
        except EscapeError:
            raise
        except SafeFSError:  # e.g. a missing directory: the path as named is the best key left
            return self.rel


class EditorTool:
    """The `str_replace_editor` tool. One instance per run: it holds that run's undo history."""

    name: ClassVar[str] = "str_replace_editor"
    Args: ClassVar[type[BaseModel]] = EditorArgs

    def __init__(self, max_view_chars: int = DEFAULT_MAX_VIEW_CHARS) -> None:
        self.max_view_chars = max_view_chars
        # Per file (its canonical path in the workspace), the bytes before each edit (None: the file did
        # not exist), newest last.
        self._history: dict[str, list[bytes | None]] = {}

    def spec(self) -> ToolSpec:
        """Name, description (from the .md file) and argument schema, as the model sees them."""
        return make_spec(self.name, EditorArgs, load_description("editor"))

    def run(self, args: BaseModel, ctx: ToolContext) -> Observation:
        """Run one editor command. Problems become error observations, never exceptions."""
        a = args if isinstance(args, EditorArgs) else EditorArgs.model_validate(args.model_dump())
        meta: dict[str, Any] = {"command": a.command, "path": a.path}
        try:
            target = resolve_path(a.path, ctx.root)
            meta["path"] = target.shown
            target.fs = SafeRoot(ctx.root, fence=ctx.protected)
            try:
                text, changed = getattr(self, f"_{a.command}")(a, target)
            finally:
                target.fs.close()
        except EditorError as exc:
            return Observation(text=str(exc), is_error=True, meta=meta)
        except EscapeError as exc:
            return Observation(text=outside_message(target, exc), is_error=True, meta=meta)
        except SafeFSError as exc:  # e.g. the workspace root itself cannot be opened
            return Observation(text=f"{exc}.", is_error=True, meta=meta)
        meta["changed"] = changed
        return Observation(text=text, meta=meta)

    # -- commands: each returns (observation text, whether a file changed) ---------------------------

    def _view(self, a: EditorArgs, t: Target) -> tuple[str, bool]:
        if t.kind() == "dir":
            if a.view_range is not None:
                raise EditorError(f"view_range only applies to files, and {t.shown} is a directory.")
            return list_directory(t), False
        tf = self._read_existing(t)
        lines = split_lines(tf.text)
        start, end = check_view_range(a.view_range, len(lines), t.shown)
        if not lines:
            return f"{t.shown} is empty.{tf.encoding_note}", False
        body = self._clip(lines[start - 1 : end], start, len(lines))
        span = "" if a.view_range is None else f" (lines {start}-{end} of {len(lines)})"
        return f"Contents of {t.shown}{span}, with line numbers:{tf.encoding_note}\n{body}", False

    def _create(self, a: EditorArgs, t: Target) -> tuple[str, bool]:
        if a.file_text is None:
            raise EditorError("The `create` command needs `file_text`: the full content of the new file.")
        kind = t.kind()
        if kind == "dir":
            raise EditorError(f"{t.shown} is an existing directory; `create` needs a new file path.")
        if kind is not None:
            raise EditorError(already_exists(t))
        data = TextFile("", "utf-8").encode(a.file_text, t.shown)
        try:
            t.files.mkdirs(posixpath.dirname(t.rel), shown=t.shown)
        except EscapeError:
            raise
        except SafeFSError as exc:
            raise EditorError(f"Cannot create the directory of {t.shown}: {exc.strerror}.") from None
        try:
            write_bytes(t.files, t.rel, data, t.shown, exclusive=True)
        except EditorError:
            if t.kind() is not None:  # made meanwhile (by the sandbox): still never overwritten
                raise EditorError(already_exists(t)) from None
            raise
        self._remember(t.key(), None)
        count = len(split_lines(a.file_text))
        return f"Created {t.shown} ({count} line{'s' if count != 1 else ''}).", True

    def _str_replace(self, a: EditorArgs, t: Target) -> tuple[str, bool]:
        if a.old_str is None:
            raise EditorError("The `str_replace` command needs `old_str`: the exact text to replace.")
        tf = self._read_existing(t)
        edit = replace_once(tf.text, a.old_str, a.new_str or "", tf.newline, t.shown)
        return self._apply(t, tf, edit, "Edited")

    def _insert(self, a: EditorArgs, t: Target) -> tuple[str, bool]:
        if a.insert_line is None:
            raise EditorError("The `insert` command needs `insert_line`: the line after which to insert.")
        if a.new_str is None:
            raise EditorError("The `insert` command needs `new_str`: the lines to insert.")
        tf = self._read_existing(t)
        edit = insert_after(tf.text, a.insert_line, a.new_str, tf.newline, t.shown)
        return self._apply(t, tf, edit, "Inserted into")

    def _undo_edit(self, a: EditorArgs, t: Target) -> tuple[str, bool]:
        key = t.key()
        stack = self._history.get(key)
        if not stack:
            raise EditorError(
                f"There is no edit of {t.shown} to undo: only `create`, `str_replace` and `insert` "
                "made with this tool can be undone."
            )
        before = stack.pop()
        if before is None:
            try:
                t.files.unlink(t.rel, follow=True, shown=t.shown)
            except EscapeError:
                raise
            except SafeFSError as exc:
                if exc.errno != errno.ENOENT:
                    raise EditorError(f"Cannot remove {t.shown}: {exc.strerror}.") from None
            return f"Undid the creation of {t.shown}: the file no longer exists.", True
        write_bytes(t.files, t.rel, before, t.shown)
        tf = read_text(t.files, t.rel, t.shown)
        lines = split_lines(tf.text)
        body = self._clip(lines, 1, len(lines)) if lines else "(the file is now empty)"
        return f"Undid the last edit of {t.shown}. It now reads:\n{body}", True

    # -- helpers ------------------------------------------------------------------------------------

    def _read_existing(self, t: Target) -> TextFile:
        kind = t.kind()
        if kind == "dir":
            raise EditorError(f"{t.shown} is a directory; this command needs a file.")
        if kind is None:
            raise EditorError(
                f"{t.shown} does not exist. View its parent directory to check the name, "
                "or use `create` to make a new file."
            )
        if kind != "file":
            raise EditorError(f"{t.shown} is not a regular file (a device, socket or pipe).")
        return read_text(t.files, t.rel, t.shown)

    def _apply(self, t: Target, tf: TextFile, edit: Edit, verb: str) -> tuple[str, bool]:
        write_bytes(t.files, t.rel, tf.encode(edit.text, t.shown), t.shown)
        self._remember(t.key(), tf.raw)
        total = len(split_lines(edit.text))
        shown, start, end = snippet(edit.text, edit.first_line, edit.last_line)
        body = self._clip(shown.split("\n"), None, total) if shown else "(the file is now empty)"
        return (
            f"{verb} {t.shown}. Lines {start}-{end} now read (`cat -n` style):\n{body}\n"
            "Check that the change is what you intended, indentation included; edit again if not.",
            True,
        )

    def _remember(self, key: str, before: bytes | None) -> None:
        stack = self._history.setdefault(key, [])
        stack.append(before)
        del stack[:-MAX_UNDO_DEPTH]

    def _clip(self, lines: list[str], first: int | None, total: int) -> str:
        """Number `lines` (unless `first` is None: already numbered) and cut the result at the size cap."""
        line_cap = max(200, self.max_view_chars // 4)
        out: list[str] = []
        size = 0
        for i, line in enumerate(lines):
            if len(line) > line_cap:
                line = line[:line_cap] + f" [... line cut: {len(line) - line_cap} more characters]"
            rendered = line if first is None else numbered([line], first + i)
            if out and size + len(rendered) + 1 > self.max_view_chars:
                if first is None:
                    return "\n".join(out) + "\n[... output cut here to keep it short.]"
                last = first + i - 1
                nxt = min(total, last + 200)
                return "\n".join(out) + (
                    f"\n[... output cut at line {last} of {total}. To see more, view with "
                    f"view_range=[{last + 1}, {nxt}], or search with `grep -n` in execute_bash.]"
                )
            out.append(rendered)
            size += len(rendered) + 1
        return "\n".join(out)


def resolve_path(raw: str, root: Path) -> Target:
    """Map the model's path to a path relative to `root`, lexically; EditorError if it is empty or names
    a place outside the workspace. Links are resolved later, beneath the open root (see `Target.fs`)."""
    if not raw or not raw.strip():
        raise EditorError("`path` is empty: give the absolute path of a file or directory in the workspace.")
    if "\x00" in raw:
        raise EditorError("`path` contains a NUL character, which no file name can hold.")
    root_abs = Path(os.path.abspath(root))
    candidate = Path(raw)
    if not candidate.is_absolute():
        candidate = root_abs / candidate
    shown = os.path.normpath(candidate)
    # The root may be named by its given path or its real one (it is the host's, so resolving it is safe).
    for base in (root_abs, Path(os.path.realpath(root_abs))):
        if Path(shown) == base or Path(shown).is_relative_to(base):
            rel = Path(shown).relative_to(base).as_posix()
            return Target(raw=raw, shown=shown, rel="" if rel == "." else rel, root=root_abs)
    raise EditorError(f"{raw} is outside the workspace. The editor only works on files under {root_abs}.")


def outside_message(t: Target, exc: EscapeError) -> str:
    """The error for a path that leads out of the workspace while being resolved."""
    why = f" (it leads through a symbolic link to {exc.target})" if exc.target else ""
    return f"{t.raw} is outside the workspace{why}. The editor only works on files under {t.root}."


def already_exists(t: Target) -> str:
    return (
        f"{t.shown} already exists, and `create` never overwrites a file. "
        "Use `str_replace` or `insert` to change it (view it first)."
    )


def check_view_range(view_range: list[int] | None, total: int, shown: str) -> tuple[int, int]:
    """The (start, end) lines to show, 1-based inclusive; EditorError with the valid bounds if invalid."""
    if view_range is None:
        return 1, total
    if len(view_range) != 2:
        raise EditorError(f"view_range must be two line numbers [start, end], got {view_range}.")
    start, end = view_range
    if total == 0:
        raise EditorError(f"{shown} is empty, so no view_range applies; view it without one.")
    if not 1 <= start <= total:
        raise EditorError(
            f"view_range start {start} is out of range: {shown} has {total} lines, so start must be "
            f"between 1 and {total}."
        )
    if end == -1:
        return start, total
    if end < start:
        raise EditorError(f"view_range end {end} is before start {start}; use -1 to view to the end.")
    if end > total:
        raise EditorError(
            f"view_range end {end} is beyond the end of {shown}, which has {total} lines; "
            f"use [{start}, {total}] or [{start}, -1]."
        )
    return start, end


def list_directory(t: Target, max_entries: int = MAX_DIR_ENTRIES) -> str:
    """Entries up to 2 levels below the directory, depth-first and sorted; hidden ones left out."""
    entries: list[str] = []
    hidden = 0
    cut = False

    def walk(rel: str, shown: str, depth: int) -> None:
        nonlocal hidden, cut
        try:
            children = t.files.listdir(rel, shown=shown)
        except SafeFSError:
            return
        for child in children:
            if child.name.startswith("."):
                hidden += depth == 1
                continue
            if len(entries) >= max_entries:
                cut = True
                return
            path = f"{shown.rstrip('/')}/{child.name}"
            entries.append(path + ("/" if child.is_dir else ""))
            if child.is_dir and depth < 2:
                walk(posixpath.join(rel, child.name), path, depth + 1)

    walk(t.rel, t.shown, 1)
    head = f"Files and directories up to 2 levels deep in {t.shown}, hidden entries excluded:"
    lines = [head, t.shown.rstrip("/") + "/", *entries]
    if cut:
        lines.append(f"[... listing cut at {max_entries} entries; use `find` or `ls` in execute_bash.]")
    if hidden:
        lines.append(
            f"[{hidden} hidden entr{'ies' if hidden != 1 else 'y'} in {t.shown} not shown; "
            "use `ls -la` to see them.]"
        )
    return "\n".join(lines)
