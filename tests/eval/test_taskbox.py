"""TaskBox and what grading needs of it: where commands run, the venv a sandbox cannot write through,
git that reads nothing of the tree, and output taken only from a file devloop opened itself."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from devloop.eval import Category, EnvironmentManager, grade, taskbox
from devloop.eval.envs import harden
from devloop.eval.source import apply_patch
from devloop.eval.taskbox import UNCONFINED, TaskBox, _open_output, grading_confinement, grading_sandbox
from devloop.runtime.bwrap import probe_bwrap
from devloop.tasks import EnvironmentSpec
from devloop.types import CommandResult

needs_bwrap = pytest.mark.skipif(
    probe_bwrap() is not None, reason=f"bubblewrap is not usable: {probe_bwrap()}"
)


def _inodes(root: Path) -> dict[str, int]:
    return {
        str(p.relative_to(root)): p.stat().st_ino
        for p in root.rglob("*")
        if p.is_file() and not p.is_symlink()
    }


def test_private_clone_shares_no_file_with_the_cache_and_names_itself(env_manager, spec, tmp_path):
    cached = env_manager.venv_for(spec)
    linked = env_manager.clone(cached, tmp_path / "linked")
    private = env_manager.clone(cached, tmp_path / "private", private=True)
    cache_inodes = _inodes(cached)
    shared = [rel for rel, ino in _inodes(linked).items() if cache_inodes.get(rel) == ino]
    assert len(shared) > 100  # the cheap clone really is hard links
    assert not [rel for rel, ino in _inodes(private).items() if cache_inodes.get(rel) == ino]
    for clone in (linked, private):  # bin/ scripts relocated either way
        assert str(clone) in (clone / "bin" / "pytest").read_text().splitlines()[0]


def test_cached_files_are_never_group_or_other_writable(env_manager, spec, tmp_path):
    cached = env_manager.venv_for(spec)
    writable = [p for p in cached.rglob("*") if not p.is_symlink() and p.lstat().st_mode & 0o022]
    assert writable == []
    copy = env_manager.clone(cached, tmp_path / "copy", private=True)
    planted = next(copy.glob("lib/python*/site-packages/pytest/__init__.py"))
    planted.chmod(0o666)
    assert harden(copy) == 1
    assert stat.S_IMODE(planted.stat().st_mode) == 0o644


def test_a_cache_from_before_hardening_is_walked_once_then_trusted_by_its_record(
    env_manager, spec, tmp_path, monkeypatch
):
    import devloop.eval.envs as envs

    shared = env_manager.venv_for(spec)
    assert json.loads((shared / envs._COMPLETE).read_text())["hardened"] is True  # a new build says so
    cache_dir = tmp_path / "cache"  # a copy: the shared cache is not this test's to change
    cached = cache_dir / "venvs" / shared.name
    cached.parent.mkdir(parents=True)
    subprocess.run(["cp", "-a", str(shared), str(cached)], check=True)
    record = cached / envs._COMPLETE
    old = {k: v for k, v in json.loads(record.read_text()).items() if k != "hardened"}
    record.write_text(json.dumps(old))  # as a build before hardening left it
    planted = next(cached.glob("lib/python*/site-packages/pytest/__init__.py"))
    planted.chmod(0o666)
    walks: list[Path] = []
    real = envs.harden
    monkeypatch.setattr(envs, "harden", lambda venv: walks.append(venv) or real(venv))
    for _ in range(2):  # two processes' managers: the first walks and records it, the second trusts it
        assert EnvironmentManager(cache_dir).venv_for(spec) == cached
    assert walks == [cached]
    assert stat.S_IMODE(planted.stat().st_mode) == 0o644
    assert json.loads(record.read_text())["hardened"] is True


def test_task_env_carries_the_venv_and_task_variables_only(monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-host-secret")
    env = EnvironmentManager.task_env(tmp_path / "venv", EnvironmentSpec(python="3.11", env={"MARK": "1"}))
    assert set(env) == {"VIRTUAL_ENV", "PATH", "MARK"}
    assert env["PATH"].startswith(f"{tmp_path / 'venv' / 'bin'}{os.pathsep}")


def _digest(venv: Path) -> str:
    """Every path, mode and content under `venv` (links as their targets, unfollowed)."""
    h = hashlib.sha256()
    for p in sorted(venv.rglob("*")):
        st = p.lstat()
        h.update(f"{p.relative_to(venv)}\0{st.st_mode}\0".encode())
        if p.is_symlink():
            h.update(os.readlink(p).encode())
        elif p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


HOSTILE_TEST = r"""
import os, pathlib, shutil, site, sys
venv = pathlib.Path(sys.prefix)
site_dir = pathlib.Path(site.getsitepackages()[0])
tried = {
    "append": lambda: open(site_dir / "pytest" / "__init__.py", "a").write("raise SystemExit\n"),
    "add": lambda: (site_dir / "evil.pth").write_text("import os\n"),
    "remove": lambda: os.remove(site_dir / "pytest" / "__init__.py"),
    "rename": lambda: os.rename(venv / "bin" / "pytest", venv / "bin" / "pytest.old"),
    "chmod": lambda: os.chmod(venv / "bin" / "python", 0o777),
    "rmtree": lambda: shutil.rmtree(site_dir / "_pytest"),
    "config": lambda: (venv / "pyvenv.cfg").write_text("home = /tmp\n"),
}
for name, attempt in tried.items():
    try:
        attempt()
        print("WROTE", name)
    except OSError as exc:
        print("refused", name, exc.strerror)
