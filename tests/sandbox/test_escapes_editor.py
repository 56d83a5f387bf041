"""Escape attempts against the file editor, which works on the host file system under the workspace.

The sandbox can change the workspace while the host-side editor works in it. Each attempt plants a host
marker that only a successful attack could expose or a host directory that only an attack could write
into, and asserts the host is unchanged.
"""

from __future__ import annotations

import os
import secrets
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from devloop import safefs
from devloop.runtime.bwrap import BwrapRuntime
from devloop.tools.base import ToolContext
from devloop.tools.editor import EditorArgs, EditorTool
from devloop.types import Observation

RACE_CALLS = 150
# The flipper gives up by itself after this long, should the test die before telling it to stop.
FLIPPER_DEADLINE_S = 30

# Swaps `d` (a real directory) and `alt` (a symbolic link to a host directory) with renameat2
# RENAME_EXCHANGE in a tight loop, so `d` is a directory one instant and a link out of the workspace
# the next, and never missing. It writes `.ready` once it runs and stops when `.stop` appears.
FLIPPER = r"""
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
os.chdir(sys.argv[1])
os.mkdir("d")
with open("d/secret.txt", "w") as f:
    f.write("inside\n")
os.symlink(sys.argv[2], "alt")
open(".ready", "w").close()
end = time.monotonic() + float(sys.argv[3])
swaps = 0
while time.monotonic() < end:
    for _ in range(256):
        if libc.renameat2(-100, b"d", -100, b"alt", 2) != 0:
            sys.exit("renameat2 failed: " + os.strerror(ctypes.get_errno()))
        swaps += 1
    if os.path.exists(".stop"):
        break
print("swaps", swaps)
"""


@dataclass
class RaceResult:
    host_writes: int
    host_reads: int
    creates_ok: int
    views_ok: int
    raised: int
    flipper_output: str


def _editor(root: Path) -> Callable[..., Observation]:
    editor = EditorTool()
    ctx = ToolContext(runtime=None, root=root)  # type: ignore[arg-type]  # the editor never uses the shell

    def call(command: str, path: Path, **kwargs: object) -> Observation:
        return editor.run(EditorArgs(command=command, path=str(path), **kwargs), ctx)

    return call


def run_race(
    workspace: Path, host_dir: Path, start_flipper: Callable[[list[str]], Callable[[], str]]
) -> RaceResult:
    """RACE_CALLS `create` and RACE_CALLS `view` calls through `d` while the flipper swaps it."""
    secret = f"host-secret-{secrets.token_hex(8)}"
    (host_dir / "secret.txt").write_text(secret + "\n")
    argv = [str(workspace), str(host_dir), str(FLIPPER_DEADLINE_S)]
    finish = start_flipper(argv)
    ready = workspace / ".ready"
    deadline = time.monotonic() + 10
    while not ready.exists():
        if time.monotonic() > deadline:
            (workspace / ".stop").touch()
            pytest.fail(f"the flipper did not start: {finish()!r}")
        time.sleep(0.01)
    edit = _editor(workspace)
    creates_ok = views_ok = reads = raised = 0
    try:
        for i in range(RACE_CALLS):
            try:
                created = edit("create", workspace / "d" / f"planted_{i}.py", file_text=f"planted {i}\n")
                creates_ok += not created.is_error
                obs = edit("view", workspace / "d" / "secret.txt")
            except Exception:  # noqa: BLE001  # counted: the editor must turn every problem into an observation
                raised += 1
                continue
            views_ok += not obs.is_error
            reads += secret in obs.text
    finally:
        (workspace / ".stop").touch()
        output = finish()
    writes = len([p for p in host_dir.iterdir() if p.name != "secret.txt"])
    return RaceResult(writes, reads, creates_ok, views_ok, raised, output)


