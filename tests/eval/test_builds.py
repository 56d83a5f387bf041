"""The build cache: a grading after the first restores what the install left instead of running it, the
verdict unchanged; the key follows every input; a corrupt entry is filled again; no grading can change an
entry; binary content naming the build's directory makes a key not cacheable; one filler per key.

Each test's install script carries a token of its own, so its keys are its own in the session's cache.
Where the install runs unconfined (`sandbox="none"`), it counts its runs in a file outside the tree; in the
sandbox, it writes a random value into the tree, which a second run would change."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import threading
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from devloop.cli import app
from devloop.eval import Category, grade
from devloop.eval.builds import BuildCache, build_key, key_inputs
from devloop.eval.checkout import build_cache, check_out
from devloop.eval.taskbox import TaskBox
from devloop.runtime.bwrap import probe_bwrap

needs_bwrap = pytest.mark.skipif(
    probe_bwrap() is not None, reason=f"bubblewrap is not usable: {probe_bwrap()}"
)
EDITABLE = "python -m pip install -q --no-deps --no-build-isolation --no-index -e ."
SETUP_PY = "from setuptools import setup\n\nsetup(name='calcpkg', version='0', py_modules=['calc'])\n"
STAMP = "cat /proc/sys/kernel/random/uuid > stamp.txt"
# A test command quicker than pytest: it passes only where the install's out.txt is in the tree.
QUICK = {"test_cmd": "sh -c 'if test -f out.txt; then echo PASSED t::built; else echo FAILED t::built; fi'"}


def _grade(task, manager, work: Path, **kw):
    return grade(task, task.patch, env_manager=manager, mirrors=None, workdir=work / "w", log_dir=work / "logs",
                 **kw)  # fmt: skip


def _task(make_task, spec, install: str, **fields):
    environment = {**spec.model_dump(), **fields.pop("environment", {})}
    return make_task(environment={**environment, "install": f"{install}  # {uuid.uuid4().hex}"}, **fields)


def _quick(make_task, spec, install: str):
    """A task graded by QUICK: resolved when the install's `out.txt` is in the tree."""
    return _task(make_task, spec, install, environment=QUICK, FAIL_TO_PASS=["t::built"], PASS_TO_PASS=[])


def _entry(manager, task) -> Path:
    """The cache entry filled for `task` (found by its install script)."""
    found = [p for p in (manager.cache_dir / "builds").iterdir() if (p / "manifest.json").is_file()
             and json.loads((p / "manifest.json").read_text())["inputs"]["install"] == task.environment.install]  # fmt: skip
    assert len(found) == 1, found
    return found[0]


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        h.update(f"{p.relative_to(root)}\0{st.st_mode}\0{st.st_uid}\0".encode())
        if p.is_file() and not p.is_symlink():
            h.update(p.read_bytes())
    return h.hexdigest()


def _counting(counter: Path, then: str) -> str:
    return f"echo run >> {counter} && {then}"


def _runs(counter: Path) -> int:
    return len(counter.read_text().splitlines()) if counter.exists() else 0


@needs_bwrap
def test_a_pip_editable_install_is_restored_with_its_paths_rewritten_and_not_run_again(
    make_task, env_manager, spec, calc_repo, tmp_path
):
    repo = tmp_path / "pkg"
    shutil.copytree(calc_repo[0], repo)
    (repo / "conftest.py").unlink()  # `import calc` must come from the editable install
    (repo / "setup.py").write_text(SETUP_PY)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "packaged"], check=True)
    base = subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    # Resolved only when `calc` is imported through the editable install (-I: not from the working directory)
    # and from this grading's own tree, with the gold patch applied.
    check = ("python -I -c \"import calc, os; ok = calc.add(2, 3) == 5 and calc.__file__.startswith(os.getcwd()); "
             "print('PASSED' if ok else 'FAILED', 't::built')\"")  # fmt: skip
    task = _task(make_task, spec, f"{EDITABLE} && {STAMP}", base_commit=base, repo_path=str(repo),
                 environment={"test_cmd": check}, FAIL_TO_PASS=["t::built"], PASS_TO_PASS=[])  # fmt: skip
    first = _grade(task, env_manager, tmp_path / "1")
    second = _grade(task, env_manager, tmp_path / "2")
    assert first.category == second.category == Category.RESOLVED, (first.message, second.message)
    assert (first.extra["build_cache"], second.extra["build_cache"]) == ("filled", "reused")
    assert "install" in first.timings and "install" not in second.timings
    assert "build_cache_restore" in second.timings
    # The install did not run again: its random stamp is the first run's.
    stamps = [(tmp_path / n / "w" / "tree" / "stamp.txt").read_text() for n in ("1", "2")]
    assert stamps[0] == stamps[1]
    # The editable install's files in the second venv name the second tree, never the first.
    site = next((tmp_path / "2" / "w" / "venv").glob("lib/python*/site-packages"))
    named = [p.read_text() for p in site.glob("__editable__*") if p.is_file()]
    assert named and any(str(tmp_path / "2" / "w" / "tree") in text for text in named)
    assert not any(str(tmp_path / "1") in text for text in named)
    assert (
        (tmp_path / "2" / "logs" / "install.log").read_text().startswith("[devloop: the install was not run")
    )


