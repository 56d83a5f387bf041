"""Deleting paths inside an instance tree without ever following a link in it.

The tree is written by install commands and by a model's patch, so the host treats it as hostile: a
directory in it may have been swapped for a symlink to anywhere. Every operation here walks from an fd of
the tree's root one component at a time with O_NOFOLLOW (openat), and acts on the last component through
its parent's fd, so neither a symlink planted beforehand nor one swapped in during the walk can make the
host delete or open anything outside the tree.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from pathlib import Path

from devloop.tasks.safety import path_problem, shown

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# What openat(O_DIRECTORY | O_NOFOLLOW) answers for a symlink (ELOOP) or a file (ENOTDIR).
_NOT_A_DIR = (errno.ELOOP, errno.ENOTDIR)


class UnsafePathError(ValueError):
    """A path that must not be joined to the tree (absolute, `..`, `.git`...); the message is one line."""


def checked_parts(rel: str) -> list[str]:
    """The components of `rel`, after checking it is a safe relative path (else UnsafePathError)."""
    problem = path_problem(rel)
    if problem is not None:
        raise UnsafePathError(f"path {shown(rel)} {problem}")
    return rel.split("/")


def _remove_entry(dir_fd: int, name: str) -> None:
    """Remove `name` in the directory `dir_fd`: a directory with all it holds, anything else by unlink
    (a symlink is removed itself, never what it points to)."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        # rmtree with dir_fd walks by fd and refuses a directory swapped for a link after this lstat.
        shutil.rmtree(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)


def _open_parent(root_fd: int, parts: list[str], *, clear: bool) -> tuple[int | None, str]:
    """An fd of the directory holding `parts[-1]` (the caller closes it), walking without following links.

    A component that is a symlink or not a directory ends the walk with None (nothing under it is in the
    tree); with `clear`, that entry is first removed itself, as a reset to base needs a directory there.
    """
    fd = os.dup(root_fd)
    for name in parts[:-1]:
        try:
            child = os.open(name, _DIR, dir_fd=fd)
        except FileNotFoundError:
            os.close(fd)
            return None, name
        except OSError as exc:
            if exc.errno not in _NOT_A_DIR:
                os.close(fd)
                raise
            if clear:
                try:
                    _remove_entry(fd, name)
                finally:
                    os.close(fd)
            else:
                os.close(fd)
            return None, name
        os.close(fd)
        fd = child
    return fd, parts[-1]


def remove_beneath(tree: Path, rel: str) -> None:
    """Delete `tree/rel` (file, link or directory, if present) without following any link in the tree.

    A symlink or file standing where `rel` needs a directory is removed itself, so the caller can restore
    the base version; what it pointed to is never touched. UnsafePathError for an unsafe `rel`.
    """
    parts = checked_parts(rel)
    root = os.open(tree, _DIR)
    try:
        parent, name = _open_parent(root, parts, clear=True)
        if parent is None:
            return
        try:
            _remove_entry(parent, name)
        finally:
            os.close(parent)
    finally:
        os.close(root)


def unlink_file_beneath(tree: Path, rel: str) -> bool:
    """Delete `tree/rel` if it is a regular file reached without a link; True when one was deleted.

    Anything else (absent, a directory, a symlink, a path through a symlink, an unsafe path) is left alone.
    """
    if path_problem(rel) is not None:
        return False
    parts = rel.split("/")
    root = os.open(tree, _DIR)
    try:
        parent, name = _open_parent(root, parts, clear=False)
        if parent is None:
            return False
        try:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode):
                return False
            os.unlink(name, dir_fd=parent)  # unlink never follows the last component
            return True
        except FileNotFoundError:
            return False
        finally:
            os.close(parent)
    finally:
        os.close(root)