def _host_process_flipper(argv: list[str]) -> Callable[[], str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", FLIPPER, *argv], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )

    def finish() -> str:
        out, _ = proc.communicate(timeout=FLIPPER_DEADLINE_S)
        return out

    return finish


@pytest.fixture
def host_dir(tmp_path: Path) -> Path:
    path = tmp_path / "host"
    path.mkdir()
    return path


def _sandbox_flipper(rt: BwrapRuntime) -> Callable[[list[str]], Callable[[], str]]:
    def start(argv: list[str]) -> Callable[[], str]:
        box: dict[str, str] = {}
        command = shlex.join(["python3", "-c", FLIPPER, *argv])

        def flip() -> None:
            try:
                result = rt.run(command, FLIPPER_DEADLINE_S)
                box["out"] = f"{result.output} (exit {result.exit_code})"
            except Exception as exc:  # noqa: BLE001  # reported by finish(), in the main thread
                box["out"] = f"the sandboxed flipper failed: {exc}"

        runner = threading.Thread(target=flip)
        runner.start()

        def finish() -> str:
            runner.join(FLIPPER_DEADLINE_S)
            return box.get("out", "")

        return finish

    return start


def _assert_contained(result: RaceResult, escape: type, kind: str) -> None:
    swaps = (
        int(result.flipper_output.split("swaps", 1)[1].split()[0]) if "swaps" in result.flipper_output else 0
    )
    print(
        f"\nrace ({kind}): host writes {result.host_writes}/{RACE_CALLS} creates, host reads "
        f"{result.host_reads}/{RACE_CALLS} views; creates ok {result.creates_ok}, views ok {result.views_ok}, "
        f"exceptions {result.raised}, swaps {swaps}"
    )
    assert swaps > 0, f"the flipper did not run: {result.flipper_output!r}"
    by = "safefs: resolved beneath the root fd"
    with escape(f"editor race ({kind}): create while a dir flips to a host symlink", by=by):
        assert result.host_writes == 0
    with escape(f"editor race ({kind}): view while a dir flips to a host symlink", by=by):
        assert result.host_reads == 0
    assert result.raised == 0, "editor calls raised instead of returning an error observation"


@pytest.mark.parametrize("resolver", ["openat2", "walk"])
def test_editor_race_against_a_host_process(
    workspace: Path, host_dir: Path, escape, monkeypatch: pytest.MonkeyPatch, resolver: str
) -> None:
    if resolver == "walk":  # the fallback for kernels without openat2 must hold just as well
        monkeypatch.setattr(safefs.beneath, "USE_OPENAT2", False)
    result = run_race(workspace, host_dir, _host_process_flipper)
    _assert_contained(result, escape, f"host process, {resolver}")


def test_editor_race_against_a_sandboxed_process(
    sandbox: BwrapRuntime, workspace: Path, host_dir: Path, escape
) -> None:
    result = run_race(workspace, host_dir, _sandbox_flipper(sandbox))
    _assert_contained(result, escape, "sandboxed process")


# -- links and special files the sandbox can leave in the workspace ------------------------------------


@pytest.fixture
def marker(host_dir: Path) -> tuple[Path, str]:
    """A host file standing in for /etc/passwd: its content is a secret no workspace file holds."""
    secret = f"root:x:0:0:{secrets.token_hex(8)}"
    path = host_dir / "passwd"
    path.write_text(secret + "\n")
    return path, secret


def test_symlinked_file_to_a_host_file(workspace: Path, marker: tuple[Path, str], escape) -> None:
    path, secret = marker
    (workspace / "passwd").symlink_to(path)
    (workspace / "a").symlink_to("b")
    (workspace / "b").symlink_to(f"../{path.parent.name}/{path.name}")  # relative, through a chain
    edit = _editor(workspace)
    for name, kind in (("passwd", "an absolute symlink"), ("a", "a chain of relative symlinks")):
        with escape(f"editor: view through {kind} to a host file", by="safefs: link leaves the root"):
            obs = edit("view", workspace / name)
            assert obs.is_error and "outside the workspace" in obs.text
            assert secret not in obs.text
        with escape(f"editor: edit through {kind} to a host file", by="safefs: link leaves the root"):
            for command, args in (
                ("str_replace", {"old_str": "root", "new_str": "pwned"}),
                ("insert", {"insert_line": 0, "new_str": "pwned"}),
            ):
                obs = edit(command, workspace / name, **args)
                assert obs.is_error and secret not in obs.text
            assert path.read_text() == secret + "\n"


def test_create_through_a_dangling_symlink(workspace: Path, host_dir: Path, escape) -> None:
    (workspace / "new.py").symlink_to(host_dir / "planted.py")
    (workspace / "pkg").symlink_to(host_dir, target_is_directory=True)
    edit = _editor(workspace)
    with escape(
        "editor: create through a dangling symlink to a host path", by="safefs: link leaves the root"
    ):
        assert edit("create", workspace / "new.py", file_text="pwned\n").is_error
        assert edit("create", workspace / "pkg" / "sub" / "planted.py", file_text="pwned\n").is_error
        assert sorted(p.name for p in host_dir.iterdir()) == []


def test_listing_a_symlinked_host_directory(workspace: Path, marker: tuple[Path, str], escape) -> None:
    path, _ = marker
    (workspace / "hostdir").symlink_to(path.parent, target_is_directory=True)
    edit = _editor(workspace)
    with escape("editor: list a directory symlinked to a host dir", by="safefs: link leaves the root"):
        assert edit("view", workspace / "hostdir").is_error
        listing = edit("view", workspace)
        assert not listing.is_error and f"{workspace}/hostdir" in listing.text
        assert path.name not in listing.text  # shown as an entry, never descended into


def test_fifo_in_the_workspace_is_refused_at_once(workspace: Path, escape) -> None:
    os.mkfifo(workspace / "pipe")
    edit = _editor(workspace)
    calls = [
        ("view", {}),
        ("str_replace", {"old_str": "a", "new_str": "b"}),
        ("insert", {"insert_line": 0, "new_str": "x"}),
        ("create", {"file_text": "x"}),
    ]
    with escape("editor: a FIFO in the workspace (would block the host)", by="O_NONBLOCK + fstat S_ISREG"):
        for command, args in calls:
            box: dict[str, Observation] = {}
            worker = threading.Thread(
                target=_into, args=(box, edit, command, workspace / "pipe", args), daemon=True
            )
            started = time.monotonic()
            worker.start()
            worker.join(5)
            assert not worker.is_alive(), f"`{command}` blocked on the FIFO"
            assert time.monotonic() - started < 1.0
            assert box["obs"].is_error


def _into(
    box: dict[str, Observation],
    edit: Callable[..., Observation],
    command: str,
    path: Path,
    args: dict[str, object],
) -> None:
    box["obs"] = edit(command, path, **args)


def test_hard_link_to_a_host_file_is_never_written(workspace: Path, tmp_path: Path, escape) -> None:
    # Like the per-instance hard links into a shared venv cache: the workspace name is the model's to
    # change, the cache's inode is not.
    cache = tmp_path / "cache"
    cache.mkdir()
    shared = cache / "module.py"
    shared.write_text("VALUE = 1\n")
    os.link(shared, workspace / "module.py")
    edit = _editor(workspace)
    with escape(
        "editor: edit a hard link to a host (cache) file", by="safefs: replaced, not written through"
    ):
        assert not edit(
            "str_replace", workspace / "module.py", old_str="VALUE = 1", new_str="VALUE = 2"
        ).is_error
        assert (workspace / "module.py").read_text() == "VALUE = 2\n"
        assert shared.read_text() == "VALUE = 1\n"
        assert not edit("undo_edit", workspace / "module.py").is_error
        assert shared.read_text() == "VALUE = 1\n" and shared.stat().st_nlink == 1


def test_undo_after_the_file_became_a_host_symlink(workspace: Path, marker: tuple[Path, str], escape) -> None:
    path, secret = marker
    edit = _editor(workspace)
    with escape(
        "editor: undo a create after the file became a link to a host file", by="safefs: link leaves the root"
    ):
        assert not edit("create", workspace / "made.py", file_text="x\n").is_error
        (workspace / "made.py").unlink()
        (workspace / "made.py").symlink_to(path)
        assert edit("undo_edit", workspace / "made.py").is_error
        assert path.read_text() == secret + "\n"
    with escape(
        "editor: undo an edit after the file became a link to a host file", by="safefs: link leaves the root"
    ):
        (workspace / "edited.py").write_text("a = 1\n")
        assert not edit("str_replace", workspace / "edited.py", old_str="1", new_str="2").is_error
        (workspace / "edited.py").unlink()
        (workspace / "edited.py").symlink_to(path)
        obs = edit("undo_edit", workspace / "edited.py")
        assert obs.is_error and secret not in obs.text
        assert path.read_text() == secret + "\n"


# -- host-side readers of workspace and scratch files ---------------------------------------------------


def _returns_within(seconds: float, call: Callable[[], object]) -> object:
    """call() in a thread; fails the test if it has not returned after `seconds` (a FIFO would block it)."""
    box: dict[str, object] = {}
    worker = threading.Thread(target=lambda: box.update(value=call()), daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), "the host-side reader blocked"
    return box["value"]


def test_rescue_rule_lookups_stay_in_the_workspace(workspace: Path, marker: tuple[Path, str], escape) -> None:
    from devloop.feedback import rescue_facts as rules_facts

    path, secret = marker
    secret_def = f"def leaked_{secrets.token_hex(4)}():\n    return '{secret}'\n"
    (path.parent / "hostmod.py").write_text(secret_def)
    (workspace / "hostmod.py").symlink_to(path.parent / "hostmod.py")
    (workspace / "hostpkg").symlink_to(path.parent, target_is_directory=True)
    os.mkfifo(workspace / "blocked.py")
    (workspace / "mod.py").write_text("def mine():\n    return 1\n")
    with escape(
        "rescue lookup: snippet of an absolute host path", by="safefs: outside the root reads as missing"
    ):
        for file in (str(path), "hostmod.py", "hostpkg/passwd", "blocked.py"):
            values = _returns_within(
                2, lambda f=file: rules_facts.snippet({"file": f, "line": 1}, workspace, "", {})
            )
            assert values == {"snippet": ""}, file
    with escape(
        "rescue lookup: definitions through links to host files", by="safefs: links never followed out"
    ):
        name = secret_def.split("(")[0].removeprefix("def ")
        found = _returns_within(2, lambda: rules_facts.definition({"name": name}, workspace, "", {}))
        assert found["defined"] == []  # type: ignore[index]
        listed = [p.name for p in rules_facts.repo_files(workspace)]
        assert "passwd" not in listed and sorted(listed) == ["blocked.py", "hostmod.py", "mod.py"]


def test_import_scan_and_requirements_stay_in_the_workspace(
    workspace: Path, marker: tuple[Path, str], escape
) -> None:
    from devloop.feedback.requirements import declared_requirement
    from devloop.feedback.selection import ImportIndex

    path, _ = marker
    (path.parent / "reqs.txt").write_text("hostonlypkg==1.0\n")
    (workspace / "requirements.txt").symlink_to(path.parent / "reqs.txt")
    (workspace / "test_host.py").symlink_to(path.parent / "hostmod.py")
    (path.parent / "hostmod.py").write_text("import hostonlypkg\n")
    os.mkfifo(workspace / "test_fifo.py")
    with escape(
        "requirements: a requirements.txt linked to a host file",
        by="safefs: outside the root reads as missing",
    ):
        assert _returns_within(2, lambda: declared_requirement(workspace, "hostonlypkg", {})) is None
    with escape(
        "test selection: import scan of a linked host file and a FIFO", by="safefs: O_NONBLOCK + fstat"
    ):
        index = ImportIndex(workspace)
        assert _returns_within(2, lambda: index._imports("test_host.py")) == frozenset()
        assert _returns_within(2, lambda: index._imports("test_fifo.py")) == frozenset()


def test_test_reports_in_the_scratch_dir(tmp_path: Path, marker: tuple[Path, str], escape) -> None:
    from devloop.feedback.runners import _read_jsonl

    path, secret = marker
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (path.parent / "report.jsonl").write_text(f'{{"id": "{secret}", "status": "PASSED"}}\n')
    (scratch / "linked.jsonl").symlink_to(path.parent / "report.jsonl")
    os.link(path.parent / "report.jsonl", scratch / "hard.jsonl")
    os.mkfifo(scratch / "fifo.jsonl")
    with escape(
        "test report: scratch report file linked to a host file", by="read_regular_file: O_NOFOLLOW, nlink 1"
    ):
        assert _read_jsonl(scratch / "linked.jsonl") == []
        assert _read_jsonl(scratch / "hard.jsonl") == []
    with escape("test report: scratch report file is a FIFO", by="read_regular_file: O_NONBLOCK + fstat"):
        assert _returns_within(2, lambda: _read_jsonl(scratch / "fifo.jsonl")) == []
    (scratch / "real.jsonl").write_text('{"id": "t", "status": "PASSED"}\n')
    assert _read_jsonl(scratch / "real.jsonl") == [{"id": "t", "status": "PASSED"}]  # real reports still read