def test_the_key_follows_every_input_of_the_build(make_task, env_manager, spec):
    task = make_task(environment={**spec.model_dump(), "install": "make"})
    env, venv = task.environment, env_manager.key(task.environment)
    base = {"git_tree": False, "tree": "tree", "sandbox": "bwrap"}
    key = build_key(key_inputs(task, env, venv, **base))
    assert key == build_key(key_inputs(task, env, venv, **base))  # stable
    pins = env.model_copy(update={"pip": [*spec.pip, "attrs==23.1.0"]})
    changed = {
        "script": build_key(key_inputs(task, env.model_copy(update={"install": "make all"}), venv, **base)),
        "pins": build_key(key_inputs(task, pins, env_manager.key(pins), **base)),
        "commit": build_key(key_inputs(task.model_copy(update={"base_commit": "f" * 40}), env, venv, **base)),
        "env": build_key(key_inputs(task, env.model_copy(update={"env": {"CFLAGS": "-O0"}}), venv, **base)),
        "git tree": build_key(key_inputs(task, env, venv, **{**base, "git_tree": True, "tree": "repo"})),
        "sandbox": build_key(key_inputs(task, env, venv, **{**base, "sandbox": "none"})),
    }
    assert env_manager.key(pins) != venv
    assert key not in changed.values() and len(set(changed.values())) == len(changed), changed


@pytest.mark.parametrize("damage", ["blob", "manifest", "structure"])
def test_a_corrupt_entry_is_discarded_and_filled_again(make_task, env_manager, spec, tmp_path, damage):
    counter = tmp_path / "runs.txt"
    task = _quick(
        make_task, spec, _counting(counter, "mkdir -p gen && echo built > gen/out.txt && cp gen/out.txt .")
    )
    first = _grade(task, env_manager, tmp_path / "1", sandbox="none")
    entry = _entry(env_manager, task)
    if damage == "blob":
        blob = next((entry / "files").iterdir())
        blob.chmod(0o644)
        blob.write_text("truncated")
    else:
        manifest = entry / "manifest.json"
        written = json.loads(manifest.read_text())
        manifest.chmod(0o644)
        if damage == "manifest":
            manifest.write_text('{"format": 1, "key": "')  # half a manifest
        else:  # well-formed JSON, but not the manifest it was
            manifest.write_text(json.dumps({"format": written["format"], "key": written["key"], "parts": {}}))
    second = _grade(task, env_manager, tmp_path / "2", sandbox="none")
    third = _grade(task, env_manager, tmp_path / "3", sandbox="none")
    assert first.category == second.category == third.category == Category.RESOLVED
    assert first.extra["build_cache"] == "filled" and third.extra["build_cache"] == "reused"
    assert second.extra["build_cache"].startswith("filled (the entry there was corrupt")
    assert _runs(counter) == 2  # the first fill and the refill; the third grading restored
    assert (tmp_path / "3" / "w" / "tree" / "gen" / "out.txt").read_text() == "built\n"


