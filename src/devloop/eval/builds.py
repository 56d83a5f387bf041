"""The build cache: what a task's install command left in its tree and venv (built extensions, generated
files, egg-info, the venv's .pth and finder files), kept per key under `<cache-dir>/builds/` and put back
in a later grading's fresh tree and venv instead of running the install again.

The key is a hash of everything the result depends on: repository and base commit (the tree), the venv's
key (interpreter and pins), the install script, the task's env, whether the tree is a git repository and
what it is called, the sandbox kind, and the machine (OS, architecture, libc, the C compilers on PATH).

An entry is filled once per key, by the first grading to need it (one filler at a time: a file lock, as
for the venvs), right after the install ran in a fresh tree and venv and before any patch is applied, so
what it holds comes from the base commit and the install script only. Every process of the install is
dead by then (the sandbox is ended first). Files are copied (never linked) into the cache as the host's,
read-only, under a temporary name renamed when complete; the sandbox never sees the cache and gets copies
back at restore, so no grading can change an entry. Paths naming the old tree or venv are rewritten at
restore (snapshots.py says what cannot be, and is refused: then the key is marked not cacheable and the
install runs every time). A corrupt entry is discarded and filled again; any other failure of the cache
runs the install, as without it. What happened is the verdict's `extra["build_cache"]`: `filled`,
`reused`, `off` (--no-build-cache), `not cacheable: <why>`, or `fill failed` / `restore failed` /
`cache failed: <why>` (the install ran).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devloop.eval.envs import exclusive
from devloop.eval.snapshots import CorruptEntry, NotCacheable, changes, listing, restore, snapshot
from devloop.eval.taskbox import TaskBox
from devloop.runtime.identity import sandbox_user
from devloop.tasks.model import EnvironmentSpec, Task

FORMAT = 1
"""Bump when what an entry holds or how it is restored changes: older entries are then never used."""
MAX_ENTRY_BYTES = 2 << 30
_MANIFEST = "manifest.json"
_LOG_KEPT = 1 << 20  # the tail of the filling install's log, shown in the logs of the gradings that reuse it


@functools.cache
def machine() -> dict[str, Any]:
    """What a build depends on besides its inputs: the OS, architecture, libc and C compilers on PATH
    (path, size and mtime, so an upgraded compiler is a new key)."""
    compilers = {}
    for name in ("cc", "gcc", "c++", "g++", "clang", "gfortran"):
        if found := shutil.which(name):
            real = os.path.realpath(found)
            st = os.stat(real)
            compilers[name] = [real, st.st_size, st.st_mtime_ns]
    return {"system": platform.system(), "machine": platform.machine(), "libc": list(platform.libc_ver()),
            "compilers": compilers}  # fmt: skip


def key_inputs(task: Task, spec: EnvironmentSpec, venv_key: str, *, git_tree: bool, tree: str,
               sandbox: str) -> dict[str, Any]:  # fmt: skip
    """Everything the install's result depends on (its hash is the key)."""
    return {"format": FORMAT, "repo": task.repo, "base_commit": task.base_commit, "venv": venv_key,
            "install": spec.install, "env": dict(sorted(spec.env.items())), "git_tree": git_tree, "tree": tree,
            "sandbox": sandbox, "machine": machine()}  # fmt: skip


def build_key(inputs: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:32]


class _InstallRaised(Exception):
    """Carries what the install step itself raised through the cache's own error handling."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__(str(exc))
        self.exc = exc


@dataclass
class Entry:
    path: Path
    manifest: dict[str, Any]


def _one_line(exc: BaseException) -> str:
    return f"{exc}".splitlines()[0] if str(exc) else type(exc).__name__


def _paths(path: Path) -> list[str]:
    """A directory's path as given and with links resolved (a build may record either)."""
    return [str(path), os.path.realpath(path)]


