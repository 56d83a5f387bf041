"""The kernel's word that a step changed nothing in the tree, so that its patch needs no stat scan.

The per-step patch (scan.py) walks the whole tree after every step to learn whether anything changed:
a fraction of a millisecond on a small repository, tens of milliseconds at thousands of files, on a
step that, most of the time, only read. Linux can say it directly: inotify reports every entry
created, removed, renamed, written, closed after writing or changed in its metadata (a mode, its
times) in each directory it watches. A TreeWatch watches the directories the last scan
walked, each added just before the scan lists it: a change made after that reaches the queue, one made
before is in the scan. While the queue stays empty of anything the scan would see, the tree is what
that scan found and the scan is not taken again; when its events name only files (written, made,
removed, renamed, their modes or times changed), only their directories are listed again (scan.rescan);
a directory made, removed or moved takes a whole scan.

What inotify cannot report is a write through a name that lives outside the watched directories (a
hard link's other name; a bind mount's other path) and a write through a shared memory mapping. The
second needs a file open for writing, whose close is reported once the process that mapped it has
ended, which every command's processes have by the end of the command. For the first, a tree that holds
a file with more than one link when it is scanned is never vouched for. A link made after the scan is
reported when its new name lies in a watched directory; made into one the scan does not walk (`.git`,
scratch, a directory outside the tree on the same file system), it is not, nor is a write through it:
the steps' patches can then lag behind such a write until the next scan, and the run's final patch,
which always takes its scan, has it. Nothing of the host is at stake (a watch reads no file and follows
no link: it is added on the directory the scan opened), only how soon a step's patch shows that write.
Anything else unsure (the queue overflowed, a watch could not be added: the user's watch limit, no
/proc) makes the next patch take its scan, as without a watch.
"""

from __future__ import annotations

import threading
from typing import Any

from devloop.workspace.scan import SCRATCH_SUFFIXES, UNSCANNED

_MASK = _UNSURE = _ISDIR = 0  # inotify's flags, set on the first open (inotify_simple is imported then)


def _inotify() -> Any:
    """inotify_simple's INotify class with the flags set up, or None where it is missing (not Linux)."""
    global _MASK, _UNSURE, _ISDIR
    try:
        import ctypes

        import inotify_simple
        from inotify_simple import INotify
        from inotify_simple import flags as f
    except (ImportError, OSError):  # pragma: no cover - not Linux
        return None
    if getattr(inotify_simple, "_libc", False) is None:
        # Left to itself it finds libc with ctypes.util.find_library, which runs `ldconfig -p`: ~30 ms,
        # a process spawn, in every devloop process that makes a workspace. The process's own symbols
        # hold libc's inotify calls already.
        inotify_simple._libc = ctypes.CDLL(None, use_errno=True)
    _MASK = int(
        f.MODIFY | f.ATTRIB | f.CLOSE_WRITE | f.CREATE | f.DELETE | f.MOVED_FROM | f.MOVED_TO
        | f.DELETE_SELF | f.MOVE_SELF | f.ONLYDIR
    )  # fmt: skip
    _UNSURE, _ISDIR = int(f.Q_OVERFLOW | f.IGNORED | f.UNMOUNT), int(f.ISDIR)
    return INotify


class TreeWatch:
    """inotify watches on a tree's directories, added by the scan (`add`), asked what the scan would see
    that changed since it began (`changed`: the directories whose entries changed, or None when only a
    whole scan can tell). Thread-safe."""

    def __init__(self, inotify: Any) -> None:
        self._inotify = inotify
        self._lock = threading.Lock()
        self._unknown = True  # nothing scanned under watch yet
        self._broken = False  # a watch could not be added: this scan is not covered
        self._linked = False  # the scan met a file with another name somewhere
        self._dirs: set[str] = set()  # directories (as ScanRecords names them) whose entries changed
        self._where: dict[int, str] = {}  # watch -> its directory, as the last scan that met it named it
        self._wd_of: dict[tuple[int, int], int] = {}  # (device, inode) of a watched directory -> watch
        self._inodes: dict[int, tuple[int, int]] = {}
        self._top = -1  # the tree's own watch: `.git` and `.devloop` are scratch only there
        self.closed = False

    @classmethod
    def open(cls) -> TreeWatch | None:
        """A new watch, or None where inotify is missing or refused (the per-user instance limit)."""
        made = _inotify()
        if made is None:
            return None
        try:
            return cls(made(nonblocking=True))
        except OSError:
            return None

    def begin(self) -> None:
        """A whole scan starts: what was queued is what it will see."""
        with self._lock:
            self._drain(record=False)
            self._unknown = self._broken = self._linked = False
            self._dirs = set()

    def settled(self, dirs: set[str]) -> None:
        """Those directories were listed again (scan.rescan): their changes until then are in the records."""
        with self._lock:
            self._dirs -= dirs

    def add(self, fd: int, inode: tuple[int, int], where: str) -> None:
        """Watch the directory `where`, open at `fd` ((device, inode) `inode`), before the scan lists it."""
        wd = self._wd_of.get(inode)
        if wd is not None:
            self._where[wd] = where
            return
        if self._broken:
            return
        try:
            wd = self._inotify.add_watch(f"/proc/self/fd/{fd}", _MASK)
        except OSError:  # ENOSPC (the watch limit), no /proc, the directory gone
            self._broken = True
            return
        self._where[wd], self._wd_of[inode], self._inodes[wd] = where, wd, inode
        if where == "":
            self._top = wd

    @property
    def covered(self) -> bool:
        """Whether the scan under way (or the last) had a watch on every directory and met no linked file."""
        return not (self._broken or self._linked)

    def linked(self) -> None:
        """The scan met a file with more than one link: a write through the other name is not seen."""
        self._linked = True

    def changed(self) -> set[str] | None:
        """The directories whose entries (files, links) changed since the scan began, as far as the scan
        would see them; None when only a whole scan can tell (a directory made, removed or moved, the
        queue overflowed, the scan not covered)."""
        with self._lock:
            if self.closed:
                return None
            self._drain(record=True)
            return None if self._unknown or self._broken or self._linked else set(self._dirs)

    def quiet(self) -> bool:
        """Whether nothing the scan would see has changed since it began (and the scan was covered)."""
        return self.changed() == set()

    def close(self) -> None:
        with self._lock:
            if not self.closed:
                self.closed = True
                self._inotify.close()

    def _drain(self, *, record: bool) -> None:
        try:
            events = list(self._inotify.read(timeout=0))
        except OSError:
            self._unknown = True
            return
        for event in events:
            if event.mask & _UNSURE:
                self._unknown = True
                inode = self._inodes.pop(event.wd, None)  # the kernel dropped this watch
                if inode is not None:
                    self._wd_of.pop(inode, None)
                    self._where.pop(event.wd, None)
                continue
            is_dir = bool(event.mask & _ISDIR)
            if not record or self._scratch(event.wd, event.name, is_dir):
                continue
            where = self._where.get(event.wd)
            if is_dir or not event.name or where is None:  # the directories themselves changed
                self._unknown = True
            else:
                self._dirs.add(where)

    def _scratch(self, wd: int, name: str, is_dir: bool) -> bool:
        """Whether the scan leaves this entry out (scan.py's rules), so that its change changes nothing."""
        where = UNSCANNED.get(name)
        if where == "top":
            return wd == self._top
        if where == "top-dir":
            return is_dir and wd == self._top
        if where == "dir":
            return is_dir
        if where == "file":
            return not is_dir
        return bool(name) and not is_dir and name.endswith(SCRATCH_SUFFIXES)
