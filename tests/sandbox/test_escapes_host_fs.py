"""Escapes through files the host touches: the scratch dir (command files the host writes, output and report
files it reads), host paths a sandbox can name (the run directory, other workspaces, devloop's private git
dir), and links planted for a host-side chown, rmtree or cleanup to follow.

Each attempt runs through the real BwrapRuntime. A host file that only the host can see (under the host's
/tmp, which the sandbox sees as its own empty tmpfs) holds a secret: it must never show up in what the host
reads back; a host file the sandbox can name must keep its contents, owner and link count."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from pathlib import Path

import pytest

from devloop.feedback.runners import PytestRunner
from devloop.runtime.bwrap import BwrapRuntime, probe_bwrap
from devloop.runtime.identity import sandbox_user, take_back
from devloop.runtime.limits import MIB, Limits
from devloop.workspace import Workspace, git

pytestmark = [
    pytest.mark.bwrap,
    pytest.mark.skipif(probe_bwrap() is not None, reason=f"bubblewrap is not usable here: {probe_bwrap()}"),
]

LIMITS = Limits(max_processes=256, max_output_bytes=8 * MIB, max_file_bytes=64 * MIB)
# The running command's own output file, and the number of the next command, as a model finds them.
LOG = "log=$(readlink /proc/$$/fd/1); n=${log##*out-}; n=${n%.log}; "


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def host_secret(tmp_path: Path) -> tuple[Path, str]:
    """A root-only file only the host can see, and the secret in it."""
    secret = secrets.token_hex(12)
    path = tmp_path / "host-only" / "secret.txt"
    path.parent.mkdir()
    path.write_text(f"{secret}\n")
    path.chmod(0o600)
    return path, secret


def test_command_files_cannot_be_replaced(sandbox: BwrapRuntime, tmp_path: Path, escape) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("the host's file\n")
    before = digest(victim)
    with escape("link the next command file to a host file", by="command dir read-only inside"):
        result = sandbox.run(
            f"{LOG}ln -sf {victim} {sandbox.cmd_dir}/cmd.sh; echo ln=$?;"
            f" rm -f {sandbox.cmd_dir}/*; echo rm=$?; mv {sandbox.cmd_dir} /tmp/x; echo mv=$?",
            5,
        )
        assert "ln=0" not in result.output and "rm=0" not in result.output and "mv=0" not in result.output
        assert sandbox.run("echo next", 5).output == "next\n"
        assert digest(victim) == before


def test_output_file_swapped_for_a_link(sandbox: BwrapRuntime, host_secret: tuple[Path, str], escape) -> None:
    path, secret = host_secret
    with escape("swap the output file for a link to a host file", by="O_NOFOLLOW read"):
        result = sandbox.run(f'{LOG}echo start; ln -sf {path} "$log"', 5)
        assert secret not in result.output and "replaced" in result.output
    with escape("plant links as the next commands' output files", by="O_NOFOLLOW read; target not inside"):
        sandbox.run(f"{LOG}for i in 1 2 3; do ln -sf {path} {sandbox.out_dir}/out-$((n+i)).log; done", 5)
        outputs = [sandbox.run(f"echo {i}; cat {path}", 5).output for i in range(3)]
        assert not [out for out in outputs if secret in out]
        assert path.read_text() == f"{secret}\n"


def test_output_file_swapped_for_special_files(sandbox: BwrapRuntime, escape) -> None:
    with escape("swap the output file for a FIFO (hang the host)", by="O_NONBLOCK open; regular files only"):
        started = time.monotonic()
        result = sandbox.run(f'{LOG}rm -f "$log"; mkfifo "$log"', 10)
        assert time.monotonic() - started < 3
        assert "replaced by not a regular file" in result.output
    with escape("swap the output file for a hard link", by="a file with two links is not read"):
        result = sandbox.run(f'{LOG}echo mine; ln "$log" {sandbox.out_dir}/kept.log', 5)
        assert "replaced by a hard link" in result.output and "mine" not in result.output
    bind = "import socket, sys\nsocket.socket(socket.AF_UNIX).bind(sys.argv[1])\n"
    with escape("swap the output file for a unix socket", by="O_NONBLOCK open; regular files only"):
        result = sandbox.run(f'{LOG}rm -f "$log"; python3 -c \'{bind}\' "$log"', 5)
        assert "replaced" in result.output
        assert sandbox.run("echo alive", 5).output == "alive\n"


def test_planted_directories_do_not_break_the_host(workspace: Path, escape) -> None:
    (workspace / "test_ok.py").write_text("def test_ok():\n    pass\n")
    # The model's test code knows the report's path (the plugin reads it from the environment).
    (workspace / "conftest.py").write_text(
        "import os, shutil\n\n\ndef pytest_unconfigure(config):\n    path = os.environ.get('DEVLOOP_REPORT_FILE')\n"
        "    if path:\n        os.unlink(path)\n        os.mkdir(path)\n"
    )
    rt = BwrapRuntime(workspace, limits=LIMITS)
    try:
        with escape(
            "a directory as the pytest report (end the run)", by="unguessable names; removal never raises"
        ):
            rt.run(f"mkdir {rt.out_dir}/pytest-report-1.jsonl", 5)  # the old, predictable name
            report = PytestRunner(rt, workspace).run(None, 60)
            assert report.statuses  # graded from the -rA summary in the log instead
            assert "test_ok.py::test_ok" in report.statuses
    finally:
        rt.run(f'{LOG}rm -f "$log"; mkdir "$log"', 5)
        with escape("a directory as the output file (close() leaks)", by="close() removes whatever it finds"):
            raised = None
            try:
                rt.close()
            except OSError as exc:
                raised = exc
            leaked = rt.scratch_dir.exists() or (rt.cgroup is not None and rt.cgroup.path.exists())
            rt._cleanup()  # never leave the cgroup and scratch dir behind on this machine
            assert raised is None and not leaked, f"close() raised {raised!r}; cgroup/scratch left: {leaked}"


def test_pytest_report_swapped_for_a_link(workspace: Path, tmp_path: Path, escape) -> None:
    forged = f"test_forged_{secrets.token_hex(6)}"
    report = tmp_path / "host-report.jsonl"  # a host file in the report's format, e.g. another run's
    report.write_text(json.dumps({"id": f"tests/test_x.py::{forged}", "status": "PASSED"}) + "\n")
    (workspace / "test_ok.py").write_text("def test_ok():\n    pass\n")
    (workspace / "conftest.py").write_text(
        "import os\n\n\ndef pytest_unconfigure(config):\n    path = os.environ.get('DEVLOOP_REPORT_FILE')\n"
        f"    if path:\n        os.unlink(path)\n        os.symlink({str(report)!r}, path)\n"
    )
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    with (
        BwrapRuntime(workspace, limits=LIMITS, env=env, pass_env=["PYTEST_DISABLE_PLUGIN_AUTOLOAD"]) as rt,
        escape("swap the pytest report for a link to a host file", by="report read with no-follow (safefs)"),
    ):
        got = PytestRunner(rt, workspace).run(None, 60)
        assert "test_ok.py::test_ok" in got.statuses  # the run happened (from the -rA summary)
        assert not [t for t in got.statuses if forged in t]


def test_links_in_the_scratch_dir_survive_its_removal(workspace: Path, visible_dir: Path, escape) -> None:
    precious = visible_dir / "keep" / "precious.txt"
    precious.parent.mkdir()
    precious.write_text("keep me\n")
    rt = BwrapRuntime(workspace, limits=LIMITS)
    try:
        rt.run(
            f"ln -s {precious.parent} {rt.out_dir}/evil; mkdir {rt.out_dir}/d; ln -s {precious} {rt.out_dir}/d/f;"
            f" ln -s {precious.parent} {rt.out_dir}/out-3.log",
            5,
        )
    finally:
        rt.close()
    with escape("links in the scratch dir for its rmtree to follow", by="rmtree never follows a link"):
        assert precious.read_text() == "keep me\n" and not rt.scratch_dir.exists()


def test_workspace_links_for_host_side_chown_and_cleanup(tmp_path: Path, visible_dir: Path, escape) -> None:
    repo = make_repo(tmp_path / "user")
    target = visible_dir / "owned.txt"
    target.write_text("x\n")
    folder = visible_dir / "dir"
    (folder / "inner").mkdir(parents=True)
    ws = Workspace.create(repo)
    try:
        with BwrapRuntime(ws.root, limits=LIMITS, ro_binds=ws.read_only_paths) as rt:
            ws.attach(rt)
            with escape(
                "hard link host files into the workspace", by="EXDEV across mounts; protected_hardlinks"
            ):
                result = rt.run(f"ln /etc/passwd hp; echo p=$?; ln {target} ht; echo t=$?", 5)
                assert os.stat(target).st_nlink == 1 and os.stat("/etc/passwd").st_nlink == 1
                assert not (ws.root / "hp").exists() and not (ws.root / "ht").exists()
                assert "p=0" not in result.output and "t=0" not in result.output
            rt.run(
                f"ln -s {target} a; ln -s a b; ln -s b c; ln -s {folder} d; mkdir -p s/t;"
                f" ln -s {folder}/inner s/t/e; ln -s {visible_dir} s/up",
                5,
            )
        with escape("link chains for hand_over / take_back to chown", by="lchown, walk without following"):
            if not sandbox_user().demote:
                pytest.skip("not root: nothing is chowned")
            for path in (target, folder, folder / "inner"):
                os.chown(path, 4242, 4242)  # neither root nor the sandbox user: any chown shows
            BwrapRuntime(ws.root, limits=LIMITS).close()  # a new sandbox on the tree hands it over again
            take_back(ws.root)  # --keep-workspace gives it back to root
            assert [os.lstat(p).st_uid for p in (target, folder, folder / "inner")] == [4242] * 3
            assert os.lstat(visible_dir).st_uid == 0
    finally:
        ws.cleanup()
    with escape("links in the workspace for its cleanup to follow", by="rmtree never follows a link"):
        assert target.read_text() == "x\n" and (folder / "inner").is_dir() and not ws.root.exists()


def test_host_paths_a_sandbox_can_name(tmp_path: Path, visible_dir: Path, escape) -> None:
    repo = make_repo(tmp_path / "user")
    ws = Workspace.create(repo)  # holder in /tmp: the usual case
    seen = Workspace.create(repo, parent=visible_dir)  # holder where the sandbox can see it
    other = Workspace.create(repo, parent=visible_dir)  # another run's workspace
    run_dir = visible_dir / "runs" / "run-1"
    run_dir.mkdir(parents=True)
    (run_dir / "result.json").write_text("{}\n")
    try:
        configs = {id(w): digest(w.gitdir / "config") for w in (ws, seen)}
        for w, attempt, by in (
            (ws, "devloop's private git dir (in /tmp)", "invisible: private /tmp"),
            (seen, "devloop's private git dir (visible)", "read-only inside"),
        ):
            with BwrapRuntime(w.root, limits=LIMITS, ro_binds=w.read_only_paths) as rt:
                w.attach(rt)
                with escape(f"write {attempt}", by=by):
                    result = rt.run(
                        f"cd {w.gitdir} && echo rc=$?; printf '[core]\\n\\tfsmonitor = touch /x\\n'"
                        f" >> {w.gitdir}/config; echo w=$?; touch {w.gitdir}/hooks/x; echo h=$?",
                        5,
                    )
                    assert "w=0" not in result.output and "h=0" not in result.output
                    assert digest(w.gitdir / "config") == configs[id(w)]
                    assert w.diff() == ""
        with (
            BwrapRuntime(seen.root, limits=LIMITS, ro_binds=seen.read_only_paths) as rt,
            escape("write another run's workspace and the run directory", by="read-only root filesystem"),
        ):
            result = rt.run(
                f"echo pwned > {other.root}/a.txt; echo a=$?; echo pwned > {run_dir}/result.json;"
                f" echo r=$?; touch {ws.root}/x; echo t=$?",
                5,
            )
            assert "a=0" not in result.output and "r=0" not in result.output and "t=0" not in result.output
            assert (other.root / "a.txt").read_text() == "a\n" and (
                run_dir / "result.json"
            ).read_text() == "{}\n"
    finally:
        for w in (ws, seen, other):
            w.cleanup()


def make_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "a.txt").write_text("a\n")
    git(path, "init", "-q")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "start")
    return path
