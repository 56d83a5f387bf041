"""The tree's inotify watch spares quiet steps their scan, and never vouches for a tree it cannot see whole."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from trees import committed_repo, sh

import devloop.workspace.changes as changes_module
from devloop.workspace import _GRANULARITY_NS, Workspace
from devloop.workspace.watch import TreeWatch

pytestmark = pytest.mark.skipif(TreeWatch.open() is None, reason="inotify is Linux only")


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    workspace = Workspace.create(
        committed_repo(tmp_path / "proj", {"a.py": "x = 1\n", "pkg/m.py": "m = 1\n"})
    )
    yield workspace
    workspace.cleanup()


@pytest.fixture
def scans(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The stat scans the workspace took: 1 for a whole scan, 2 for a rescan of the directories the watch
    named (what stood in for a whole scan; a rescan that could not is not counted)."""
    taken: list[int] = []
    whole, partial = changes_module.scan_shape, changes_module.rescan

    def counting(*args: object, **kwargs: object) -> object:
        taken.append(1)
        return whole(*args, **kwargs)  # type: ignore[arg-type]

    def counting_rescan(*args: object, **kwargs: object) -> object:
        answer = partial(*args, **kwargs)  # type: ignore[arg-type]
        if answer is not None:
            taken.append(2)
        return answer

    monkeypatch.setattr(changes_module, "scan_shape", counting)
    monkeypatch.setattr(changes_module, "rescan", counting_rescan)
    return taken


def trusted(ws: Workspace) -> None:
    """Scan until the scan is trusted (its files older than the file-time granularity): the watch then
    vouches for that scan."""
    for _ in range(200):
        ws.diff(fresh=True)
        if ws.scans.held is not None:
            return
    raise AssertionError("no scan was ever trusted")


def test_a_quiet_step_takes_no_scan_and_any_change_is_still_seen_at_once(
    ws: Workspace, scans: list[int]
) -> None:
    trusted(ws)
    scans.clear()
    assert ws.diff() == "" and ws.diff() == "" and scans == []  # the kernel's word: nothing changed
    sh(ws.root, "cat a.py; ls -la pkg; grep -r x .")  # reads change nothing either
    assert ws.diff() == "" and scans == []
    (ws.root / "a.py").write_text("x = 2\n")  # no wait: within the same clock tick as the scan
    assert "+x = 2" in ws.diff() and scans == [2]  # only the top directory listed again
    (ws.root / "pkg" / "m.py").write_text("m = 2\n")
    assert "+m = 2" in ws.diff()
    sh(ws.root, "mkdir -p new/deep && printf 'd = 1\\n' > new/deep/d.py")
    assert "new/deep/d.py" in ws.diff()
    trusted(ws)
    (ws.root / "new" / "deep" / "d.py").write_text("d = 2\n")  # a directory the later scan came to watch
    assert "+d = 2" in ws.diff()
    sh(ws.root, "rm -r new && ln -s /etc new")  # a watched directory swapped for a link
    patch = ws.diff()
    assert "new/deep" not in patch and "new file mode 120000" in patch
    sh(ws.root, "chmod +x a.py")
    assert "new mode 100755" in ws.diff()


def test_scratch_the_scan_leaves_out_does_not_wake_the_watch(ws: Workspace, scans: list[int]) -> None:
    (ws.root / "a.py").write_text("x = 3\n")
    trusted(ws)
    scans.clear()
    sh(ws.root, "mkdir -p pkg/__pycache__ .pytest_cache && touch pkg/__pycache__/m.pyc a.py.orig x.rej")
    sh(ws.root, "touch pkg/__pycache__/n.pyc .pytest_cache/v && git status >/dev/null 2>&1 || true")
    assert "+x = 3" in ws.diff() and scans == []
    (ws.root / "pkg" / "__pycache__.py").write_text("p = 1\n")  # a look-alike is a real file
    assert "pkg/__pycache__.py" in ws.diff() and scans == [2]


def test_a_write_the_watch_cannot_see_is_never_vouched_for(
    ws: Workspace, tmp_path: Path, scans: list[int]
) -> None:
    # Another name for a tree's file, outside the tree: writes through it reach no watched directory.
    other = ws.root.parent / "other-name.py"
    os.link(ws.root / "a.py", other)
    time.sleep(_GRANULARITY_NS / 1e9 + 0.005)
    ws.diff(fresh=True)  # a scan that meets the link
    scans.clear()
    ws.diff()
    ws.diff()
    assert scans == [1, 1] and ws.scans.held is None  # a file with two links: every step takes its scan
    other.write_text("x = 9\n")
    assert "+x = 9" in ws.diff()
    other.unlink()
    (ws.root / "a.py").write_text("x = 1\n")
    trusted(ws)
    # A write through a shared mapping whose file was closed before the write: the close is reported.
    code = (
        "import mmap, os; fd = os.open('a.py', os.O_RDWR); m = mmap.mmap(fd, 0); os.close(fd); "
        "m[4:5] = b'7'; m.flush(); m.close()"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ws.root, check=True)
    assert "+x = 7" in ws.diff()