"""


@needs_bwrap
def test_a_task_without_install_grades_in_the_cache_itself_which_no_test_can_change(
    env_manager, spec, tmp_path
):
    cached = env_manager.venv_for(spec)
    before = _digest(cached)
    box = TaskBox(tmp_path / "box", sandbox="bwrap")
    box.tree.mkdir(parents=True)
    (box.tree / "test_hostile.py").write_text(HOSTILE_TEST)
    env = box.prepare_env(env_manager, cached, spec)
    assert box.venv == cached and env["VIRTUAL_ENV"] == str(cached)  # no copy made
    assert not (box.workdir / "venv").exists()
    with box:
        result = box.run("python test_hostile.py", timeout=60, log=tmp_path / "log")
    said = (tmp_path / "log").read_text()
    assert result.exit_code == 0, said
    assert said.count("refused") == 7 and "WROTE" not in said, said
    assert "refused add Read-only file system" in said  # the mount refuses, whoever the sandbox runs as
    assert _digest(cached) == before


@needs_bwrap
def test_confined_box_hands_over_directories_only(env_manager, spec, tmp_path):
    cached = env_manager.venv_for(spec)
    package = next(cached.glob("lib/python*/site-packages/pytest/__init__.py"))
    before = hashlib.sha256(package.read_bytes()).hexdigest()
    box = TaskBox(tmp_path / "box", sandbox="bwrap")
    box.tree.mkdir(parents=True)
    spec = spec.model_copy(update={"install": "true"})  # an install step: the box gets a clone
    env = box.prepare_env(env_manager, cached, spec)
    user = taskbox.sandbox_user()
    clone_package = box.venv / package.relative_to(cached)
    if user.demote:  # root: links, the files stay root's and read-only to the sandbox user
        assert clone_package.stat().st_ino == package.stat().st_ino
        assert clone_package.stat().st_uid == os.geteuid() and not clone_package.stat().st_mode & 0o022
        assert (box.venv / "lib").stat().st_uid == user.uid
    else:  # the sandbox is this user, who could write through a link: a real copy
        assert clone_package.stat().st_ino != package.stat().st_ino
    assert set(env) == {"VIRTUAL_ENV", "PATH"}
    with box:
        site = clone_package.parent.parent
        result = box.run(
            f"echo >> {clone_package}; echo ok > {site}/added.pth", timeout=30, log=tmp_path / "log"
        )
    assert result.exit_code == 0
    assert (site / "added.pth").read_text() == "ok\n"  # the sandbox may add files to its venv...
    assert hashlib.sha256(package.read_bytes()).hexdigest() == before  # ...but never write the cache
    assert not list(cached.glob("lib/python*/site-packages/added.pth"))
    assert ("Permission denied" in (tmp_path / "log").read_text()) == user.demote


@needs_bwrap
def test_confined_output_reaches_the_log_only_after_the_sandbox_ends(env_manager, spec, tmp_path):
    box = TaskBox(tmp_path / "box", sandbox="bwrap")
    box.tree.mkdir(parents=True)
    box.prepare_env(env_manager, env_manager.venv_for(spec), spec)
    log = tmp_path / "logs" / "out.txt"
    log.parent.mkdir()
    with box:
        result = box.run("echo from-the-box; pwd; test -w " + str(log.parent) + " && echo LOGDIR-WRITABLE",
                         timeout=30, log=log)  # fmt: skip
        assert result.exit_code in (0, 1) and not log.exists()  # nothing written while it may still change
    header, _, output = log.read_text().partition("\n")
    assert header.startswith("$ echo from-the-box")
    assert output == f"from-the-box\n{box.tree}\n"  # run in the tree; the log dir is not writable there


def test_output_file_swapped_for_a_link_is_not_read(tmp_path):
    secret = tmp_path / "host-secret"
    secret.write_text("root's secret")
    link = tmp_path / "out-1.log"
    link.symlink_to(secret)
    swapped = _open_output(CommandResult(output="", exit_code=0, output_path=str(link)))
    assert (
        isinstance(swapped, str) and "replaced" in swapped and "secret" not in swapped.replace("replaced", "")
    )
    hard = tmp_path / "out-2.log"
    os.link(secret, hard)
    linked = _open_output(CommandResult(output="", exit_code=0, output_path=str(hard)))
    assert isinstance(linked, str) and "root's secret" not in linked
    plain = tmp_path / "out-3.log"
    plain.write_text("ok")
    fd = _open_output(CommandResult(output="", exit_code=0, output_path=str(plain)))
    assert isinstance(fd, int)
    os.close(fd)


def test_git_apply_reads_no_config_or_repository_of_the_tree(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "f.txt").write_text("a\n")
    subprocess.run(["git", "init", "-q"], cwd=tree, check=True)
    marker = tmp_path / "filter-ran"
    # What a model could leave in the tree: a repository whose config runs commands and rejects patches.
    (tree / ".git" / "config").write_text(
        f'[apply]\n\twhitespace = error\n[filter "x"]\n\tclean = touch {marker}; cat\n'
        f"[core]\n\tfsmonitor = touch {marker}\n"
    )
    (tree / ".gitattributes").write_text("* filter=x\n")
    patch = "diff --git a/f.txt b/f.txt\n--- a/f.txt\n+++ b/f.txt\n@@ -1 +1 @@\n-a\n+b   \n"
    applied = apply_patch(tree, patch, fallbacks=False)
    assert applied.applied, applied.log  # apply.whitespace=error was not read
    assert (tree / "f.txt").read_text() == "b   \n" and not marker.exists()


def test_apply_patch_uses_the_runner_it_is_given(tmp_path):
    calls: list[tuple[list[str], bytes]] = []

    def refuse(argv, patch):
        calls.append((list(argv), patch))
        return 1, "refused"

    result = apply_patch(tmp_path, "not a patch", runner=refuse)
    assert not result.applied and [c[0][:2] for c in calls] == [
        ["git", "apply"],
        ["git", "apply"],
        ["patch", "--batch"],
    ]
    assert calls[0][1] == b"not a patch\n" and "refused" in result.log


def test_sandbox_none_grades_unconfined_and_says_so(make_task, env_manager, tmp_path):
    task = make_task()
    verdict = grade(task, task.patch, env_manager=env_manager, mirrors=None, workdir=tmp_path / "w",
                    log_dir=tmp_path / "logs", sandbox="none")  # fmt: skip
    assert verdict.category == Category.RESOLVED, verdict.message
    assert verdict.extra["sandbox"] == "none" and verdict.extra["unconfined"] == UNCONFINED


@needs_bwrap
def test_default_grading_is_sandboxed_and_resolves_the_gold_patch(make_task, env_manager, tmp_path):
    task = make_task()
    verdict = grade(task, task.patch, env_manager=env_manager, mirrors=None, workdir=tmp_path / "w",
                    log_dir=tmp_path / "logs")  # fmt: skip
    assert verdict.category == Category.RESOLVED, verdict.message
    assert verdict.extra["sandbox"] == "bwrap" and "unconfined" not in verdict.extra


def test_grading_sandbox_names_and_bad_values():
    assert grading_sandbox("none") == ("none", None)
    with pytest.raises(ValueError, match="unknown sandbox"):
        grading_sandbox("vm")
    with pytest.raises(ValueError, match="--memory-limit"):
        grading_confinement("none", "lots")
    name, limits, _ = grading_confinement("none", "512M")
    assert name == "none" and limits.memory_bytes == 512 << 20
