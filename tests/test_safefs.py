"""safefs: access beneath a root that never leaves it, never blocks and never writes through a hard link.

Every behaviour is checked twice: with openat2 (RESOLVE_BENEATH) and with the component-by-component walk
used on kernels without it, forced through `safefs.beneath.USE_OPENAT2`.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devloop import safefs
from devloop.safefs import EscapeError, SafeFSError, SafeRoot


@pytest.fixture(params=["openat2", "walk"])
def resolver(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "openat2":
        if not safefs.fdops.openat2_usable():
            pytest.skip("this kernel has no openat2 (Linux < 5.6)")
    else:
        monkeypatch.setattr(safefs.beneath, "USE_OPENAT2", False)
    return request.param


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """A host directory next to the root, holding a secret the root must never reveal."""
    path = tmp_path / "host"
    path.mkdir()
    (path / "secret.txt").write_text("host secret\n")
    return path


@pytest.fixture
def root(tmp_path: Path, resolver: str) -> Iterator[SafeRoot]:
    path = tmp_path / "root"
    (path / "pkg").mkdir(parents=True)
    (path / "pkg" / "mod.py").write_text("inside\n")
    with SafeRoot(path) as opened:
        yield opened


def test_plain_reads_and_writes(root: SafeRoot) -> None:
    assert root.read_bytes("pkg/mod.py", max_bytes=100) == b"inside\n"
    root.write_bytes("pkg/new.py", b"x = 1\n")
    assert (root.path / "pkg" / "new.py").read_bytes() == b"x = 1\n"
    assert root.exists("pkg/new.py") and not root.exists("pkg/none.py") and not root.exists("none/x.py")
    assert root.is_dir("pkg") and not root.is_dir("pkg/mod.py")
    assert [e.name for e in root.listdir("pkg")] == ["mod.py", "new.py"]
    root.unlink("pkg/new.py")
    assert not (root.path / "pkg" / "new.py").exists()


def test_absolute_paths_under_the_root_are_accepted(root: SafeRoot, host: Path) -> None:
    assert root.read_bytes(root.path / "pkg" / "mod.py", max_bytes=100) == b"inside\n"
    with pytest.raises(EscapeError):
        root.read_bytes(host / "secret.txt", max_bytes=100)


def test_symlink_out_is_refused_and_named(root: SafeRoot, host: Path) -> None:
    (root.path / "abs").symlink_to(host / "secret.txt")
    (root.path / "rel").symlink_to("../host/secret.txt")
    (root.path / "dir").symlink_to(host, target_is_directory=True)
    for name in ("abs", "rel", "dir/secret.txt"):
        with pytest.raises(EscapeError) as caught:
            root.read_bytes(name, max_bytes=100)
        assert caught.value.errno == errno.EXDEV and caught.value.target is not None
        assert str(caught.value).startswith(f"{name}: ") and "\n" not in str(caught.value)
    assert caught.value.target == str(host)
    with pytest.raises(EscapeError):
        root.write_bytes("dir/planted.txt", b"x")
    with pytest.raises(EscapeError):
        root.mkdirs("dir/sub")
    assert sorted(p.name for p in host.iterdir()) == ["secret.txt"]


def test_symlink_chains_inside_the_root_work(root: SafeRoot) -> None:
    (root.path / "a").symlink_to("b")
    (root.path / "b").symlink_to("pkg/../pkg/c")
    (root.path / "pkg" / "c").symlink_to("mod.py")
    (root.path / "absolute_in").symlink_to(root.path / "pkg" / "mod.py")  # RESOLVE_BENEATH alone refuses this
    (root.path / "pkgdir").symlink_to("pkg", target_is_directory=True)
    for name in ("a", "absolute_in", "pkgdir/mod.py", "pkgdir/c"):
        assert root.read_bytes(name, max_bytes=100) == b"inside\n", name
    assert root.resolve("a") == "pkg/mod.py"
    assert root.resolve("pkgdir/new.py") == "pkg/new.py"
    root.write_bytes("a", b"changed\n")  # writes the file at the end of the chain, the links stay links
    assert (root.path / "pkg" / "mod.py").read_bytes() == b"changed\n" and (root.path / "a").is_symlink()


def test_chain_that_ends_outside_is_refused(root: SafeRoot, host: Path) -> None:
    (root.path / "in").symlink_to("pkg/hop")
    (root.path / "pkg" / "hop").symlink_to("../../host/secret.txt")
    with pytest.raises(EscapeError) as caught:
        root.read_bytes("in", max_bytes=100)
    assert "symbolic link" in str(caught.value)


@pytest.mark.parametrize("path", ["..", "../host/secret.txt", "pkg/../../host/secret.txt", "/etc/passwd"])
def test_dotdot_and_absolute_escapes(root: SafeRoot, path: str) -> None:
    with pytest.raises(EscapeError):
        root.read_bytes(path, max_bytes=100)


def test_dotdot_that_stays_inside_is_fine(root: SafeRoot) -> None:
    assert root.read_bytes("pkg/../pkg/./mod.py", max_bytes=100) == b"inside\n"
    assert root.relative("pkg/..") == ""


def test_dangling_link_out_is_not_created(root: SafeRoot, host: Path) -> None:
    (root.path / "dangling").symlink_to(host / "made.txt")
    with pytest.raises(EscapeError):
        root.write_bytes("dangling", b"x")
    with pytest.raises(EscapeError):
        root.write_bytes("dangling", b"x", exclusive=True)
    assert not (host / "made.txt").exists()


def test_dangling_link_inside_creates_its_target(root: SafeRoot) -> None:
    (root.path / "later").symlink_to("pkg/later.py")
    root.write_bytes("later", b"made\n", exclusive=True)
    assert (root.path / "pkg" / "later.py").read_bytes() == b"made\n"


def test_link_loop_is_an_error(root: SafeRoot) -> None:
    (root.path / "x").symlink_to("y")
    (root.path / "y").symlink_to("x")
    with pytest.raises(SafeFSError) as caught:
        root.read_bytes("x", max_bytes=100)
    assert caught.value.errno == errno.ELOOP


def test_no_follow_opens_the_link_itself(root: SafeRoot) -> None:
    (root.path / "alias").symlink_to("pkg/mod.py")
    with pytest.raises(SafeFSError) as caught:
        root.read_bytes("alias", max_bytes=100, follow=False)
    assert caught.value.errno == errno.ELOOP
    root.unlink("alias")  # removes the link, not the file it names
    assert not (root.path / "alias").is_symlink() and (root.path / "pkg" / "mod.py").exists()


def test_fifo_is_refused_without_blocking(root: SafeRoot) -> None:
    os.mkfifo(root.path / "pipe")
    outcome: dict[str, BaseException] = {}

    def attempt() -> None:
        for call in (lambda: root.read_bytes("pipe", max_bytes=100), lambda: root.write_bytes("pipe", b"x")):
            try:
                call()
            except SafeFSError as exc:
                outcome.setdefault("read" if "read" not in outcome else "write", exc)

    worker = threading.Thread(target=attempt, daemon=True)
    started = time.monotonic()
    worker.start()
    worker.join(5)
    assert not worker.is_alive(), "a FIFO blocked the caller"
    assert time.monotonic() - started < 1.0
    assert set(outcome) == {"read", "write"}
    assert all(exc.reason == safefs.NOT_REGULAR for exc in outcome.values())


def test_directory_and_size_limits(root: SafeRoot) -> None:
    with pytest.raises(SafeFSError) as caught:
        root.read_bytes("pkg", max_bytes=100)
    assert caught.value.errno == errno.EISDIR
    with pytest.raises(SafeFSError) as caught:
        root.read_bytes("pkg/mod.py", max_bytes=3)
    assert caught.value.errno == errno.EFBIG and caught.value.size == len("inside\n")


def test_hard_link_is_replaced_not_written_through(root: SafeRoot, host: Path) -> None:
    shared = host / "shared.py"
    shared.write_text("original\n")
    shared.chmod(0o750)
    os.link(shared, root.path / "pkg" / "linked.py")
    root.write_bytes("pkg/linked.py", b"edited\n")
    assert shared.read_text() == "original\n" and shared.stat().st_nlink == 1
    mine = root.path / "pkg" / "linked.py"
    assert mine.read_bytes() == b"edited\n"
    assert mine.stat().st_mode & 0o7777 == 0o750  # the replacement keeps the mode
    assert sorted(p.name for p in (root.path / "pkg").iterdir()) == ["linked.py", "mod.py"]  # no temp left


def test_in_place_write_keeps_mode_and_inode(root: SafeRoot) -> None:
    f = root.path / "pkg" / "mod.py"
    f.chmod(0o755)
    before = f.stat().st_ino
    root.write_bytes("pkg/mod.py", b"new\n")
    assert f.read_bytes() == b"new\n" and f.stat().st_ino == before and f.stat().st_mode & 0o777 == 0o755


def test_exclusive_and_create_flags(root: SafeRoot) -> None:
    with pytest.raises(SafeFSError) as caught:
        root.write_bytes("pkg/mod.py", b"x", exclusive=True)
    assert caught.value.errno == errno.EEXIST
    with pytest.raises(SafeFSError) as caught:
        root.write_bytes("pkg/absent.py", b"x", create=False)
    assert caught.value.errno == errno.ENOENT


def test_long_names(root: SafeRoot, host: Path) -> None:
    longest = "n" * 255
    root.write_bytes(longest, b"fits\n")
    assert root.read_bytes(longest, max_bytes=100) == b"fits\n"
    os.link(host / "secret.txt", root.path / ("h" * 255))
    root.write_bytes("h" * 255, b"replaced\n")  # the temp file's name must fit too
    assert (host / "secret.txt").read_text() == "host secret\n"
    with pytest.raises(SafeFSError) as caught:
        root.write_bytes("n" * 256, b"x")
    assert caught.value.errno == errno.ENAMETOOLONG and "\n" not in str(caught.value)


def test_mkdirs_through_an_inside_link(root: SafeRoot) -> None:
    (root.path / "alias").symlink_to("pkg", target_is_directory=True)
    root.mkdirs("alias/a/b")
    root.mkdirs("alias/a/b")  # idempotent, like mkdir -p
    assert (root.path / "pkg" / "a" / "b").is_dir()


def test_listdir_reports_links_as_links(root: SafeRoot, host: Path) -> None:
    (root.path / "pkg" / "out").symlink_to(host, target_is_directory=True)
    entries = {e.name: e for e in root.listdir("pkg")}
    assert entries["out"].is_symlink and not entries["out"].is_dir
    with pytest.raises(EscapeError):
        root.listdir("pkg/out")


def test_nul_in_a_path(root: SafeRoot) -> None:
    with pytest.raises(SafeFSError, match="NUL"):
        root.read_bytes("a\x00b", max_bytes=10)


def test_the_kernel_resolver_is_used_when_present(
    root: SafeRoot, resolver: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = safefs.beneath.openat2

    def counting(dir_fd: int, path: str, flags: int, mode: int, resolve: int = safefs.fdops.RESOLVE) -> int:
        calls.append(path)
        return real(dir_fd, path, flags, mode, resolve)

    monkeypatch.setattr(safefs.beneath, "openat2", counting)
    root.read_bytes("pkg/mod.py", max_bytes=100)
    assert calls == (["pkg/mod.py"] if resolver == "openat2" else [])


def test_module_functions_take_a_path(tmp_path: Path, resolver: str) -> None:
    base = tmp_path / "r"
    base.mkdir()
    safefs.write_bytes(base, "f.txt", b"a\r\nb\rc\n")
    assert safefs.read_bytes(base, "f.txt", max_bytes=100) == b"a\r\nb\rc\n"
    # Universal newlines, as Path.read_text.
    assert safefs.read_text(base, "f.txt", max_bytes=100) == "a\nb\nc\n"
    assert (
        safefs.is_file(base, "f.txt")
        and not safefs.is_file(base, "nope")
        and not safefs.is_file(base, "/etc/passwd")
    )
    assert safefs.stat_path(base, "f.txt").st_size == 7


def test_a_missing_root_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SafeFSError) as caught:
        SafeRoot(tmp_path / "absent")
    assert str(tmp_path / "absent") in str(caught.value) and "\n" not in str(caught.value)


# -- read_regular_file: a file in a host-made directory the sandbox can write ------------------------------


def test_read_regular_file(tmp_path: Path, host: Path) -> None:
    (tmp_path / "report.json").write_text("{}")
    assert safefs.read_regular_file(tmp_path, "report.json", 100) == b"{}"
    (tmp_path / "link.json").symlink_to(host / "secret.txt")
    os.link(host / "secret.txt", tmp_path / "hard.json")
    os.mkfifo(tmp_path / "fifo.json")
    (tmp_path / "big.json").write_text("x" * 101)
    expected = {
        "link.json": errno.ELOOP,
        "hard.json": errno.EMLINK,
        "fifo.json": errno.EINVAL,
        "big.json": errno.EFBIG,
        "absent.json": errno.ENOENT,
        "../host/secret.txt": errno.EINVAL,
    }
    for name, err in expected.items():
        started = time.monotonic()
        with pytest.raises(SafeFSError) as caught:
            safefs.read_regular_file(tmp_path, name, 100)
        assert caught.value.errno == err, name
        assert time.monotonic() - started < 1.0
        assert "host secret" not in str(caught.value)