class BuildCache:
    """The entries under `root` (`<cache-dir>/builds`). Safe across processes and threads."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()

    def install(self, task: Task, spec: EnvironmentSpec, venv_key: str, box: TaskBox, *, git_tree: bool,
                run: Callable[[], None], refresh: Callable[[], None], install_log: Path,
                timings: dict[str, float], notes: dict[str, Any]) -> None:  # fmt: skip
        """The install step of `box` through the cache: restore the entry for this key, or run the install
        (`run`, which raises when it fails) and fill the entry. `refresh` makes the box's tree and venv
        fresh again after a restore that failed half-way. `notes["build_cache"]` gets the status (and
        `build_cache_bytes` the size of a new entry); `timings` the restore or fill seconds."""
        ran = False

        def guarded() -> None:
            nonlocal ran
            ran = True
            try:
                run()
            except BaseException as exc:
                raise _InstallRaised(exc) from exc

        try:
            status = self._install(task, spec, venv_key, box, git_tree, guarded, refresh, install_log, timings,
                                   notes)  # fmt: skip
        except _InstallRaised as raised:  # the install's own failure: the grading's to report
            raise raised.exc from None
        except Exception as exc:  # the cache's (an unwritable cache dir...): never the grading's end
            status = f"cache failed: {type(exc).__name__}: {_one_line(exc)}"
            if not ran:
                refresh()
                run()
        notes["build_cache"] = status

    def _install(self, task: Task, spec: EnvironmentSpec, venv_key: str, box: TaskBox, git_tree: bool,
                 run: Callable[[], None], refresh: Callable[[], None], install_log: Path,
                 timings: dict[str, float], notes: dict[str, Any]) -> str:  # fmt: skip
        inputs = key_inputs(task, spec, venv_key, git_tree=git_tree, tree=box.tree.name, sandbox=box.sandbox)
        key = build_key(inputs)
        if (reason := self.reason(key)) is not None:
            run()
            return f"not cacheable: {reason}"
        corrupt: CorruptEntry | None = None
        try:
            entry = self.entry(key)
        except CorruptEntry as exc:
            entry, corrupt = None, exc
        bad_id = None  # the corrupt entry's fill, so that a good one filled meanwhile is kept
        if entry is not None:
            failure = self._restore(entry, box, install_log, timings)
            if failure is None:
                return "reused"
            refresh()
            if not isinstance(failure, CorruptEntry):
                run()
                return f"restore failed: {_one_line(failure)}; the install ran"
            corrupt, bad_id = failure, entry.manifest.get("id")
        with exclusive(self.root / "locks" / f"{key}.lock"):
            if corrupt is not None:
                self._discard(key, bad_id)
            else:
                try:
                    entry = self.entry(key)
                except CorruptEntry:
                    entry = None
                    self._discard(key, None)
                if entry is not None:  # filled while this grading waited for the lock
                    failure = self._restore(entry, box, install_log, timings)
                    if failure is None:
                        return "reused"
                    refresh()
                    run()
                    return f"restore failed: {_one_line(failure)}; the install ran"
            if (reason := self.reason(key)) is not None:
                run()
                return f"not cacheable: {reason}"
            return self._fill_after(key, inputs, box, git_tree, run, install_log, timings, notes, corrupt)

    def reason(self, key: str) -> str | None:
        """Why the key is marked not cacheable, or None."""
        try:
            return (self.root / f"{key}.not-cacheable").read_text(
                encoding="utf-8"
            ).strip() or "(no reason kept)"
        except FileNotFoundError:
            return None

    def entry(self, key: str) -> Entry | None:
        """The complete entry of `key`, or None when there is none. CorruptEntry when one is there but
        its manifest is missing or not what this devloop writes."""
        path = self.root / key
        if not path.is_dir():
            return None
        try:
            manifest = json.loads((path / _MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CorruptEntry(f"its manifest cannot be read: {_one_line(exc)}") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or manifest.get("key") != key:
            raise CorruptEntry("its manifest is not one this devloop writes")
        return Entry(path, manifest)

    def _restore(
        self, entry: Entry, box: TaskBox, install_log: Path, timings: dict[str, float]
    ) -> Exception | None:
        started = time.monotonic()
        try:
            m = entry.manifest
            moves = dict((os.fsencode(old), os.fsencode(new))
                         for part, where in (("tree", box.tree), ("venv", box.venv))
                         for old, new in zip(m["old"][part], _paths(where), strict=True))  # fmt: skip
            user = sandbox_user()
            owner = (user.uid, user.gid) if box.confined and user.demote else None
            for part, where in (("tree", box.tree), ("venv", box.venv)):
                restore(
                    where,
                    m["parts"][part]["put"],
                    m["parts"][part]["removed"],
                    entry.path / "files",
                    list(moves.items()),
                    owner,
                )
            kept = (
                (entry.path / "install.log").read_bytes() if (entry.path / "install.log").is_file() else b""
            )
            install_log.write_bytes(
                f"[devloop: the install was not run: what it left in the tree and venv was restored from the "
                f"build cache ({entry.path}, filled in {m.get('install_s', 0):g} s); the filling run's log "
                f"follows]\n".encode()
                + kept
            )
        except (
            KeyError,
            TypeError,
            ValueError,
        ) as exc:  # a manifest not as written (UnsafePathError included)
            return CorruptEntry(f"its manifest does not read as one: {type(exc).__name__}: {_one_line(exc)}")
        except Exception as exc:  # the install runs instead: never the end of the grading
            return exc
        timings["build_cache_restore"] = round(time.monotonic() - started, 3)
        return None

    def _fill_after(self, key: str, inputs: dict[str, Any], box: TaskBox, git_tree: bool, run: Callable[[], None],
                    install_log: Path, timings: dict[str, float], notes: dict[str, Any],
                    corrupt: CorruptEntry | None) -> str:  # fmt: skip
        """Run the install with the lock held and keep what it changed as the key's entry."""
        # The agent's tree's .git is the host's, made before; what the install does to it (git refreshing
        # its index) is not kept.
        skip = frozenset({".git"}) if git_tree else frozenset()
        started = time.monotonic()
        before = {"tree": listing(box.tree, skip), "venv": listing(box.venv)}
        listed = time.monotonic() - started
        started = time.monotonic()
        run()
        install_s = round(time.monotonic() - started, 3)
        box.stop()  # every process the install started is dead, and its log written
        started = time.monotonic() - listed
        try:
            size = self._fill(key, inputs, box, skip, before, install_log, install_s)
        except NotCacheable as exc:
            self._mark(key, str(exc))
            return f"not cacheable: {exc}"
        except Exception as exc:  # the install ran: the grading goes on without an entry
            return f"fill failed: {type(exc).__name__}: {_one_line(exc)}"
        timings["build_cache_fill"] = round(time.monotonic() - started, 3)
        notes["build_cache_bytes"] = size
        return "filled" + (f" (the entry there was corrupt: {corrupt})" if corrupt is not None else "")

    def _fill(self, key: str, inputs: dict[str, Any], box: TaskBox, skip: frozenset[str],
              before: dict[str, Any], install_log: Path, install_s: float) -> int:  # fmt: skip
        self.root.mkdir(parents=True, exist_ok=True)
        for stale in self.root.glob(f".{key}.fill-*"):  # left by a killed filler (the lock is held)
            shutil.rmtree(stale, ignore_errors=True)
        staging = self.root / f".{key}.fill-{os.getpid()}-{secrets.token_hex(4)}"
        (staging / "files").mkdir(parents=True)
        try:
            old = {"tree": _paths(box.tree), "venv": _paths(box.venv)}
            olds = [os.fsencode(p) for paths in old.values() for p in paths]
            parts, total, count = {}, 0, 0
            for part, where in (("tree", box.tree), ("venv", box.venv)):
                found = changes(before[part], listing(where, skip if part == "tree" else frozenset()))
                records, size, dropped = snapshot(
                    where, found.put, staging / "files", count, olds, MAX_ENTRY_BYTES - total
                )
                parts[part] = {"removed": found.removed + dropped, "put": records}
                total += size
                count += sum(r["kind"] == "file" for r in records)
            if install_log.is_file():
                with install_log.open("rb") as log:
                    log.seek(max(0, install_log.stat().st_size - _LOG_KEPT))
                    (staging / "install.log").write_bytes(log.read())
            manifest = {"format": FORMAT, "key": key, "id": secrets.token_hex(8), "inputs": inputs,
                        "created": time.time(), "install_s": install_s, "bytes": total, "old": old, "parts": parts}  # fmt: skip
            (staging / _MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
            for path in (staging / _MANIFEST, staging / "install.log"):
                if path.exists():
                    path.chmod(0o444)
            os.rename(staging, self.root / key)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return total

    def _mark(self, key: str, reason: str) -> None:
        tmp = self.root / f".{key}.not-cacheable.{os.getpid()}"
        tmp.write_text(reason + "\n", encoding="utf-8")
        os.replace(tmp, self.root / f"{key}.not-cacheable")

    def _discard(self, key: str, fill_id: str | None) -> None:
        """Remove the key's entry (the lock is held), when it is still the fill `fill_id` (None: whatever
        is there): renamed away first, so no reader sees half of it."""
        path = self.root / key
        if not path.exists():
            return
        if fill_id is not None:
            try:
                if (entry := self.entry(key)) is not None and entry.manifest.get("id") != fill_id:
                    return  # discarded and filled again by another grading meanwhile
            except CorruptEntry:
                pass
        trash = self.root / f".{key}.discarded-{os.getpid()}-{secrets.token_hex(4)}"
        os.rename(path, trash)
        _make_writable(trash)
        shutil.rmtree(trash, ignore_errors=True)


def _make_writable(path: Path) -> None:
    """Owner write on the entry's directories, so a non-root host can remove what it made read-only."""
    for top, dirs, _files in os.walk(path):
        for name in dirs:
            os.chmod(os.path.join(top, name), 0o755)
    os.chmod(path, 0o755)