@needs_bwrap
def test_no_grading_can_change_the_entry_it_was_restored_from(make_task, env_manager, spec, tmp_path):
    install = f"mkdir -p gen && echo built > gen/out.txt && echo made > $VIRTUAL_ENV/made.txt && {STAMP} && touch out.txt"
    task = _quick(make_task, spec, install)
    first = _grade(task, env_manager, tmp_path / "1")
    entry = _entry(env_manager, task)
    before = _digest(entry)
    for path in entry.rglob("*"):  # the host's, and read-only to everyone
        st = path.lstat()
        assert st.st_uid == os.geteuid() and not st.st_mode & 0o022, path
        if path.is_file():
            assert not st.st_mode & 0o222, path
    # The tests of the grading that reuses it write into every restored file and into the entry itself.
    hostile = (f"echo tampered >> gen/out.txt; echo tampered >> stamp.txt; echo tampered >> $VIRTUAL_ENV/made.txt; "
               f"echo tampered >> {entry}/files/0; rm -rf {entry}; {QUICK['test_cmd']}")  # fmt: skip
    attacked = task.model_copy(
        update={"environment": task.environment.model_copy(update={"test_cmd": hostile})}
    )
    second = _grade(attacked, env_manager, tmp_path / "2")
    assert second.extra["build_cache"] == "reused" and second.category == first.category == Category.RESOLVED
    assert (
        tmp_path / "2" / "w" / "tree" / "gen" / "out.txt"
    ).read_text() == "built\ntampered\n"  # it wrote...
    assert _digest(entry) == before  # ...its own copies only
    third = _grade(task, env_manager, tmp_path / "3")
    assert third.extra["build_cache"] == "reused"
    assert (tmp_path / "3" / "w" / "tree" / "gen" / "out.txt").read_text() == "built\n"
    assert (tmp_path / "3" / "w" / "venv" / "made.txt").read_text() == "made\n"
    stamp = (tmp_path / "1" / "w" / "tree" / "stamp.txt").read_text()
    assert (tmp_path / "3" / "w" / "tree" / "stamp.txt").read_text() == stamp  # the install never ran again


def test_binary_content_naming_the_tree_is_not_cacheable_and_the_install_runs_each_time(
    make_task, env_manager, spec, tmp_path
):
    counter = tmp_path / "runs.txt"
    task = _quick(
        make_task, spec, _counting(counter, "printf 'bin\\0%s' \"$PWD\" > blob.bin && touch out.txt")
    )
    verdicts = [_grade(task, env_manager, tmp_path / str(i), sandbox="none") for i in range(2)]
    assert [v.category for v in verdicts] == [Category.RESOLVED] * 2
    for v in verdicts:
        assert v.extra["build_cache"].startswith(
            "not cacheable: 'blob.bin' names the build's directory in binary"
        )
    assert _runs(counter) == 2
    assert len(list((env_manager.cache_dir / "builds").glob("*.not-cacheable"))) >= 1
    assert not [p for p in (env_manager.cache_dir / "builds").glob("*/manifest.json")
                if json.loads(p.read_text())["inputs"]["install"] == task.environment.install]  # fmt: skip


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler (cc) on PATH")
@pytest.mark.parametrize(("flags", "cacheable"), [("-g", True), ("-Wl,-rpath,$PWD/lib", False)])
def test_an_extension_naming_the_tree_in_debug_info_is_cached_but_not_one_with_an_rpath(
    make_task, env_manager, spec, tmp_path, flags, cacheable
):
    counter = tmp_path / "runs.txt"
    build = f"echo 'int f(void) {{ return 1; }}' > ext.c && cc -shared -fPIC {flags} -o ext.so ext.c && touch out.txt"
    task = _quick(make_task, spec, _counting(counter, build))
    verdicts = [_grade(task, env_manager, tmp_path / str(i), sandbox="none") for i in range(2)]
    assert [v.category for v in verdicts] == [Category.RESOLVED] * 2
    assert (
        str(tmp_path / "0" / "w" / "tree").encode() in (tmp_path / "0" / "w" / "tree" / "ext.so").read_bytes()
    )
    if cacheable:  # -g: only the debug info names it (the compiler's working directory)
        assert [v.extra["build_cache"] for v in verdicts] == ["filled", "reused"] and _runs(counter) == 1
        restored = (tmp_path / "1" / "w" / "tree" / "ext.so").read_bytes()
        assert restored == (tmp_path / "0" / "w" / "tree" / "ext.so").read_bytes()
    else:
        assert verdicts[1].extra["build_cache"].startswith("not cacheable: 'ext.so' is an ELF file naming")
        assert _runs(counter) == 2


def test_concurrent_gradings_of_one_key_fill_it_once(make_task, env_manager, spec, tmp_path):
    counter = tmp_path / "runs.txt"
    task = _quick(make_task, spec, _counting(counter, "sleep 0.5 && echo built > out.txt"))
    verdicts = {}

    def one(i: int) -> None:
        verdicts[i] = _grade(task, env_manager, tmp_path / str(i), sandbox="none")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(v.extra["build_cache"] for v in verdicts.values()) == ["filled", "reused"]
    assert {v.category for v in verdicts.values()} == {Category.RESOLVED}
    assert _runs(counter) == 1