def test_without_a_watch_the_scan_decides(
    ws: Workspace, scans: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    trusted(ws)
    scans.clear()
    ws.stop_watching()  # as where inotify is missing or its instances are used up
    assert ws.diff() == "" and scans == [1]
    ws2_watch = TreeWatch.open()
    assert ws2_watch is not None

    def refuse(*args: object) -> int:
        raise OSError(28, "No space left on device")  # the user's watch limit

    monkeypatch.setattr(ws2_watch._inotify, "add_watch", refuse)
    ws.scans.watch, ws.scans.held = ws2_watch, None
    scans.clear()
    for _ in range(3):
        ws.diff()
    assert scans == [1, 1, 1]  # no watch could be added: no scan is vouched for
    ws2_watch.close()


def test_the_runs_final_patch_takes_its_scan(ws: Workspace, scans: list[int]) -> None:
    trusted(ws)
    scans.clear()
    assert ws.diff() == "" and scans == []
    assert ws.diff(fresh=True) == "" and scans == [1]


def test_a_tree_past_the_scan_limit_is_scanned_only_under_a_watch_that_covers_it(
    ws: Workspace, scans: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    trusted(ws)
    monkeypatch.setattr(changes_module, "SCAN_LIMIT", 2)  # the tree holds more entries than that
    runs = ws.git_runs + ws.patches_without_git
    scans.clear()
    assert ws.diff() == "" and scans == [] and ws.git_runs + ws.patches_without_git == runs  # quiet: nothing
    (ws.root / "a.py").write_text("x = 4\n")
    assert "+x = 4" in ws.diff() and scans == [2] and not ws.scans.large
    os.link(ws.root / "a.py", ws.root.parent / "other-name.py")  # the watch no longer covers the tree
    ws.diff()
    assert ws.scans.large  # so it is left to git, as any tree past the limit is without a watch
    before = ws.git_runs
    assert "+x = 4" in ws.diff() and ws.git_runs == before + 1


def settle() -> None:
    time.sleep(_GRANULARITY_NS / 1e9 + 0.005)


def test_a_large_tree_that_changes_on_most_steps_is_left_to_git(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    trusted(ws)
    monkeypatch.setattr(changes_module, "SCAN_LIMIT", 2)
    for k in range(4):  # one edit, then two quiet steps: the scan pays for itself
        (ws.root / "a.py").write_text(f"x = {k + 10}\n")  # never the base's own content
        settle()
        assert f"+x = {k + 10}" in ws.diff()
        ws.diff()
        ws.diff()
    assert not ws.scans.large
    for k in range(24):  # a new directory on every step (a whole scan each), until they outnumber the rest
        (ws.root / f"d{k}").mkdir()
        (ws.root / f"d{k}" / "y.py").write_text(f"y = {k}\n")
        settle()
        assert f"+y = {k}" in ws.diff()
    assert ws.scans.large


def test_a_link_made_after_the_scan_into_an_unwatched_directory_reaches_the_final_patch(
    ws: Workspace,
) -> None:
    # The known gap: a new name for a tree's file in a directory the scan does not walk (.git here),
    # made after the scan, is reported to no watched directory, nor is a write through it. The steps'
    # patches may lag behind such a write; the run's final patch takes its scan and has it.
    trusted(ws)
    os.link(ws.root / "a.py", ws.root / ".git" / "other-name")
    (ws.root / ".git" / "other-name").write_text("x = 6\n")
    ws.diff()
    assert "+x = 6" in ws.diff(fresh=True)
    assert "+x = 6" in ws.diff()  # and the scan that saw it found the link: every later step scans
    assert ws.scans.held is None


def test_a_removal_in_the_background_closes_the_watch_there_too(tmp_path: Path) -> None:
    from devloop.runtime.later import wait_removed

    ws = Workspace.create(committed_repo(tmp_path / "proj", {"a.py": "x = 1\n"}))
    watch = ws.scans.watch
    assert watch is not None and not watch.closed
    ws.cleanup(later=True)
    wait_removed()
    assert watch.closed and not ws.root.exists()


def test_after_any_sequence_of_changes_the_watched_scan_is_what_a_whole_scan_says(
    ws: Workspace, scans: list[int]
) -> None:
    import random

    from devloop.workspace.scan import scan_shape

    rng = random.Random(7)
    (ws.root / "pkg" / "sub").mkdir()
    (ws.root / "pkg" / "sub" / "s.py").write_text("s = 1\n")
    trusted(ws)
    files = ["a.py", "pkg/m.py", "pkg/sub/s.py"]
    told = rescans = 0
    for step in range(120):
        op = rng.choice(["write", "append", "new", "delete", "chmod", "rename", "move", "mkdir", "link", "touch",
                         "scratch", "read"])  # fmt: skip
        live = [f for f in files if (ws.root / f).exists()]
        target = ws.root / rng.choice(live) if live else None
        if op == "write" and target:
            target.write_text(f"v = {step}\n")
        elif op == "append" and target:
            with target.open("a") as f:
                f.write(f"# {step}\n")
        elif op == "new":
            name = rng.choice(["", "pkg/", "pkg/sub/"]) + f"n{step}.py"
            (ws.root / name).write_text(f"n = {step}\n")
            files.append(name)
        elif op == "delete" and target:
            target.unlink()
        elif op == "chmod" and target:
            target.chmod(0o755 if step % 2 else 0o644)
        elif op == "rename" and target:
            renamed = target.with_name(f"r{step}.py")
            target.rename(renamed)
            files.append(str(renamed.relative_to(ws.root)))
        elif op == "move" and target:
            moved = ws.root / rng.choice(["", "pkg/", "pkg/sub/"]) / f"m{step}.py"
            target.rename(moved)
            files.append(str(moved.relative_to(ws.root)))
        elif op == "mkdir":
            (ws.root / f"d{step}").mkdir()
            (ws.root / f"d{step}" / "f.py").write_text("f = 1\n")
            files.append(f"d{step}/f.py")
        elif op == "link" and target:
            os.symlink(target.name, target.with_name(f"l{step}.py"))
        elif op == "touch" and target:
            os.utime(target, ns=(1_000_000_000, 1_000_000_000))
        elif op == "scratch":
            (ws.root / "pkg" / "__pycache__").mkdir(exist_ok=True)
            (ws.root / "pkg" / "__pycache__" / f"x{step}.pyc").write_bytes(b"x")
        if rng.random() < 0.7:
            time.sleep(_GRANULARITY_NS / 1e9 + 0.003)
        scans.clear()
        ws.diff()
        held = ws.scans.held
        if held is not None:
            told += 1
            rescans += scans == [2]
            digest, shape = scan_shape(ws.root)  # a whole scan, the watch left alone
            if digest is not None:
                assert held[0] == digest and held[1] == shape, f"step {step} ({op})"
    assert told > 40 and rescans > 10  # the watched and the rescanned paths were both taken, and checked
    patch = ws.diff()
    assert patch == ws.diff(fresh=True)


def test_a_tree_worked_in_place_is_watched_and_its_patches_are_right(tmp_path: Path) -> None:
    repo = committed_repo(tmp_path / "proj", {"a.py": "x = 1\n"})
    ws = Workspace.create(repo, in_place=True)
    try:
        if ws.scans.watch is None:
            pytest.skip("no inotify here")
        (repo / "a.py").write_text("x = 2\n")
        settle()  # past the clock's granularity: a scan tells the file's time from a later write's
        patch = ws.diff()
        assert "+x = 2" in patch
        assert ws.patch_if_unchanged() == patch  # a quiet step: the watch vouches, no scan, no git
        (repo / "b.py").write_text("y = 1\n")
        assert ws.patch_if_unchanged() is None  # the watch heard of it
        assert "+y = 1" in ws.diff() and ws.diff() == ws.diff(fresh=True)
    finally:
        ws.cleanup()


def test_opening_the_first_watch_of_a_process_starts_no_process(tmp_path: Path) -> None:
    # inotify_simple would look libc up with ctypes.util.find_library (`ldconfig -p`), ~30 ms per process.
    code = (
        "import subprocess, sys\n"
        "from pathlib import Path\n"
        "def refuse(*a, **k):\n"
        "    raise AssertionError(f'a process was started: {a[1] if len(a) > 1 else a}')\n"
        "subprocess.Popen.__init__ = refuse\n"
        "from devloop.workspace.watch import TreeWatch\n"
        "watch = TreeWatch.open()\n"
        "assert watch is not None\n"
        "root = Path(sys.argv[1])\n"
        "wd = watch._inotify.add_watch(str(root), 0x100)\n"  # IN_CREATE: the calls really reach libc
        "(root / 'new').write_text('x')\n"
        "assert [e.wd for e in watch._inotify.read(timeout=1000)] == [wd]\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-600:]
