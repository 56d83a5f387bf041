"""What a chat turn tells the model besides the user's words: project instructions (AGENTS.md), the state
of the repository (branch, dirty files, recent commits), and the files and images the user `@`-mentioned.

Everything here reads the user's tree, which the model has written to: files are read beneath an open
fd of the repository (`safefs`), so a link the model planted never leads a mention out of the tree; git
runs with devloop's isolated configuration (no hooks, fsmonitor, attributes, filters or pager reach it).
"""

from __future__ import annotations

import base64
import contextlib
import mimetypes
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from devloop.safefs import EscapeError, SafeFSError, SafeRoot
from devloop.workspace import _GIT, isolated_git_env

INSTRUCTIONS = "AGENTS.md"
MAX_INSTRUCTION_BYTES = 64_000
MAX_ATTACHMENT_BYTES = 200_000
MAX_IMAGE_BYTES = 10_000_000
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
               ".webp": "image/webp"}  # fmt: skip
# `@path`: after a blank or at the start; a path of the characters file names usually hold.
MENTION = re.compile(r"(?:(?<=\s)|^)@([\w./~+-][\w./+-]*)")


def user_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir("devloop"))


@dataclass
class Instructions:
    """AGENTS.md files, farthest first (user level, repository root, ... the current directory)."""

    files: list[tuple[str, str]] = field(default_factory=list)  # (where, text)

    def text(self) -> str:
        if not self.files:
            return ""
        parts = [f"--- {where} ---\n{body.strip()}" for where, body in self.files]
        return ("Project instructions (AGENTS.md; where they disagree, the later, closer file wins):\n\n"
                + "\n\n".join(parts))  # fmt: skip


def instructions(repo: Path, cwd: Path | None = None, user_file: Path | None = None) -> Instructions:
    """The user-level AGENTS.md, then the repository's from its root down to `cwd` (when inside it)."""
    found = Instructions()
    user = user_file if user_file is not None else user_dir() / INSTRUCTIONS
    if user.is_file() and not user.is_symlink():
        with contextlib.suppress(OSError):
            found.files.append((str(user), user.read_text(encoding="utf-8", errors="replace")))
    repo = repo.resolve()
    here = (cwd or Path.cwd()).resolve()
    parts = here.relative_to(repo).parts if here == repo or here.is_relative_to(repo) else ()
    with SafeRoot(repo) as root:
        for depth in range(len(parts) + 1):
            rel = "/".join([*parts[:depth], INSTRUCTIONS])
            try:
                body = root.read_text(rel, max_bytes=MAX_INSTRUCTION_BYTES, shown=rel)
            except (SafeFSError, OSError):
                continue  # missing, a link out of the tree, too large, not a file
            found.files.append((rel, body))
    return found