def test_no_build_cache_runs_the_install_even_with_an_entry_there(make_task, env_manager, spec, tmp_path):
    counter = tmp_path / "runs.txt"
    task = _quick(make_task, spec, _counting(counter, "echo built > out.txt"))
    filled = _grade(task, env_manager, tmp_path / "0", sandbox="none")
    off = [_grade(task, env_manager, tmp_path / str(i), sandbox="none", builds=False) for i in (1, 2)]
    assert filled.extra["build_cache"] == "filled" and [v.extra["build_cache"] for v in off] == ["off", "off"]
    assert _runs(counter) == 3 and all("install" in v.timings for v in off)


def test_the_agents_git_tree_is_restored_with_the_hosts_own_git(make_task, env_manager, spec, tmp_path):
    counter = tmp_path / "runs.txt"
    task = _quick(make_task, spec, _counting(counter, "echo built > out.txt"))
    statuses = []
    for i in range(2):
        notes: dict[str, object] = {}
        with TaskBox(tmp_path / str(i), sandbox="none", tree="repo") as box:
            check_out(task, box, env_manager, None, timeout=60, install_log=tmp_path / f"{i}.log", commit_base=True,
                      builds=build_cache(env_manager), notes=notes)  # fmt: skip
        statuses.append(notes["build_cache"])
        assert (box.tree / "out.txt").read_text() == "built\n"
        listed = subprocess.run(
            ["git", "status", "--porcelain"], cwd=box.tree, capture_output=True, text=True
        )
        assert (
            listed.stdout == "?? out.txt\n"
        )  # the base commit is this tree's, the install's output untracked
    assert statuses == ["filled", "reused"] and _runs(counter) == 1


def test_a_cache_that_cannot_be_written_runs_the_install(make_task, env_manager, spec, tmp_path):
    counter = tmp_path / "runs.txt"
    task = _quick(make_task, spec, _counting(counter, "echo built > out.txt"))
    blocked = tmp_path / "builds"
    blocked.write_text("a file where the cache's directory should be")
    notes: dict[str, object] = {}
    with TaskBox(tmp_path / "box", sandbox="none") as box:
        check_out(task, box, env_manager, None, timeout=60, install_log=tmp_path / "install.log",
                  builds=BuildCache(blocked), notes=notes)  # fmt: skip
    assert str(notes["build_cache"]).startswith("cache failed: ") and _runs(counter) == 1
    assert (box.tree / "out.txt").read_text() == "built\n"


def test_eval_and_validate_take_no_build_cache(make_task, spec, tmp_path):
    # Passes with the gold patch (calc's fix) and the install's output only: the test patch alone fails.
    check = "sh -c 'if grep -q \"a + b\" calc.py && test -f out.txt; then echo PASSED t::built; else echo FAILED t::built; fi'"
    task = _task(make_task, spec, "echo built > out.txt", environment={"test_cmd": check}, FAIL_TO_PASS=["t::built"],
                 PASS_TO_PASS=[])  # fmt: skip
    tasks = tmp_path / "tasks.json"
    tasks.write_text(json.dumps([task.model_dump(mode="json")]))
    common = [
        "--tasks",
        str(tasks),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--output",
        str(tmp_path / "runs"),
    ]
    done = CliRunner().invoke(app, ["eval", *common, "--predictions", "gold", "--run-id", "e", "--sandbox", "none",
                                    "--no-build-cache"])  # fmt: skip
    assert done.exit_code == 0, done.output
    verdict = json.loads(
        (tmp_path / "runs" / "e" / "instances" / task.instance_id / "verdict.json").read_text()
    )
    assert verdict["category"] == "resolved" and verdict["extra"]["build_cache"] == "off"
    done = CliRunner().invoke(app, ["validate", *common, "--run-id", "v", "--no-build-cache"])
    assert done.exit_code == 0, done.output
    row = json.loads((tmp_path / "runs" / "v" / "validation.json").read_text())["instances"][0]
    assert (row["build_cache"], row["empty_build_cache"]) == ("off", "off") and row[
        "empty_install_s"
    ] is not None
    assert stat.S_ISDIR((tmp_path / "cache").stat().st_mode) and not (tmp_path / "cache" / "builds").exists()