def _git(repo: Path, *args: str) -> str:
    """Read-only git in the user's repository under devloop's isolated configuration; "" on failure."""
    dotgit = repo / ".git"
    if dotgit.is_symlink() or not dotgit.is_dir():
        return ""
    env = isolated_git_env() | {"GIT_DIR": str(dotgit), "GIT_WORK_TREE": str(repo)}
    try:
        proc = subprocess.run([*_GIT, *args], cwd=repo, env=env, capture_output=True, check=False, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stdout.decode(errors="replace") if proc.returncode == 0 else ""


@dataclass
class GitState:
    branch: str = ""
    dirty: list[str] = field(default_factory=list)
    commits: list[str] = field(default_factory=list)

    def text(self) -> str:
        if not self.branch and not self.commits:
            return ""
        dirty = "\n".join(f"  {d}" for d in self.dirty[:30]) or "  (none)"
        more = f"\n  ... and {len(self.dirty) - 30} more" if len(self.dirty) > 30 else ""
        commits = "\n".join(f"  {c}" for c in self.commits) or "  (none)"
        return (f"Repository state: branch {self.branch or '(detached HEAD)'}\n"
                f"Changed files since the last commit:\n{dirty}{more}\nRecent commits:\n{commits}")  # fmt: skip


def git_state(repo: Path, private_gitdir: Path, commits: int = 5) -> GitState:
    """Branch, changed files and recent commits. The files are compared through devloop's private git
    dir (the checkpoints' store, with the repository's objects as alternates), never by `git status` in
    the repository: status reads its .git/config and would run a clean filter or fsmonitor named there.
    The commands that do read the repository (symbolic-ref, rev-parse, log without a patch or signature
    check) run no program its configuration names."""
    import tempfile

    repo = repo.resolve()
    branch = _git(repo, "symbolic-ref", "-q", "--short", "HEAD").strip()
    head = _git(repo, "rev-parse", "-q", "--verify", "HEAD^{commit}").strip()
    log = (
        _git(repo, "log", f"-{commits}", "--no-decorate", "--no-show-signature", "--format=%h %s")
        if head
        else ""
    )
    dirty: list[str] = []
    if private_gitdir.is_dir() and (repo / ".git").is_dir():
        with tempfile.TemporaryDirectory(prefix="devloop-state-") as tmp:
            env = isolated_git_env() | {
                "GIT_DIR": str(private_gitdir), "GIT_WORK_TREE": str(repo), "GIT_INDEX_FILE": f"{tmp}/index",
                "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(repo / ".git" / "objects"),
            }  # fmt: skip

            def run(*args: str) -> str:
                proc = subprocess.run([*_GIT, *args], cwd=repo, env=env, capture_output=True, check=False,
                                      timeout=30)  # fmt: skip
                return proc.stdout.decode(errors="replace") if proc.returncode == 0 else ""

            if head:
                run("read-tree", head)
            run("add", "-A", "--ignore-errors", "--", ".", ":(exclude).devloop")
            out = run("diff-index", "--cached", "--name-status", "--no-renames", head) if head else \
                run("ls-files", "--cached")  # fmt: skip
            dirty = [line.replace("\t", " ", 1) for line in out.splitlines() if line.strip()]
            if not head:
                dirty = [f"A {line}" for line in dirty]
    return GitState(branch, dirty, log.splitlines())


@dataclass
class Attachments:
    text: str = ""  # the attached files, as text for the prompt
    images: list[dict[str, object]] = field(default_factory=list)  # OpenAI image content parts
    names: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def mentions(prompt: str) -> list[str]:
    return [m.rstrip(".,;:!?") for m in MENTION.findall(prompt)]


def attach(repo: Path, prompt: str, images: bool = True) -> Attachments:
    """The files `@`-mentioned in `prompt`, read beneath the repository (a link out of it is refused).
    Images become base64 data-URL content parts unless `images` is off for the model."""
    out = Attachments()
    blocks: list[str] = []
    with SafeRoot(repo.resolve()) as root:
        for name in dict.fromkeys(mentions(prompt)):
            rel = os.path.normpath(name)
            if rel.startswith("..") or os.path.isabs(rel):
                out.problems.append(f"@{name}: outside the repository; not attached")
                continue
            image_type = IMAGE_TYPES.get(Path(rel).suffix.lower())
            if image_type and not images:
                out.problems.append(
                    f"@{name}: this model does not take images (images = false in the chat config); not sent"
                )
                continue
            try:
                data = root.read_bytes(rel, max_bytes=MAX_IMAGE_BYTES if image_type else MAX_ATTACHMENT_BYTES,
                                       shown=name)  # fmt: skip
            except EscapeError:
                out.problems.append(f"@{name}: leads out of the repository (a symbolic link); not attached")
                continue
            except (SafeFSError, OSError) as e:
                out.problems.append(f"@{name}: {getattr(e, 'reason', None) or e.strerror or e}; not attached")
                continue
            out.names.append(name)
            if image_type:
                url = f"data:{image_type};base64,{base64.b64encode(data).decode()}"
                out.images.append({"type": "image_url", "image_url": {"url": url}})
            else:
                kind = mimetypes.guess_type(name)[0] or ""
                body = data.decode("utf-8", errors="replace")
                blocks.append(f'<file path="{name}"{f" type={kind!r}" if kind else ""}>\n{body}\n</file>')
    out.text = "Files the user attached:\n" + "\n".join(blocks) if blocks else ""
    return out


def images_enabled(model: str, config: Path | None = None) -> bool:
    """Whether `model` takes images: yes unless the user's chat config says `images = false` for it:

    # <user config dir>/devloop/chat.toml
    [models."openai/devstral"]
    images = false
    """
    import tomllib

    path = config if config is not None else user_dir() / "chat.toml"
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return True
    entry = (table.get("models") or {}).get(model) or {}
    return entry.get("images", True) is not False


def turn_context(repo: Path, prompt: str, model: str, private_gitdir: Path) -> tuple[str, Attachments]:
    """What goes before a turn's request: AGENTS.md, the repository's state, the attached files."""
    files = attach(repo, prompt, images_enabled(model))
    parts = [instructions(repo).text(), git_state(repo, private_gitdir).text(), files.text]
    return "\n\n".join(p for p in parts if p), files
